"""The API verbs on a parsed resource path: get, replace and patch an object, list, create
and delete, as kube-apiserver's REST handlers answer them (status codes, tables, warnings,
`Status` bodies for deletions)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesim import errors, tables
from kubesim.errors import ApiError
from kubesim.objects import PATCH_TYPES, ObjectApi
from kubesim.requests import (
    delete_options,
    dry_run,
    flag,
    json_response,
    read_body,
    read_raw,
    success,
    wants_table,
    write_options,
)
from kubesim.resources import NAMESPACE_GR, ResourceType
from kubesim.selectors import parse_field_selector, parse_label_selector

SERVICE_ACCOUNTS = ("", "serviceaccounts")
NOT_FOUND = "the server could not find the requested resource"
NOT_ALLOWED = "the server does not allow this method on the requested resource"


def no_resource() -> ApiError:
    """The API server's answer to a path it does not serve."""
    return ApiError(404, NOT_FOUND)


def not_allowed() -> ApiError:
    return ApiError(405, NOT_ALLOWED)


@dataclass(frozen=True)
class Target:
    """What a resource path names: the type and version, and for an object its namespace, name
    and subresource; `watch_path` for the legacy `/watch/` prefix."""

    rt: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool

    def served(self, method: str) -> bool:
        """Whether the server serves this path: a namespace for a namespaced object, only
        the subresources the type has (`token` only for POST)."""
        if self.namespace is not None and not self.rt.namespaced:
            return False
        if self.rt.namespaced and self.name is not None and self.namespace is None:
            return False
        return self.subresource is None or self._has_subresource(method)

    def _has_subresource(self, method: str) -> bool:
        rt, sub = self.rt, self.subresource
        return (
            (sub == "status" and rt.status_subresource)
            or (sub == "finalize" and rt.gr == NAMESPACE_GR)
            or (sub == "token" and rt.gr == SERVICE_ACCOUNTS and method == "POST")
        )

    def watches(self, request: web.Request) -> bool:
        """A watch: the `/watch/` prefix, or `?watch=true` on a collection GET."""
        return self.watch_path or (
            request.method == "GET" and self.name is None and flag(request, "watch")
        )


Verb = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]


class Verbs:
    """The verbs, by HTTP method, on collections and on objects."""

    def __init__(self, api: ObjectApi, *, authorize_create: Callable[[web.Request], None]) -> None:
        self.api = api
        self.authorize_create = authorize_create
        """Called before an apply that creates: it needs `create` as well as `patch`."""
        self.on_collections: dict[str, Verb] = {
            "GET": self.list,
            "POST": self.create,
            "DELETE": self.delete_collection,
        }
        self.on_objects: dict[str, Verb] = {
            "GET": self.get,
            "PUT": self.replace,
            "PATCH": self.patch,
            "DELETE": self.delete,
        }

    def for_target(self, method: str, target: Target) -> Verb:
        verb = (self.on_collections if target.name is None else self.on_objects).get(method)
        if verb is None:
            raise not_allowed()
        return verb

    async def get(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        obj = self.api.get(target.rt, target.namespace or "", target.name)
        return self.object_response(request, target.rt, target.version, obj)

    async def replace(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        body = await read_body(request)
        opts = write_options(request)
        if target.subresource == "finalize" and isinstance(body, dict):
            body = {**body, "metadata": {**(body.get("metadata") or {})}}
        obj = self.api.update(
            target.rt,
            target.version,
            target.namespace or "",
            target.name,
            body,
            opts,
            subresource="status" if target.subresource == "status" else None,
        )
        return self.object_response(request, target.rt, target.version, obj, warnings=opts.warnings)

    async def patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        rt, ns, name = target.rt, target.namespace or "", target.name
        raw = await read_raw(request)
        opts = write_options(request)
        ctype = request.content_type
        apply = PATCH_TYPES.get(ctype) == "apply"
        if apply and not request.query.get("fieldManager"):
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
        creates = apply and self.api.store.get(rt.gr, ns, name) is None
        if creates:
            self.authorize_create(request)
        obj = self.api.patch(
            rt, target.version, ns, name, ctype, raw, opts, subresource=target.subresource
        )
        return self.object_response(
            request, rt, target.version, obj, status=201 if creates else 200, warnings=opts.warnings
        )

    # ------------------------------------------------------------- verbs
    def object_response(
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

    async def list(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, version, namespace = target.rt, target.version, target.namespace
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

    async def create(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.namespace is None and target.rt.namespaced:
            raise not_allowed()
        rt, version, namespace = target.rt, target.version, target.namespace or ""
        body = await read_body(request)
        opts = write_options(request)
        obj = self.api.create(rt, version, namespace, body, opts)
        return self.object_response(request, rt, version, obj, status=201, warnings=opts.warnings)

    async def delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        rt, version, namespace, name = (
            target.rt,
            target.version,
            target.namespace or "",
            target.name,
        )
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
        return self.object_response(request, rt, version, obj)

    async def delete_collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, version, namespace = target.rt, target.version, target.namespace
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
