"""The OwnerReferencesPermissionEnforcement admission plugin (off by default, as in kube-apiserver;
OpenShift turns it on): changing an object's ownerReferences needs `delete` on the object, and
setting `blockOwnerDeletion` needs `update` on the owner's `finalizers` subresource.

It checks requests of users, not the emulator's own controllers: the caller is known only while
a request is served (`CALLER`, set by the server for each request).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from kubesim.authn import UserInfo
from kubesim.errors import ApiError
from kubesim.rbac import SUPERUSERS, Authorizer, Request
from kubesim.resources import ResourceCatalog, ResourceType

PLUGIN = "OwnerReferencesPermissionEnforcement"
CALLER: ContextVar[UserInfo | None] = ContextVar("kubesim_caller", default=None)


class OwnerReferencesPermissionEnforcement:
    def __init__(self, authorizer: Authorizer, catalog: ResourceCatalog) -> None:
        self.authorizer = authorizer
        self.catalog = catalog

    def __call__(self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        user = CALLER.get()
        if user is None or SUPERUSERS in user.groups:
            return
        old_refs = _refs(old)
        new_refs = _refs(new)
        if old_refs == new_refs:  # position by position, as the plugin compares them
            return
        meta = new["metadata"]
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if old is not None:
            # Creating with owners is allowed: whoever creates an object could also not have created
            # it.
            delete = Request(
                user,
                "delete",
                "",
                group=rt.group,
                resource=rt.plural,
                namespace=namespace,
                name=name,
            )
            if not self.authorizer.allows(delete):
                raise _forbidden(
                    rt, name, "cannot set an ownerRef on a resource you can't delete: , <nil>"
                )
        blocking_before = {r.get("uid") for r in old_refs if r.get("blockOwnerDeletion")}
        for ref in new_refs:
            if not ref.get("blockOwnerDeletion") or ref.get("uid") in blocking_before:
                continue
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            owner = self.catalog.by_kind(group, str(ref.get("kind", "")))
            owner_namespace = namespace if owner is not None and owner.namespaced else ""
            finalizers = Request(
                user,
                "update",
                "",
                group=group,
                resource=owner.plural if owner else "",
                subresource="finalizers",
                namespace=owner_namespace,
                name=str(ref.get("name", "")),
            )
            if owner is None or not self.authorizer.allows(finalizers):
                raise _forbidden(
                    rt,
                    name,
                    "cannot set blockOwnerDeletion if an ownerReference refers to a resource "
                    "you can't set finalizers on: , <nil>",
                )


def _refs(obj: dict[str, Any] | None) -> list[Any]:
    return list(((obj or {}).get("metadata") or {}).get("ownerReferences") or [])


def _forbidden(rt: ResourceType, name: str, why: str) -> ApiError:
    qualified = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(
        403, f'{qualified} "{name}" is forbidden: {why}', reason="Forbidden", details=details
    )
