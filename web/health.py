"""Operations endpoints: /healthz (alive), /readyz (caches synced and API reachable), /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.state import Services, services

routes = web.RouteTableDef()


@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def readiness(s: Services, *, verbose: bool) -> tuple[bool, dict[str, object]]:
    """Whether this replica should get traffic, and what it may say about why. Error texts
    (API server refusals, the catalog's problems) are for authenticated callers and the logs:
    anyone who can reach the pod can ask /readyz."""
    if s.shutdown.draining:
        return False, {"status": "shutting down"}
    health = s.background.health()
    body: dict[str, object] = {
        "status": "ready" if health.ready else "not ready",
        "leader": health.leader,
    }
    if verbose:
        body["informers"] = {
            w.kind: {"synced": w.synced, "connected": w.connected, "lastError": w.last_error}
            for w in health.watches
        }
        body["catalogError"] = str(s.catalog.last_error) if s.catalog.last_error else None
    return health.ready, body


@routes.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when ready, else 503; `?verbose` (with an API token or a dashboard identity) adds
    each watch's state and last error and the catalog's error."""
    s = services(request)
    verbose = "verbose" in request.query
    if verbose:
        s.auth.require(request)
    ok, body = readiness(s, verbose=verbose)
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
