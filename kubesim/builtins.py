"""Behaviour specific to built-in kinds: namespaces, secrets and CustomResourceDefinitions.

:mod:`kubesim.objects` calls these hooks at fixed points of every write; kinds without special
behaviour pass through unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kubesim import schema, ssa
from kubesim.builtin_schemas import SCHEMAS
from kubesim.metadata import dns_label_errors
from kubesim.resources import (
    CRD_GR,
    NAMESPACE_GR,
    ResourceCatalog,
    ResourceType,
    resource_type_from_crd,
)
from kubesim.store import Store


class Served(Protocol):
    """What the CRD hooks change: the store, the served types, and who hears of new types
    (:class:`kubesim.objects.ObjectApi`, which calls the hooks, is one)."""

    store: Store
    catalog: ResourceCatalog
    on_type_change: list[Callable[[], None]]


FieldProblem = tuple[str, str, str]
SECRETS_GR = ("", "secrets")


def schema_for(rt: ResourceType, version: str) -> Mapping[str, Any] | None:
    if rt.is_crd:
        return rt.schema(version)
    return SCHEMAS.get(rt.gr)


_TYPE_INFO: dict[tuple[tuple[str, str], str], tuple[ResourceType, ssa.TypeInfo]] = {}


def type_info(rt: ResourceType, version: str) -> ssa.TypeInfo:
    """How lists and maps of a type merge under server-side apply; cached per served type."""
    cached = _TYPE_INFO.get((rt.gr, version))
    if cached is not None and cached[0] is rt:
        return cached[1]
    info = ssa.type_info_from_schema(rt.schema(version) if rt.is_crd else None)
    _TYPE_INFO[(rt.gr, version)] = (rt, info)
    return info


_MERGE_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
}


def merge_key_for(rt: ResourceType) -> Callable[[tuple[str, ...]], str | None]:
    """Strategic-merge keys of the built-in kinds (only metadata lists merge by key for them)."""
    return _MERGE_KEYS.get


def _name_label(ns: dict[str, Any]) -> dict[str, Any]:
    """Namespaces carry `kubernetes.io/metadata.name`, set by the server (Kubernetes >= 1.21)."""
    meta = dict(ns.get("metadata") or {})
    meta["labels"] = {
        **(meta.get("labels") or {}),
        "kubernetes.io/metadata.name": meta.get("name", ""),
    }
    return {**ns, "metadata": meta}


def on_create(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if rt.gr == NAMESPACE_GR:
        spec = dict(obj.get("spec") or {})
        spec.setdefault("finalizers", ["kubernetes"])
        return _name_label({**obj, "spec": spec, "status": {"phase": "Active"}})
    if rt.gr == SECRETS_GR:
        return _fold_string_data({**obj, "type": obj.get("type") or "Opaque"})
    return obj


def on_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if rt.gr == NAMESPACE_GR:
        return _name_label(
            {
                **new,
                "spec": old.get("spec", {}),
                "status": new.get("status") or old.get("status", {}),
            }
        )
    if rt.gr == SECRETS_GR:
        return _fold_string_data(new)
    return new


def _fold_string_data(secret: dict[str, Any]) -> dict[str, Any]:
    string_data = secret.get("stringData")
    if not isinstance(string_data, Mapping):
        return secret
    data = dict(secret.get("data") or {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    out = {k: v for k, v in secret.items() if k != "stringData"}
    out["data"] = data
    return out


def validate(rt: ResourceType, obj: Mapping[str, Any]) -> list[FieldProblem]:
    if rt.gr == CRD_GR:
        return _crd_problems(obj)
    return []


def _crd_problems(crd: Mapping[str, Any]) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    plural = names.get("plural")
    if not group:
        out.append(("spec.group", "FieldValueRequired", "spec.group: Required value"))
    if not plural:
        out.append(("spec.names.plural", "FieldValueRequired", "spec.names.plural: Required value"))
    if not names.get("kind"):
        out.append(("spec.names.kind", "FieldValueRequired", "spec.names.kind: Required value"))
    elif plural:
        for e in dns_label_errors(plural):
            out.append(
                (
                    "spec.names.plural",
                    "FieldValueInvalid",
                    f'spec.names.plural: Invalid value: "{plural}": {e}',
                )
            )
    if group and plural and crd["metadata"].get("name") != f"{plural}.{group}":
        out.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'metadata.name: Invalid value: "{crd["metadata"].get("name")}": '
                'must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        out.append(
            (
                "spec.scope",
                "FieldValueNotSupported",
                f'spec.scope: Unsupported value: "{spec.get("scope")}": '
                'supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        out.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                "spec.versions: Invalid value: "
                "must have exactly one version marked as storage version",
            )
        )
        return out
    storage = [v for v in versions if isinstance(v, Mapping) and v.get("storage")]
    if len(storage) != 1:
        out.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                "spec.versions: Invalid value: "
                "must have exactly one version marked as storage version",
            )
        )
    for i, v in enumerate(versions):
        if not isinstance(v, Mapping) or not v.get("name"):
            out.append(
                (
                    f"spec.versions[{i}].name",
                    "FieldValueRequired",
                    f"spec.versions[{i}].name: Required value",
                )
            )
            continue
        sch = (v.get("schema") or {}).get("openAPIV3Schema")
        if sch is None:
            out.append(
                (
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "FieldValueRequired",
                    f"spec.versions[{i}].schema.openAPIV3Schema: "
                    "Required value: schemas are required",
                )
            )
            continue
        for problem in schema.validate_crd_schema(sch):
            out.append(
                (
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "FieldValueInvalid",
                    f"spec.versions[{i}].schema.openAPIV3Schema: Invalid value: {problem}",
                )
            )
    return out


def deletion_finalizers(rt: ResourceType, obj: Mapping[str, Any]) -> list[str]:
    return []


def needs_cleanup(rt: ResourceType, obj: Mapping[str, Any]) -> bool:
    """Namespaces are emptied by the namespace controller before they go away."""
    return rt.gr == NAMESPACE_GR


def on_deletion_started(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if rt.gr == NAMESPACE_GR:
        return {**obj, "status": {**(obj.get("status") or {}), "phase": "Terminating"}}
    return obj


def after_write(api: Served, rt: ResourceType, obj: dict[str, Any]) -> None:
    if rt.gr != CRD_GR or obj["metadata"].get("deletionTimestamp"):
        return
    served = resource_type_from_crd(obj)
    previous = api.catalog.get(served.gr)
    api.catalog.add(served)
    if previous != served:
        for hook in api.on_type_change:
            hook()
    _mark_established(api, obj, served)


def _mark_established(api: Served, crd: dict[str, Any], served: ResourceType) -> None:
    names = crd["spec"]["names"]
    accepted = dict(names)
    accepted.setdefault("singular", served.singular)
    accepted.setdefault("listKind", served.list_kind)
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    old_status = crd.get("status") or {}
    stored = sorted(set(old_status.get("storedVersions", [])) | {served.storage_version})
    status = {"acceptedNames": accepted, "conditions": conditions, "storedVersions": stored}
    if (
        [{k: c.get(k) for k in ("type", "status")} for c in old_status.get("conditions", [])]
        == [{k: c[k] for k in ("type", "status")} for c in conditions]
        and old_status.get("acceptedNames") == accepted
        and old_status.get("storedVersions") == stored
    ):
        return
    stamp = crd["metadata"]["creationTimestamp"]
    for c in conditions:
        c["lastTransitionTime"] = stamp
    rv = api.store.next_rv()
    new = {**crd, "status": status, "metadata": {**crd["metadata"], "resourceVersion": str(rv)}}
    api.store.put(CRD_GR, new, rv=rv)


def after_delete(api: Served, rt: ResourceType, obj: dict[str, Any]) -> None:
    if rt.gr != CRD_GR:
        return
    spec = obj.get("spec") or {}
    gr = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
    api.store.drop_type(gr)
    api.catalog.remove(gr)
    for hook in api.on_type_change:
        hook()
