"""Object semantics of the API server: create, update, patch, delete and list, with
resourceVersion, uid, generation, status subresource, finalizers and validation.

Everything here is synchronous: an asyncio server calls it between awaits, so each request's
read-modify-write is atomic without locks.  The simulated controllers call it directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubesim import admission, builtins, errors, patching, ssa
from kubesim.admission import PATCH_TYPES, WriteOptions, strip_version
from kubesim.errors import ApiError
from kubesim.listing import ListResult, list_objects
from kubesim.metadata import SERVER_FIELDS, now_rfc3339
from kubesim.resources import ResourceCatalog, ResourceType
from kubesim.selectors import FieldRequirement, Requirement
from kubesim.store import Store

Clock = Callable[[], datetime]
ManagedFields = list[dict[str, Any]]
__all__ = [
    "PATCH_TYPES",
    "Clock",
    "ListResult",
    "ObjectApi",
    "WriteOptions",
    "spec_part",
    "strip_version",
]


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        self.admission_checks: list[
            Callable[[ResourceType, dict[str, Any] | None, dict[str, Any]], None]
        ] = []
        """Validating admission plugins: see each write (old, new) before it is stored, and may
        refuse it."""

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
        return list_objects(
            self.store,
            rt,
            namespace,
            labels=labels,
            fields=fields,
            limit=limit,
            continue_token=continue_token,
        )

    # ------------------------------------------------------------------ writes
    def create(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        *,
        managed_fields: ManagedFields | None = None,
    ) -> dict[str, Any]:
        obj = admission.check_body(rt, version, body)
        meta = dict(obj.get("metadata") or {})
        admission.check_namespace(self.store, rt, namespace, meta)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
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
        obj = admission.validate(rt, version, obj, opts)
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
                None,
                obj,
                manager=opts.manager,
                type_info=self._type_info(rt, version),
                api_version=rt.api_version(version),
                now=now_rfc3339(now),
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
        obj = admission.check_body(rt, version, body)
        meta = obj.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        admission.check_namespace(self.store, rt, namespace, dict(meta))
        old = self.get(rt, namespace, name)
        sent_rv = meta.get("resourceVersion")
        if sent_rv:
            if str(sent_rv) != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
        elif not rt.allow_unconditional_update and subresource is None:
            raise errors.invalid(
                rt.kind,
                rt.group,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "message": "Invalid value: 0x0: must be specified for an update",
                        "field": "metadata.resourceVersion",
                    }
                ],
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
        kind = admission.PATCH_TYPES.get(content_type)
        if kind is None:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(admission.PATCH_TYPES)}",
            )
        if kind == "strategic" and rt.is_crd:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if kind != "apply" and opts.force:
            raise errors.bad_request("force is only valid for apply patches (ApplyPatch)")
        patch_body = admission.decode_patch(raw, kind)
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
                patched = patching.strategic_merge_patch(
                    current, patch_body, merge_key=builtins.merge_key_for(rt)
                )
        except errors.PatchError as e:
            raise ApiError(e.code, str(e)) from e
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch produced a value that is not an object")
        meta = patched.get("metadata") or {}
        sent_rv = meta.get("resourceVersion")
        if sent_rv and str(sent_rv) != live["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
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
            raise errors.bad_request(
                "error decoding YAML: the apply configuration is not an object"
            )
        config = admission.check_body(rt, version, config)
        meta = config.get("metadata") or {}
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
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
            admission.check_namespace(self.store, rt, namespace, dict(meta))
            try:
                applied = ssa.apply(
                    None,
                    config,
                    manager=opts.manager,
                    force=opts.force,
                    type_info=type_info,
                    api_version=rt.api_version(version),
                    now=now,
                    subresource=subresource,
                )
            except ssa.ApplyConflict as e:
                raise admission.conflict_error(e, rt, version, name) from e
            managed = applied["metadata"].get("managedFields")
            applied["metadata"].pop("managedFields", None)
            creation = WriteOptions(
                opts.manager, opts.field_validation, opts.dry_run, warnings=opts.warnings
            )
            return self._create_prepared(rt, version, namespace, applied, creation, managed)
        current = self._at_version(rt, live, version)
        try:
            applied = ssa.apply(
                current,
                config,
                manager=opts.manager,
                force=opts.force,
                type_info=type_info,
                api_version=rt.api_version(version),
                now=now,
                subresource=subresource,
            )
        except ssa.ApplyConflict as e:
            raise admission.conflict_error(e, rt, version, name) from e
        return self._commit(
            rt, version, live, applied, opts, subresource=subresource, managed_set=True
        )

    def _create_prepared(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        obj: dict[str, Any],
        opts: WriteOptions,
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
                        rt.kind,
                        rt.group,
                        old_meta["name"],
                        [
                            {
                                "reason": "FieldValueForbidden",
                                "field": "metadata.finalizers",
                                "message": "Forbidden: no new finalizers can be added if the "
                                "object is being deleted, "
                                f"found new finalizers {sorted(added)!r}",
                            }
                        ],
                        [
                            "metadata.finalizers: Forbidden: no new finalizers can be added if "
                            "the object is being "
                            f"deleted, found new finalizers {sorted(added)!r}"
                        ],
                    )
        new = builtins.on_update(rt, old, new)
        new = admission.validate(rt, version, new, opts)
        if rt.has_generation and subresource is None and spec_part(new) != spec_part(old):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if not managed_set:
            new = ssa.record_update(
                self._at_version(rt, old, version),
                new,
                manager=opts.manager,
                type_info=self._type_info(rt, version),
                api_version=rt.api_version(version),
                now=now_rfc3339(self.clock()),
                subresource=subresource,
            )
        if admission.same_content(old, new, rt):
            return old
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._finalize_delete(rt, new, opts)
        return self._store(rt, old, new, opts)

    def _store(
        self, rt: ResourceType, old: dict[str, Any] | None, obj: dict[str, Any], opts: WriteOptions
    ) -> dict[str, Any]:
        for check in self.admission_checks:
            check(rt, old, obj)
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
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in "
                    f"object meta: {meta['uid']}",
                    reason="Conflict",
                )
            if (
                preconditions.get("resourceVersion")
                and str(preconditions["resourceVersion"]) != meta["resourceVersion"]
            ):
                raise ApiError(
                    409,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{preconditions['resourceVersion']}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}",
                    reason="Conflict",
                )
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(
                'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                f'value: "{propagation}": supported values: '
                '"Foreground", "Background", "Orphan", "nil"'
            )
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

    def _finalize_delete(
        self, rt: ResourceType, obj: dict[str, Any], opts: WriteOptions
    ) -> dict[str, Any]:
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
