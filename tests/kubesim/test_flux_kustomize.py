"""The simulated source- and kustomize-controllers in a running emulated cluster: GitRepository
artifacts, and Kustomizations that build, substitute, apply, prune and finalize."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.flux import FluxSimulation
from tests.helpers import eventually

GIT_URL = "https://git.example.com/acme/platform"
SOURCES = ("source.toolkit.fluxcd.io", "gitrepositories")
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io", "kustomizations")
CONFIGMAPS = ("", "configmaps")
APP = """
apiVersion: v1
kind: Namespace
metadata:
  name: ${environment}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: ${environment}
data:
  image: "registry.example.com/acme/web:${image_tag}"
  zone: "${zone:=example.com}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${environment}
spec:
  replicas: ${replicas:=1}
"""
SUBS = {"environment": "pr-1", "image_tag": "main-abc1234-1"}


def flux(cluster: SimCluster) -> FluxSimulation:
    sim = cluster.controllers[0]
    assert isinstance(sim, FluxSimulation)
    return sim


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def git_repository(branch: str = "main", url: str = GIT_URL) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "platform", "namespace": "flux-system"},
        "spec": {"url": url, "interval": "5m", "ref": {"branch": branch}},
    }


def kustomization(
    name: str = "web", *, subs: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    spec = {
        "interval": "10m",
        "path": "./apps/web",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "platform"},
        **spec,
    }
    if subs is not None:
        spec["postBuild"] = {"substitute": subs}
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }


def update(cluster: SimCluster, obj: dict[str, Any]) -> dict[str, Any]:
    """Replace an object keeping what the controllers wrote to its metadata (finalizers)."""
    live = cluster.store.get(
        KUSTOMIZATIONS if obj["kind"] == "Kustomization" else SOURCES,
        obj["metadata"]["namespace"],
        obj["metadata"]["name"],
    ) or {"metadata": {}}
    meta = {**obj["metadata"], "finalizers": live["metadata"].get("finalizers", [])}
    return cluster.apply_object({**obj, "metadata": meta})


async def settled(
    cluster: SimCluster, gr: tuple[str, str], name: str, *, ready: str | None = None
) -> dict[str, Any]:
    """The object once its Ready condition is about its current generation (with `ready` status)."""

    def check() -> dict[str, Any] | None:
        obj = cluster.store.get(gr, "flux-system", name)
        c = condition(obj)
        if (
            not obj
            or c.get("status") in (None, "Unknown")
            or c.get("observedGeneration") != obj["metadata"]["generation"]
        ):
            return None
        return obj if ready is None or c["status"] == ready else None

    found: dict[str, Any] = await eventually(check, message=f"{gr[1]} {name} settled")
    return found


async def test_git_repository_artifact_and_checkout_failures(cluster: SimCluster) -> None:
    cluster.apply_object(git_repository())
    obj = await settled(cluster, SOURCES, "platform", ready="False")
    message = (
        f"failed to checkout and determine revision: unable to clone '{GIT_URL}': "
        "repository not found"
    )
    assert (condition(obj)["reason"], condition(obj)["message"]) == ("GitOperationFailed", message)
    assert condition(obj, "FetchFailed") == {
        **condition(obj, "FetchFailed"),
        "status": "True",
        "message": message,
    }
    assert obj["status"]["observedGeneration"] == -1 and "artifact" not in obj["status"]

    sha = flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP}).branches["main"]
    obj = await settled(cluster, SOURCES, "platform", ready="True")
    revision = f"main@sha1:{sha}"
    assert condition(obj)["message"] == f"stored artifact for revision '{revision}'"
    assert condition(obj, "ArtifactInStorage")["reason"] == "Succeeded"
    assert not condition(obj, "FetchFailed") and not condition(obj, "Reconciling")
    artifact = obj["status"]["artifact"]
    assert artifact["revision"] == revision and artifact["digest"].startswith("sha256:")
    assert artifact["path"] == f"gitrepository/flux-system/platform/{sha}.tar.gz"
    assert artifact["url"].endswith(artifact["path"]) and artifact["size"] > 0
    assert obj["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]

    new_sha = flux(cluster).git.push(GIT_URL, "main", paths={"./apps/api": []})
    await eventually(
        lambda: (
            (cluster.store.get(SOURCES, "flux-system", "platform") or {})["status"]["artifact"][
                "revision"
            ]
            == f"main@sha1:{new_sha}"
        ),
        message="a push is picked up",
    )

    update(cluster, git_repository(branch="nope"))
    obj = await settled(cluster, SOURCES, "platform", ready="False")
    assert condition(obj)["message"].endswith('couldn\'t find remote ref "refs/heads/nope"')
    assert obj["status"]["observedGeneration"] == 1, (
        "the failing generation 2 is not marked observed"
    )
    assert condition(obj, "ArtifactInStorage")["status"] == "True", (
        "the previous artifact is still served"
    )
    assert condition(obj, "Reconciling")["reason"] == "ProgressingWithRetry"


async def test_kustomization_waits_for_its_source_then_applies(cluster: SimCluster) -> None:
    cluster.apply_object(kustomization(subs=SUBS))
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="False")
    assert (condition(obj)["reason"], condition(obj)["message"]) == (
        "ArtifactFailed",
        'gitrepositories.source.toolkit.fluxcd.io "platform" not found',
    )
    assert obj["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]

    sha = flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP}).branches["main"]
    cluster.apply_object(git_repository())
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    revision = f"main@sha1:{sha}"
    assert (condition(obj)["reason"], condition(obj)["message"]) == (
        "ReconciliationSucceeded",
        f"Applied revision: {revision}",
    )
    status = obj["status"]
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == revision
    assert status["observedGeneration"] == 1
    assert status["inventory"]["entries"] == [
        {"id": "_pr-1__Namespace", "v": "v1"},
        {"id": "pr-1_web__ConfigMap", "v": "v1"},
        {"id": "pr-1_web_apps_Deployment", "v": "v1"},
    ]
    assert status["history"][0]["lastReconciledStatus"] == "ReconciliationSucceeded"
    assert status["history"][0]["metadata"] == {"revision": revision}
    cm = cluster.store.get(CONFIGMAPS, "pr-1", "web")
    assert cm is not None
    assert cm["data"] == {
        "image": "registry.example.com/acme/web:main-abc1234-1",
        "zone": "example.com",
    }
    assert cm["metadata"]["labels"] == {
        "kustomize.toolkit.fluxcd.io/name": "web",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert cm["metadata"]["managedFields"][0]["manager"] == "kustomize-controller"


async def test_missing_variable_fails_then_recovers(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP})
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization(subs=SUBS))
    await settled(cluster, KUSTOMIZATIONS, "web", ready="True")

    update(cluster, kustomization(subs={"environment": "pr-1"}))
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="False")
    assert condition(obj)["reason"] == "BuildFailed"
    assert condition(obj)["message"] == (
        "post build failed for '~G_v1_ConfigMap/web': envsubst error: variable "
        'substitution failed: variable not set (strict mode): "image_tag"'
    )
    assert obj["metadata"]["generation"] == 2 and obj["status"]["observedGeneration"] == 1
    assert condition(obj, "Reconciling")["reason"] == "ProgressingWithRetry"

    update(cluster, kustomization(subs={**SUBS, "image_tag": "main-def5678-2"}))
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    assert obj["status"]["observedGeneration"] == 3 and not condition(obj, "Reconciling")
    cm = cluster.store.get(CONFIGMAPS, "pr-1", "web")
    assert cm is not None and cm["data"]["image"].endswith(":main-def5678-2")


async def test_new_revision_is_applied_and_leftovers_pruned(cluster: SimCluster) -> None:
    git = flux(cluster).git
    git.add_repository(
        GIT_URL,
        paths={
            "./apps/web": APP,
            "./apps/web/extra": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "extra", "namespace": "${environment}"},
                }
            ],
        },
    )
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization(subs=SUBS))
    cluster.apply_object(kustomization("keep", subs={**SUBS, "environment": "pr-2"}, prune=False))
    await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    await settled(cluster, KUSTOMIZATIONS, "keep", ready="True")
    assert cluster.store.get(CONFIGMAPS, "pr-1", "extra") is not None

    sha = git.push(GIT_URL, "main", paths={"./apps/web/extra": None})

    def applied(name: str) -> Any:
        obj = cluster.store.get(KUSTOMIZATIONS, "flux-system", name) or {}
        return obj.get("status", {}).get("lastAppliedRevision") == f"main@sha1:{sha}"

    await eventually(lambda: applied("web") and applied("keep"), message="the new revision applied")
    assert cluster.store.get(CONFIGMAPS, "pr-1", "extra") is None, "pruned"
    assert cluster.store.get(CONFIGMAPS, "pr-2", "extra") is not None, "prune: false keeps it"
    assert cluster.store.get(CONFIGMAPS, "pr-1", "web") is not None


async def test_depends_on_and_suspend(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP, "./apps/db": []})
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization("db", path="./apps/db", suspend=True))
    cluster.apply_object(kustomization("web", subs=SUBS, dependsOn=[{"name": "db"}]))
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="False")
    assert (condition(obj)["reason"], condition(obj)["message"]) == (
        "DependencyNotReady",
        "dependency 'flux-system/db' is not ready",
    )
    db = cluster.store.get(KUSTOMIZATIONS, "flux-system", "db")
    assert db is not None and db["status"] == {"observedGeneration": -1}, (
        "a suspended Kustomization is left alone"
    )

    update(
        cluster,
        {
            **kustomization("db", path="./apps/db", suspend=True),
            "metadata": {
                "name": "db",
                "namespace": "flux-system",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "now"},
            },
        },
    )
    await eventually(
        lambda: (
            (cluster.store.get(KUSTOMIZATIONS, "flux-system", "db") or {})["status"].get(
                "lastHandledReconcileAt"
            )
            == "now"
        ),
        message="request acknowledged while suspended",
    )
    assert "conditions" not in cluster.store.get(KUSTOMIZATIONS, "flux-system", "db")["status"]  # type: ignore[index]

    update(cluster, kustomization("db", path="./apps/db"))
    await settled(cluster, KUSTOMIZATIONS, "db", ready="True")
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    assert obj["status"]["observedGeneration"] == 1


async def test_deletion_prunes_then_releases_the_finalizer(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP})
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization(subs=SUBS))
    cluster.apply_object(
        kustomization("orphaning", subs={**SUBS, "environment": "pr-2"}, prune=False)
    )
    await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    await settled(cluster, KUSTOMIZATIONS, "orphaning", ready="True")
    rt = cluster.catalog.get(KUSTOMIZATIONS)
    assert rt is not None
    for name in ("web", "orphaning"):
        _, gone = cluster.api.delete(rt, "flux-system", name)
        assert not gone
    await eventually(
        lambda: not list(cluster.store.iter(KUSTOMIZATIONS)), message="Kustomizations finalized"
    )
    assert cluster.store.get(CONFIGMAPS, "pr-1", "web") is None
    ns = cluster.store.get(("", "namespaces"), "", "pr-1")
    assert ns is None or ns["metadata"].get("deletionTimestamp"), "its Namespace is deleted too"
    assert cluster.store.get(CONFIGMAPS, "pr-2", "web") is not None, (
        "without prune, objects are left in place"
    )


async def test_build_and_apply_failures(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(
        GIT_URL,
        paths={
            "./apps/web": APP,
            "./apps/bare": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bare\n",
            "./apps/odd": "apiVersion: acme.io/v1\nkind: Widget\nmetadata:\n  name: w\n  "
            "namespace: default\n",
        },
    )
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization("nowhere", path="./apps/nowhere"))
    cluster.apply_object(kustomization("bare", path="./apps/bare"))
    cluster.apply_object(kustomization("odd", path="./apps/odd"))
    c = condition(await settled(cluster, KUSTOMIZATIONS, "nowhere", ready="False"))
    assert c["reason"] == "ArtifactFailed" and c["message"].startswith(
        "kustomization path not found: stat /tmp/"
    )
    c = condition(await settled(cluster, KUSTOMIZATIONS, "bare", ready="False"))
    assert (c["reason"], c["message"]) == (
        "ReconciliationFailed",
        "ConfigMap/bare namespace not specified: the server could not find the requested resource",
    )
    c = condition(await settled(cluster, KUSTOMIZATIONS, "odd", ready="False"))
    assert (
        c["message"]
        == 'Widget/default/w dry-run failed: no matches for kind "Widget" in version "acme.io/v1"'
    )

    update(cluster, kustomization("bare", path="./apps/bare", targetNamespace="default"))
    await settled(cluster, KUSTOMIZATIONS, "bare", ready="True")
    assert cluster.store.get(CONFIGMAPS, "default", "bare") is not None


async def test_injected_health_check_failure(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP})
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization(subs=SUBS, wait=True))
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    assert condition(obj, "Healthy")["status"] == "True"
    message = "timeout waiting for: [Deployment/pr-1/web status: 'InProgress']"
    flux(cluster).fail("flux-system", "web", message)

    def failing() -> bool:
        return (
            condition(cluster.store.get(KUSTOMIZATIONS, "flux-system", "web")).get("reason")
            == "HealthCheckFailed"
        )

    await eventually(failing, message="health check fails")
    failed = cluster.store.get(KUSTOMIZATIONS, "flux-system", "web")
    assert (
        condition(failed)["message"] == message
        and condition(failed, "Healthy")["status"] == "False"
    )
    flux(cluster).fail("flux-system", "web", None)
    await eventually(
        lambda: (
            condition(cluster.store.get(KUSTOMIZATIONS, "flux-system", "web"))["status"] == "True"
        ),
        message="recovered",
    )


async def test_dependants_are_indexed_as_depends_on_changes(cluster: SimCluster) -> None:
    """Who waits for whom is kept from the Kustomizations' changes, so a dependency's status
    write finds its dependants without reading every Kustomization."""
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": APP})
    cluster.apply_object(git_repository())
    kustomizations = flux(cluster).kustomizations
    db = cluster.apply_object(kustomization("db", suspend=True))
    cluster.apply_object(kustomization("web", suspend=True, dependsOn=[{"name": "db"}]))
    cluster.apply_object(
        kustomization("api", suspend=True, dependsOn=[{"name": "db", "namespace": "flux-system"}])
    )
    cluster.apply_object(
        kustomization("elsewhere", suspend=True, dependsOn=[{"name": "db", "namespace": "other"}])
    )
    assert kustomizations.dependents_of(db) == [("flux-system", "api"), ("flux-system", "web")]

    update(cluster, kustomization("web", suspend=True))
    assert kustomizations.dependents_of(db) == [("flux-system", "api")]
    rt = cluster.catalog.get(KUSTOMIZATIONS)
    assert rt is not None
    cluster.api.delete(rt, "flux-system", "api")
    await eventually(
        lambda: cluster.store.get(KUSTOMIZATIONS, "flux-system", "api") is None,
        message="api finalized",
    )
    assert kustomizations.dependents_of(db) == []
