"""source-controller and controller-runtime behaviour that Kollie's diagnosis depends on: a
GitRepository with a missing `secretRef` Secret, and finalizers handled on first sight."""

from __future__ import annotations

import base64

from kubesim import SimCluster
from tests.helpers import eventually
from tests.kubesim.test_flux_kustomize import (
    GIT_URL,
    KUSTOMIZATIONS,
    SOURCES,
    condition,
    flux,
    git_repository,
    kustomization,
    settled,
)

SECRETS = ("", "secrets")


async def test_missing_secret_ref_fails_authentication_not_the_clone(cluster: SimCluster) -> None:
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": []})
    repo = git_repository()
    repo["spec"]["secretRef"] = {"name": "git-credentials"}
    cluster.apply_object(repo)
    obj = await settled(cluster, SOURCES, "platform", ready="False")
    prefix = "failed to get secret 'flux-system/git-credentials': "
    message = f'{prefix}{prefix}secrets "git-credentials" not found'
    assert (condition(obj)["reason"], condition(obj)["message"]) == (
        "AuthenticationFailed",
        message,
    )
    fetch = condition(obj, "FetchFailed")
    assert (fetch["status"], fetch["reason"], fetch["message"]) == (
        "True",
        "AuthenticationFailed",
        message,
    )
    assert condition(obj, "Reconciling")["reason"] == "ProgressingWithRetry"
    assert obj["status"]["observedGeneration"] == -1 and "artifact" not in obj["status"]

    cluster.apply_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "git-credentials", "namespace": "flux-system"},
            "data": {"username": base64.b64encode(b"git").decode()},
        }
    )
    obj = await settled(cluster, SOURCES, "platform", ready="True")
    assert not condition(obj, "FetchFailed"), "the retry finds the Secret and clones"


async def test_finalizers_come_and_go_at_once_whatever_the_delay(cluster: SimCluster) -> None:
    flux(cluster).reconcile_delay = 60
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": []})
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization())

    def finalized() -> bool:
        return all(
            (cluster.store.get(gr, "flux-system", name) or {"metadata": {}})["metadata"].get(
                "finalizers"
            )
            == ["finalizers.fluxcd.io"]
            for gr, name in ((SOURCES, "platform"), (KUSTOMIZATIONS, "web"))
        )

    await eventually(finalized, message="both finalizers added on first sight")
    source = cluster.store.get(SOURCES, "flux-system", "platform")
    assert condition(source, "Reconciling")["status"] == "True"
    assert "artifact" not in (source or {})["status"], "the work itself is still delayed"

    for gr, name in ((KUSTOMIZATIONS, "web"), (SOURCES, "platform")):
        rt = cluster.catalog.get(gr)
        assert rt is not None
        cluster.api.delete(rt, "flux-system", name)
    await eventually(
        lambda: (
            cluster.store.get(SOURCES, "flux-system", "platform") is None
            and cluster.store.get(KUSTOMIZATIONS, "flux-system", "web") is None
        ),
        message="the finalizers released at once on deletion",
    )
