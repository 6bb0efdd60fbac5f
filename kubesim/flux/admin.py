"""Admin HTTP routes of the simulated Flux, registry and git host, all under `/sim/`.

JSON in and out; bad input is answered 400 with `{"error": "..."}`, an unknown repository or
tag 404.  These are for tests, demos and other tools driving a running emulator:

| route | body / query | does |
|---|---|---|
| `POST /sim/registry/push` | `{"image", "tag", "digest"?}` | push a tag (201) |
| `GET /sim/registry/tags` | `?image=` | the tags of an image with digests |
| `DELETE /sim/registry/tags` | `?image=&tag=` | delete a tag |
| `GET /sim/git/repositories` | | repositories with branches, tags and paths |
| `POST /sim/git/repositories` | `{"url", "branches"?, "tags"?, "paths"?}` | create, replace |
| `POST /sim/git/push` | `{"url", "branch", "paths"?, "fromBranch"?}` | commit to a branch |
| `GET`/`PUT /sim/flux` | `{"reconcileDelay"?}` | read or change settings |
| `PUT /sim/flux/failures` | `{"namespace", "name", "message"?}` | a Kustomization's health |
|  |  | check fails (no message: it recovers) |

The failure switches and the Helm chart routes are in kubesim.flux.switches.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, overload

from aiohttp import web

from kubesim.flux.charts import ChartHost
from kubesim.flux.githost import GitHost, Manifests
from kubesim.flux.helmactions import Helm
from kubesim.flux.registry import InvalidReference, Registry

Handler = Callable[[web.Request], Awaitable[web.Response]]


class FluxHandles(Protocol):
    """What the admin routes drive (:class:`kubesim.flux.FluxSimulation` is one)."""

    registry: Registry
    git: GitHost
    charts: ChartHost
    helm: Helm
    reconcile_delay: float

    def describe(self) -> dict[str, Any]: ...

    def fail(self, namespace: str, name: str, message: str | None) -> None: ...

    def refuse_credentials(self, image: str, *, refused: bool = True) -> None: ...


class BadInput(Exception):
    pass


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def body_of(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"malformed JSON: {e}") from e
    if not isinstance(body, dict):
        raise BadInput("expected a JSON object")
    return body


@overload
def string(body: Mapping[str, Any], field: str) -> str: ...


@overload
def string(body: Mapping[str, Any], field: str, *, required: bool) -> str | None: ...


def string(body: Mapping[str, Any], field: str, *, required: bool = True) -> str | None:
    """A non-empty string field (None when absent and not required); BadInput otherwise."""
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadInput(f"{field} must be a non-empty string")
    return value


def _paths(value: Any, *, allow_delete: bool) -> dict[str, Manifests | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput("paths must be an object of path -> YAML text or list of objects")
    for path, manifests in value.items():
        ok = isinstance(manifests, str | dict) or (
            isinstance(manifests, list) and all(isinstance(m, dict) for m in manifests)
        )
        if not ok and not (allow_delete and manifests is None):
            raise BadInput(f"paths[{path!r}] must be YAML text, an object or a list of objects")
    return dict(value)


def guarded(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (BadInput, InvalidReference, ValueError) as e:
            return _error(str(e))
        except KeyError as e:
            return _error(str(e.args[0]) if e.args else "not found", 404)

    return run


def admin_routes(flux: FluxHandles) -> list[web.RouteDef]:
    async def push(request: web.Request) -> web.Response:
        body = await body_of(request)
        image, tag = string(body, "image"), string(body, "tag")
        result = flux.registry.push(image, tag, digest=string(body, "digest", required=False))
        return web.json_response(
            {
                "image": result.image,
                "tag": result.tag,
                "digest": result.digest,
                "pushedAt": result.pushed_at,
            },
            status=201,
        )

    async def tags(request: web.Request) -> web.Response:
        image = request.query.get("image", "")
        if not image:
            raise BadInput("the image query parameter is required")
        found = flux.registry.tags(image)
        if found is None:
            raise KeyError(f"no repository {image!r}")
        return web.json_response(
            {"image": image, "tags": {t: p.digest for t, p in sorted(found.items())}}
        )

    async def delete_tag(request: web.Request) -> web.Response:
        image, tag = request.query.get("image", ""), request.query.get("tag", "")
        if not image or not tag:
            raise BadInput("the image and tag query parameters are required")
        if not flux.registry.delete_tag(image, tag):
            raise KeyError(f"no tag {tag!r} in {image!r}")
        return web.json_response({"image": image, "tag": tag, "deleted": True})

    async def repositories(request: web.Request) -> web.Response:
        return web.json_response({"items": flux.git.describe()})

    async def add_repository(request: web.Request) -> web.Response:
        body = await body_of(request)
        url = string(body, "url")
        branches = body.get("branches")
        if (
            branches is not None
            and not (isinstance(branches, list) and all(isinstance(b, str) for b in branches))
            and not (
                isinstance(branches, dict)
                and all(v is None or isinstance(v, str) for v in branches.values())
            )
        ):
            raise BadInput(
                "branches must be a list of names or an object of name -> commit sha or null"
            )
        found_tags = body.get("tags")
        if found_tags is not None and not (
            isinstance(found_tags, dict)
            and all(v is None or isinstance(v, str) for v in found_tags.values())
        ):
            raise BadInput("tags must be an object of name -> commit sha or null")
        paths = _paths(body.get("paths"), allow_delete=False)
        repo = flux.git.add_repository(
            url,
            branches=branches,
            tags=found_tags,
            paths={p: m for p, m in (paths or {}).items() if m is not None},
        )
        return web.json_response(
            {"url": url, "branches": repo.branches, "tags": repo.tags}, status=201
        )

    async def git_push(request: web.Request) -> web.Response:
        body = await body_of(request)
        url, branch = string(body, "url"), string(body, "branch")
        sha = flux.git.push(
            url,
            branch,
            paths=_paths(body.get("paths"), allow_delete=True),
            from_branch=string(body, "fromBranch", required=False),
        )
        return web.json_response({"url": url, "branch": branch, "sha": sha})

    async def get_settings(request: web.Request) -> web.Response:
        return web.json_response(flux.describe())

    async def put_settings(request: web.Request) -> web.Response:
        body = await body_of(request)
        delay = body.get("reconcileDelay")
        if delay is not None:
            if (
                isinstance(delay, bool)
                or not isinstance(delay, int | float)
                or not 0 <= delay <= 300
            ):
                raise BadInput("reconcileDelay must be a number of seconds between 0 and 300")
            flux.reconcile_delay = float(delay)
        return web.json_response(flux.describe())

    async def fail(request: web.Request) -> web.Response:
        body = await body_of(request)
        ns, name = string(body, "namespace"), string(body, "name")
        message = body.get("message")
        if message is not None and not isinstance(message, str):
            raise BadInput("message must be a string (or absent to recover)")
        flux.fail(ns, name, message or None)
        return web.json_response(flux.describe())

    return [
        web.post("/sim/registry/push", guarded(push)),
        web.get("/sim/registry/tags", guarded(tags)),
        web.delete("/sim/registry/tags", guarded(delete_tag)),
        web.get("/sim/git/repositories", guarded(repositories)),
        web.post("/sim/git/repositories", guarded(add_repository)),
        web.post("/sim/git/push", guarded(git_push)),
        web.get("/sim/flux", guarded(get_settings)),
        web.put("/sim/flux", guarded(put_settings)),
        web.put("/sim/flux/failures", guarded(fail)),
    ]
