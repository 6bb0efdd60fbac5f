"""The simulated Flux controllers write the status the real ones write."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.flux import FluxSimulation
from tests.helpers import eventually

REGISTRY_IMAGE = "registry.example.com/acme/web"
GIT_URL = "https://git.example.com/acme/platform"
IMAGE_GR = ("image.toolkit.fluxcd.io", "imagepolicies")
REPO_GR = ("image.toolkit.fluxcd.io", "imagerepositories")
KS_GR = ("kustomize.toolkit.fluxcd.io", "kustomizations")
GIT_GR = ("source.toolkit.fluxcd.io", "gitrepositories")


def flux(cluster: SimCluster) -> FluxSimulation:
    sim = cluster.controllers[0]
    assert isinstance(sim, FluxSimulation)
    return sim


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


def image_repository(name: str = "web", namespace: str = "flux-system", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"image": REGISTRY_IMAGE, "interval": "5m", **spec}}


def image_policy(name: str, prefix: str, namespace: str = "flux-system", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"imageRepositoryRef": {"name": "web", "namespace": "flux-system"},
                     "filterTags": {"pattern": f"^{prefix}-(?P<sha>[0-9a-f]{{7,40}})-(?P<ts>[0-9]+)$", "extract": "$ts"},
                     "policy": {"numerical": {"order": "asc"}}, **spec}}


def ready_policy(cluster: SimCluster, name: str, namespace: str = "flux-system") -> Any:
    def check() -> dict[str, Any] | None:
        obj = cluster.store.get(IMAGE_GR, namespace, name)
        c = condition(obj)
        return obj if c and c["status"] != "Unknown" and obj and obj["status"].get("observedGeneration") == obj["metadata"]["generation"] else None
    return eventually(check, message=f"ImagePolicy {name} reconciled")


async def test_image_policy_picks_newest_numerically(cluster: SimCluster) -> None:
    registry = flux(cluster).registry
    for tag in ("feature-x-abc1234-1700000000", "feature-x-abc1235-999999999", "feature-x-def5678-10000000000",
                "feature-x-y-fff0000-20000000000", "main-0000000-30000000000", "feature-x-latest"):
        registry.push(REGISTRY_IMAGE, tag)
    cluster.apply_object(image_repository())
    cluster.apply_object(image_policy("pr", "feature-x", digestReflectionPolicy="IfNotPresent"))
    obj = await ready_policy(cluster, "pr")
    assert condition(obj)["status"] == "True", condition(obj)
    latest = obj["status"]["latestRef"]
    assert latest["tag"] == "feature-x-def5678-10000000000"
    assert latest["name"] == REGISTRY_IMAGE and latest["digest"].startswith("sha256:")
    assert condition(obj)["reason"] == "Succeeded"


async def test_no_matching_tag_is_a_clear_failure(cluster: SimCluster) -> None:
    flux(cluster).registry.push(REGISTRY_IMAGE, "main-abc1234-1")
    cluster.apply_object(image_repository())
    cluster.apply_object(image_policy("none", "nobody"))
    obj = await ready_policy(cluster, "none")
    c = condition(obj)
    assert c["status"] == "False" and c["reason"] == "ReconciliationFailed"
    assert "unable to determine latest version" in c["message"]
    assert "latestRef" not in obj["status"]


async def test_cross_namespace_needs_access_from(cluster: SimCluster) -> None:
    flux(cluster).registry.push(REGISTRY_IMAGE, "main-abc1234-1")
    ns_type = cluster.catalog.get(("", "namespaces"))
    assert ns_type is not None
    cluster.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kollie", "labels": {"team": "qa"}}})
    cluster.apply_object(image_repository())
    cluster.apply_object(image_policy("denied", "main", namespace="kollie"))
    c = condition(await ready_policy(cluster, "denied", "kollie"))
    assert c["status"] == "False" and c["reason"] == "AccessDenied"
    cluster.apply_object(image_repository(accessFrom={"namespaceSelectors": [{"matchLabels": {"team": "qa"}}]}))
    cluster.apply_object(image_policy("denied", "main", namespace="kollie", digestReflectionPolicy="IfNotPresent"))
    obj = await ready_policy(cluster, "denied", "kollie")
    assert condition(obj)["status"] == "True" and obj["status"]["latestRef"]["tag"] == "main-abc1234-1"


async def test_requested_at_rescans_and_is_acknowledged(cluster: SimCluster) -> None:
    registry = flux(cluster).registry
    registry.push(REGISTRY_IMAGE, "main-abc1234-1")
    cluster.apply_object(image_repository())
    cluster.apply_object(image_policy("main", "main"))
    await eventually(lambda: ((cluster.store.get(IMAGE_GR, "flux-system", "main") or {}).get("status") or {}).get("latestRef"))
    registry.push(REGISTRY_IMAGE, "main-abc1235-2")
    repo = cluster.store.get(REPO_GR, "flux-system", "web")
    assert repo is not None and repo["status"]["lastScanResult"]["tagCount"] == 1, "a push alone is not seen before a scan"
    cluster.apply_object({**image_repository(), "metadata": {"name": "web", "namespace": "flux-system",
                          "annotations": {"reconcile.fluxcd.io/requestedAt": "2026-11-24T10:00:00Z"}}})

    def rescanned() -> bool:
        repo = cluster.store.get(REPO_GR, "flux-system", "web") or {}
        return (repo.get("status") or {}).get("lastHandledReconcileAt") == "2026-11-24T10:00:00Z"

    await eventually(rescanned, message="rescan acknowledged")
    await eventually(lambda: ((cluster.store.get(IMAGE_GR, "flux-system", "main") or {}).get("status") or {})
                     .get("latestRef", {}).get("tag") == "main-abc1235-2", message="policy follows the new tag")


def kustomization(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {"interval": "10m", "path": "./apps/web", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "platform"}, **spec}}


GIT_REPOSITORY = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                  "metadata": {"name": "platform", "namespace": "flux-system"},
                  "spec": {"url": GIT_URL, "interval": "5m", "ref": {"branch": "main"}}}

MANIFESTS = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-${environment}
data:
  image: "registry.example.com/acme/web:${image_tag}"
  zone: "${zone:=example.com}"
"""


def ks_ready(cluster: SimCluster, name: str) -> Any:
    def check() -> dict[str, Any] | None:
        obj = cluster.store.get(KS_GR, "flux-system", name)
        c = condition(obj)
        if obj and c and c["status"] != "Unknown" and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]:
            return obj
        return None
    return eventually(check, message=f"Kustomization {name} reconciled")


async def test_kustomization_lifecycle(cluster: SimCluster) -> None:
    subs = {"environment": "pr-1", "image_tag": "main-abc1234-1"}
    cluster.apply_object(kustomization("web", postBuild={"substitute": subs}))
    obj = await ks_ready(cluster, "web")
    c = condition(obj)
    assert (c["status"], c["reason"]) == ("False", "ArtifactFailed")
    assert c["message"] == "Source 'GitRepository/flux-system/platform' not found"

    sha = flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": MANIFESTS}).branches["main"]
    cluster.apply_object(GIT_REPOSITORY)

    def applied() -> dict[str, Any] | None:
        obj = cluster.store.get(KS_GR, "flux-system", "web")
        return obj if condition(obj) and condition(obj)["status"] == "True" else None

    obj = await eventually(applied, message="Kustomization applied")
    assert obj["status"]["lastAppliedRevision"] == f"main@sha1:{sha}"
    assert condition(obj)["message"] == f"Applied revision: main@sha1:{sha}"
    assert obj["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]
    cm = cluster.store.get(("", "configmaps"), "flux-system", "web-pr-1")
    assert cm is not None and cm["data"] == {"image": f"{REGISTRY_IMAGE}:main-abc1234-1", "zone": "example.com"}
    assert cm["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "web"
    assert obj["status"]["inventory"]["entries"] == [{"id": "flux-system_web-pr-1__ConfigMap", "v": "v1"}]

    # A missing variable fails the build (strict substitution) ...
    cluster.apply_object(kustomization("web", postBuild={"substitute": {"environment": "pr-1"}}))
    obj = await ks_ready(cluster, "web")
    c = condition(obj)
    assert (c["status"], c["reason"]) == ("False", "BuildFailed")
    assert 'variable not set (strict mode): "image_tag"' in c["message"]
    # ... and recovers when it is given.
    cluster.apply_object(kustomization("web", postBuild={"substitute": subs}))
    obj = await ks_ready(cluster, "web")
    assert condition(obj)["status"] == "True"

    # Deleting it prunes what it applied, then releases its finalizer.
    rt = cluster.catalog.get(KS_GR)
    assert rt is not None
    cluster.api.delete(rt, "flux-system", "web")
    await eventually(lambda: cluster.store.get(KS_GR, "flux-system", "web") is None, message="Kustomization gone")
    assert cluster.store.get(("", "configmaps"), "flux-system", "web-pr-1") is None


async def test_depends_on_and_suspend(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": MANIFESTS, "./apps/db": []})
    cluster.apply_object(GIT_REPOSITORY)
    subs = {"postBuild": {"substitute": {"environment": "e", "image_tag": "t"}}}
    cluster.apply_object(kustomization("db", path="./apps/db", suspend=True))
    cluster.apply_object(kustomization("web", dependsOn=[{"name": "db"}], **subs))
    obj = await ks_ready(cluster, "web")
    c = condition(obj)
    assert (c["status"], c["reason"], c["message"]) == ("False", "DependencyNotReady", "dependency 'flux-system/db' is not ready")
    db = cluster.store.get(KS_GR, "flux-system", "db") or {}
    # The CRD defaults status to {observedGeneration: -1}; a suspended object gets nothing more.
    assert db.get("status") == {"observedGeneration": -1}, "a suspended Kustomization is left alone"
    cluster.apply_object(kustomization("db", path="./apps/db", suspend=False))

    def web_ready() -> bool:
        c = condition(cluster.store.get(KS_GR, "flux-system", "web"))
        return bool(c and c["status"] == "True")

    await eventually(web_ready, message="dependant becomes Ready after its dependency")


async def test_missing_path_and_injected_failure(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={})
    cluster.apply_object(GIT_REPOSITORY)
    cluster.apply_object(kustomization("web", path="./nowhere"))
    c = condition(await ks_ready(cluster, "web"))
    assert (c["status"], c["reason"]) == ("False", "BuildFailed") and "kustomization path not found" in c["message"]
