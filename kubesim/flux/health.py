"""Kustomization health checks (`spec.wait`, `spec.healthChecks`) as kustomize-controller v1.7
runs them: kstatus of each object (fluxcd/cli-utils pkg/kstatus/status: deletion, observed
generation, `Reconciling`/`Stalled`, then `Ready`), polled until all are Current, failing fast
on a Failed one (the default, `DisableFailFastBehavior` off) or at `spec.timeout`.

Messages as fluxcd/pkg/ssa `WaitForSetWithContext` and the controller's `checkHealth` write
them: Healthy=False `failed early due to stalled resources: [HelmRelease/<ns>/<name> status:
'Failed']` (or `timeout waiting for: [<Kind>/<ns>/<name> status: 'InProgress']`), and Ready=False
`HealthCheckFailed` with `health check failed after <duration>: ` in front.

The emulator runs no workloads, so objects of the built-in Kubernetes groups (Deployments,
Services, ...) count as Current once they exist, as they would on a healthy cluster; injected
failures (`/sim/flux/failures`) make a Kustomization's health check fail as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.flux import conditions as cond
from kubesim.flux.apply import CORE_GROUPS, inventory_id, parse_inventory_id
from kubesim.flux.controller import Key, object_key
from kubesim.objects import ObjectApi

CURRENT, IN_PROGRESS, FAILED, NOT_FOUND, TERMINATING = (
    "Current",
    "InProgress",
    "Failed",
    "NotFound",
    "Terminating",
)
POLL_INTERVAL = 5.0
"""kustomize-controller polls every 5 s (`ssa.WaitOptions.Interval`)."""


def kstatus(obj: Mapping[str, Any] | None) -> str:
    """The kstatus of an object, for the generic rules and the `Ready` condition."""
    if obj is None:
        return NOT_FOUND
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return TERMINATING
    status = obj.get("status") or {}
    if "observedGeneration" in status and status["observedGeneration"] != meta.get("generation"):
        return IN_PROGRESS
    conditions = status.get("conditions") or []
    for c in conditions:
        if c.get("type") == cond.RECONCILING and c.get("status") == "True":
            return IN_PROGRESS
        if c.get("type") == cond.STALLED and c.get("status") == "True":
            return FAILED
    ready = cond.get(conditions, cond.READY)
    if ready is not None and ready.get("status") in ("False", "Unknown"):
        return IN_PROGRESS
    return CURRENT


@dataclass(frozen=True)
class Verdict:
    """`passed`, `failed` (with Ready/Healthy messages) or `waiting` (look again `after`)."""

    state: str
    message: str = ""
    after: float = 0.0


class HealthChecks:
    """The health checks of one controller's Kustomizations, and which ones are waiting."""

    def __init__(self, api: ObjectApi, clock: Callable[[], float] | None = None) -> None:
        self.api = api
        self._clock = clock
        self.waiting: dict[Key, tuple[float, frozenset[str]]] = {}
        """Kustomization -> (when its health check started, the ids it waits for)."""

    def now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def targets(self, obj: Mapping[str, Any], entries: Iterable[Mapping[str, Any]]) -> list[str]:
        """Inventory ids to check: everything applied with `wait`, else `healthChecks`."""
        spec = obj.get("spec") or {}
        if spec.get("wait"):
            ids = [str(e.get("id", "")) for e in entries]
        else:
            ids = []
            for ref in spec.get("healthChecks") or []:
                group = str(ref.get("apiVersion", "")).rpartition("/")[0]
                ids.append(
                    inventory_id(
                        str(ref.get("namespace") or ""),
                        str(ref.get("name", "")),
                        group,
                        str(ref.get("kind", "")),
                    )
                )
        ns, name = object_key(obj)
        itself = inventory_id(ns, name, "kustomize.toolkit.fluxcd.io", "Kustomization")
        return [i for i in ids if i != itself]

    def check(self, key: Key, ids: list[str], timeout: float) -> Verdict:
        started, _ = self.waiting.get(key, (self.now(), frozenset()))
        statuses = {i: self.status_of(i) for i in sorted(ids)}
        elapsed = self.now() - started
        failed = [i for i, s in statuses.items() if s == FAILED]
        if failed:
            self.waiting.pop(key, None)
            return Verdict(
                "failed",
                "failed early due to stalled resources: ["
                + ", ".join(_entry(i, FAILED) for i in failed)
                + "]",
                elapsed,
            )
        pending = [i for i, s in statuses.items() if s != CURRENT]
        if not pending:
            self.waiting.pop(key, None)
            return Verdict("passed", after=elapsed)
        if elapsed >= timeout:
            self.waiting.pop(key, None)
            return Verdict(
                "failed",
                "timeout waiting for: [" + ", ".join(_entry(i, statuses[i]) for i in pending) + "]",
                elapsed,
            )
        self.waiting[key] = (started, frozenset(ids))
        return Verdict("waiting", after=min(POLL_INTERVAL, timeout - elapsed))

    def status_of(self, entry_id: str) -> str:
        ns, name, group, kind = parse_inventory_id(entry_id)
        rt = self.api.catalog.by_kind(group, kind)
        if rt is None:
            return CURRENT if group in CORE_GROUPS else NOT_FOUND
        obj = self.api.store.get(rt.gr, ns if rt.namespaced else "", name)
        if obj is None:
            return NOT_FOUND
        return CURRENT if group in CORE_GROUPS else kstatus(obj)

    def forget(self, key: Key) -> None:
        self.waiting.pop(key, None)

    def waiting_for(self, obj: Mapping[str, Any]) -> list[Key]:
        """Kustomizations whose pending health check includes `obj`."""
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        ns, name = object_key(obj)
        entry = inventory_id(ns, name, group, str(obj.get("kind", "")))
        return [key for key, (_, ids) in self.waiting.items() if entry in ids]


def _entry(entry_id: str, status: str) -> str:
    """`utils.FmtObjMetadata` and the status: `HelmRelease/pr-1/web status: 'Failed'`."""
    ns, name, _, kind = parse_inventory_id(entry_id)
    ref = "/".join(p for p in (kind, ns, name) if p)
    return f"{ref} status: '{status}'"
