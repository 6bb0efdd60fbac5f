"""Helm itself, as helm-controller drives it: a release storage and the install, upgrade,
rollback and uninstall actions that render a chart and write its objects to the cluster.

Releases are kept in memory (a real cluster keeps them in `sh.helm.release.v1.*` Secrets) with
Helm's statuses: an install or upgrade that fails is stored `failed` (the previous release
stays `deployed`), a successful upgrade or rollback supersedes the previous release, and an
uninstall removes the history (helm-controller does not keep it).

Objects are written with field manager `helm`, labelled `app.kubernetes.io/managed-by: Helm`
and annotated `meta.helm.sh/release-name`/`-namespace` as Helm does, plus the
`helm.toolkit.fluxcd.io/name`/`-namespace` labels of helm-controller's origin post-renderer.
The cluster runs nothing, so a release only fails when a failure is injected for its chart
(`Failures`): Helm then reports what its wait reports when workloads never become ready,
`context deadline exceeded` (Helm v3.19 pkg/kube/wait.go), unless another message is given.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from kubesim.errors import ApiError
from kubesim.flux import conditions as cond
from kubesim.flux.charts import Chart, render
from kubesim.objects import ObjectApi, WriteOptions

HELM_MANAGER = "helm"
DEADLINE = "context deadline exceeded"
MAX_HISTORY = 5

DEPLOYED, FAILED, SUPERSEDED, UNINSTALLED = "deployed", "failed", "superseded", "uninstalled"


class ActionError(Exception):
    """A Helm action failed; `stored` says whether it wrote a release (a remediable failure)."""

    def __init__(self, message: str, *, stored: bool) -> None:
        super().__init__(message)
        self.message = message
        self.stored = stored


@dataclass(frozen=True)
class Ref:
    group: str
    version: str
    kind: str
    namespace: str
    name: str


@dataclass
class Release:
    """One revision of a release in Helm's storage."""

    name: str
    namespace: str
    version: int
    status: str
    chart: Chart
    config: Mapping[str, Any]
    first_deployed: str
    last_deployed: str
    objects: tuple[Ref, ...] = ()
    description: str = ""
    oci_digest: str = ""

    @property
    def config_digest(self) -> str:
        return values_digest(self.config)

    def snapshot(self) -> dict[str, Any]:
        """The `status.history` entry helm-controller records for this release."""
        observed = {
            "name": self.name,
            "namespace": self.namespace,
            "version": self.version,
            "status": self.status,
            "chart": [self.chart.name, self.chart.version, self.chart.app_version],
            "config": self.config,
            "first": self.first_deployed,
            "last": self.last_deployed,
            "objects": [list(r.__dict__.values()) for r in self.objects],
        }
        body = json.dumps(observed, sort_keys=True, separators=(",", ":")).encode()
        out: dict[str, Any] = {
            "chartName": self.chart.name,
            "chartVersion": self.chart.version,
            "configDigest": self.config_digest,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "firstDeployed": self.first_deployed,
            "lastDeployed": self.last_deployed,
            "name": self.name,
            "namespace": self.namespace,
            "status": self.status,
            "version": self.version,
        }
        if self.chart.app_version:
            out["appVersion"] = self.chart.app_version
        if self.oci_digest:
            out["ociDigest"] = self.oci_digest
        return out


def values_digest(values: Mapping[str, Any]) -> str:
    """chartutil.DigestValues: `sha256:` of the values as Go's encoding/json writes them."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Failure:
    """An injected failure: releases of `chart` (at `version`, in `namespace`, when set) fail
    their install and/or upgrade with `message`."""

    chart: str
    version: str = ""
    namespace: str = ""
    action: str = ""
    """`install`, `upgrade`, or `` for both."""
    message: str = DEADLINE

    def matches(self, chart: Chart, namespace: str, action: str) -> bool:
        return (
            self.chart == chart.name
            and self.version in ("", chart.version)
            and self.namespace in ("", namespace)
            and self.action in ("", action)
        )


@dataclass
class Failures:
    items: list[Failure] = field(default_factory=list)

    def set(self, failure: Failure) -> None:
        self.clear(failure.chart, failure.version, failure.namespace)
        self.items.append(failure)

    def clear(self, chart: str, version: str = "", namespace: str = "") -> bool:
        before = len(self.items)
        self.items = [
            f
            for f in self.items
            if (f.chart, f.version, f.namespace) != (chart, version, namespace)
        ]
        return len(self.items) != before

    def message(self, chart: Chart, namespace: str, action: str) -> str | None:
        for failure in self.items:
            if failure.matches(chart, namespace, action):
                return failure.message
        return None


class Helm:
    """Helm's storage and actions against the emulated cluster."""

    def __init__(self, api: ObjectApi, *, clock: Callable[[], datetime]) -> None:
        self.api = api
        self.clock = clock
        self.storage: dict[tuple[str, str], list[Release]] = {}
        self.failures = Failures()
        self.observed: list[Release] = []
        """Every release the last actions wrote (helm-controller's storage observer)."""

    # ------------------------------------------------------------ storage
    def history(self, storage_namespace: str, name: str) -> list[Release]:
        return sorted(self.storage.get((storage_namespace, name), []), key=lambda r: r.version)

    def last(self, storage_namespace: str, name: str) -> Release | None:
        history = self.history(storage_namespace, name)
        return history[-1] if history else None

    def get(self, storage_namespace: str, name: str, version: int) -> Release | None:
        return next(
            (r for r in self.history(storage_namespace, name) if r.version == version), None
        )

    def _record(self, storage_namespace: str, release: Release) -> None:
        releases = [
            r
            for r in self.storage.get((storage_namespace, release.name), [])
            if r.version != release.version
        ]
        releases.append(release)
        releases.sort(key=lambda r: r.version)
        # Helm's MaxHistory (5 with helm-controller) prunes the oldest superseded revisions.
        while len(releases) > MAX_HISTORY and releases[0].status != DEPLOYED:
            releases.pop(0)
        self.storage[(storage_namespace, release.name)] = releases
        self.observed.append(release)

    # ------------------------------------------------------------ actions
    def install(
        self,
        storage_namespace: str,
        *,
        name: str,
        namespace: str,
        chart: Chart,
        values: Mapping[str, Any],
        origin: tuple[str, str],
        oci_digest: str = "",
    ) -> Release:
        now = cond.rfc3339(self.clock())
        release = Release(name, namespace, 1, "pending-install", chart, dict(values), now, now)
        release.oci_digest = oci_digest
        return self._run(storage_namespace, release, origin, previous=None, action="install")

    def upgrade(
        self,
        storage_namespace: str,
        current: Release,
        *,
        chart: Chart,
        values: Mapping[str, Any],
        origin: tuple[str, str],
        oci_digest: str = "",
    ) -> Release:
        last = self.last(storage_namespace, current.name) or current
        release = Release(
            current.name,
            current.namespace,
            last.version + 1,
            "pending-upgrade",
            chart,
            dict(values),
            current.first_deployed,
            cond.rfc3339(self.clock()),
            oci_digest=oci_digest,
        )
        return self._run(storage_namespace, release, origin, previous=current, action="upgrade")

    def rollback(self, storage_namespace: str, target: Release, origin: tuple[str, str]) -> Release:
        current = self.last(storage_namespace, target.name)
        assert current is not None
        release = replace(
            target,
            version=current.version + 1,
            status="pending-rollback",
            last_deployed=cond.rfc3339(self.clock()),
            description=f"Rollback to {target.version}",
        )
        return self._run(storage_namespace, release, origin, previous=current, action="rollback")

    def uninstall(self, storage_namespace: str, name: str) -> Release | None:
        """Delete the release's objects and its history; the uninstalled release, if any."""
        current = self.last(storage_namespace, name)
        if current is None:
            return None
        for ref in current.objects:
            self._delete(ref)
        self.storage.pop((storage_namespace, name), None)
        return replace(current, status=UNINSTALLED, description="Uninstallation complete")

    def _run(
        self,
        storage_namespace: str,
        release: Release,
        origin: tuple[str, str],
        *,
        previous: Release | None,
        action: str,
    ) -> Release:
        try:
            objects = render(
                release.chart,
                release.config,
                release=release.name,
                namespace=release.namespace,
                revision=release.version,
            )
        except Exception as e:  # a chart that does not render stores nothing, as in Helm
            raise ActionError(f"YAML parse error: {e}", stored=False) from e
        written: list[Ref] = []
        try:
            for obj in objects:
                ref = self._apply(obj, release, origin)
                if ref is not None:
                    written.append(ref)
        except ApiError as e:
            return self._fail(storage_namespace, release, tuple(written), e.message, action)
        if previous is not None:
            kept = set(written)
            for ref in previous.objects:
                if ref not in kept:
                    self._delete(ref)
        release.objects = tuple(written)
        message = self.failures.message(release.chart, release.namespace, action)
        if message is not None and action != "rollback":
            return self._fail(storage_namespace, release, release.objects, message, action)
        release.status = DEPLOYED
        release.description = release.description or (
            "Install complete" if action == "install" else "Upgrade complete"
        )
        if previous is not None:
            for old in self.history(storage_namespace, release.name):
                if old.status == DEPLOYED:
                    self._record(storage_namespace, replace(old, status=SUPERSEDED))
        self._record(storage_namespace, release)
        return release

    def _fail(
        self,
        storage_namespace: str,
        release: Release,
        written: tuple[Ref, ...],
        message: str,
        action: str,
    ) -> Release:
        release.objects = written
        release.status = FAILED
        verb = "Upgrade" if action == "upgrade" else "Release"
        release.description = f'{verb} "{release.name}" failed: {message}'
        self._record(storage_namespace, release)
        raise ActionError(message, stored=True)

    def _apply(self, obj: dict[str, Any], release: Release, origin: tuple[str, str]) -> Ref | None:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        group, _, version = api_version.rpartition("/")
        rt = self.api.catalog.by_kind(group, kind)
        meta = obj.get("metadata") or {}
        if rt is None or not meta.get("name"):
            return None
        namespace = str(meta.get("namespace") or release.namespace) if rt.namespaced else ""
        labels = {
            **(meta.get("labels") or {}),
            "app.kubernetes.io/managed-by": "Helm",
            "helm.toolkit.fluxcd.io/name": origin[1],
            "helm.toolkit.fluxcd.io/namespace": origin[0],
        }
        annotations = {
            **(meta.get("annotations") or {}),
            "meta.helm.sh/release-name": release.name,
            "meta.helm.sh/release-namespace": release.namespace,
        }
        body = {**obj, "metadata": {**meta, "labels": labels, "annotations": annotations}}
        if rt.namespaced:
            body["metadata"]["namespace"] = namespace
        else:
            body["metadata"].pop("namespace", None)
        opts = WriteOptions(manager=HELM_MANAGER)
        if self.api.store.get(rt.gr, namespace, str(meta["name"])) is None:
            self.api.create(rt, version, namespace, body, opts)
        else:
            self.api.patch(
                rt,
                version,
                namespace,
                str(meta["name"]),
                "application/merge-patch+json",
                json.dumps(body).encode(),
                opts,
            )
        return Ref(group, version, kind, namespace, str(meta["name"]))

    def _delete(self, ref: Ref) -> None:
        rt = self.api.catalog.by_kind(ref.group, ref.kind)
        if rt is None:
            return
        try:
            self.api.delete(rt, ref.namespace, ref.name, propagation="Background")
        except ApiError as e:
            if e.code != 404:
                raise

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"storageNamespace": ns, "name": name, "history": [r.snapshot() for r in releases]}
            for (ns, name), releases in sorted(self.storage.items())
        ]


def objects_of(releases: Iterable[Release]) -> set[Ref]:
    return {ref for r in releases for ref in r.objects}
