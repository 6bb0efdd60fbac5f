"""The JSON API under /api/v1 (DESIGN §5): the interface of CI and scripts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kollie.catalog import Catalog
from kollie.operations import Actor
from web import collection
from web.bodies import environment_request, extension, json_body, uptime_change
from web.concurrency import LONG_REQUESTS
from web.errors import ApiError, not_found, unprocessable
from web.state import Services, services

routes = web.RouteTableDef()
DEFAULT_WAIT = 300
"""Seconds `?wait=ready` waits without a `timeout` (at most KOLLIE_LIMIT_WAIT_SECONDS)."""
CATCH_UP = 5.0
"""Seconds a write waits for the watch to bring its own change back into the cache."""


@dataclass(frozen=True)
class Call:
    """An authenticated API request: the services, who asks, and the environment in the path
    ("" on routes without one)."""

    services: Services
    actor: Actor
    env: str

    def environment(self) -> dict[str, Any] | None:
        """The environment as the API shows it, from the cache."""
        return self.services.renderer.one(self.env)

    async def wait_for(self, done: Callable[[], bool], seconds: float = CATCH_UP) -> bool:
        """Wait until `done()` holds, re-checking whenever the cache says the environment
        changed; whether it holds after at most `seconds`."""
        if done():
            return True
        changed = asyncio.Event()

        def listener(name: str) -> None:
            if name in (self.env, ""):
                changed.set()

        unsubscribe = self.services.cache.subscribe(listener)
        stopping = self.services.shutdown.started
        try:
            async with asyncio.timeout(seconds):
                while not done() and not stopping.is_set():
                    changed.clear()
                    await _either(changed, stopping)
        except TimeoutError:
            pass
        finally:
            unsubscribe()
        return done()

    async def answer_when(
        self, done: Callable[[], bool], fallback: dict[str, Any], *, status: int = 200
    ) -> web.Response:
        """Answer with the environment once the watch has brought the write back (`done()`),
        or after CATCH_UP with what the cache shows then (`fallback` if nothing)."""
        await self.wait_for(done)
        return web.json_response(self.environment() or fallback, status=status)

    async def settled(self, key: str, value: Any) -> web.Response:
        """Answer once the environment's `key` shows `value`."""
        return await self.answer_when(
            lambda: (self.environment() or {}).get(key) == value, {"name": self.env, key: value}
        )


def _call(request: web.Request) -> Call:
    """The request's services and caller (401 if unauthenticated), before anything else."""
    s = services(request)
    return Call(s, s.auth.require(request), request.match_info.get("env", ""))


def _app_json(catalog: Catalog, name: str) -> dict[str, Any]:
    app = catalog.apps[name]
    return {
        "name": app.name,
        "defaultPrefix": app.default_prefix,
        "description": app.description,
        "dependsOn": list(app.depends_on),
        "imageRepository": {
            "name": app.image_repository.name,
            "namespace": app.image_repository.namespace,
        },
    }


@routes.get("/api/v1/apps", name="api-apps")
async def list_apps(request: web.Request) -> web.Response:
    catalog = _call(request).services.current_catalog()
    return web.json_response({"items": [_app_json(catalog, n) for n in sorted(catalog.apps)]})


@routes.get("/api/v1/bundles", name="api-bundles")
async def list_bundles(request: web.Request) -> web.Response:
    bundles = _call(request).services.current_catalog().bundles
    return web.json_response(
        {
            "items": [
                {"name": b.name, "description": b.description, "apps": list(b.apps)}
                for b in sorted(bundles.values(), key=lambda b: b.name)
            ]
        }
    )


@routes.get("/api/v1/environments", name="api-environments")
async def list_environments(request: web.Request) -> web.Response:
    """Every environment, or a page of them (`limit`, `continue`); `If-None-Match` with the
    last answer's ETag gets 304 while nothing changed."""
    s = _call(request).services
    limit, token = request.query.get("limit"), request.query.get("continue")
    tag = collection.etag(s.cache.generation, limit, token)
    if tag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={"ETag": tag})
    try:
        body = collection.page(s.index, limit=limit, token=token)
    except collection.BadPage as e:
        raise ApiError(400, "bad_request", str(e)) from e
    return web.Response(body=body, content_type="application/json", headers={"ETag": tag})


def _ready(body: dict[str, Any] | None) -> bool:
    return bool(body and body["apps"] and all(a["ready"] is True for a in body["apps"]))


def _wait_timeout(request: web.Request, longest: int) -> float:
    try:
        timeout = float(request.query.get("timeout", str(min(DEFAULT_WAIT, longest))))
    except ValueError:
        raise unprocessable("timeout must be a number of seconds") from None
    if not 0 < timeout <= longest:
        raise unprocessable(
            f"timeout must be between 0 and {longest} seconds (KOLLIE_LIMIT_WAIT_SECONDS)"
        )
    return timeout


async def _either(*events: asyncio.Event) -> None:
    """Until one of `events` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@routes.get("/api/v1/environments/{env}", name="api-environment")
async def get_environment(request: web.Request) -> web.Response:
    call = _call(request)
    name = call.env
    wait = request.query.get("wait")
    if wait is None:
        body = call.environment()
        if body is None:
            raise not_found(f"environment {name!r} not found")
        return web.json_response(body)
    if wait != "ready":
        raise unprocessable("wait must be 'ready'")
    timeout = _wait_timeout(request, call.services.settings.limits.wait_seconds)
    if call.environment() is None:
        raise not_found(f"environment {name!r} not found")
    with request.app[LONG_REQUESTS].waits.hold(call.actor.name):
        ready = await call.wait_for(
            lambda: call.environment() is None or _ready(call.environment()), timeout
        )
    body = call.environment()
    if body is None:
        raise not_found(f"environment {name!r} was deleted while waiting")
    if not ready and call.services.shutdown.draining:
        raise ApiError(
            503,
            "shutting_down",
            "this Kollie replica is shutting down; retry and another replica will answer",
            headers={"Retry-After": "1"},
        )
    if not ready:
        return web.json_response(
            {
                "error": "timeout",
                "message": f"environment {name!r} was not ready after {timeout:g}s",
                "environment": body,
            },
            status=408,
        )
    return web.json_response(body)


def _has_apps(call: Call, apps: dict[str, str]) -> Callable[[], bool]:
    """Whether the cache shows the environment with exactly these apps and prefixes."""
    cache = call.services.cache

    def check() -> bool:
        if cache.environment(call.env) is None:
            return False
        current = {
            a.name: (a.kustomization.prefix if a.kustomization else None)
            for a in cache.apps(call.env)
        }
        return current == apps

    return check


@routes.put("/api/v1/environments/{env}", name="api-put-environment")
async def put_environment(request: web.Request) -> web.Response:
    call = _call(request)
    operations = call.services.operations
    req = environment_request(await json_body(request), call.services.clock())
    desired = operations.resolve_apps(req.apps, req.bundle)
    change = await operations.put_environment(
        call.env, apps=req.apps, bundle=req.bundle, actor=call.actor, window=req.window
    )
    return await call.answer_when(
        _has_apps(call, desired),
        {"name": call.env, "apps": []},
        status=201 if change.created else 200,
    )


@routes.delete("/api/v1/environments/{env}", name="api-delete-environment")
async def delete_environment(request: web.Request) -> web.Response:
    call = _call(request)
    await call.services.operations.delete_environment(call.env, actor=call.actor)
    return web.json_response({"name": call.env, "status": "deleting"}, status=202)


@routes.post("/api/v1/environments/{env}/apps", name="api-add-app")
async def add_app(request: web.Request) -> web.Response:
    call = _call(request)
    body = await json_body(request)
    unknown = set(body) - {"name", "prefix"}
    if unknown:
        raise unprocessable(
            f"unknown field(s): {', '.join(sorted(unknown))}; allowed: name, prefix"
        )
    app, prefix = body.get("name"), body.get("prefix")
    if not isinstance(app, str) or not app:
        raise unprocessable("name (the app to add) is required")
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise unprocessable("prefix must be a non-empty string")
    operations = call.services.operations
    await operations.add_app(call.env, app, prefix, actor=call.actor)
    resolved = operations.resolve_apps({app: prefix}, None)[app]

    def has_app() -> bool:
        return any(
            a.name == app and a.kustomization is not None and a.kustomization.prefix == resolved
            for a in call.services.cache.apps(call.env)
        )

    return await call.answer_when(has_app, {"name": call.env})


@routes.delete("/api/v1/environments/{env}/apps/{app}", name="api-remove-app")
async def remove_app(request: web.Request) -> web.Response:
    call = _call(request)
    app = request.match_info["app"]
    await call.services.operations.remove_app(call.env, app, actor=call.actor)

    def gone() -> bool:
        return all(
            a.name != app or (a.kustomization and a.kustomization.deleting)
            for a in call.services.cache.apps(call.env)
        )

    return await call.answer_when(gone, {"name": call.env})


@routes.get("/api/v1/environments/{env}/history", name="api-history")
async def history(request: web.Request) -> web.Response:
    """The environment's audit trail, newest first."""
    call = _call(request)
    cache = call.services.cache
    if cache.environment(call.env) is None:
        raise not_found(f"environment {call.env!r} not found")
    return web.json_response(
        {
            "items": [
                {
                    "time": e.time,
                    "reason": e.reason,
                    "message": e.message,
                    "actor": e.actor,
                    "via": e.via,
                }
                for e in cache.history(call.env)
            ]
        }
    )


@routes.put("/api/v1/environments/{env}/flux-branch", name="api-flux-branch")
async def flux_branch(request: web.Request) -> web.Response:
    """Build the environment's apps from another branch of the Flux repository (null: back)."""
    call = _call(request)
    body = await json_body(request)
    if set(body) != {"branch"} or not (body["branch"] is None or isinstance(body["branch"], str)):
        raise unprocessable('send {"branch": "<git branch>"} or {"branch": null}')
    await call.services.operations.follow_branch(call.env, body["branch"], actor=call.actor)
    return await call.settled("fluxBranch", body["branch"])


@routes.put("/api/v1/environments/{env}/keep", name="api-keep")
async def keep(request: web.Request) -> web.Response:
    """Pin an environment so that expiry never deletes it (owner or admin)."""
    call = _call(request)
    body = await json_body(request)
    if set(body) != {"keep"} or not isinstance(body["keep"], bool):
        raise unprocessable('send {"keep": true} or {"keep": false}')
    await call.services.operations.set_keep(call.env, body["keep"], actor=call.actor)
    return await call.settled("keep", body["keep"])


@routes.put("/api/v1/environments/{env}/uptime", name="api-uptime")
async def set_uptime(request: web.Request) -> web.Response:
    """Switch to a weekly schedule ({"schedule": ...}) or an end time ({"until"|"hours": ...})."""
    call = _call(request)
    body = await json_body(request)
    if call.services.cache.environment(call.env) is None:
        raise not_found(f"environment {call.env!r} not found")
    change = uptime_change(body)
    operations = call.services.operations
    if change.schedule is not None:
        window = change.schedule
        await operations.set_uptime(call.env, window, actor=call.actor)
    else:
        window = await operations.end_uptime(
            call.env, hours=change.hours, until=change.until, actor=call.actor
        )
    return await call.settled("uptime", window.as_json())


@routes.post("/api/v1/environments/{env}/extend", name="api-extend")
async def extend(request: web.Request) -> web.Response:
    call = _call(request)
    body = await json_body(request)
    unknown = set(body) - {"hours", "days", "until"}
    if unknown:
        raise unprocessable(
            f"unknown field(s): {', '.join(sorted(unknown))}; allowed: hours, days, until"
        )
    hours, until = extension(body)
    window = await call.services.operations.extend(
        call.env, hours=hours, until=until, actor=call.actor
    )
    return await call.settled("uptime", window.as_json())
