"""OpenAPI matches the routes; health, readiness and metrics answer."""

from __future__ import annotations

from tests.service.conftest import Kollie
from web import api
from web.openapi import DOCUMENT


def test_openapi_lists_every_route() -> None:
    served = set()
    for route in api.routes:
        path = route.path  # type: ignore[attr-defined]
        served.add((path, route.method.lower()))  # type: ignore[attr-defined]
    documented = {(p, m) for p, ops in DOCUMENT["paths"].items() for m in ops if m != "parameters"}
    assert served <= documented, served - documented
    assert documented - served == {("/api/v1/openapi.json", "get")}


async def test_openapi_served(kollie: Kollie) -> None:
    async with kollie.http.get(kollie.url("/api/v1/openapi.json")) as r:
        assert r.status == 200 and (await r.json())["openapi"].startswith("3.")


async def test_health_ready_metrics(kollie: Kollie) -> None:
    async with kollie.http.get(kollie.url("/healthz")) as r:
        assert r.status == 200
    async with kollie.http.get(kollie.url("/readyz")) as r:
        body = await r.json()
        assert r.status == 200 and body["status"] == "ready", body
    async with kollie.http.get(kollie.url("/metrics")) as r:
        text = await r.text()
        assert r.status == 200 and "kollie_cache_objects" in text and "kollie_leader" in text


async def test_readyz_fails_while_api_unreachable(kollie: Kollie) -> None:
    await kollie.cluster._unserve()
    try:

        async def not_ready() -> bool:
            async with kollie.http.get(kollie.url("/readyz")) as r:
                return r.status == 503

        from tests.helpers import eventually

        await eventually(not_ready, within=10, message="readyz reports the outage")
    finally:
        await kollie.cluster._serve()
