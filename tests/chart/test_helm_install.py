"""The chart installed by real Helm (the Helm v4 SDK) into an emulated cluster that serves TLS and
enforces RBAC; Kollie then runs as the installed Deployment describes it: its environment, its
mounted catalog and Secret, its ServiceAccount's token. Upgrades and uninstalls change its
access."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from kubesim import SimCluster
from kubesim.demo import seed_demo
from tests.chart.conftest import CHART, NAMESPACE
from tests.chart.cycle import (
    ALL_STEPS,
    DEMO_CATALOG,
    TOKEN,
    WEBHOOK_SECRET,
    full_cycle,
    kollie_as_service_account,
)
from tests.conftest import flux_crd_files
from tests.helpers import eventually

RELEASE = "kollie"
VALUES: dict[str, Any] = {
    "catalog": DEMO_CATALOG,
    "secrets": {"apiTokens": [{"name": "ci", "token": TOKEN}], "webhookSecret": WEBHOOK_SECRET},
}


def _helm(kubeconfig: Path, action: str, values: dict[str, Any] | None = None) -> Any:
    config = helm.Config(kubeconfig_path=kubeconfig, namespace=NAMESPACE)
    try:
        if action == "install":
            return config.install(helm.Chart.load(CHART), RELEASE, values, namespace=NAMESPACE)
        if action == "upgrade":
            return config.upgrade(helm.Chart.load(CHART), RELEASE, values, namespace=NAMESPACE)
        return config.uninstall(RELEASE)
    finally:
        config.close()


def as_the_kubelet_would(cluster: SimCluster, root: Path) -> dict[str, str]:
    """The container's environment, with its ConfigMap and Secret volumes written under `root`
    and paths into them moved there: what the pod would see."""
    deployment = cluster.store.get(("apps", "deployments"), NAMESPACE, RELEASE)
    assert deployment is not None, "helm installed the Deployment"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    moved: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        volume, target = volumes[mount["name"]], root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        files: dict[str, bytes] = {}
        if "configMap" in volume:
            source = (
                cluster.store.get(("", "configmaps"), NAMESPACE, volume["configMap"]["name"]) or {}
            )
            files = {k: v.encode() for k, v in (source.get("data") or {}).items()}
        elif "secret" in volume:
            source = (
                cluster.store.get(("", "secrets"), NAMESPACE, volume["secret"]["secretName"]) or {}
            )
            data = {k: base64.b64decode(v) for k, v in (source.get("data") or {}).items()}
            items = volume["secret"].get("items")
            files = {i["path"]: data[i["key"]] for i in items} if items else data
        for name, content in files.items():
            (target / name).write_bytes(content)
        moved[mount["mountPath"]] = str(target)
    environ: dict[str, str] = {}
    for variable in container["env"]:
        if "value" in variable:
            value = variable["value"]
            for mount_path, local in sorted(moved.items(), key=lambda m: -len(m[0])):
                if value.startswith(mount_path + "/"):
                    value = local + value[len(mount_path) :]
                    break
            environ[variable["name"]] = value
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            secret = cluster.store.get(("", "secrets"), NAMESPACE, ref["name"]) or {}
            if ref["key"] in (secret.get("data") or {}):
                environ[variable["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
            else:
                assert ref.get("optional"), f"{variable['name']}: a required Secret key is missing"
    return environ


def _secrets_checksum(cluster: SimCluster) -> str:
    deployment = cluster.store.get(("apps", "deployments"), NAMESPACE, RELEASE) or {}
    return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"])


async def test_helm_install_then_kollie_runs_as_installed(tmp_path: Path) -> None:
    async with SimCluster(
        crd_files=flux_crd_files(), reconcile_delay=0.0, bookmark_interval=0.2, rbac=True, tls=True
    ) as cluster:
        seed_demo(cluster)
        admin = cluster.write_kubeconfig(tmp_path / "admin.kubeconfig")
        release = await asyncio.to_thread(_helm, admin, "install", VALUES)
        assert release["status"] == "deployed" and release["revision"] == 1
        assert "rollout status deployment/kollie" in release["notes"]
        environ = as_the_kubelet_would(cluster, tmp_path / "pod")
        assert environ["KOLLIE_NAMESPACE"] == NAMESPACE and len(environ["KOLLIE_CSRF_SECRET"]) == 64
        done: list[str] = []
        async with kollie_as_service_account(cluster, environ, tmp_path) as setup:
            await full_cycle(setup, within=10, done=done)
            assert done == ALL_STEPS

            # An app from another namespace: the upgrade grants access to its objects there, by
            # name.
            cluster.apply_object(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}
            )
            billing = {
                "name": "billing",
                "path": "./deploy",
                "gitRepository": {"name": "billing", "namespace": "team-b"},
                "imageRepository": {"name": "billing", "namespace": "team-b"},
            }
            upgraded = {
                **VALUES,
                "catalog": {**DEMO_CATALOG, "apps": [*DEMO_CATALOG["apps"], billing]},
            }
            csrf_before = environ["KOLLIE_CSRF_SECRET"]
            checksum_before = _secrets_checksum(cluster)
            release = await asyncio.to_thread(_helm, admin, "upgrade", upgraded)
            assert release["revision"] == 2
            secret = cluster.store.get(("", "secrets"), NAMESPACE, RELEASE) or {}
            assert base64.b64decode(secret["data"]["csrf-secret"]).decode() == csrf_before, (
                "the generated CSRF key survives upgrades (forms stay valid across a rollout)"
            )
            assert _secrets_checksum(cluster) == checksum_before, (
                "unchanged secrets (salted with that key) do not roll the pods"
            )
            role = cluster.store.get(
                ("rbac.authorization.k8s.io", "roles"), "team-b", "kollie-kollie-catalog"
            )
            assert role is not None and role["rules"][1]["resourceNames"] == ["billing"]

            # Uninstalling removes the ServiceAccount: its token stops working. Open watches stay
            # open (as on a real server, authentication is per request); when they end, Kollie is
            # not ready.
            await asyncio.to_thread(_helm, admin, "uninstall")
            cluster.server.close_watches()

            async def not_ready() -> bool:
                async with setup.http.get(setup.base + "/readyz") as r:
                    return r.status == 503

            await eventually(
                not_ready, within=15, message="/readyz 503 once the ServiceAccount is gone"
            )
        for kind in (
            ("", "serviceaccounts"),
            ("rbac.authorization.k8s.io", "roles"),
            ("apps", "deployments"),
        ):
            assert not list(cluster.store.iter(kind, NAMESPACE)), (
                f"{kind} removed by helm uninstall"
            )
        assert cluster.store.get(("", "namespaces"), "", NAMESPACE) is not None


@pytest.mark.parametrize(
    ("values", "named"),
    [({"replicaCount": 0}, "/replicaCount"), ({"config": {"envTTL": "soon"}}, "/config/envTTL")],
)
async def test_helm_refuses_wrong_values_before_touching_the_cluster(
    tmp_path: Path, values: dict[str, Any], named: str
) -> None:
    async with SimCluster(flux=False, rbac=True, tls=True, namespaces=[NAMESPACE]) as cluster:
        admin = cluster.write_kubeconfig(tmp_path / "admin.kubeconfig")
        before = cluster.store.resource_version
        with pytest.raises(helm.HelmError) as e:
            await asyncio.to_thread(_helm, admin, "install", values)
        assert named in str(e.value)
        assert cluster.store.resource_version == before, "nothing was written"


async def test_an_existing_secret_is_checked_at_install_and_used(tmp_path: Path) -> None:
    async with SimCluster(
        crd_files=flux_crd_files(), reconcile_delay=0.0, bookmark_interval=0.2, rbac=True, tls=True
    ) as cluster:
        seed_demo(cluster)
        admin = cluster.write_kubeconfig(tmp_path / "admin.kubeconfig")
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kollie-secrets", "namespace": NAMESPACE},
            "stringData": {"api-tokens": f"ci:{TOKEN}\n", "webhook-secret": WEBHOOK_SECRET},
        }
        cluster.apply_object(secret)
        values = {"catalog": DEMO_CATALOG, "secrets": {"existingSecret": "kollie-secrets"}}
        with pytest.raises(
            helm.HelmError, match='has no key \\"csrf-secret\\": 2 replicas must share one'
        ):
            await asyncio.to_thread(_helm, admin, "install", values)
        assert cluster.store.get(("apps", "deployments"), NAMESPACE, RELEASE) is None, (
            "nothing installed"
        )
        cluster.apply_object(
            {**secret, "stringData": {**secret["stringData"], "csrf-secret": "k" * 40}}
        )
        release = await asyncio.to_thread(_helm, admin, "install", values)
        assert release["status"] == "deployed"
        assert cluster.store.get(("", "secrets"), NAMESPACE, RELEASE) is None, (
            "no Secret of the chart's own"
        )
        environ = as_the_kubelet_would(cluster, tmp_path / "pod")
        assert (
            environ["KOLLIE_CSRF_SECRET"] == "k" * 40
            and environ["KOLLIE_WEBHOOK_SECRET"] == WEBHOOK_SECRET
        )
        done: list[str] = []
        async with kollie_as_service_account(cluster, environ, tmp_path) as setup:
            await full_cycle(setup, within=10, done=done)
        assert done == ALL_STEPS
