"""The failure switches under `/sim/`, over HTTP: registry credentials refused, a git branch
deleted, a chart that fails to install; each produces the real controller's failure, and each
can be switched off again and the objects recover."""

from __future__ import annotations

import base64
from typing import Any

from kubesim import SimCluster
from tests.helpers import eventually
from tests.kubesim.test_flux_admin import call
from tests.kubesim.test_flux_helm import CHARTS_URL, OCI_URL, RELEASES, TEMPLATES, helm_release
from tests.kubesim.test_flux_kustomize import GIT_URL, SOURCES, condition, git_repository

IMAGE = "registry.example.com/acme/web"
REPOS = ("image.toolkit.fluxcd.io", "imagerepositories")
POLICIES = ("image.toolkit.fluxcd.io", "imagepolicies")
UNAUTHORIZED = (
    "UNAUTHORIZED: authentication required; [map[Action:pull Class: Name:acme/web Type:repository]]"
)


def image_repository(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": "web", "namespace": "flux-system"},
        "spec": {"image": IMAGE, "interval": "1s", **spec},
    }


def ready(cluster: SimCluster, gr: tuple[str, str], name: str = "web") -> dict[str, Any]:
    return condition(cluster.store.get(gr, "flux-system", name))


async def test_registry_credentials_refused_then_accepted(cluster: SimCluster) -> None:
    cluster.flux.registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(image_repository())
    await eventually(lambda: ready(cluster, REPOS).get("status") == "True", message="scanned")
    cluster.apply_object(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "web", "namespace": "flux-system"},
            "spec": {
                "imageRepositoryRef": {"name": "web"},
                "policy": {"alphabetical": {"order": "asc"}},
                "digestReflectionPolicy": "Always",
                "interval": "1s",
            },
        }
    )
    await eventually(lambda: ready(cluster, POLICIES).get("status") == "True", message="policy")

    status, body = await call(
        cluster, "PUT", "/sim/registry/credentials", {"image": IMAGE, "refused": True}
    )
    assert status == 200 and body == {"refused": [IMAGE]}
    await eventually(
        lambda: ready(cluster, REPOS).get("reason") == "ReadOperationFailed",
        message="the next scan is refused",
    )
    c = ready(cluster, REPOS)
    assert c["message"] == (
        f"scan failed: GET https://registry.example.com/v2/acme/web/tags/list?n=1000: "
        f"{UNAUTHORIZED}"
    )
    repo = cluster.store.get(REPOS, "flux-system", "web") or {}
    assert repo["status"]["lastScanResult"]["tagCount"] == 1, "the last good scan is kept"
    await eventually(
        lambda: ready(cluster, POLICIES).get("reason") == "Failed", message="digest refused"
    )
    assert ready(cluster, POLICIES)["message"] == (
        f"failed fetching digest of {IMAGE}:main-abc1234-1: failed fetching descriptor for "
        f'"{IMAGE}:main-abc1234-1": HEAD https://registry.example.com/v2/acme/web/manifests/'
        "main-abc1234-1: unexpected status code 401 Unauthorized (HEAD responses have no body, "
        "use GET for details)"
    )

    status, body = await call(
        cluster, "PUT", "/sim/registry/credentials", {"image": IMAGE, "refused": False}
    )
    assert status == 200 and body == {"refused": []}
    await eventually(
        lambda: (
            ready(cluster, REPOS).get("status") == "True"
            and ready(cluster, POLICIES).get("status") == "True"
        ),
        message="recovered",
    )
    status, body = await call(cluster, "PUT", "/sim/registry/credentials", {"image": IMAGE})
    assert status == 400 and body["error"] == "refused must be true or false"


async def test_missing_registry_secret_fails_authentication(cluster: SimCluster) -> None:
    cluster.flux.registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(image_repository(secretRef={"name": "regcred"}))
    await eventually(
        lambda: ready(cluster, REPOS).get("reason") == "AuthenticationFailed",
        message="AuthenticationFailed",
    )
    assert ready(cluster, REPOS)["message"] == (
        'failed to configure authentication options: secrets "regcred" not found'
    )
    assert condition(cluster.store.get(REPOS, "flux-system", "web"), "Reconciling")["reason"] == (
        "ProgressingWithRetry"
    )
    auth = base64.b64encode(b'{"auths": {}}').decode()
    cluster.apply_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": "flux-system"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": auth},
        }
    )
    await eventually(lambda: ready(cluster, REPOS).get("status") == "True", message="recovered")


async def test_deleted_branch_fails_the_fetch_and_comes_back(cluster: SimCluster) -> None:
    cluster.flux.git.add_repository(GIT_URL, branches=["main", "feature"], paths={"./a": []})
    cluster.apply_object(git_repository(branch="feature"))
    await eventually(
        lambda: ready(cluster, SOURCES, "platform").get("status") == "True", message="ok"
    )
    revision = (cluster.store.get(SOURCES, "flux-system", "platform") or {})["status"]["artifact"][
        "revision"
    ]
    switch = {"url": GIT_URL, "branch": "feature", "deleted": True}
    status, body = await call(cluster, "PUT", "/sim/git/branches", switch)
    assert status == 200 and body == switch
    await eventually(
        lambda: ready(cluster, SOURCES, "platform").get("status") == "False", message="gone"
    )
    c = ready(cluster, SOURCES, "platform")
    assert (c["reason"], c["message"]) == (
        "GitOperationFailed",
        f"failed to checkout and determine revision: unable to clone '{GIT_URL}': "
        'couldn\'t find remote ref "refs/heads/feature"',
    )
    status, body = await call(cluster, "PUT", "/sim/git/branches", switch)
    assert status == 404, "already deleted"
    status, _ = await call(cluster, "PUT", "/sim/git/branches", {**switch, "deleted": False})
    assert status == 200
    await eventually(
        lambda: ready(cluster, SOURCES, "platform").get("status") == "True", message="restored"
    )
    obj = cluster.store.get(SOURCES, "flux-system", "platform") or {}
    assert obj["status"]["artifact"]["revision"] == revision


async def test_chart_failure_switch_and_chart_publishing(cluster: SimCluster) -> None:
    chart = {"name": "web", "version": "1.0.0", "appVersion": "2.0.0", "templates": TEMPLATES}
    status, body = await call(cluster, "POST", "/sim/helm/charts", {"url": CHARTS_URL, **chart})
    assert status == 201 and body == {"name": "web", "version": "1.0.0", "appVersion": "2.0.0"}
    status, body = await call(cluster, "POST", "/sim/helm/charts", {"url": OCI_URL, **chart})
    assert status == 201 and body["digest"].startswith("sha256:")
    status, body = await call(cluster, "GET", "/sim/helm/charts")
    assert body["items"] == [{"url": CHARTS_URL, "charts": {"web": ["1.0.0"]}}]
    status, body = await call(
        cluster, "POST", "/sim/helm/charts", {"url": CHARTS_URL, **chart, "version": "x"}
    )
    assert status == 400 and "not a semantic version" in body["error"]

    failure = {"chart": "web", "namespace": "apps", "action": "install", "failing": True}
    status, body = await call(cluster, "PUT", "/sim/helm/failures", failure)
    assert status == 200 and body["items"] == [
        {
            "chart": "web",
            "version": "",
            "namespace": "apps",
            "action": "install",
            "message": "context deadline exceeded",
        }
    ]
    cluster.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "acme", "namespace": "flux-system"},
            "spec": {"url": CHARTS_URL, "interval": "5m"},
        }
    )
    cluster.apply_object(helm_release(install={"remediation": {"retries": -1}}))

    def release() -> dict[str, Any] | None:
        return cluster.store.get(RELEASES, "apps", "web")

    await eventually(
        lambda: condition(release(), "Remediated").get("reason") == "UninstallSucceeded",
        message="failed, remediated by uninstalling, retrying",
    )
    assert condition(release(), "Remediated")["message"] == (
        "Helm uninstall remediation for release apps/web.v1 with chart web@1.0.0 succeeded"
    )
    assert condition(release())["reason"] == "InstallFailed", "Ready keeps the failure"
    status, body = await call(cluster, "PUT", "/sim/helm/failures", {**failure, "failing": False})
    assert status == 200 and body["items"] == []
    await eventually(
        lambda: condition(release()).get("reason") == "InstallSucceeded",
        within=10,
        message="the next retry installs",
    )
    status, body = await call(cluster, "GET", "/sim/helm/releases")
    assert [(r["storageNamespace"], r["name"]) for r in body["items"]] == [("apps", "web")]
    status, body = await call(cluster, "PUT", "/sim/helm/failures", {**failure, "failing": False})
    assert status == 404
    status, body = await call(cluster, "PUT", "/sim/helm/failures", {**failure, "action": "x"})
    assert status == 400
