"""The composition root: the one module (with the CLI, its only user) that knows the domain,
the watchers and the web application, and puts them together.

`build_runtime` constructs the whole object graph once, in dependency order, from objects
that are complete when constructed; `create_app` returns the aiohttp application whose
cleanup context reads the configuration files, connects to the cluster, builds the graph,
runs the background work while the application serves, and stops it within a bound.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from kollie.cache import Cache
from kollie.catalog import CatalogError, CatalogSource
from kollie.config import Settings, parse_tokens
from kollie.kube import KubeClient
from kollie.listing import EnvironmentIndex
from kollie.operations import Actor, Operations
from kollie.pushhandler import PushHandler
from kollie.pushwork import PushWork
from kollie.views import EnvironmentRenderer
from watchers.runtime import Background, Timing
from watchers.supervisor import Supervisor
from web.app import application
from web.auth import Authenticator
from web.fragments import Fragments
from web.metrics import Metrics
from web.sse import EventHub
from web.state import SERVICES, Services
from web.webhooks import RECEIVER, Receiver

log = structlog.get_logger("kollie")

CATALOG_POLL = 5.0
"""Seconds between two checks of the catalog file for changes."""
GC_PAUSE_LIMIT = 120.0
"""Seconds the cyclic garbage collector may stay paused while the first sync runs."""
SHUTDOWN_GRACE = 10.0
"""Seconds for stopping background work; keep below the chart's terminationGracePeriodSeconds."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def replica_identity() -> str:
    """A name for this process that no other replica has (the leader Lease's holder)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Runtime:
    """Kollie's object graph: what request handlers use, and the background work behind it."""

    services: Services
    background: Background
    webhooks: Receiver
    supervisor: Supervisor

    async def drain(self) -> None:
        """The first step of a graceful stop: /readyz fails, live pages are told to reconnect
        to another replica, and a leader gives its Lease up (its loops stop) so another
        replica takes over at once."""
        self.services.shutdown.begin()
        self.services.hub.reconnect_all()
        await self.supervisor.stop_one("leader-election", SHUTDOWN_GRACE)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run every background task while the block runs; stop them within SHUTDOWN_GRACE."""
        # The first sync builds hundreds of thousands of objects and leaves none in cycles;
        # the cyclic collector, scanning them over and over meanwhile, would double its time.
        gc.disable()
        self.services.hub.start()
        tasks = {
            **self.background.tasks(),
            "catalog-reload": lambda: self.services.catalog.poll(CATALOG_POLL),
            "warm-listings": self._warm_listings,
        }
        for name, task in tasks.items():
            self.supervisor.start(name, task)
        try:
            yield
        finally:
            gc.enable()
            self.services.hub.stop()
            await self.webhooks.work.close()
            await self.supervisor.stop(SHUTDOWN_GRACE)

    async def _warm_listings(self) -> None:
        """After the first sync (or GC_PAUSE_LIMIT), collect once and freeze what the cache
        holds so later collections skip it; then keep every environment's rendering current."""
        try:
            await self.background.wait_synced(GC_PAUSE_LIMIT)
        finally:
            gc.collect()
            gc.freeze()
            gc.enable()
        while not await self.background.wait_synced(60):
            pass
        await self.services.index.keep_warm()


def build_runtime(
    settings: Settings,
    client: KubeClient,
    clock: Callable[[], datetime],
    *,
    catalog: CatalogSource,
    tokens: Mapping[str, str],
    identity: str,
    templates: jinja2.Environment,
    demo: bool = False,
    timing: Timing = Timing(),
) -> Runtime:
    """Construct everything once, each object after what it depends on. Starts nothing."""
    cache = Cache()
    operations = Operations(
        client, cache, lambda: catalog.current, settings, clock=clock, instance=identity
    )
    renderer = EnvironmentRenderer(
        cache, ttl_seconds=settings.env_ttl_seconds, namespace=settings.namespace, clock=clock
    )
    index = EnvironmentIndex(cache, renderer)
    fragments = Fragments(templates, index, lambda: catalog.current)
    hub = EventHub(cache, renderer, fragments.row_event, fragments.counts_event)
    metrics = Metrics()
    background = Background(
        client, cache, operations, identity=identity, on_health=hub.health, timing=timing
    )
    services = Services(
        settings=settings,
        cache=cache,
        renderer=renderer,
        index=index,
        fragments=fragments,
        operations=operations,
        catalog=catalog,
        background=background,
        auth=Authenticator(
            tokens,
            trust_proxy_headers=settings.trust_proxy_headers,
            demo=demo,
            public_url=settings.public_url,
        ),
        metrics=metrics,
        clock=clock,
        hub=hub,
        demo=demo,
    )
    webhooks = Receiver(PushWork(PushHandler(operations)))
    return Runtime(services, background, webhooks, Supervisor())


RUNTIME = web.AppKey("runtime", Runtime)


def create_app(
    settings: Settings,
    *,
    kubeconfig: str | None = None,
    demo: bool = False,
    identity: str | None = None,
    clock: Callable[[], datetime] = _utcnow,
    timing: Timing = Timing(),
) -> web.Application:
    """The Kollie application; its cleanup context builds, starts and stops everything else."""
    app = application(settings)
    app.cleanup_ctx.append(
        functools.partial(
            _serve,
            settings,
            kubeconfig=kubeconfig,
            demo=demo,
            identity=identity or replica_identity(),
            clock=clock,
            timing=timing,
        )
    )
    return app


async def _serve(
    settings: Settings,
    app: web.Application,
    *,
    kubeconfig: str | None,
    demo: bool,
    identity: str,
    clock: Callable[[], datetime],
    timing: Timing,
) -> AsyncIterator[None]:
    """The application's cleanup context: everything between startup and shutdown."""
    catalog = CatalogSource(settings.catalog_path)
    catalog.reload_if_changed()
    if catalog.last_error is not None:
        raise CatalogError(catalog.last_error.problems)
    tokens = parse_tokens(settings.api_tokens_file.read_text()) if settings.api_tokens_file else {}
    client = await KubeClient.from_config(kubeconfig)
    try:
        runtime = build_runtime(
            settings,
            client,
            clock,
            catalog=catalog,
            tokens=tokens,
            identity=identity,
            templates=aiohttp_jinja2.get_env(app),
            demo=demo,
            timing=timing,
        )
        app[RUNTIME] = runtime
        app[SERVICES] = runtime.services
        app[RECEIVER] = runtime.webhooks
        async with runtime.running():
            log.info(
                "kollie_started", namespace=settings.namespace, api_server=client.host, demo=demo
            )
            yield
    finally:
        await client.close()
        log.info("kollie_stopped")


DEMO_ENVIRONMENTS = (
    (
        "checkout",
        "storefront",
        {"web": "feature-checkout", "api": "feature-checkout"},
        "alice@example.com",
    ),
    ("login-fix", "backoffice", {"admin": "fix-login"}, "bob@example.com"),
    ("search-v2", None, {"search": "feature-search-v2", "api": None}, "alice@example.com"),
)


async def create_demo_environments(runtime: Runtime) -> None:
    """The environments `kollie demo` starts with, created through the normal operations."""
    await runtime.background.wait_synced(30)
    services = runtime.services
    for name, bundle, apps, owner in DEMO_ENVIRONMENTS:
        if services.cache.environment(name) is None:
            await services.operations.put_environment(
                name, apps=apps, bundle=bundle, actor=Actor(owner, "cli")
            )
    log.info("demo_environments_created", count=len(DEMO_ENVIRONMENTS))
