"""What every write goes through before it is stored: the body's type and namespace, metadata and
schema validation (pruning, strict and warning field validation), and the patch body's decoding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesim import builtins, errors, schema, ssa
from kubesim.errors import ApiError
from kubesim.metadata import metadata_errors
from kubesim.resources import NAMESPACE_GR, ResourceType
from kubesim.store import Store

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}


@dataclass
class WriteOptions:
    """Query parameters common to every write."""

    manager: str = "unknown"
    field_validation: str = "Warn"  # Ignore | Warn | Strict
    dry_run: bool = False
    force: bool = False
    warnings: list[str] = field(default_factory=list)


def strip_version(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def check_body(rt: ResourceType, version: str, body: Any) -> dict[str, Any]:
    """The body as an object of the URL's kind and version (400 when it is not one)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the object provided is not a JSON/YAML object")
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if kind is not None and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    # Like kube-apiserver, a body without type metadata takes it from the URL.
    if api_version is not None and api_version != rt.api_version(version):
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.api_version(version)})"
        )
    meta = body.get("metadata", {})
    if meta is not None and not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return {
        **body,
        "apiVersion": rt.api_version(version),
        "kind": rt.kind,
        "metadata": dict(meta or {}),
    }


def check_namespace(store: Store, rt: ResourceType, namespace: str, meta: dict[str, Any]) -> None:
    """The request's namespace exists and is not terminating; the body agrees with it."""
    if not rt.namespaced:
        return
    sent = meta.get("namespace")
    if sent and sent != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace
    ns = store.get(NAMESPACE_GR, "", namespace)
    if ns is None:
        raise errors.not_found("namespaces", "", namespace)
    if ns["metadata"].get("deletionTimestamp"):
        raise ApiError(
            403,
            f'{rt.plural} "{meta.get("name", "")}" is forbidden: unable to create new content '
            "in namespace "
            f"{namespace} because it is being terminated",
            reason="Forbidden",
        )


def validate(
    rt: ResourceType, version: str, obj: dict[str, Any], opts: WriteOptions
) -> dict[str, Any]:
    """Metadata, schema and kind rules; unknown fields pruned, warned about or refused."""
    meta = obj["metadata"]
    problems = metadata_errors(meta, name_is_label=rt.gr == NAMESPACE_GR)
    result_obj = obj
    unknown: list[str] = []
    field_errors = [(f, r, m) for f, r, m in problems]
    sch = builtins.schema_for(rt, version)
    if sch is not None:
        result = schema.validate(sch, obj)
        result_obj = {**result.obj, "metadata": meta}
        unknown = result.unknown_fields
        field_errors += [(e.field, e.reason, e.message) for e in result.errors]
    field_errors += builtins.validate(rt, result_obj)
    if field_errors:
        causes = []
        for f, r, m in field_errors:
            causes.append(
                {
                    "reason": r,
                    "message": m.split(": ", 1)[1] if m.startswith(f + ": ") else m,
                    "field": f,
                }
            )
        raise errors.invalid(
            rt.kind, rt.group, meta.get("name", ""), causes, [m for _, _, m in field_errors]
        )
    if unknown and opts.field_validation == "Strict":
        joined = ", ".join(f'unknown field "{u.lstrip(".")}"' for u in unknown)
        raise errors.bad_request(f"strict decoding error: {joined}")
    if unknown and opts.field_validation == "Warn":
        opts.warnings.extend(f'unknown field "{u.lstrip(".")}"' for u in unknown)
    return result_obj


def same_content(old: dict[str, Any], new: dict[str, Any], rt: ResourceType) -> bool:
    """A write that changes nothing but managedFields timestamps keeps the old resourceVersion."""
    if strip_version(old) == strip_version(new):
        return True
    om, nm = old["metadata"], new["metadata"]
    if {k: v for k, v in om.items() if k != "managedFields"} != {
        k: v for k, v in nm.items() if k != "managedFields"
    }:
        return False
    if {k: v for k, v in old.items() if k not in ("metadata", "apiVersion")} != {
        k: v for k, v in new.items() if k not in ("metadata", "apiVersion")
    }:
        return False

    def untimed(entries: Any) -> list[Any]:
        return [{k: v for k, v in e.items() if k != "time"} for e in entries or []]

    return untimed(om.get("managedFields")) == untimed(nm.get("managedFields"))


def conflict_error(e: ssa.ApplyConflict, rt: ResourceType, version: str, name: str) -> ApiError:
    return ApiError(
        409,
        e.status_message(rt.api_version(version)),
        reason="Conflict",
        details={"name": name, "group": rt.group, "kind": rt.plural, "causes": e.causes()},
    )


def decode_patch(raw: bytes, kind: str) -> Any:
    if kind == "apply":
        try:
            return json.loads(raw)
        except ValueError:
            return errors.load_yaml(raw, "error decoding YAML")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise errors.bad_request(f"error decoding patch: {e}") from e
