"""The aiohttp application: its routes, middlewares and templates (the composition root,
`kollie.composition`, gives it its services and runs the background work)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from kollie.config import Settings
from web import api, events, health, openapi, pages, webhooks
from web.concurrency import LONG_REQUESTS, LongRequests
from web.csrf import Csrf
from web.errors import json_errors
from web.flash import Flash
from web.headers import add_security_headers
from web.paths import unambiguous_paths
from web.state import SERVICES

log = structlog.get_logger("kollie.web")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


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
async def close_when_draining(
    request: web.Request, handler: Callable[[web.Request], object]
) -> web.StreamResponse:
    """While the replica drains, every answer closes its connection: the client's next
    request opens a new one, which the load balancer sends to a replica in rotation."""
    response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    services = request.app.get(SERVICES)
    if services is not None and services.shutdown.draining:
        response.force_close()
    return response


def application(settings: Settings) -> web.Application:
    """Kollie's aiohttp application: routes, middlewares and templates. Its services (the
    `SERVICES` key) are added by the composition root's cleanup context once the loop runs."""
    app = web.Application(
        middlewares=[request_log, close_when_draining, json_errors, unambiguous_paths],
        client_max_size=2 * 1024 * 1024,
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
    add_security_headers(
        app, https=bool(settings.public_url and settings.public_url.startswith("https://"))
    )
    csrf = Csrf(
        settings.csrf_secret.encode() if settings.csrf_secret else None,
        public_origin=settings.public_url,
    )
    app[pages.CSRF] = csrf
    app[pages.FLASH] = Flash(csrf.secret, secure=csrf.secure)
    app[LONG_REQUESTS] = LongRequests.from_limits(settings.limits)
    return app
