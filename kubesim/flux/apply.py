"""How kustomize-controller applies built objects and garbage-collects them (fluxcd/pkg/ssa):
server-side apply with its field manager and `force`, in the stages of `ApplyAllStaged`
(CRDs, Namespaces and ClusterRoles; then `*Class` kinds; then the rest), each stage sorted by
kind order and dry-run before anything in it is written; owner labels on every object; an
inventory of `{"id": "<namespace>_<name>_<group>_<Kind>", "v": "<version>"}` entries in apply
order (kustomize-controller internal/inventory `AddChangeSet`, skipped objects left out); and
deletes that skip objects opted out or taken over by another owner.

Kinds of the Kubernetes core groups that the emulator does not serve (Deployments,
Services, ...) are accepted and listed in the inventory without being stored, so real app
manifests deploy; a kind from an unknown API group fails as on a cluster without its CRD.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.errors import ApiError
from kubesim.flux.build import CLUSTER_SCOPED_KINDS
from kubesim.objects import ObjectApi, WriteOptions
from kubesim.resources import ResourceType

GROUP = "kustomize.toolkit.fluxcd.io"
NAME_LABEL = f"{GROUP}/name"
NAMESPACE_LABEL = f"{GROUP}/namespace"
PRUNE_KEY = f"{GROUP}/prune"
RECONCILE_KEY = f"{GROUP}/reconcile"
DISABLED = "disabled"

CORE_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "certificates.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "apiregistration.k8s.io",
    }
)
_ORDER_FIRST = [
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ClusterRoleBinding",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]
_ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
_KIND_ORDER = {k: i - len(_ORDER_FIRST) for i, k in enumerate(_ORDER_FIRST)} | {
    k: 1 + i for i, k in enumerate(_ORDER_LAST)
}


class ApplyError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Target:
    obj: dict[str, Any]
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    rt: ResourceType | None
    """None for a core kind the emulator does not serve (applied virtually)."""

    @property
    def ref(self) -> str:
        """`Kind/namespace/name` as the controller names objects in messages."""
        return "/".join(p for p in (self.kind, self.namespace, self.name) if p)

    @property
    def entry(self) -> dict[str, str]:
        return {
            "id": inventory_id(self.namespace, self.name, self.group, self.kind),
            "v": self.version,
        }


def inventory_id(namespace: str, name: str, group: str, kind: str) -> str:
    return f"{namespace}_{name.replace(':', '__')}_{group}_{kind}"


def parse_inventory_id(entry_id: str) -> tuple[str, str, str, str]:
    """(namespace, name, group, kind); names cannot contain `_`, `:` is written `__`."""
    parts = entry_id.split("_")
    if len(parts) < 4:
        raise ValueError(f"invalid inventory id {entry_id!r}")
    return parts[0], "_".join(parts[1:-2]).replace("__", ":"), parts[-2], parts[-1]


def _cluster_definition(t: Target) -> bool:
    """fluxcd/pkg/ssa `IsClusterDefinition`: the first stage of `ApplyAllStaged`."""
    return t.kind in ("CustomResourceDefinition", "Namespace") or (
        t.kind == "ClusterRole" and t.group == "rbac.authorization.k8s.io"
    )


def _disabled(obj: Mapping[str, Any] | None, key: str) -> bool:
    meta = (obj or {}).get("metadata") or {}
    return bool(
        (meta.get("annotations") or {}).get(key) == DISABLED
        or (meta.get("labels") or {}).get(key) == DISABLED
    )


class Applier:
    """Applies and deletes on behalf of one Kustomization."""

    def __init__(
        self, api: ObjectApi, *, name: str, namespace: str, manager: str = "kustomize-controller"
    ) -> None:
        self.api = api
        self.owner = {NAME_LABEL: name, NAMESPACE_LABEL: namespace}
        self.manager = manager

    def target(self, obj: Mapping[str, Any]) -> Target:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        group, _, version = api_version.rpartition("/")
        meta = obj["metadata"]
        rt = self.api.catalog.by_kind(group, kind)
        ref = "/".join(p for p in (kind, str(meta.get("namespace") or ""), str(meta["name"])) if p)
        if (rt is None and group not in CORE_GROUPS) or (
            rt is not None and version not in rt.versions
        ):
            raise ApplyError(
                f'{ref} dry-run failed: no matches for kind "{kind}" in version "{api_version}"'
            )
        namespaced = rt.namespaced if rt is not None else kind not in CLUSTER_SCOPED_KINDS
        namespace = str(meta.get("namespace") or "") if namespaced else ""
        if namespaced and not namespace:
            raise ApplyError(
                f"{ref} namespace not specified: the server could not find the requested resource"
            )
        labels = {**(meta.get("labels") or {}), **self.owner}
        body = {
            **obj,
            "metadata": {
                **meta,
                "labels": labels,
                **({"namespace": namespace} if namespaced else {}),
            },
        }
        if not namespaced:
            body["metadata"].pop("namespace", None)
        return Target(body, group, version, kind, namespace, str(meta["name"]), rt)

    def apply_all(self, objects: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
        """Apply in stages; returns the inventory entries of what is now managed."""
        targets = [self.target(o) for o in objects]
        definitions = [t for t in targets if _cluster_definition(t)]
        classes = [t for t in targets if t not in definitions and t.kind.endswith("Class")]
        rest = [t for t in targets if t not in definitions and t not in classes]
        entries: list[dict[str, str]] = []
        for stage in (definitions, classes, rest):
            stage = sorted(
                stage,
                key=lambda t: (_KIND_ORDER.get(t.kind, 0), t.group, t.kind, t.namespace, t.name),
            )
            stage = [t for t in stage if not self._skipped(t)]
            for t in stage:
                self._write(t, dry_run=True)
            for t in stage:
                self._write(t, dry_run=False)
            entries.extend(t.entry for t in stage)
        return entries

    def _skipped(self, t: Target) -> bool:
        if t.rt is None:
            return _disabled(t.obj, RECONCILE_KEY)
        live = self.api.store.get(t.rt.gr, t.namespace, t.name)
        return _disabled(live, RECONCILE_KEY) or _disabled(t.obj, RECONCILE_KEY)

    def _write(self, t: Target, *, dry_run: bool) -> None:
        if t.rt is None:
            return
        try:
            self.api.patch(
                t.rt,
                t.version,
                t.namespace,
                t.name,
                "application/apply-patch+yaml",
                json.dumps(t.obj).encode(),
                WriteOptions(manager=self.manager, force=True, dry_run=dry_run),
            )
        except ApiError as e:
            if not dry_run:
                raise ApplyError(f"{t.ref} apply failed: {e.message}") from e
            if e.code == 404:
                raise ApplyError(f"{t.ref} not found: {e.message}") from e
            raise ApplyError(f"{t.ref} dry-run failed ({e.reason}): {e.message}") from e

    def delete_all(self, entries: Iterable[Mapping[str, Any]]) -> list[str]:
        """Delete inventory entries (background propagation), skipping objects with
        `prune: disabled`/`reconcile: disabled` or no longer labelled as ours; returns failures."""
        failures = []
        for entry in entries:
            try:
                ns, name, group, kind = parse_inventory_id(str(entry.get("id", "")))
            except ValueError:
                continue
            rt = self.api.catalog.by_kind(group, kind)
            if rt is None:
                continue
            live = self.api.store.get(rt.gr, ns, name)
            if live is None or live["metadata"].get("deletionTimestamp"):
                continue
            labels = live["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in self.owner.items()):
                continue
            if _disabled(live, PRUNE_KEY) or _disabled(live, RECONCILE_KEY):
                continue
            try:
                self.api.delete(rt, ns, name, propagation="Background")
            except ApiError as e:
                if e.code != 404:
                    ref = "/".join(p for p in (kind, ns, name) if p)
                    failures.append(f"{ref} deletion failed: {e.message}")
        return failures
