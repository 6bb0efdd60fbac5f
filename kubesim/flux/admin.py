"""Admin HTTP routes of the simulated Flux, registry and git host (all under `/sim/`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from kubesim.flux import FluxSimulation


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as e:
        raise web.HTTPBadRequest(text=f'{{"error": "malformed JSON: {e}"}}', content_type="application/json") from e
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}', content_type="application/json")
    return body


def admin_routes(flux: FluxSimulation) -> list[web.RouteDef]:
    async def push(request: web.Request) -> web.Response:
        body = await _body(request)
        image, tag = body.get("image"), body.get("tag")
        if not isinstance(image, str) or not isinstance(tag, str) or not image or not tag:
            return _error("image and tag are required strings")
        digest = body.get("digest")
        if digest is not None and (not isinstance(digest, str) or not digest.startswith("sha256:")):
            return _error("digest must look like sha256:<hex>")
        result = flux.registry.push(image, tag, digest=digest)
        return web.json_response({"image": result.image, "tag": result.tag, "digest": result.digest}, status=201)

    async def tags(request: web.Request) -> web.Response:
        image = request.query.get("image", "")
        found = flux.registry.tags(image)
        if found is None:
            return _error(f"no repository {image!r}", 404)
        return web.json_response({"image": image, "tags": {t: p.digest for t, p in sorted(found.items())}})

    async def delete_tag(request: web.Request) -> web.Response:
        if not flux.registry.delete_tag(request.query.get("image", ""), request.query.get("tag", "")):
            return _error("no such tag", 404)
        return web.json_response({"deleted": True})

    async def add_repository(request: web.Request) -> web.Response:
        body = await _body(request)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            return _error("url is required")
        repo = flux.git.add_repository(url, branches=body.get("branches") or ["main"], paths=body.get("paths") or {})
        return web.json_response({"url": url, "branches": repo.branches}, status=201)

    async def git_push(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            sha = flux.git.push(str(body.get("url", "")), str(body.get("branch", "main")), paths=body.get("paths"))
        except KeyError as e:
            return _error(str(e), 404)
        return web.json_response({"sha": sha})

    async def settings(request: web.Request) -> web.Response:
        body = await _body(request)
        delay = body.get("reconcileDelay")
        if delay is not None:
            if not isinstance(delay, (int, float)) or not 0 <= delay <= 300:
                return _error("reconcileDelay must be a number of seconds between 0 and 300")
            flux.reconcile_delay = float(delay)
        return web.json_response({"reconcileDelay": flux.reconcile_delay})

    async def fail(request: web.Request) -> web.Response:
        body = await _body(request)
        ns, name = body.get("namespace"), body.get("name")
        if not isinstance(ns, str) or not isinstance(name, str):
            return _error("namespace and name are required")
        message = body.get("message")
        flux.fail(ns, name, str(message) if message else None)
        return web.json_response({"namespace": ns, "name": name, "failing": bool(message)})

    return [
        web.post("/sim/registry/push", push),
        web.get("/sim/registry/tags", tags),
        web.delete("/sim/registry/tags", delete_tag),
        web.post("/sim/git/repositories", add_repository),
        web.post("/sim/git/push", git_push),
        web.put("/sim/flux", settings),
        web.put("/sim/flux/failures", fail),
    ]
