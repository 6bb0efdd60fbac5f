"""GET /events: the live stream of environment changes (all, or `?env=<name>`).

`?view=rows` is the dashboard's view (rendered rows and counts); the default is the API's JSON
of each environment. `?since=<event id>` starts from a known position (a page embeds the one
it was rendered at), as `Last-Event-ID` does when a browser reconnects.
"""

from __future__ import annotations

from aiohttp import web

from web import sse
from web.concurrency import LONG_REQUESTS
from web.errors import not_found, unprocessable
from web.state import services

routes = web.RouteTableDef()


@routes.get("/events", name="events")
async def events(request: web.Request) -> web.StreamResponse:
    s = services(request)
    actor = s.auth.require(request)
    env = request.query.get("env") or None
    if env is not None and s.cache.environment(env) is None:
        raise not_found(f"environment {env!r} not found")
    view = request.query.get("view", "environments")
    if view not in ("environments", "rows"):
        raise unprocessable("view must be 'environments' (the default) or 'rows'")
    with request.app[LONG_REQUESTS].streams.hold(actor.name):
        s.metrics.sse_clients.inc()
        try:
            return await sse.serve(
                s.hub, request, env, "rows" if view == "rows" else "environments"
            )
        finally:
            s.metrics.sse_clients.dec()
