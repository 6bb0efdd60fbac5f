"""The simulated helm-controller and the Helm side of source-controller: HelmReleases from a
HelmRepository (through the HelmChart the controller keeps) or an OCI chart, installed,
upgraded, failing and remediated with helm-controller's conditions, reasons and messages."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.flux import Chart
from kubesim.flux.helmactions import Failure
from tests.helpers import eventually

CHARTS_URL = "https://charts.example.com/acme"
OCI_URL = "oci://registry.example.com/charts/web"
RELEASES = ("helm.toolkit.fluxcd.io", "helmreleases")
HELM_CHARTS = ("source.toolkit.fluxcd.io", "helmcharts")
HELM_REPOS = ("source.toolkit.fluxcd.io", "helmrepositories")
OCI_REPOS = ("source.toolkit.fluxcd.io", "ocirepositories")
CONFIGMAPS = ("", "configmaps")
TEMPLATES = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  image: "registry.example.com/acme/web:{{ .Values.image.tag | default .Chart.AppVersion }}"
  release: "{{ .Release.Namespace }}/{{ .Release.Name }}.v{{ .Release.Revision }}"
"""


def chart(version: str = "1.0.0", app_version: str = "2.0.0") -> Chart:
    return Chart("web", version, app_version, TEMPLATES, {"image": {"tag": ""}})


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def helm_repository(url: str = CHARTS_URL) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "acme", "namespace": "flux-system"},
        "spec": {"url": url, "interval": "5m"},
    }


def helm_release(
    name: str = "web", namespace: str = "apps", version: str = "1.x", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": "web",
                    "version": version,
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": "acme",
                        "namespace": "flux-system",
                    },
                }
            },
            **spec,
        },
    }


def get(cluster: SimCluster, gr: tuple[str, str], ns: str, name: str) -> dict[str, Any] | None:
    return cluster.store.get(gr, ns, name)


async def settled(
    cluster: SimCluster, name: str = "web", namespace: str = "apps", *, ready: str
) -> dict[str, Any]:
    """The HelmRelease once it reconciled its generation to Ready=`ready` and stopped working."""

    def check() -> dict[str, Any] | None:
        obj = get(cluster, RELEASES, namespace, name)
        c = condition(obj)
        if not obj or c.get("status") != ready or condition(obj, "Reconciling"):
            return None
        if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        return obj

    found: dict[str, Any] = await eventually(check, message=f"HelmRelease {name} Ready={ready}")
    return found


async def setup(cluster: SimCluster, **spec: Any) -> None:
    cluster.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    cluster.flux.charts.add_chart(CHARTS_URL, chart())
    cluster.apply_object(helm_repository())
    cluster.apply_object(helm_release(**spec))


async def test_install_from_a_helm_repository(cluster: SimCluster) -> None:
    await setup(cluster, values={"image": {"tag": "main-abc1234-1"}})
    hr = await settled(cluster, ready="True")
    message = "Helm install succeeded for release apps/web.v1 with chart web@1.0.0"
    for type_ in ("Ready", "Released"):
        assert (condition(hr, type_)["reason"], condition(hr, type_)["message"]) == (
            "InstallSucceeded",
            message,
        )
    status = hr["status"]
    assert status["helmChart"] == "flux-system/apps-web"
    assert status["storageNamespace"] == "apps" and status["lastAttemptedRevision"] == "1.0.0"
    assert status["lastAttemptedReleaseAction"] == "install"
    assert status["lastAttemptedConfigDigest"].startswith("sha256:")
    assert "installFailures" not in status and "failures" not in status
    [snapshot] = status["history"]
    assert {k: snapshot[k] for k in ("name", "namespace", "version", "status")} == {
        "name": "web",
        "namespace": "apps",
        "version": 1,
        "status": "deployed",
    }
    assert (snapshot["chartName"], snapshot["chartVersion"], snapshot["appVersion"]) == (
        "web",
        "1.0.0",
        "2.0.0",
    )
    assert snapshot["configDigest"] == status["lastAttemptedConfigDigest"]
    assert hr["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]

    helm_chart = get(cluster, HELM_CHARTS, "flux-system", "apps-web")
    assert helm_chart is not None
    assert condition(helm_chart)["message"] == "pulled 'web' chart with version '1.0.0'"
    assert condition(helm_chart)["reason"] == "ChartPullSucceeded"
    assert helm_chart["status"]["artifact"]["revision"] == "1.0.0"
    assert helm_chart["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] == "web"
    repo = get(cluster, HELM_REPOS, "flux-system", "acme")
    revision = (repo or {})["status"]["artifact"]["revision"]
    assert condition(repo)["message"] == f"stored artifact: revision '{revision}'"

    cm = get(cluster, CONFIGMAPS, "apps", "web")
    assert cm is not None and cm["data"] == {
        "image": "registry.example.com/acme/web:main-abc1234-1",
        "release": "apps/web.v1",
    }
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert cm["metadata"]["labels"]["helm.toolkit.fluxcd.io/namespace"] == "apps"
    assert cm["metadata"]["annotations"]["meta.helm.sh/release-name"] == "web"

    # A new chart version in the repository is picked up through the HelmChart: an upgrade.
    cluster.flux.charts.add_chart(CHARTS_URL, chart("1.1.0", "2.1.0"))
    hr = await eventually(
        lambda: (
            (h := get(cluster, RELEASES, "apps", "web"))
            and condition(h, "Released").get("reason") == "UpgradeSucceeded"
            and h
        ),
        message="upgraded to the new chart",
    )
    assert condition(hr)["message"] == (
        "Helm upgrade succeeded for release apps/web.v2 with chart web@1.1.0"
    )
    assert [(s["version"], s["status"]) for s in hr["status"]["history"]] == [
        (2, "deployed"),
        (1, "superseded"),
    ]

    rt = cluster.catalog.get(RELEASES)
    assert rt is not None
    cluster.api.delete(rt, "apps", "web")
    await eventually(
        lambda: (
            get(cluster, RELEASES, "apps", "web") is None
            and get(cluster, CONFIGMAPS, "apps", "web") is None
            and get(cluster, HELM_CHARTS, "flux-system", "apps-web") is None
        ),
        message="uninstalled, HelmChart deleted, finalizer released",
    )


async def test_failed_install_without_retries_stalls(cluster: SimCluster) -> None:
    cluster.flux.helm.failures.set(Failure("web"))
    await setup(cluster)
    hr = await settled(cluster, ready="False")
    message = (
        "Helm install failed for release apps/web with chart web@1.0.0: context deadline exceeded"
    )
    assert (condition(hr)["reason"], condition(hr)["message"]) == ("InstallFailed", message)
    assert condition(hr, "Released")["reason"] == "InstallFailed"
    stalled = condition(hr, "Stalled")
    assert (stalled["reason"], stalled["message"]) == (
        "RetriesExceeded",
        "Failed to install after 1 attempt(s)",
    )
    status = hr["status"]
    assert (status["failures"], status["installFailures"]) == (1, 1)
    assert [(s["version"], s["status"]) for s in status["history"]] == [(1, "failed")]

    # Switched off, nothing happens by itself (no retries left); a forced reconcile upgrades.
    cluster.flux.helm.failures.clear("web")
    live = get(cluster, RELEASES, "apps", "web")
    assert live is not None
    annotations = {
        "reconcile.fluxcd.io/requestedAt": "now",
        "reconcile.fluxcd.io/forceAt": "now",
    }
    cluster.apply_object({**live, "metadata": {**live["metadata"], "annotations": annotations}})
    hr = await eventually(
        lambda: (
            (h := get(cluster, RELEASES, "apps", "web"))
            and condition(h).get("status") == "True"
            and h
        ),
        message="forced upgrade succeeds",
    )
    assert condition(hr)["message"] == (
        "Helm upgrade succeeded for release apps/web.v2 with chart web@1.0.0"
    )
    assert not condition(hr, "Stalled")
    assert hr["status"]["lastHandledForceAt"] == "now"


async def test_install_remediation_retries_then_gives_up(cluster: SimCluster) -> None:
    cluster.flux.helm.failures.set(Failure("web", message="timed out waiting for the condition"))
    await setup(cluster, install={"remediation": {"retries": 2}})
    hr = await settled(cluster, ready="False")
    assert condition(hr, "Stalled")["message"] == "Failed to install after 3 attempt(s)"
    assert hr["status"]["installFailures"] == 3
    assert condition(hr)["message"].endswith("web@1.0.0: timed out waiting for the condition")

    # The values change (a new generation): the counters reset and the upgrade succeeds.
    cluster.flux.helm.failures.clear("web")
    live = get(cluster, RELEASES, "apps", "web")
    assert live is not None
    cluster.apply_object({**live, "spec": {**live["spec"], "values": {"image": {"tag": "x"}}}})
    hr = await settled(cluster, ready="True")
    assert condition(hr)["reason"] == "UpgradeSucceeded"
    assert "installFailures" not in hr["status"]


async def test_upgrade_failure_rolls_back_then_stalls(cluster: SimCluster) -> None:
    await setup(cluster, upgrade={"remediation": {"retries": 1}})
    await settled(cluster, ready="True")
    cluster.flux.helm.failures.set(Failure("web", action="upgrade"))
    live = get(cluster, RELEASES, "apps", "web")
    assert live is not None
    cluster.apply_object({**live, "spec": {**live["spec"], "values": {"image": {"tag": "bad"}}}})
    hr = await eventually(
        lambda: (h := get(cluster, RELEASES, "apps", "web")) and condition(h, "Stalled") and h,
        message="remediated and out of retries",
    )
    assert condition(hr, "Stalled")["message"] == "Failed to upgrade after 2 attempt(s)"
    assert (condition(hr)["status"], condition(hr)["reason"], condition(hr)["message"]) == (
        "False",
        "RollbackSucceeded",
        "Helm rollback to previous release apps/web.v3 with chart web@1.0.0 succeeded",
    ), "the second rollback goes back to v3, the first rollback's release"
    assert condition(hr, "Released")["message"] == (
        "Helm upgrade failed for release apps/web with chart web@1.0.0: context deadline exceeded"
    )
    assert hr["status"]["upgradeFailures"] == 2
    cm = get(cluster, CONFIGMAPS, "apps", "web")
    assert cm is not None and cm["data"]["image"].endswith(":2.0.0"), "rolled back to v1's values"


async def test_oci_chart_ref(cluster: SimCluster) -> None:
    cluster.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    push = cluster.flux.charts.push_oci(OCI_URL, chart())
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"url": OCI_URL, "interval": "5m", "ref": {"semver": "1.x"}},
        }
    )
    release = helm_release()
    del release["spec"]["chart"]
    release["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "web"}
    cluster.apply_object(release)
    hr = await settled(cluster, ready="True")
    short = push.digest.split(":")[1][:12]
    assert condition(hr)["message"] == (
        f"Helm install succeeded for release apps/web.v1 with chart web@1.0.0+{short}"
    )
    assert hr["status"]["lastAttemptedRevisionDigest"] == push.digest
    assert hr["status"]["history"][0]["ociDigest"] == push.digest
    assert "helmChart" not in hr["status"]
    oci = get(cluster, OCI_REPOS, "apps", "web")
    assert condition(oci)["message"] == f"stored artifact for digest '1.0.0@{push.digest}'"


async def test_source_failures_reach_the_release(cluster: SimCluster) -> None:
    cluster.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    release = helm_release(name="oci")
    del release["spec"]["chart"]
    release["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "missing"}
    cluster.apply_object(release)
    cluster.apply_object(helm_repository())
    cluster.apply_object(helm_release(version="9.x"))

    def ready(name: str, reason: str) -> dict[str, Any] | None:
        obj = get(cluster, RELEASES, "apps", name)
        return obj if condition(obj).get("reason") == reason else None

    oci = await eventually(lambda: ready("oci", "ArtifactFailed"), message="ArtifactFailed")
    assert condition(oci)["message"] == (
        'could not get Source object: ocirepositories.source.toolkit.fluxcd.io "missing" not found'
    )
    repo = await eventually(
        lambda: condition(get(cluster, HELM_REPOS, "flux-system", "acme")).get("reason"),
        message="repository fails",
    )
    assert repo == "Failed"
    assert condition(get(cluster, HELM_REPOS, "flux-system", "acme"))["message"] == (
        "failed to fetch Helm repository index: failed to cache index to temporary file: "
        f"failed to fetch {CHARTS_URL}/index.yaml : 404 Not Found"
    )

    cluster.flux.charts.add_chart(CHARTS_URL, chart())
    web = await eventually(lambda: ready("web", "SourceNotReady"), message="chart missing")
    expected = (
        "invalid chart reference: failed to get chart version for remote reference: "
        "no 'web' chart with version matching '9.x' found"
    )
    await eventually(
        lambda: (
            condition(get(cluster, RELEASES, "apps", "web")).get("message")
            == f"HelmChart 'flux-system/apps-web' is not ready: {expected}"
        ),
        message=f"the chart's failure named: {condition(web)}",
    )
    helm_chart = get(cluster, HELM_CHARTS, "flux-system", "apps-web")
    assert condition(helm_chart, "Stalled")["reason"] == "InvalidChartReference"
    assert condition(helm_chart, "FetchFailed")["message"] == expected


async def test_forced_upgrade_is_forced_once(cluster: SimCluster) -> None:
    await setup(cluster)
    await settled(cluster, ready="True")
    cluster.flux.helm.failures.set(Failure("web", action="upgrade"))
    live = get(cluster, RELEASES, "apps", "web")
    assert live is not None
    annotations = {"reconcile.fluxcd.io/requestedAt": "1", "reconcile.fluxcd.io/forceAt": "1"}
    cluster.apply_object({**live, "metadata": {**live["metadata"], "annotations": annotations}})
    hr = await eventually(
        lambda: (h := get(cluster, RELEASES, "apps", "web")) and condition(h, "Stalled") and h,
        message="the forced upgrade fails and, with no retries, stalls",
    )
    assert condition(hr)["reason"] == "UpgradeFailed"
    assert condition(hr, "Stalled")["message"] == "Failed to upgrade after 1 attempt(s)"
    assert hr["status"]["upgradeFailures"] == 1, "one forced attempt, not two"
    assert hr["status"]["lastHandledForceAt"] == "1"
