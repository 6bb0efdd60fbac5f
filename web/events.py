"""GET /events: the live stream of environment changes (all, or `?env=<name>`)."""

from __future__ import annotations

from aiohttp import web

from web import sse
from web.errors import not_found
from web.state import services

routes = web.RouteTableDef()


@routes.get("/events", name="events")
async def events(request: web.Request) -> web.StreamResponse:
    s = services(request)
    s.auth.require(request)
    env = request.query.get("env") or None
    if env is not None and s.cache.environment(env) is None:
        raise not_found(f"environment {env!r} not found")
    s.metrics.sse_clients.inc()
    try:
        return await sse.serve(s.hub, request, env)
    finally:
        s.metrics.sse_clients.dec()
