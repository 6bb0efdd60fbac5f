"""Slim projections of the Flux objects an app's chain runs through beyond Kollie's own:
the catalog's ImageRepositories and GitRepositories, and the HelmReleases an app's
Kustomization applies.

Only what a diagnosis or an app's state needs is kept, and nothing that changes on every
reconcile (scan times, `lastHandledReconcileAt`), so a rescan that finds the same tags
notifies nobody. Keys and repeated strings are interned: thousands of objects name the same
few namespaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kollie import labels
from kollie.projections import Condition, Key, conditions, key


@dataclass(frozen=True, slots=True)
class ImageRepositoryView:
    """A catalog ImageRepository: whether it scans, and what its last scan found."""

    namespace: str
    name: str
    image: str
    generation: int
    observed_generation: int
    suspended: bool
    ready: Condition | None
    tag_count: int
    latest_tags: tuple[str, ...]
    """`status.lastScanResult.latestTags`: image-reflector-controller keeps the first 10 tags in
    descending string order (`sortTagsAndGetLatestTags`), not the newest by time."""


@dataclass(frozen=True, slots=True)
class SourceView:
    """A catalog GitRepository (the source an app's Kustomization builds from)."""

    namespace: str
    name: str
    url: str
    branch: str
    generation: int
    observed_generation: int
    suspended: bool
    ready: Condition | None
    revision: str
    """The stored artifact's revision ("" when it has none)."""


@dataclass(frozen=True, slots=True)
class HelmReleaseView:
    """A HelmRelease that one of Kollie's Kustomizations applied."""

    namespace: str
    name: str
    owner: Key
    """The Kustomization that applied it, from kustomize-controller's
    `kustomize.toolkit.fluxcd.io/namespace` and `/name` labels."""
    generation: int
    observed_generation: int
    suspended: bool
    ready: Condition | None
    released: Condition | None
    remediated: Condition | None
    stalled: Condition | None
    reconciling: bool
    failures: int
    """`status.installFailures` or `status.upgradeFailures`, whichever is larger."""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _identity(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], Key]:
    meta, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
    return meta, spec, key(str(meta.get("namespace", "")), str(meta.get("name", "")))


def image_repository(obj: Mapping[str, Any]) -> ImageRepositoryView | None:
    meta, spec, (namespace, name) = _identity(obj)
    status = _mapping(obj.get("status"))
    scan = _mapping(status.get("lastScanResult"))
    tags = scan.get("latestTags")
    return ImageRepositoryView(
        namespace=namespace,
        name=name,
        image=str(spec.get("image", "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        suspended=bool(spec.get("suspend")),
        ready=conditions(obj).get("Ready"),
        tag_count=_int(scan.get("tagCount")),
        latest_tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
    )


def git_source(obj: Mapping[str, Any]) -> SourceView | None:
    meta, spec, (namespace, name) = _identity(obj)
    status = _mapping(obj.get("status"))
    ref = _mapping(spec.get("ref"))
    return SourceView(
        namespace=namespace,
        name=name,
        url=str(spec.get("url", "")),
        branch=str(ref.get("branch", "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        suspended=bool(spec.get("suspend")),
        ready=conditions(obj).get("Ready"),
        revision=str(_mapping(status.get("artifact")).get("revision", "")),
    )


def helm_release(obj: Mapping[str, Any]) -> HelmReleaseView | None:
    meta, spec, (namespace, name) = _identity(obj)
    owned_by = _mapping(meta.get("labels"))
    owner_namespace = owned_by.get(labels.FLUX_OWNER_NAMESPACE)
    owner_name = owned_by.get(labels.FLUX_OWNER_NAME)
    if not owner_namespace or not owner_name:
        return None
    status = _mapping(obj.get("status"))
    conds = conditions(obj)
    reconciling = conds.get("Reconciling")
    return HelmReleaseView(
        namespace=namespace,
        name=name,
        owner=key(str(owner_namespace), str(owner_name)),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        suspended=bool(spec.get("suspend")),
        ready=conds.get("Ready"),
        released=conds.get("Released"),
        remediated=conds.get("Remediated"),
        stalled=conds.get("Stalled"),
        reconciling=reconciling is not None and reconciling.status == "True",
        failures=max(_int(status.get("installFailures")), _int(status.get("upgradeFailures"))),
    )


HelmState = Literal["ready", "pending", "failing"]

_HELM_WAITING = frozenset({"Progressing", "ProgressingWithRetry", "DependencyNotReady"})
"""Ready=False reasons of a HelmRelease that mean "not yet" rather than "broken"."""


def helm_release_state(view: HelmReleaseView) -> HelmState:
    """Whether a HelmRelease is ready, still on its way, or failing, as kstatus would see it
    (a Stalled release is failing; Ready=False is failing unless its reason is a wait)."""
    ready = view.ready
    if ready is None:
        return "pending"
    if max(view.observed_generation, ready.observed_generation) < view.generation:
        return "pending"
    if ready.status == "True":
        return "ready"
    if view.stalled is not None and view.stalled.status == "True":
        return "failing"
    if ready.status == "False" and ready.reason not in _HELM_WAITING:
        return "failing"
    return "pending"


def helm_release_problem(view: HelmReleaseView) -> Condition | None:
    """The condition that says what went wrong or is under way: a failed Helm action
    (`Released=False`, e.g. InstallFailed) before the summary on `Ready`, which may only
    report the remediation that followed."""
    if view.released is not None and view.released.status == "False":
        return view.released
    return view.ready
