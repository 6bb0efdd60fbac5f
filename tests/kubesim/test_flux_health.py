"""Kustomization health checks that depend on what the Kustomization applies: a HelmRelease is
judged by kstatus, as kustomize-controller judges it with `wait: true` or `healthChecks`."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.flux.health import kstatus
from kubesim.flux.helmactions import Failure
from tests.helpers import eventually
from tests.kubesim.test_flux_helm import CHARTS_URL, chart, helm_release, helm_repository
from tests.kubesim.test_flux_kustomize import (
    GIT_URL,
    KUSTOMIZATIONS,
    condition,
    git_repository,
    kustomization,
)

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}


def kustomization_state(cluster: SimCluster) -> dict[str, Any] | None:
    return cluster.store.get(KUSTOMIZATIONS, "flux-system", "web")


async def deploy(cluster: SimCluster, **spec: Any) -> None:
    cluster.flux.charts.add_chart(CHARTS_URL, chart())
    cluster.apply_object(helm_repository())
    cluster.flux.git.add_repository(
        GIT_URL, paths={"./apps/web": [NAMESPACE, helm_release(install={"timeout": "1m"})]}
    )
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization(**spec))


async def test_wait_passes_once_the_helm_release_is_ready(cluster: SimCluster) -> None:
    await deploy(cluster, wait=True)
    obj = await eventually(
        lambda: (k := kustomization_state(cluster)) and condition(k).get("status") == "True" and k,
        message="Kustomization Ready",
    )
    release = cluster.store.get(("helm.toolkit.fluxcd.io", "helmreleases"), "apps", "web")
    assert condition(release)["status"] == "True", "Ready only after the HelmRelease is"
    assert condition(obj, "Healthy")["message"].startswith("Health check passed in ")
    assert {"id": "apps_web_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"} in obj["status"][
        "inventory"
    ]["entries"]


async def test_a_stalled_helm_release_fails_the_health_check_early(cluster: SimCluster) -> None:
    cluster.flux.helm.failures.set(Failure("web"))
    await deploy(cluster, wait=True, retryInterval="1h")
    obj = await eventually(
        lambda: (
            (k := kustomization_state(cluster))
            and condition(k).get("reason") == "HealthCheckFailed"
            and k
        ),
        message="health check failed",
    )
    stalled = "failed early due to stalled resources: [HelmRelease/apps/web status: 'Failed']"
    assert condition(obj, "Healthy")["message"] == stalled
    ready = condition(obj)["message"]
    assert ready.startswith("health check failed after ") and ready.endswith(f"s: {stalled}")
    assert condition(obj, "Reconciling")["reason"] == "ProgressingWithRetry"
    assert obj["status"]["history"][0]["lastReconciledStatus"] == "HealthCheckFailed"


async def test_health_checks_name_objects_and_time_out(cluster: SimCluster) -> None:
    await deploy(
        cluster,
        timeout="1s",
        healthChecks=[
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "name": "other",
                "namespace": "apps",
            }
        ],
    )
    obj = await eventually(
        lambda: (
            (k := kustomization_state(cluster))
            and condition(k).get("reason") == "HealthCheckFailed"
            and k
        ),
        within=10,
        message="health check timed out",
    )
    assert condition(obj, "Healthy")["message"] == (
        "timeout waiting for: [HelmRelease/apps/other status: 'NotFound']"
    )


def test_kstatus_of_flux_objects() -> None:
    def obj(*conditions: tuple[str, str], generation: int = 2, observed: int = 2) -> Any:
        return {
            "metadata": {"generation": generation},
            "status": {
                "observedGeneration": observed,
                "conditions": [{"type": t, "status": s} for t, s in conditions],
            },
        }

    assert kstatus(obj(("Ready", "True"))) == "Current"
    assert kstatus(obj(("Ready", "True"), observed=1)) == "InProgress"
    assert kstatus(obj(("Reconciling", "True"), ("Ready", "Unknown"))) == "InProgress"
    assert kstatus(obj(("Stalled", "True"), ("Ready", "False"))) == "Failed"
    assert kstatus(obj(("Ready", "False"))) == "InProgress", "not stalled: may still recover"
    assert kstatus(obj()) == "Current"
    assert kstatus(None) == "NotFound"
    assert kstatus({"metadata": {"deletionTimestamp": "x"}}) == "Terminating"
