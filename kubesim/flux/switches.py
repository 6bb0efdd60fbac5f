"""Failure switches and chart publishing under `/sim/` (JSON in and out, as kubesim.flux.admin):

- `PUT /sim/registry/credentials` `{"image", "refused": true|false}`: the registry refuses (or
  accepts again) every client's credentials for an image repository;
- `PUT /sim/git/branches` `{"url", "branch", "deleted": true|false}`: delete a branch of the
  git host (or push it back at the commit it had);
- `PUT /sim/helm/failures` `{"chart", "version"?, "namespace"?, "action"?, "message"?,
  "failing": true|false}`: installs/upgrades of a chart fail (`action`: `install` or
  `upgrade`; both when absent); `GET` lists the failures in force;
- `GET`/`POST /sim/helm/charts` `{"url", "name", "version", "appVersion"?, "templates"?,
  "values"?}`: list, or publish a chart to an HTTP repository (`https://...`) or push it as
  an OCI artifact (`oci://...`);
- `GET /sim/helm/releases`: Helm's release storage.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubesim.flux.admin import BadInput, FluxHandles, Handler, body_of, guarded, string
from kubesim.flux.charts import OCI_SCHEME, Chart
from kubesim.flux.helmactions import DEADLINE, Failure


def _flag(body: dict[str, Any], field: str) -> bool:
    value = body.get(field)
    if not isinstance(value, bool):
        raise BadInput(f"{field} must be true or false")
    return value


def switch_routes(flux: FluxHandles) -> list[web.RouteDef]:
    async def credentials(request: web.Request) -> web.Response:
        body = await body_of(request)
        image = string(body, "image")
        flux.refuse_credentials(image, refused=_flag(body, "refused"))
        return web.json_response({"refused": flux.registry.refused()})

    async def branches(request: web.Request) -> web.Response:
        body = await body_of(request)
        url, branch = string(body, "url"), string(body, "branch")
        deleted = _flag(body, "deleted")
        changed = (
            flux.git.delete_branch(url, branch) if deleted else flux.git.restore_branch(url, branch)
        )
        if not changed:
            state = "no branch" if deleted else "no deleted branch"
            raise KeyError(f"{state} {branch!r} in {url}")
        return web.json_response({"url": url, "branch": branch, "deleted": deleted})

    async def helm_failures(request: web.Request) -> web.Response:
        body = await body_of(request)
        chart = string(body, "chart")
        version = string(body, "version", required=False) or ""
        namespace = string(body, "namespace", required=False) or ""
        action = string(body, "action", required=False) or ""
        if action not in ("", "install", "upgrade"):
            raise BadInput("action must be install or upgrade (or absent for both)")
        if _flag(body, "failing"):
            message = string(body, "message", required=False) or DEADLINE
            flux.helm.failures.set(Failure(chart, version, namespace, action, message))
        elif not flux.helm.failures.clear(chart, version, namespace):
            raise KeyError(f"no failure for chart {chart!r}")
        return await list_failures(request)

    async def list_failures(request: web.Request) -> web.Response:
        return web.json_response({"items": [vars(f) for f in flux.helm.failures.items]})

    async def charts(request: web.Request) -> web.Response:
        return web.json_response({"items": flux.charts.describe()})

    async def add_chart(request: web.Request) -> web.Response:
        body = await body_of(request)
        url = string(body, "url")
        values = body.get("values") or {}
        templates = body.get("templates") or ""
        if not isinstance(values, dict) or not isinstance(templates, str):
            raise BadInput("values must be an object and templates YAML text")
        chart = Chart(
            string(body, "name"),
            string(body, "version"),
            string(body, "appVersion", required=False) or "",
            templates,
            values,
        )
        if url.startswith(OCI_SCHEME):
            push = flux.charts.push_oci(url, chart)
            return web.json_response({**chart.describe(), "digest": push.digest}, status=201)
        if not url.startswith(("https://", "http://")):
            raise BadInput("url must be an http(s):// chart repository or an oci:// one")
        flux.charts.add_chart(url, chart)
        return web.json_response(chart.describe(), status=201)

    async def releases(request: web.Request) -> web.Response:
        return web.json_response({"items": flux.helm.describe()})

    routes: list[tuple[str, str, Handler]] = [
        ("PUT", "/sim/registry/credentials", credentials),
        ("PUT", "/sim/git/branches", branches),
        ("PUT", "/sim/helm/failures", helm_failures),
        ("GET", "/sim/helm/failures", list_failures),
        ("GET", "/sim/helm/charts", charts),
        ("POST", "/sim/helm/charts", add_chart),
        ("GET", "/sim/helm/releases", releases),
    ]
    return [web.route(method, path, guarded(handler)) for method, path, handler in routes]
