"""The aiohttp application: composition of the cache, the watchers and the handlers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from kollie.cache import Cache
from kollie.catalog import CatalogError, CatalogSource
from kollie.config import Settings, parse_tokens
from kollie.kube import KubeClient
from kollie.operations import Operations
from kollie.pushhandler import PushHandler
from kollie.views import EnvironmentRenderer
from watchers.runtime import Background
from web import api, events, health, openapi, pages, webhooks
from web.auth import Authenticator
from web.csrf import Csrf
from web.errors import json_errors
from web.metrics import Metrics
from web.sse import EventHub
from web.state import SERVICES, Services

log = structlog.get_logger("kollie.web")

CATALOG_POLL = 5.0
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SHUTDOWN_GRACE = 10.0
"""Seconds for stopping background work; keep below the chart's terminationGracePeriodSeconds."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@web.middleware
async def request_log(
    request: web.Request, handler: Callable[[web.Request], object]
) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response: web.StreamResponse = await handler(request)  # type: ignore[misc]
        response.headers["X-Request-Id"] = request_id
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "unmatched"
        )
        services = request.app.get(SERVICES)
        if services is not None:
            services.metrics.requests.labels(request.method, route, str(response.status)).inc()
            services.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
        if not request.path.startswith(("/healthz", "/readyz", "/metrics")):
            log.info(
                "http_request",
                method=request.method,
                path=request.path,
                status=response.status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return response


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], object]
) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def create_app(
    settings: Settings,
    *,
    kubeconfig: str | None = None,
    demo: bool = False,
    identity: str | None = None,
    clock: Callable[[], datetime] = _utcnow,
    watch_timeout: int = 300,
    lease_duration: float = 15.0,
    expiry_settle: float = 60.0,
    expiry_interval: float = 30.0,
) -> web.Application:
    """The Kollie application; its cleanup context starts and stops the background work."""
    app = web.Application(
        middlewares=[request_log, security_headers, json_errors], client_max_size=2 * 1024 * 1024
    )
    app.add_routes(api.routes)
    app.add_routes(health.routes)
    app.add_routes(openapi.routes)
    app.add_routes(events.routes)
    app.add_routes(pages.routes)
    app.add_routes(webhooks.routes)
    app.router.add_static("/static", STATIC, name="static")
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app[pages.CSRF] = Csrf(settings.csrf_secret.encode() if settings.csrf_secret else None)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        catalog = CatalogSource(settings.catalog_path)
        catalog.reload_if_changed()
        if catalog.last_error is not None:
            raise CatalogError(catalog.last_error.problems)
        tokens = (
            parse_tokens(settings.api_tokens_file.read_text()) if settings.api_tokens_file else {}
        )
        client = await KubeClient.from_config(kubeconfig)
        cache = Cache()
        operations = Operations(client, cache, lambda: catalog.current, settings, clock=clock)
        replica = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        operations.instance = replica
        renderer = EnvironmentRenderer(cache, ttl_seconds=settings.env_ttl_seconds)
        hub = EventHub(cache, renderer)
        background = Background(
            client,
            cache,
            operations,
            settings.namespace,
            replica,
            watch_timeout=watch_timeout,
            lease_duration=lease_duration,
            expiry_settle=expiry_settle,
            expiry_interval=expiry_interval,
            renew_deadline=lease_duration * 2 / 3,
            retry_period=max(lease_duration / 7, 0.2),
            url_discovery=settings.url_discovery,
        )
        background.on_change = lambda: hub.health(background.connected)
        for informer in background.informers:
            informer.on_change = background.on_change
        app[SERVICES] = Services(
            settings=settings,
            cache=cache,
            renderer=renderer,
            operations=operations,
            hub=hub,
            catalog=catalog,
            background=background,
            auth=Authenticator(tokens, trust_proxy_headers=settings.trust_proxy_headers, demo=demo),
            metrics=Metrics(),
            clock=clock,
            demo=demo,
        )
        hub.start()
        background.start()
        queue = webhooks.PushQueue(PushHandler(operations), app[SERVICES].metrics)
        app[webhooks.QUEUE] = queue
        background.supervisor.start("webhook-pushes", queue.run)
        background.supervisor.start("catalog-reload", lambda: _reload_catalog(catalog))
        log.info("kollie_started", namespace=settings.namespace, api_server=client.host, demo=demo)
        try:
            yield
        finally:
            hub.stop()
            await background.stop(SHUTDOWN_GRACE)
            await client.close()
            log.info("kollie_stopped")

    app.cleanup_ctx.append(lifecycle)
    return app


async def _reload_catalog(catalog: CatalogSource) -> None:
    while True:
        await asyncio.sleep(CATALOG_POLL)
        with contextlib.suppress(Exception):
            if catalog.reload_if_changed():
                log.info(
                    "catalog_reloaded",
                    apps=len(catalog.current.apps),
                    bundles=len(catalog.current.bundles),
                )
            elif catalog.last_error is not None:
                log.error("catalog_invalid", problems=catalog.last_error.problems)
