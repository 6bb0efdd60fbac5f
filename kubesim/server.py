"""The HTTP front of the emulator: routing, content negotiation, and the API verbs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from kubesim import discovery, errors, ownerrefs, reviews, tables
from kubesim.authn import ADMIN, TokenAuthority, UserInfo
from kubesim.errors import ApiError
from kubesim.faults import Faults
from kubesim.objects import PATCH_TYPES, ObjectApi
from kubesim.rbac import Authorizer
from kubesim.rbac import Request as AccessRequest
from kubesim.requestinfo import request_info
from kubesim.requests import (
    delete_options,
    dry_run,
    flag,
    json_response,
    read_body,
    read_raw,
    status_response,
    success,
    wants_table,
    write_options,
)
from kubesim.resources import NAMESPACE_GR, ResourceType
from kubesim.selectors import parse_field_selector, parse_label_selector
from kubesim.watch import Watch

log = structlog.get_logger("kubesim.server")
SERVICE_ACCOUNTS = ("", "serviceaccounts")
CALLER = web.RequestKey("kubesim-caller", UserInfo)
ATTRIBUTES = web.RequestKey("kubesim-attributes", AccessRequest)
API_PATHS = ("/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz")

DEFAULT_WATCH_TIMEOUT = 1800


@dataclass
class ServerSettings:
    bookmark_interval: float = 5.0
    """Seconds between BOOKMARK events on idle watches that asked for them (real: ~1 minute)."""


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
        self.watches: set[Watch] = set()
        self.address = "127.0.0.1:0"
        self.tokens = TokenAuthority(api.store, api.clock)
        self.authorizer: Authorizer | None = None
        """Set to enforce authentication and RBAC (`SimCluster(rbac=True)`); None allows everyone."""

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
        """An apply that creates is authorised for `create` as well, as the API server's patch handler does."""
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

    def close_watches(self) -> None:
        for w in list(self.watches):
            w.close()

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(discovery.KUBE_VERSION)

    async def _not_found_plain(self, request: web.Request) -> web.Response:
        raise ApiError(404, "the server could not find the requested resource")

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return json_response(discovery.openapi_index(self.api.catalog))

    async def _openapi_gv(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if version not in self.api.catalog.group_versions().get(group, []):
            raise ApiError(404, "the server could not find the requested resource")
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
                raise ApiError(404, "the server could not find the requested resource")
            return json_response(doc)
        if len(parts) < 2:
            raise ApiError(404, "the server could not find the requested resource")
        return await self._dispatch(request, parts[0], parts[1], parts[2:])

    # ------------------------------------------------------------- routing
    async def _dispatch(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        if not rest:
            doc = discovery.resource_list(self.api.catalog, group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return json_response(doc)
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.api.catalog.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        rt = self.api.catalog.lookup(group, version, rest[0])
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource")
        if rt.namespaced is False and namespace is not None:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (
            (sub == "status" and rt.status_subresource)
            or (sub == "finalize" and rt.gr == NAMESPACE_GR)
            or (sub == "token" and rt.gr == SERVICE_ACCOUNTS and request.method == "POST")
        ):
            raise ApiError(404, "the server could not find the requested resource")
        if rt.namespaced and name is not None and namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        method = request.method
        watching = watch_path or (method == "GET" and name is None and flag(request, "watch"))
        if sub == "token" and name is not None:
            body = await read_body(request)
            return json_response(self.tokens.token_request(namespace or "", name, body), status=201)
        if watching:
            return await self._watch(request, rt, version, namespace, name)
        if name is None:
            if method == "GET":
                return self._list(request, rt, version, namespace)
            if method == "POST":
                if namespace is None and rt.namespaced:
                    raise ApiError(
                        405, "the server does not allow this method on the requested resource"
                    )
                return await self._create(request, rt, version, namespace or "")
            if method == "DELETE":
                return await self._delete_collection(request, rt, version, namespace)
            raise ApiError(405, "the server does not allow this method on the requested resource")
        ns = namespace or ""
        if method == "GET":
            obj = self.api.get(rt, ns, name)
            return self._object_response(request, rt, version, obj)
        if method == "PUT":
            body = await read_body(request)
            opts = write_options(request)
            subresource = "status" if sub == "status" else None
            if sub == "finalize":
                body = (
                    {**body, "metadata": {**(body.get("metadata") or {})}}
                    if isinstance(body, dict)
                    else body
                )
            obj = self.api.update(rt, version, ns, name, body, opts, subresource=subresource)
            return self._object_response(request, rt, version, obj, warnings=opts.warnings)
        if method == "PATCH":
            raw = await read_raw(request)
            opts = write_options(request)
            ctype = request.content_type
            if PATCH_TYPES.get(ctype) == "apply" and not request.query.get("fieldManager"):
                raise errors.invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "fieldManager",
                            "message": "Required value: is required for apply patch",
                        }
                    ],
                    ["fieldManager: Required value: is required for apply patch"],
                )
            existed = self.api.store.get(rt.gr, ns, name) is not None
            if not existed and PATCH_TYPES.get(ctype) == "apply":
                self._authorize_create(request)
            obj = self.api.patch(rt, version, ns, name, ctype, raw, opts, subresource=sub)
            status = 201 if not existed and PATCH_TYPES.get(ctype) == "apply" else 200
            return self._object_response(
                request, rt, version, obj, status=status, warnings=opts.warnings
            )
        if method == "DELETE":
            return await self._delete(request, rt, version, ns, name)
        raise ApiError(405, "the server does not allow this method on the requested resource")

    # ------------------------------------------------------------- verbs
    def _object_response(
        self,
        request: web.Request,
        rt: ResourceType,
        version: str,
        obj: dict[str, Any],
        *,
        status: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        served = self.api.served(rt, obj, version)
        if wants_table(request):
            body = tables.to_table(
                rt,
                version,
                [served],
                resource_version=obj["metadata"].get("resourceVersion", ""),
                include_object=request.query.get("includeObject", "Metadata"),
                now=self.api.clock(),
            )
            return json_response(body, status=status, warnings=warnings)
        return json_response(served, status=status, warnings=warnings)

    def _list(
        self, request: web.Request, rt: ResourceType, version: str, namespace: str | None
    ) -> web.Response:
        q = request.query
        labels = parse_label_selector(q.get("labelSelector", ""))
        fields = parse_field_selector(
            q.get("fieldSelector", ""), rt.gr, rt.kind, rt.api_version(version)
        )
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise errors.bad_request(f"invalid limit: {q.get('limit')}") from None
        result = self.api.list(
            rt,
            namespace,
            labels=labels,
            fields=fields,
            limit=max(limit, 0),
            continue_token=q.get("continue", ""),
        )
        items = [self.api.served(rt, o, version) for o in result.items]
        if wants_table(request):
            body = tables.to_table(
                rt,
                version,
                items,
                resource_version=result.resource_version,
                include_object=q.get("includeObject", "Metadata"),
                continue_token=result.continue_token,
                now=self.api.clock(),
            )
            return json_response(body)
        meta: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version(version),
                "metadata": meta,
                "items": items,
            }
        )

    async def _create(
        self, request: web.Request, rt: ResourceType, version: str, namespace: str
    ) -> web.Response:
        body = await read_body(request)
        opts = write_options(request)
        obj = self.api.create(rt, version, namespace, body, opts)
        return self._object_response(request, rt, version, obj, status=201, warnings=opts.warnings)

    async def _delete(
        self, request: web.Request, rt: ResourceType, version: str, namespace: str, name: str
    ) -> web.Response:
        options = await delete_options(request)
        obj, gone = self.api.delete(
            rt,
            namespace,
            name,
            propagation=options.get("propagationPolicy"),
            preconditions=options.get("preconditions"),
            dry_run=dry_run(request, options),
        )
        if gone and not rt.returns_deleted_object:
            return json_response(success(rt, obj))
        return self._object_response(request, rt, version, obj)

    async def _delete_collection(
        self, request: web.Request, rt: ResourceType, version: str, namespace: str | None
    ) -> web.Response:
        options = await delete_options(request)
        q = request.query
        labels = parse_label_selector(q.get("labelSelector", ""))
        fields = parse_field_selector(
            q.get("fieldSelector", ""), rt.gr, rt.kind, rt.api_version(version)
        )
        result = self.api.list(rt, namespace, labels=labels, fields=fields)
        deleted = []
        for obj in result.items:
            meta = obj["metadata"]
            with contextlib.suppress(ApiError):
                final, _ = self.api.delete(
                    rt,
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation=options.get("propagationPolicy"),
                    dry_run=dry_run(request, options),
                )
                deleted.append(self.api.served(rt, final, version))
        if rt.returns_deleted_object:
            return json_response(
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version(version),
                    "metadata": {"resourceVersion": str(self.api.store.resource_version)},
                    "items": deleted,
                }
            )
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    async def _watch(
        self,
        request: web.Request,
        rt: ResourceType,
        version: str,
        namespace: str | None,
        name: str | None,
    ) -> web.StreamResponse:
        q = request.query
        field_text = q.get("fieldSelector", "")
        if name is not None:
            field_text = ",".join(filter(None, [field_text, f"metadata.name={name}"]))
        labels = parse_label_selector(q.get("labelSelector", ""))
        fields = parse_field_selector(field_text, rt.gr, rt.kind, rt.api_version(version))
        send_initial = flag(request, "sendInitialEvents")
        bookmarks = flag(request, "allowWatchBookmarks")
        if send_initial and q.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueForbidden",
                        "field": "sendInitialEvents",
                        "message": "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
                    }
                ],
                [
                    "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan"
                ],
            )
        try:
            timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {q.get('timeoutSeconds')}") from None
        watch = Watch(
            self.api.store,
            rt,
            version,
            namespace if rt.namespaced else None,
            labels,
            fields,
            on_close=self.watches.discard,
        )
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watch.start(
                resource_version=q.get("resourceVersion", ""),
                send_initial_events=send_initial,
                bookmarks=bookmarks,
            )
        except ApiError as e:
            if e.code != 410:
                raise
            await response.prepare(request)
            await response.write(
                (json.dumps({"type": "ERROR", "object": e.status()}) + "\n").encode()
            )
            await response.write_eof()
            return response
        self.watches.add(watch)
        await response.prepare(request)
        await self._stream(watch, response, duration=timeout, bookmarks=bookmarks)
        return response

    async def _stream(
        self, watch: Watch, response: web.StreamResponse, *, duration: float, bookmarks: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        sent = 0
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                wait = min(remaining, self.settings.bookmark_interval) if bookmarks else remaining
                try:
                    item = await asyncio.wait_for(watch.queue.get(), timeout=wait)
                except TimeoutError:
                    if bookmarks and deadline - loop.time() > 0:
                        watch.bookmark()
                    continue
                if item is None:
                    break
                batch = [item]
                limit = self.faults.watch_event_limit
                ended = False
                while not watch.queue.empty() and (not limit or sent + len(batch) < limit):
                    nxt = watch.queue.get_nowait()
                    if nxt is None:
                        ended = True
                        break
                    batch.append(nxt)
                await response.write(b"".join(batch))
                sent += len(batch)
                if ended or (limit and sent >= limit):
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            watch.close()
            raise
        finally:
            watch.close()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
