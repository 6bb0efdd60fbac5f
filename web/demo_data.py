"""The environments `kollie demo` starts with, created through the normal operations."""

from __future__ import annotations

import structlog
from aiohttp import web

from kollie.operations import Actor
from web.state import SERVICES

log = structlog.get_logger("kollie.demo")

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


async def create_demo_environments(app: web.Application) -> None:
    services = app[SERVICES]
    assert services.background is not None
    await services.background.wait_synced(30)
    for name, bundle, apps, owner in DEMO_ENVIRONMENTS:
        if services.cache.environment(name) is None:
            await services.operations.put_environment(
                name, apps=apps, bundle=bundle, actor=Actor(owner, "cli")
            )
    log.info("demo_environments_created", count=len(DEMO_ENVIRONMENTS))
