"""Operations endpoints: /healthz (alive), /readyz (caches synced and API reachable), /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.state import Services, services

routes = web.RouteTableDef()


@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def readiness(s: Services) -> tuple[bool, dict[str, object]]:
    if s.background is None:
        return False, {"status": "not ready", "reason": "watchers not started"}
    informers = {
        i.kind: {
            "synced": i.synced.is_set(),
            "connected": i.stats.connected,
            "lastError": i.stats.last_error or None,
        }
        for i in s.background.informers
    }
    ok = s.background.synced and s.background.connected
    return ok, {
        "status": "ready" if ok else "not ready",
        "informers": informers,
        "leader": s.background.is_leader,
        "catalogError": str(s.catalog.last_error) if s.catalog.last_error else None,
    }


@routes.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    ok, body = readiness(services(request))
    return web.json_response(body, status=200 if ok else 503)


@routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    s = services(request)
    m = s.metrics
    for kind, count in s.cache.counts().items():
        m.cache_objects.labels(kind).set(count)
    m.environments.set(len(s.cache.environment_names()))
    if s.background is not None:
        m.leader.set(1 if s.background.is_leader else 0)
        for inf in s.background.informers:
            m.watch_restarts.labels(inf.kind).set(inf.stats.restarts)
            m.watch_relists.labels(inf.kind).set(inf.stats.lists)
            m.watch_errors.labels(inf.kind).set(inf.stats.errors)
    body = generate_latest(m.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
