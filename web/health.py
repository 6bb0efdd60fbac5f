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
    if s.shutdown.draining:
        return False, {"status": "shutting down"}
    health = s.background.health()
    informers = {
        w.kind: {"synced": w.synced, "connected": w.connected, "lastError": w.last_error}
        for w in health.watches
    }
    return health.ready, {
        "status": "ready" if health.ready else "not ready",
        "informers": informers,
        "leader": health.leader,
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
    m.environments.set(len(s.index))
    m.sse_dropped.set(s.hub.dropped)
    health = s.background.health()
    m.leader.set(1 if health.leader else 0)
    for w in health.watches:
        m.watch_restarts.labels(w.kind).set(w.restarts)
        m.watch_relists.labels(w.kind).set(w.relists)
        m.watch_errors.labels(w.kind).set(w.errors)
    body = generate_latest(m.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
