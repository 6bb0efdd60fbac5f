"""The JSON API under /api/v1 (DESIGN §5): the interface of CI and scripts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kollie import uptime
from kollie.catalog import Catalog
from web.bodies import environment_request, extension, json_body, uptime_request
from web.errors import not_found, unprocessable
from web.state import Services, services

routes = web.RouteTableDef()
WAIT_MAX = 3600
CATCH_UP = 5.0
"""Seconds a write waits for the watch to bring its own change back into the cache."""


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
    s = services(request)
    s.auth.require(request)
    catalog = s.current_catalog()
    return web.json_response({"items": [_app_json(catalog, n) for n in sorted(catalog.apps)]})


@routes.get("/api/v1/bundles", name="api-bundles")
async def list_bundles(request: web.Request) -> web.Response:
    s = services(request)
    s.auth.require(request)
    bundles = s.current_catalog().bundles
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
    s = services(request)
    s.auth.require(request)
    return web.json_response({"items": s.renderer.all()})


async def _wait_for(s: Services, env: str, done: Callable[[], bool], seconds: float) -> bool:
    """Wait until `done()` holds, re-checking whenever the cache says `env` changed."""
    if done():
        return True
    changed = asyncio.Event()

    def listener(name: str) -> None:
        if name in (env, ""):
            changed.set()

    unsubscribe = s.cache.subscribe(listener)
    try:
        async with asyncio.timeout(seconds):
            while not done():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        return done()
    finally:
        unsubscribe()
    return True


async def _settled(s: Services, name: str, key: str, value: Any) -> web.Response:
    """Answer with the environment once the cache shows the change (bounded by CATCH_UP)."""
    await _wait_for(s, name, lambda: (s.renderer.one(name) or {}).get(key) == value, CATCH_UP)
    return web.json_response(s.renderer.one(name) or {"name": name, key: value})


def _env_name(request: web.Request) -> str:
    return request.match_info["env"]


def _ready(body: dict[str, Any] | None) -> bool:
    return bool(body and body["apps"] and all(a["ready"] is True for a in body["apps"]))


@routes.get("/api/v1/environments/{env}", name="api-environment")
async def get_environment(request: web.Request) -> web.Response:
    s = services(request)
    s.auth.require(request)
    name = _env_name(request)
    wait = request.query.get("wait")
    if wait is None:
        body = s.renderer.one(name)
        if body is None:
            raise not_found(f"environment {name!r} not found")
        return web.json_response(body)
    if wait != "ready":
        raise unprocessable("wait must be 'ready'")
    try:
        timeout = float(request.query.get("timeout", "300"))
    except ValueError:
        raise unprocessable("timeout must be a number of seconds") from None
    if not 0 < timeout <= WAIT_MAX:
        raise unprocessable(f"timeout must be between 0 and {WAIT_MAX} seconds")
    if s.renderer.one(name) is None:
        raise not_found(f"environment {name!r} not found")
    ready = await _wait_for(
        s, name, lambda: s.renderer.one(name) is None or _ready(s.renderer.one(name)), timeout
    )
    body = s.renderer.one(name)
    if body is None:
        raise not_found(f"environment {name!r} was deleted while waiting")
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


def _caught_up(s: Services, env: str, apps: dict[str, str] | None) -> Callable[[], bool]:
    """Whether the cache shows an environment with exactly these apps and prefixes."""

    def check() -> bool:
        if s.cache.environment(env) is None:
            return False
        if apps is None:
            return True
        current = {
            a.name: (a.kustomization.prefix if a.kustomization else None) for a in s.cache.apps(env)
        }
        return current == apps

    return check


@routes.put("/api/v1/environments/{env}", name="api-put-environment")
async def put_environment(request: web.Request) -> web.Response:
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
    req = environment_request(await json_body(request), s.clock())
    desired = s.operations.resolve_apps(req.apps, req.bundle)
    change = await s.operations.put_environment(
        name, apps=req.apps, bundle=req.bundle, actor=actor, window=req.window
    )
    await _wait_for(s, name, _caught_up(s, name, desired), CATCH_UP)
    body = s.renderer.one(name) or {"name": name, "apps": []}
    return web.json_response(body, status=201 if change.created else 200)


@routes.delete("/api/v1/environments/{env}", name="api-delete-environment")
async def delete_environment(request: web.Request) -> web.Response:
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
    await s.operations.delete_environment(name, actor=actor)
    return web.json_response({"name": name, "status": "deleting"}, status=202)


@routes.post("/api/v1/environments/{env}/apps", name="api-add-app")
async def add_app(request: web.Request) -> web.Response:
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
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
    await s.operations.add_app(name, app, prefix, actor=actor)
    resolved = s.operations.resolve_apps({app: prefix}, None)[app]

    def has_app() -> bool:
        return any(
            a.name == app and a.kustomization is not None and a.kustomization.prefix == resolved
            for a in s.cache.apps(name)
        )

    await _wait_for(s, name, has_app, CATCH_UP)
    return web.json_response(s.renderer.one(name) or {"name": name}, status=200)


@routes.delete("/api/v1/environments/{env}/apps/{app}", name="api-remove-app")
async def remove_app(request: web.Request) -> web.Response:
    s = services(request)
    actor = s.auth.require(request)
    name, app = _env_name(request), request.match_info["app"]
    await s.operations.remove_app(name, app, actor=actor)
    await _wait_for(
        s,
        name,
        lambda: all(
            a.name != app or (a.kustomization and a.kustomization.deleting)
            for a in s.cache.apps(name)
        ),
        CATCH_UP,
    )
    return web.json_response(s.renderer.one(name) or {"name": name}, status=200)


@routes.get("/api/v1/environments/{env}/history", name="api-history")
async def history(request: web.Request) -> web.Response:
    """The environment's audit trail, newest first."""
    s = services(request)
    s.auth.require(request)
    name = _env_name(request)
    if s.cache.environment(name) is None:
        raise not_found(f"environment {name!r} not found")
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
                for e in s.cache.history(name)
            ]
        }
    )


@routes.put("/api/v1/environments/{env}/flux-branch", name="api-flux-branch")
async def flux_branch(request: web.Request) -> web.Response:
    """Build the environment's apps from another branch of the Flux repository (null: back)."""
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
    body = await json_body(request)
    if set(body) != {"branch"} or not (body["branch"] is None or isinstance(body["branch"], str)):
        raise unprocessable('send {"branch": "<git branch>"} or {"branch": null}')
    await s.operations.follow_branch(name, body["branch"], actor=actor)
    return await _settled(s, name, "fluxBranch", body["branch"])


@routes.put("/api/v1/environments/{env}/keep", name="api-keep")
async def keep(request: web.Request) -> web.Response:
    """Pin an environment so that expiry never deletes it (owner or admin)."""
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
    body = await json_body(request)
    if set(body) != {"keep"} or not isinstance(body["keep"], bool):
        raise unprocessable('send {"keep": true} or {"keep": false}')
    await s.operations.set_keep(name, body["keep"], actor=actor)
    return await _settled(s, name, "keep", body["keep"])


@routes.put("/api/v1/environments/{env}/uptime", name="api-uptime")
async def set_uptime(request: web.Request) -> web.Response:
    """Switch to a weekly schedule ({"schedule": ...}) or an end time ({"until"|"hours": ...})."""
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
    body = await json_body(request)
    record = s.cache.environment(name)
    if record is None:
        raise not_found(f"environment {name!r} not found")
    current = uptime.from_json(record.settings.get("uptime"))
    if current is not None and current.mode == "schedule" and ("hours" in body or "days" in body):
        current = None  # hours count from now when leaving a schedule explicitly
    window = uptime_request(body, current, s.clock())
    await s.operations.set_uptime(name, window, actor=actor)
    return await _settled(s, name, "uptime", window.as_json())


@routes.post("/api/v1/environments/{env}/extend", name="api-extend")
async def extend(request: web.Request) -> web.Response:
    s = services(request)
    actor = s.auth.require(request)
    name = _env_name(request)
    body = await json_body(request)
    unknown = set(body) - {"hours", "days", "until"}
    if unknown:
        raise unprocessable(
            f"unknown field(s): {', '.join(sorted(unknown))}; allowed: hours, days, until"
        )
    hours, until = extension(body)
    window = await s.operations.extend(name, hours=hours, until=until, actor=actor)
    return await _settled(s, name, "uptime", window.as_json())
