"""Flux objects shaped as the controllers write them, and a cache holding them, for the
diagnosis's unit tests (the end-to-end tests get the same objects from simulated Flux)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kollie.cache import GIT_SOURCES, HELM_RELEASES, IMAGE_REPOSITORIES, Cache
from kollie.views import environment_json

NS = "kollie"
ENV = "pr-1"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""A Monday, noon UTC."""
T = "2026-03-02T11:00:00Z"

Cond = tuple[str, str, str]
"""(status, reason, message) of a condition."""


def condition(kind: str, cond: Cond, generation: int = 1) -> dict[str, Any]:
    status, reason, message = cond
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": T,
        "observedGeneration": generation,
    }


def conditions(generation: int = 1, **by_type: Cond | None) -> list[dict[str, Any]]:
    return [condition(t, c, generation) for t, c in by_type.items() if c is not None]


def record(uptime: dict[str, str] | None = None, env: str = ENV) -> dict[str, Any]:
    window = uptime or {"since": "2026-03-02T08:00:00Z", "until": "2026-03-02T19:00:00Z"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": env,
            "namespace": NS,
            "uid": f"uid-{env}",
            "labels": {"app.kubernetes.io/managed-by": "kollie", "kollie.io/environment": env},
            "annotations": {"kollie.io/owner": "dev@example.com", "kollie.io/created-at": T},
        },
        "data": {"environment.json": json.dumps({"uptime": window})},
    }


def _labels(app: str, env: str = ENV) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "kollie",
        "kollie.io/environment": env,
        "kollie.io/app": app,
    }


def kustomization(
    app: str = "web",
    *,
    prefix: str = "feature-x",
    image_tag: str | None = "feature-x-abc1234-1772400000",
    ready: Cond | None = ("True", "ReconciliationSucceeded", "Applied revision: main@sha1:1"),
    stalled: Cond | None = None,
    source: tuple[str, str, str] = ("GitRepository", "flux-system", "platform"),
    helm_releases: tuple[tuple[str, str], ...] = (),
    generation: int = 1,
    env: str = ENV,
) -> dict[str, Any]:
    substitute = {"environment": env}
    if image_tag is not None:
        substitute["image_tag"] = image_tag
    kind, namespace, name = source
    status: dict[str, Any] = {
        "conditions": conditions(generation, Ready=ready, Stalled=stalled),
        "inventory": {
            "entries": [
                {"id": f"{env}__Namespace", "v": "v1"},
                *(
                    {"id": f"{ns}_{n}_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"}
                    for ns, n in helm_releases
                ),
            ]
        },
    }
    if ready is not None and ready[0] == "True":
        status["observedGeneration"] = generation
        status["lastAppliedRevision"] = "main@sha1:1"
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": f"{env}-{app}",
            "namespace": NS,
            "generation": generation,
            "labels": _labels(app, env),
            "annotations": {"kollie.io/image-tag-prefix": prefix},
        },
        "spec": {
            "suspend": image_tag is None,
            "sourceRef": {"kind": kind, "name": name, "namespace": namespace},
            "postBuild": {"substitute": substitute},
        },
        "status": status,
    }


def image_policy(
    app: str = "web",
    *,
    prefix: str = "feature-x",
    latest: str | None = "feature-x-abc1234-1772400000",
    ready: Cond | None = None,
    repository: str = "web",
    env: str = ENV,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if latest is not None:
        image = f"registry.example.com/acme/{repository}"
        status["latestRef"] = {"name": image, "tag": latest}
        ready = ready or ("True", "Succeeded", f"Latest image tag for {image} resolved to {latest}")
    status["conditions"] = conditions(Ready=ready)
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {
            "name": f"{env}-{app}",
            "namespace": NS,
            "generation": 1,
            "labels": _labels(app, env),
            "annotations": {"kollie.io/image-tag-prefix": prefix},
        },
        "spec": {"imageRepositoryRef": {"name": repository, "namespace": "flux-system"}},
        "status": status,
    }


def image_repository(
    name: str = "web",
    *,
    tags: list[str] | None = None,
    count: int | None = None,
    ready: Cond | None = None,
) -> dict[str, Any]:
    listed = sorted(tags or [], reverse=True)[:10]
    found = len(tags or []) if count is None else count
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": name, "namespace": "flux-system", "generation": 1},
        "spec": {"image": f"registry.example.com/acme/{name}", "interval": "5m"},
        "status": {
            "observedGeneration": 1,
            "lastScanResult": {"tagCount": found, "latestTags": listed, "scanTime": T},
            "conditions": conditions(
                Ready=ready or ("True", "Succeeded", f"successful scan: found {found} tags")
            ),
        },
    }


def git_repository(
    name: str = "platform",
    *,
    namespace: str = "flux-system",
    branch: str = "main",
    ready: Cond | None = ("True", "Succeeded", "stored artifact for revision 'main@sha1:1'"),
    env: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "generation": 1}
    if env is not None:
        metadata["labels"] = {
            "app.kubernetes.io/managed-by": "kollie",
            "kollie.io/environment": env,
        }
    status: dict[str, Any] = {"conditions": conditions(Ready=ready)}
    if ready is not None and ready[0] == "True":
        status["artifact"] = {"revision": f"{branch}@sha1:1"}
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": metadata,
        "spec": {"url": "https://git.example.com/acme/platform", "ref": {"branch": branch}},
        "status": status,
    }


def helm_release(
    name: str = "payments",
    *,
    owner: str = f"{ENV}-payments",
    ready: Cond | None = ("True", "InstallSucceeded", "Helm install succeeded"),
    released: Cond | None = None,
    remediated: Cond | None = None,
    stalled: Cond | None = None,
    reconciling: Cond | None = None,
    failures: int = 0,
) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": name,
            "namespace": ENV,
            "generation": 1,
            "labels": {
                "kustomize.toolkit.fluxcd.io/name": owner,
                "kustomize.toolkit.fluxcd.io/namespace": NS,
            },
        },
        "spec": {"interval": "10m"},
        "status": {
            "observedGeneration": 1,
            "installFailures": failures,
            "conditions": conditions(
                Ready=ready,
                Released=released,
                Remediated=remediated,
                Stalled=stalled,
                Reconciling=reconciling,
            ),
        },
    }


def cache_with(*objects: dict[str, Any], watch: bool = True) -> Cache:
    """A cache holding these objects, as the informers would fill it; with `watch`, the
    catalog's sources and the HelmReleases count as watched and listed."""
    cache = Cache()
    kinds = {
        "ConfigMap": "environments",
        "Kustomization": "kustomizations",
        "ImagePolicy": "imagepolicies",
        "Ingress": "ingresses",
    }
    if watch:
        for kind in (IMAGE_REPOSITORIES, GIT_SOURCES, HELM_RELEASES):
            cache.watch_refs(kind)
        cache.replace(HELM_RELEASES, {})
        for name in ("web", "api", "payments"):
            cache.replace_one(IMAGE_REPOSITORIES, ("flux-system", name), None)
        cache.replace_one(GIT_SOURCES, ("flux-system", "platform"), None)
    for obj in objects:
        kind = obj["kind"]
        labels = obj["metadata"].get("labels") or {}
        if kind == "GitRepository":
            table = "gitrepositories" if "kollie.io/environment" in labels else GIT_SOURCES
        else:
            table = {
                "ImageRepository": IMAGE_REPOSITORIES,
                "HelmRelease": HELM_RELEASES,
            }.get(kind) or kinds[kind]
        cache.upsert(table, obj)
    return cache


def app_body(
    cache: Cache, app: str = "web", *, now: datetime = NOW, env: str = ENV
) -> dict[str, Any]:
    """The API's JSON of one app of the environment."""
    record = cache.environment(env)
    assert record is not None
    body = environment_json(cache, record, namespace=NS, now=now)
    return next(a for a in body["apps"] if a["name"] == app)


def diagnosis(cache: Cache, app: str = "web", *, now: datetime = NOW) -> dict[str, Any]:
    found = app_body(cache, app, now=now)["diagnosis"]
    assert found is not None, "the app is Ready"
    result: dict[str, Any] = found
    return result
