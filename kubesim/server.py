"""The HTTP front of the emulator: authentication and authorization, discovery and OpenAPI,
and routing of resource paths to the watch stream or the API verbs (:mod:`kubesim.verbs`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog
from aiohttp import web

from kubesim import discovery, ownerrefs, reviews
from kubesim.authn import ADMIN, TokenAuthority, UserInfo
from kubesim.errors import ApiError
from kubesim.faults import Faults
from kubesim.objects import ObjectApi
from kubesim.rbac import Authorizer
from kubesim.rbac import Request as AccessRequest
from kubesim.requestinfo import request_info
from kubesim.requests import (
    json_response,
    read_body,
    status_response,
)
from kubesim.verbs import Target, Verbs, no_resource
from kubesim.watch import Watch
from kubesim.watching import ServerSettings, WatchStreams

log = structlog.get_logger("kubesim.server")
SERVICE_ACCOUNTS = ("", "serviceaccounts")
CALLER = web.RequestKey("kubesim-caller", UserInfo)
ATTRIBUTES = web.RequestKey("kubesim-attributes", AccessRequest)
API_PATHS = ("/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz")


class ApiServer:
    """Routes Kubernetes REST requests to an :class:`ObjectApi`."""

    def __init__(
        self,
        api: ObjectApi,
        *,
        faults: Faults | None = None,
        settings: ServerSettings | None = None,
    ) -> None:
        self.api = api
        self.faults = faults or Faults()
        self.settings = settings or ServerSettings()
        self.streams = WatchStreams(api, self.faults, self.settings)
        self.address = "127.0.0.1:0"
        self.tokens = TokenAuthority(api.store, api.clock)
        self.authorizer: Authorizer | None = None
        """Set to enforce authentication and RBAC (`SimCluster(rbac=True)`); None allows
        everyone."""
        self.verbs = Verbs(api, authorize_create=self._authorize_create)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/version", self._version),
            web.get("/version/", self._version),
            web.get("/healthz", self._ok),
            web.get("/livez", self._ok),
            web.get("/readyz", self._ok),
            web.get("/openapi/v3", self._openapi_index),
            web.get(r"/openapi/v3/{path:.+}", self._openapi_gv),
            web.get("/openapi/v2", self._not_found_plain),
            web.route("*", "/api", self._api_root),
            web.route("*", "/api/{tail:.*}", self._dispatch_core),
            web.route("*", "/apis", self._apis_root),
            web.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", self._access_review),
            web.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", self._self_review),
            web.route("*", "/apis/{tail:.*}", self._dispatch_groups),
        ]

    # ------------------------------------------------------------- plumbing
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if request.path.startswith("/api"):
                await self.faults.before(request)
            if self.authorizer is not None and request.path.startswith(API_PATHS):
                self._authenticate_and_check_paths(request)
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as e:
            return status_response(e)
        except web.HTTPException:
            raise
        except Exception as e:
            log.exception("request_failed", path=request.path, method=request.method)
            return status_response(ApiError(500, f"Internal error occurred: {e}"))

    def _authenticate_and_check_paths(self, request: web.Request) -> None:
        """Who is calling and whether they may, before routing, as the API server's filters do: a
        request for something that does not exist is a 403 for a caller who could not have it.
        (The `/sim` routes are the test harness's, outside authentication.)"""
        assert self.authorizer is not None
        user = self.tokens.authenticate(request.headers.get("Authorization"))
        user = reviews.impersonate(
            self.authorizer,
            user,
            request.headers,
            list(request.headers.getall("Impersonate-Group", [])),
            request.path,
        )
        request[CALLER] = user
        ownerrefs.CALLER.set(user)  # for admission plugins, which run below the HTTP layer
        attributes = request_info(user, request.method, request.path, request.query)
        request[ATTRIBUTES] = attributes
        self.authorizer.authorize(attributes)

    def _authorize_create(self, request: web.Request) -> None:
        """An apply that creates is authorised for `create` as well, as the API server's patch
        handler does."""
        attributes = request.get(ATTRIBUTES)
        if self.authorizer is not None and attributes is not None:
            self.authorizer.authorize_create_on_update(
                dataclasses.replace(attributes, verb="create")
            )

    async def _access_review(self, request: web.Request) -> web.Response:
        """`kubectl auth can-i`: may the caller do this? (Every authenticated user may ask.)"""
        user = request.get(CALLER, ADMIN)
        body = await read_body(request)
        return json_response(
            reviews.access_review(self.authorizer, user, body, request.path), status=201
        )

    async def _self_review(self, request: web.Request) -> web.Response:
        """`kubectl auth whoami`."""
        user = request.get(CALLER, ADMIN)
        return json_response(reviews.self_review(user), status=201)

    @property
    def watches(self) -> set[Watch]:
        return self.streams.watches

    def close_watches(self) -> None:
        self.streams.close_all()

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(discovery.KUBE_VERSION)

    async def _not_found_plain(self, request: web.Request) -> web.Response:
        raise no_resource()

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return json_response(discovery.openapi_index(self.api.catalog))

    async def _openapi_gv(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise no_resource()
        if version not in self.api.catalog.group_versions().get(group, []):
            raise no_resource()
        return json_response(discovery.openapi_group_version(self.api.catalog, group, version))

    async def _api_root(self, request: web.Request) -> web.Response:
        return json_response(discovery.api_versions(self.address))

    async def _apis_root(self, request: web.Request) -> web.Response:
        return json_response(discovery.api_group_list(self.api.catalog))

    async def _dispatch_core(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if not parts:
            return json_response(discovery.api_versions(self.address))
        return await self._dispatch(request, "", parts[0], parts[1:])

    async def _dispatch_groups(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if not parts:
            return json_response(discovery.api_group_list(self.api.catalog))
        if len(parts) == 1:
            doc = discovery.api_group(self.api.catalog, parts[0])
            if doc is None:
                raise no_resource()
            return json_response(doc)
        if len(parts) < 2:
            raise no_resource()
        return await self._dispatch(request, parts[0], parts[1], parts[2:])

    # ------------------------------------------------------------- routing
    async def _dispatch(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        """A request under `/api/<version>` or `/apis/<group>/<version>`: the resource list, a
        ServiceAccount token, a watch, or a verb on a collection or an object."""
        if not rest:
            doc = discovery.resource_list(self.api.catalog, group, version)
            if doc is None:
                raise no_resource()
            return json_response(doc)
        target = self._target(request, group, version, rest)
        if target.subresource == "token":
            return await self._token(request, target)
        if target.watches(request):
            return await self.streams.serve(
                request, target.rt, target.version, target.namespace, target.name
            )
        return await self.verbs.for_target(request.method, target)(request, target)

    def _target(self, request: web.Request, group: str, version: str, rest: list[str]) -> Target:
        """Parse `[watch/][namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`; 404 for a
        path the server does not serve."""
        watch_path = rest[0] == "watch"
        namespace, rest = self._namespace(group, version, rest[1:] if watch_path else rest)
        rt = self.api.catalog.lookup(group, version, rest[0]) if 1 <= len(rest) <= 3 else None
        if rt is None:
            raise no_resource()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        target = Target(rt, version, namespace, name, sub, watch_path)
        if not target.served(request.method):
            raise no_resource()
        return target

    def _namespace(self, group: str, version: str, rest: list[str]) -> tuple[str | None, list[str]]:
        """`namespaces/<ns>/<resource>...` of a namespaced resource: (`<ns>`, the rest)."""
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.api.catalog.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                return rest[1], rest[2:]
        return None, rest

    async def _token(self, request: web.Request, target: Target) -> web.StreamResponse:
        """TokenRequest (`POST serviceaccounts/<name>/token`)."""
        assert target.name is not None
        body = await read_body(request)
        tokens = self.tokens.token_request(target.namespace or "", target.name, body)
        return json_response(tokens, status=201)
