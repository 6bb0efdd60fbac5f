"""Slim, immutable projections of the cluster objects Kollie watches.

The cache keeps these instead of whole objects: a few hundred bytes per object rather than
kilobytes of managedFields and specs, and equal projections let it ignore status noise (a
resync that changes nothing visible notifies nobody).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kollie import labels

Obj = Mapping[str, Any]
Key = tuple[str, str]
"""(namespace, name) of an object."""

HELM_RELEASE_ID_SUFFIX = "_helm.toolkit.fluxcd.io_HelmRelease"
"""How a HelmRelease's inventory entry id ends: `<namespace>_<name>_<group>_<kind>`."""

_keys: dict[Key, Key] = {}


def key(namespace: str, name: str) -> Key:
    """An interned (namespace, name): one tuple for every reference to the same object (tens
    of thousands of ImagePolicies name the same few ImageRepositories)."""
    k = (sys.intern(namespace), sys.intern(name))
    return _keys.setdefault(k, k)


@dataclass(frozen=True, slots=True)
class Condition:
    """A Kubernetes status condition, as Flux writes them."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition: str = ""
    observed_generation: int = 0
    """The generation this condition speaks about (Flux sets it even when a reconcile fails)."""


@dataclass(frozen=True, slots=True)
class EnvironmentRecord:
    """The environment ConfigMap: identity, owner and settings."""

    name: str
    uid: str
    owner: str
    created_at: str
    deleting: bool
    settings: Mapping[str, Any]
    """The record's JSON data (uptime settings and the like), decoded; {} if unreadable."""
    resource_version: str


@dataclass(frozen=True, slots=True)
class KustomizationView:
    env: str
    app: str
    name: str
    uid: str
    prefix: str
    generation: int
    observed_generation: int
    ready: Condition | None
    reconciling: bool
    stalled: bool
    suspended: bool
    image_tag: str | None
    uptime: str | None
    last_applied_revision: str
    last_attempted_revision: str
    source_kind: str
    source_name: str
    source_namespace: str
    deleting: bool
    created_at: str
    conditions: tuple[Condition, ...] = ()
    helm_releases: tuple[Key, ...] = ()
    """The HelmReleases its `status.inventory` lists (what it applied, by kustomize-controller)."""


@dataclass(frozen=True, slots=True)
class ImagePolicyView:
    env: str
    app: str
    name: str
    generation: int
    observed_generation: int
    ready: Condition | None
    latest_image: str | None
    latest_tag: str | None
    latest_digest: str | None
    conditions: tuple[Condition, ...] = ()
    repository: Key | None = None
    """The ImageRepository its `spec.imageRepositoryRef` names."""


@dataclass(frozen=True, slots=True)
class GitRepositoryView:
    env: str
    name: str
    namespace: str
    branch: str
    ready: Condition | None
    revision: str


@dataclass(frozen=True, slots=True)
class IngressView:
    env: str
    app: str
    namespace: str
    name: str
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One Event of an environment's audit trail."""

    env: str
    name: str
    time: str
    reason: str
    message: str
    actor: str
    via: str
    app: str = ""


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Obj) -> Mapping[str, str]:
    value = _meta(obj).get("labels")
    return value if isinstance(value, Mapping) else {}


def _annotations(obj: Obj) -> Mapping[str, str]:
    value = _meta(obj).get("annotations")
    return value if isinstance(value, Mapping) else {}


def _status(obj: Obj) -> Mapping[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def conditions(obj: Obj) -> dict[str, Condition]:
    out: dict[str, Condition] = {}
    for c in _status(obj).get("conditions") or []:
        if isinstance(c, Mapping) and isinstance(c.get("type"), str):
            out[c["type"]] = Condition(
                type=c["type"],
                status=str(c.get("status", "Unknown")),
                reason=str(c.get("reason", "")),
                message=str(c.get("message", "")),
                last_transition=str(c.get("lastTransitionTime", "")),
                observed_generation=_int(c.get("observedGeneration")),
            )
    return out


def environment(obj: Obj) -> EnvironmentRecord | None:
    meta = _meta(obj)
    name = _labels(obj).get(labels.ENVIRONMENT)
    if not name:
        return None
    data = obj.get("data") if isinstance(obj.get("data"), Mapping) else {}
    settings: Mapping[str, Any] = {}
    raw = (data or {}).get(labels.RECORD_KEY)
    if isinstance(raw, str):
        try:
            loaded = json.loads(raw)
            settings = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            settings = {}
    annotations = _annotations(obj)
    return EnvironmentRecord(
        name=name,
        uid=str(meta.get("uid", "")),
        owner=str(annotations.get(labels.OWNER, "")),
        created_at=str(annotations.get(labels.CREATED_AT) or meta.get("creationTimestamp", "")),
        deleting=bool(meta.get("deletionTimestamp")),
        settings=settings,
        resource_version=str(meta.get("resourceVersion", "")),
    )


def kustomization(obj: Obj) -> KustomizationView | None:
    lab = _labels(obj)
    env, app = lab.get(labels.ENVIRONMENT), lab.get(labels.APP)
    if not env or not app:
        return None
    meta = _meta(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    spec = spec or {}
    post = spec.get("postBuild") if isinstance(spec.get("postBuild"), Mapping) else {}
    substitute = (
        (post or {}).get("substitute")
        if isinstance((post or {}).get("substitute"), Mapping)
        else {}
    )
    substitute = substitute or {}
    source = spec.get("sourceRef") if isinstance(spec.get("sourceRef"), Mapping) else {}
    source = source or {}
    status = _status(obj)
    conds = conditions(obj)
    return KustomizationView(
        env=env,
        app=app,
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        prefix=str(_annotations(obj).get(labels.IMAGE_TAG_PREFIX, "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        ready=conds.get("Ready"),
        reconciling=conds.get("Reconciling", Condition("Reconciling", "False")).status == "True",
        stalled=conds.get("Stalled", Condition("Stalled", "False")).status == "True",
        suspended=bool(spec.get("suspend")),
        image_tag=substitute.get(labels.SUB_IMAGE_TAG),
        uptime=substitute.get(labels.SUB_UPTIME),
        last_applied_revision=str(status.get("lastAppliedRevision", "")),
        last_attempted_revision=str(status.get("lastAttemptedRevision", "")),
        source_kind=str(source.get("kind", "")),
        source_name=str(source.get("name", "")),
        source_namespace=str(source.get("namespace", meta.get("namespace", ""))),
        deleting=bool(meta.get("deletionTimestamp")),
        created_at=str(meta.get("creationTimestamp", "")),
        conditions=tuple(conds.values()),
        helm_releases=helm_releases_in_inventory(status),
    )


def helm_releases_in_inventory(status: Mapping[str, Any]) -> tuple[Key, ...]:
    """The HelmReleases a Kustomization's `status.inventory` lists. Entry ids are
    `<namespace>_<name>_<group>_<kind>` (cli-utils ObjMetadata; Kubernetes names hold no `_`)."""
    inventory = status.get("inventory")
    entries = inventory.get("entries") if isinstance(inventory, Mapping) else None
    if not isinstance(entries, list):
        return ()
    found = []
    for entry in entries:
        entry_id = entry.get("id") if isinstance(entry, Mapping) else None
        if isinstance(entry_id, str) and entry_id.endswith(HELM_RELEASE_ID_SUFFIX):
            namespace, _, name = entry_id[: -len(HELM_RELEASE_ID_SUFFIX)].partition("_")
            if namespace and name:
                found.append(key(namespace, name))
    return tuple(found)


def image_policy(obj: Obj) -> ImagePolicyView | None:
    lab = _labels(obj)
    env, app = lab.get(labels.ENVIRONMENT), lab.get(labels.APP)
    if not env or not app:
        return None
    meta = _meta(obj)
    status = _status(obj)
    latest = status.get("latestRef") if isinstance(status.get("latestRef"), Mapping) else None
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    ref = (spec or {}).get("imageRepositoryRef")
    repository = (
        key(str(ref.get("namespace") or meta.get("namespace", "")), str(ref.get("name", "")))
        if isinstance(ref, Mapping) and ref.get("name")
        else None
    )
    return ImagePolicyView(
        env=env,
        app=app,
        name=str(meta.get("name", "")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        ready=conditions(obj).get("Ready"),
        latest_image=str(latest["name"]) if latest and latest.get("name") else None,
        latest_tag=str(latest["tag"]) if latest and latest.get("tag") else None,
        latest_digest=str(latest["digest"]) if latest and latest.get("digest") else None,
        conditions=tuple(conditions(obj).values()),
        repository=repository,
    )


def git_repository(obj: Obj) -> GitRepositoryView | None:
    env = _labels(obj).get(labels.ENVIRONMENT)
    if not env:
        return None
    meta = _meta(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    ref = (spec or {}).get("ref") if isinstance((spec or {}).get("ref"), Mapping) else {}
    artifact = (
        _status(obj).get("artifact") if isinstance(_status(obj).get("artifact"), Mapping) else {}
    )
    return GitRepositoryView(
        env=env,
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        branch=str((ref or {}).get("branch", "")),
        ready=conditions(obj).get("Ready"),
        revision=str((artifact or {}).get("revision", "")),
    )


def ingress(obj: Obj) -> IngressView | None:
    lab = _labels(obj)
    env, app = lab.get(labels.ENVIRONMENT), lab.get(labels.APP)
    if not env or not app:
        return None
    meta = _meta(obj)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    tls_hosts = {
        h
        for t in (spec or {}).get("tls") or []
        if isinstance(t, Mapping)
        for h in t.get("hosts") or []
    }
    urls = []
    for rule in (spec or {}).get("rules") or []:
        if not isinstance(rule, Mapping) or not rule.get("host"):
            continue
        host = str(rule["host"])
        scheme = "https" if host in tls_hosts else "http"
        paths = [
            p.get("path", "/")
            for p in ((rule.get("http") or {}).get("paths") or [])
            if isinstance(p, Mapping)
        ]
        path = paths[0] if paths and paths[0] not in ("", "/") else "/"
        urls.append(f"{scheme}://{host}{path}")
    return IngressView(
        env=env,
        app=app,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        urls=tuple(sorted(set(urls))),
    )


def audit_entry(obj: Obj) -> AuditEntry | None:
    env = _labels(obj).get(labels.ENVIRONMENT)
    if not env:
        return None
    annotations = _annotations(obj)
    return AuditEntry(
        env=env,
        name=str(_meta(obj).get("name", "")),
        time=str(
            obj.get("eventTime")
            or obj.get("lastTimestamp")
            or _meta(obj).get("creationTimestamp", "")
        ),
        reason=str(obj.get("reason", "")),
        message=str(obj.get("message", "")),
        actor=str(annotations.get("kollie.io/actor", "")),
        via=str(annotations.get("kollie.io/via", "")),
        app=str(_labels(obj).get(labels.APP, "")),
    )
