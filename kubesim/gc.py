"""The garbage collector and namespace controller of the emulated cluster.

Like kube-controller-manager's, they work asynchronously from the change stream: deleting an
owner returns at once, and its dependents disappear shortly after (background propagation), or
before it (foreground), or lose their owner reference (orphan).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import structlog

from kubesim.errors import ApiError
from kubesim.objects import ObjectApi, WriteOptions
from kubesim.resources import NAMESPACE_GR, GroupResource
from kubesim.store import Event

log = structlog.get_logger("kubesim.gc")

ObjRef = tuple[GroupResource, str, str]
MANAGER = "generic-garbage-collector"


class GarbageCollector:
    """Keeps an owner index from the change stream and acts on deletions."""

    def __init__(self, api: ObjectApi) -> None:
        self.api = api
        self._uids: dict[str, ObjRef] = {}
        self._dependents: defaultdict[str, set[ObjRef]] = defaultdict(set)
        self._pending_owners: set[str] = set()
        self._pending_objects: set[ObjRef] = set()
        self._pending_namespaces: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = api.store.subscribe(self._on_event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kubesim-garbage-collector")

    async def stop(self) -> None:
        self._unsubscribe()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_event(self, event: Event) -> None:
        meta = event.obj["metadata"]
        ref: ObjRef = (event.gr, meta.get("namespace", ""), meta["name"])
        uid = meta.get("uid", "")
        if event.old is not None:
            for owner in event.old["metadata"].get("ownerReferences") or []:
                self._dependents[owner.get("uid", "")].discard(ref)
        if event.type == "DELETED":
            self._uids.pop(uid, None)
            self._pending_owners.add(uid)
        else:
            self._uids[uid] = ref
            owners = meta.get("ownerReferences") or []
            for owner in owners:
                self._dependents[owner.get("uid", "")].add(ref)
            if owners and not any(o.get("uid") in self._uids for o in owners):
                self._pending_objects.add(ref)
            finalizers = meta.get("finalizers") or []
            if meta.get("deletionTimestamp") and (
                "foregroundDeletion" in finalizers or "orphan" in finalizers
            ):
                self._pending_owners.add(uid)
            if event.gr == NAMESPACE_GR and meta.get("deletionTimestamp"):
                self._pending_namespaces.add(meta["name"])
        if meta.get("namespace") and event.type == "DELETED":
            ns = self.api.store.get(NAMESPACE_GR, "", meta["namespace"])
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._pending_namespaces.add(meta["namespace"])
        # A foreground owner waits for its dependents: re-check it when one goes away.
        if event.type == "DELETED" and event.old is not None:
            for owner in event.old["metadata"].get("ownerReferences") or []:
                if owner.get("uid") in self._uids:
                    self._pending_owners.add(owner["uid"])
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Let the write that woke us finish its request first, as a real controller lags.
            await asyncio.sleep(0)
            try:
                self._process()
            except Exception:  # a bug here must not kill the collector for the rest of the run
                log.exception("gc_pass_failed")

    def _process(self) -> None:
        while self._pending_owners or self._pending_objects or self._pending_namespaces:
            owners, self._pending_owners = self._pending_owners, set()
            objects, self._pending_objects = self._pending_objects, set()
            namespaces, self._pending_namespaces = self._pending_namespaces, set()
            for uid in owners:
                self._process_owner(uid)
            for ref in objects:
                self._process_dependent(ref, policy="Background")
            for ns in namespaces:
                self._process_namespace(ns)

    def _get(self, ref: ObjRef) -> dict[str, Any] | None:
        return self.api.store.get(ref[0], ref[1], ref[2])

    def _process_owner(self, uid: str) -> None:
        dependents = list(self._dependents.get(uid, ()))
        ref = self._uids.get(uid)
        owner = self._get(ref) if ref else None
        if owner is None:
            for dep in dependents:
                self._process_dependent(dep, policy="Background")
            self._dependents.pop(uid, None)
            return
        assert ref is not None
        finalizers = owner["metadata"].get("finalizers") or []
        if not owner["metadata"].get("deletionTimestamp"):
            return
        if "orphan" in finalizers:
            for dep in dependents:
                self._drop_owner_ref(dep, uid)
            self._remove_finalizer(ref, "orphan")
        elif "foregroundDeletion" in finalizers:
            blocking = False
            for dep in dependents:
                obj = self._get(dep)
                if obj is None:
                    continue
                refs = [
                    o for o in obj["metadata"].get("ownerReferences") or [] if o.get("uid") == uid
                ]
                if not refs:
                    continue
                if refs[0].get("blockOwnerDeletion"):
                    blocking = True
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(dep, "Foreground")
                    if self._get(dep) is not None and refs[0].get("blockOwnerDeletion"):
                        blocking = True
                    elif self._get(dep) is None and not any(
                        self._get(d) is not None and self._blocks(d, uid) for d in dependents
                    ):
                        blocking = False
            if not any(self._get(d) is not None and self._blocks(d, uid) for d in dependents):
                blocking = False
            if not blocking:
                self._remove_finalizer(ref, "foregroundDeletion")

    def _blocks(self, dep: ObjRef, uid: str) -> bool:
        obj = self._get(dep)
        if obj is None:
            return False
        return any(
            o.get("uid") == uid and o.get("blockOwnerDeletion")
            for o in obj["metadata"].get("ownerReferences") or []
        )

    def _process_dependent(self, ref: ObjRef, *, policy: str) -> None:
        obj = self._get(ref)
        if obj is None:
            return
        owners = obj["metadata"].get("ownerReferences") or []
        alive = [o for o in owners if o.get("uid") in self._uids]
        if alive and len(alive) == len(owners):
            return
        if alive:
            for o in owners:
                if o not in alive:
                    self._drop_owner_ref(ref, o.get("uid", ""))
            return
        if not obj["metadata"].get("deletionTimestamp"):
            self._delete(ref, policy)

    def _process_namespace(self, name: str) -> None:
        ns = self.api.store.get(NAMESPACE_GR, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for rt in self.api.catalog.all():
            if not rt.namespaced:
                continue
            for obj in list(self.api.store.iter(rt.gr, name)):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete((rt.gr, name, obj["metadata"]["name"]), "Background")
        if remaining == 0 or not any(
            True
            for rt in self.api.catalog.all()
            if rt.namespaced
            for _ in self.api.store.iter(rt.gr, name)
        ):
            rt_ns = self.api.catalog.get(NAMESPACE_GR)
            assert rt_ns is not None
            self.api.finish_namespace(rt_ns, ns)

    def _delete(self, ref: ObjRef, policy: str) -> None:
        rt = self.api.catalog.get(ref[0])
        if rt is None:
            return
        try:
            self.api.delete(rt, ref[1], ref[2], propagation=policy)
            log.debug(
                "gc_deleted", resource=ref[0][1], namespace=ref[1], name=ref[2], policy=policy
            )
        except ApiError as e:
            if e.code != 404:
                log.warning("gc_delete_failed", name=ref[2], error=e.message)

    def _drop_owner_ref(self, ref: ObjRef, uid: str) -> None:
        obj = self._get(ref)
        rt = self.api.catalog.get(ref[0])
        if obj is None or rt is None:
            return
        owners = obj["metadata"].get("ownerReferences") or []
        kept = [o for o in owners if o.get("uid") != uid]
        if len(kept) == len(owners):
            return
        meta = {**obj["metadata"], "ownerReferences": kept}
        if not kept:
            meta.pop("ownerReferences")
        self._write(rt, {**obj, "metadata": meta})

    def _remove_finalizer(self, ref: ObjRef, finalizer: str) -> None:
        obj = self._get(ref)
        rt = self.api.catalog.get(ref[0])
        if obj is None or rt is None:
            return
        meta = {
            **obj["metadata"],
            "finalizers": [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer],
        }
        self._write(rt, {**obj, "metadata": meta})

    def _write(self, rt: Any, obj: dict[str, Any]) -> None:
        try:
            self.api.update(
                rt,
                rt.storage_version,
                obj["metadata"].get("namespace", ""),
                obj["metadata"]["name"],
                obj,
                WriteOptions(manager=MANAGER),
            )
        except ApiError as e:
            log.warning("gc_update_failed", name=obj["metadata"]["name"], error=e.message)
