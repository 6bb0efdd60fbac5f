"""Object semantics of the API server: create, update, patch, delete and list, with
resourceVersion, uid, generation, status subresource, finalizers and validation.

Everything here is synchronous: an asyncio server calls it between awaits, so each request's
read-modify-write is atomic without locks.  The simulated controllers call it directly.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubesim import builtins, errors, patching, schema, ssa
from kubesim.errors import ApiError
from kubesim.metadata import SERVER_FIELDS, metadata_errors, now_rfc3339
from kubesim.resources import NAMESPACE_GR, ResourceCatalog, ResourceType
from kubesim.selectors import FieldRequirement, Requirement, fields_match, labels_match
from kubesim.store import Store

Clock = Callable[[], datetime]
ManagedFields = list[dict[str, Any]]

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


@dataclass(frozen=True)
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def strip_version(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What `generation` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ObjectApi:
    """The verbs of the Kubernetes API over a :class:`Store`."""

    def __init__(self, store: Store, catalog: ResourceCatalog, *, clock: Clock = _utcnow) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.on_type_change: list[Callable[[], None]] = []
        """Called after a CRD adds or removes a served type (discovery caches reset)."""

    # ------------------------------------------------------------------ reads
    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.gr, namespace if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: tuple[Requirement, ...] = (),
        fields: tuple[FieldRequirement, ...] = (),
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        start_after: tuple[str, str] | None = None
        rv = self.store.resource_version
        if continue_token:
            rv, start_after = _decode_continue(continue_token)
            if rv < self.store.compacted_rv:
                raise ApiError(
                    410,
                    "The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue token in this "
                    "response to retrieve the remainder of the results. Continuing with the provided token "
                    "results in an inconsistent list - objects that were created, modified, or deleted between "
                    "the time the first chunk was returned and now may show up in the list.",
                    reason="Expired",
                )
        items: list[dict[str, Any]] = []
        more = 0
        last_key: tuple[str, str] | None = None
        for obj in self.store.iter(rt.gr, namespace if rt.namespaced else None):
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if start_after is not None and key <= start_after:
                continue
            if not labels_match(labels, obj) or not fields_match(fields, obj):
                continue
            if limit and len(items) >= limit:
                more += 1
                continue
            items.append(obj)
            last_key = key
        token = _encode_continue(rv, last_key) if more and last_key else ""
        return ListResult(items, str(rv), token, more if more else None)

    # ------------------------------------------------------------------ writes
    def create(
        self, rt: ResourceType, version: str, namespace: str, body: Any, opts: WriteOptions,
        *, managed_fields: ManagedFields | None = None,
    ) -> dict[str, Any]:
        obj = self._check_body(rt, version, body)
        meta = dict(obj.get("metadata") or {})
        self._check_namespace(rt, namespace, meta)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.kind, rt.group, "",
                    [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                      "field": "metadata.name"}],
                    ["metadata.name: Required value: name or generateName is required"],
                )
            meta["name"] = f"{prefix}{uuid.uuid4().hex[:5]}"
        for key in (*SERVER_FIELDS, "managedFields"):
            meta.pop(key, None)
        if not rt.namespaced:
            meta.pop("namespace", None)
        obj["metadata"] = meta
        ns = meta.get("namespace", "")
        if self.store.get(rt.gr, ns, meta["name"]) is not None:
            raise errors.already_exists(rt.plural, rt.group, meta["name"])
        if rt.status_subresource:
            obj.pop("status", None)
        obj = builtins.on_create(rt, obj)
        obj = self._validate(rt, version, obj, opts)
        now = self.clock()
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339(now)
        if rt.has_generation:
            meta["generation"] = 1
        if managed_fields is not None:
            meta["managedFields"] = managed_fields
        else:
            obj = ssa.record_update(
                None, obj, manager=opts.manager, type_info=self._type_info(rt, version),
                api_version=rt.api_version(version), now=now_rfc3339(now),
            )
        return self._store(rt, None, obj, opts)

    def update(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        obj = self._check_body(rt, version, body)
        meta = obj.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        self._check_namespace(rt, namespace, dict(meta))
        old = self.get(rt, namespace, name)
        sent_rv = meta.get("resourceVersion")
        if sent_rv:
            if str(sent_rv) != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
        elif not rt.allow_unconditional_update and subresource is None:
            raise errors.invalid(
                rt.kind, rt.group, name,
                [{"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update",
                  "field": "metadata.resourceVersion"}],
                ["metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"],
            )
        return self._commit(rt, version, old, obj, opts, subresource=subresource)

    def patch(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        kind = PATCH_TYPES.get(content_type)
        if kind is None:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(PATCH_TYPES)}",
            )
        if kind == "strategic" and rt.is_crd:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        if kind != "apply" and opts.force:
            raise errors.bad_request("force is only valid for apply patches (ApplyPatch)")
        patch_body = _decode_patch(raw, kind)
        live = self.store.get(rt.gr, namespace if rt.namespaced else "", name)
        if kind == "apply":
            return self._apply(rt, version, namespace, name, live, patch_body, opts, subresource)
        if live is None:
            raise errors.not_found(rt.plural, rt.group, name)
        current = self._at_version(rt, live, version)
        try:
            if kind == "merge":
                patched = patching.json_merge_patch(current, patch_body)
            elif kind == "json":
                patched = patching.json_patch(current, patch_body)
            else:
                patched = patching.strategic_merge_patch(current, patch_body, merge_key=builtins.merge_key_for(rt))
        except patching.PatchError as e:
            raise ApiError(e.code, str(e)) from e
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch produced a value that is not an object")
        meta = patched.get("metadata") or {}
        sent_rv = meta.get("resourceVersion")
        if sent_rv and str(sent_rv) != live["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        if meta.get("name") != name:
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        return self._commit(rt, version, live, patched, opts, subresource=subresource)

    def _apply(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        name: str,
        live: dict[str, Any] | None,
        config: Any,
        opts: WriteOptions,
        subresource: str | None,
    ) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise errors.bad_request("error decoding YAML: the apply configuration is not an object")
        config = self._check_body(rt, version, config)
        meta = config.get("metadata") or {}
        if meta.get("name") != name:
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        for key in (*SERVER_FIELDS, "managedFields"):
            if key in meta and key != "resourceVersion":
                config["metadata"] = {k: v for k, v in meta.items() if k != key}
                meta = config["metadata"]
        sent_rv = meta.get("resourceVersion")
        if live is not None and sent_rv and str(sent_rv) != live["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        type_info = self._type_info(rt, version)
        now = now_rfc3339(self.clock())
        if live is None:
            self._check_namespace(rt, namespace, dict(meta))
            try:
                applied = ssa.apply(None, config, manager=opts.manager, force=opts.force, type_info=type_info,
                                    api_version=rt.api_version(version), now=now, subresource=subresource)
            except ssa.ApplyConflict as e:
                raise _conflict_error(e, rt, version, name) from e
            managed = applied["metadata"].get("managedFields")
            applied["metadata"].pop("managedFields", None)
            creation = WriteOptions(opts.manager, opts.field_validation, opts.dry_run, warnings=opts.warnings)
            return self._create_prepared(rt, version, namespace, applied, creation, managed)
        current = self._at_version(rt, live, version)
        try:
            applied = ssa.apply(current, config, manager=opts.manager, force=opts.force, type_info=type_info,
                                api_version=rt.api_version(version), now=now, subresource=subresource)
        except ssa.ApplyConflict as e:
            raise _conflict_error(e, rt, version, name) from e
        return self._commit(rt, version, live, applied, opts, subresource=subresource, managed_set=True)

    def _create_prepared(
        self, rt: ResourceType, version: str, namespace: str, obj: dict[str, Any], opts: WriteOptions,
        managed: Any,
    ) -> dict[str, Any]:
        # Creation by apply: ownership is the applier's Apply entry, not an Update entry.
        return self.create(rt, version, namespace, obj, opts, managed_fields=managed)

    def _commit(
        self,
        rt: ResourceType,
        version: str,
        old: dict[str, Any],
        candidate: dict[str, Any],
        opts: WriteOptions,
        *,
        subresource: str | None,
        managed_set: bool = False,
    ) -> dict[str, Any]:
        old_meta = old["metadata"]
        if subresource == "status":
            new = {**old, "status": candidate.get("status")}
            if new["status"] is None:
                new.pop("status")
            new["metadata"] = dict(old_meta)
            if managed_set:
                new["metadata"]["managedFields"] = candidate["metadata"].get("managedFields", [])
        elif subresource is not None:
            raise errors.not_found(rt.plural, rt.group, old_meta["name"])
        else:
            new = dict(candidate)
            meta = dict(candidate.get("metadata") or {})
            for key in SERVER_FIELDS:
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            meta["name"] = old_meta["name"]
            if rt.namespaced:
                meta["namespace"] = old_meta["namespace"]
            if not managed_set:
                meta["managedFields"] = old_meta.get("managedFields", [])
            new["metadata"] = meta
            if rt.status_subresource:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise errors.invalid(
                        rt.kind, rt.group, old_meta["name"],
                        [{"reason": "FieldValueForbidden", "field": "metadata.finalizers",
                          "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
                                     f"found new finalizers {sorted(added)!r}"}],
                        [f"metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
                         f"deleted, found new finalizers {sorted(added)!r}"],
                    )
        new = builtins.on_update(rt, old, new)
        new = self._validate(rt, version, new, opts)
        if rt.has_generation and subresource is None and spec_part(new) != spec_part(old):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if not managed_set:
            new = ssa.record_update(
                self._at_version(rt, old, version), new, manager=opts.manager,
                type_info=self._type_info(rt, version), api_version=rt.api_version(version),
                now=now_rfc3339(self.clock()), subresource=subresource,
            )
        if _same_content(old, new, rt):
            return old
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._finalize_delete(rt, new, opts)
        return self._store(rt, old, new, opts)

    def _store(self, rt: ResourceType, old: dict[str, Any] | None, obj: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
        obj["apiVersion"] = rt.api_version()
        obj["kind"] = rt.kind
        if opts.dry_run:
            obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"] if old else ""
            return obj
        rv = self.store.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.store.put(rt.gr, obj, rv=rv)
        builtins.after_write(self, rt, obj)
        return obj

    # ------------------------------------------------------------------ delete
    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete or begin deleting an object; returns (its last state, whether it is gone)."""
        obj = self.get(rt, namespace, name)
        meta = obj["metadata"]
        if preconditions:
            if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta['uid']}",
                    reason="Conflict",
                )
            if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != meta["resourceVersion"]:
                raise ApiError(
                    409,
                    f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}",
                    reason="Conflict",
                )
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{propagation}": supported values: "Foreground", "Background", "Orphan", "nil"')
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        extra = builtins.deletion_finalizers(rt, obj)
        finalizers += [f for f in extra if f not in finalizers]
        opts = WriteOptions(dry_run=dry_run)
        if not finalizers and not builtins.needs_cleanup(rt, obj):
            return self._finalize_delete(rt, obj, opts), True
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return obj, False
        new_meta = {**meta, "finalizers": finalizers, "deletionGracePeriodSeconds": 0}
        new_meta.setdefault("deletionTimestamp", now_rfc3339(self.clock()))
        if rt.has_generation and not meta.get("deletionTimestamp"):
            new_meta["generation"] = int(meta.get("generation", 1)) + 1
        new = builtins.on_deletion_started(rt, {**obj, "metadata": new_meta})
        return self._store(rt, obj, new, opts), False

    def _finalize_delete(self, rt: ResourceType, obj: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
        meta = obj["metadata"]
        if opts.dry_run:
            return obj
        rv = self.store.next_rv()
        final = {**obj, "metadata": {**meta, "resourceVersion": str(rv)}}
        self.store.remove(rt.gr, meta.get("namespace", ""), meta["name"], final, rv=rv)
        builtins.after_delete(self, rt, final)
        return final

    def finish_namespace(self, rt: ResourceType, ns: dict[str, Any]) -> None:
        """The namespace controller's last step: an emptied, terminating namespace goes away."""
        self._finalize_delete(rt, ns, WriteOptions())

    # ------------------------------------------------------------------ helpers
    def _at_version(self, rt: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
        want = rt.api_version(version)
        return obj if obj.get("apiVersion") == want else {**obj, "apiVersion": want}

    def served(self, rt: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
        """The stored object as seen through one served version (CRD conversion strategy None)."""
        return self._at_version(rt, obj, version)

    def _type_info(self, rt: ResourceType, version: str) -> ssa.TypeInfo:
        return builtins.type_info(rt, version)

    def _check_body(self, rt: ResourceType, version: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is not a JSON/YAML object")
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if kind is not None and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        # Like kube-apiserver, a body without type metadata takes it from the URL.
        if api_version is not None and api_version != rt.api_version(version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version(version)})"
            )
        meta = body.get("metadata", {})
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        return {**body, "apiVersion": rt.api_version(version), "kind": rt.kind, "metadata": dict(meta or {})}

    def _check_namespace(self, rt: ResourceType, namespace: str, meta: dict[str, Any]) -> None:
        if not rt.namespaced:
            return
        sent = meta.get("namespace")
        if sent and sent != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
        ns = self.store.get(NAMESPACE_GR, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"{rt.plural} \"{meta.get('name', '')}\" is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                reason="Forbidden",
            )

    def _validate(self, rt: ResourceType, version: str, obj: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
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
                causes.append({"reason": r, "message": m.split(": ", 1)[1] if m.startswith(f + ": ") else m, "field": f})
            raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), causes, [m for _, _, m in field_errors])
        if unknown and opts.field_validation == "Strict":
            joined = ", ".join(f'unknown field "{u.lstrip(".")}"' for u in unknown)
            raise errors.bad_request(f"strict decoding error: {joined}")
        if unknown and opts.field_validation == "Warn":
            opts.warnings.extend(f'unknown field "{u.lstrip(".")}"' for u in unknown)
        return result_obj


def _same_content(old: dict[str, Any], new: dict[str, Any], rt: ResourceType) -> bool:
    """A write that changes nothing but managedFields timestamps keeps the old resourceVersion."""
    if strip_version(old) == strip_version(new):
        return True
    om, nm = old["metadata"], new["metadata"]
    if {k: v for k, v in om.items() if k != "managedFields"} != {k: v for k, v in nm.items() if k != "managedFields"}:
        return False
    if {k: v for k, v in old.items() if k not in ("metadata", "apiVersion")} != {
        k: v for k, v in new.items() if k not in ("metadata", "apiVersion")
    }:
        return False

    def untimed(entries: Any) -> list[Any]:
        return [{k: v for k, v in e.items() if k != "time"} for e in entries or []]

    return untimed(om.get("managedFields")) == untimed(nm.get("managedFields"))


def _conflict_error(e: ssa.ApplyConflict, rt: ResourceType, version: str, name: str) -> ApiError:
    return ApiError(
        409,
        e.status_message(rt.api_version(version)),
        reason="Conflict",
        details={"name": name, "group": rt.group, "kind": rt.plural, "causes": e.causes()},
    )


def _decode_patch(raw: bytes, kind: str) -> Any:
    if kind == "apply":
        import yaml

        try:
            return json.loads(raw)
        except ValueError:
            pass
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error decoding YAML: {e}") from e
    try:
        return json.loads(raw)
    except ValueError as e:
        raise errors.bad_request(f"error decoding patch: {e}") from e


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, _, name = data["start"].partition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError) as e:
        raise errors.bad_request("continue key is not valid: illegal base64 data") from e

