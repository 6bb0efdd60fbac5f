"""Typed application state shared by the handlers (aiohttp AppKeys)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from kollie.cache import Cache
from kollie.catalog import Catalog, CatalogSource
from kollie.config import Settings
from kollie.health import HealthSource
from kollie.lifecycle import Shutdown
from kollie.listing import EnvironmentIndex
from kollie.operations import Operations
from kollie.views import EnvironmentRenderer
from web.auth import Authenticator
from web.fragments import Fragments
from web.metrics import Metrics
from web.sse import EventHub


@dataclass
class Services:
    """Everything a request handler may use, built once by the composition root."""

    settings: Settings
    cache: Cache
    renderer: EnvironmentRenderer
    index: EnvironmentIndex
    fragments: Fragments
    operations: Operations
    catalog: CatalogSource
    background: HealthSource
    """How the watchers are doing (read-only facts; web never holds the watchers)."""
    auth: Authenticator
    metrics: Metrics
    clock: Callable[[], datetime]
    hub: EventHub
    demo: bool = False
    shutdown: Shutdown = field(default_factory=Shutdown)
    """Set on SIGTERM: the replica drains (kollie.serving)."""

    def current_catalog(self) -> Catalog:
        return self.catalog.current


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
