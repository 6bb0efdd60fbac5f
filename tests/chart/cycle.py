"""One full cycle of everything Kollie does to a cluster, and Kollie running with a ServiceAccount's
token (as in a pod) instead of the administrator's, for the RBAC-enforcing tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestServer

from kollie.composition import create_app
from kollie.config import Settings
from kubesim import SimCluster
from kubesim.demo import REGISTRY
from kubesim.flux.helmactions import DEADLINE, Failure
from tests.chart.conftest import NAMESPACE
from tests.helpers import eventually
from watchers.runtime import Timing

DEMO_CATALOG = yaml.safe_load(
    (Path(__file__).parents[2] / "kollie" / "demo" / "catalog.yaml").read_text()
)
TOKEN = "ci-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "webhook-secret-0123456789"
IDENTITY = "kollie-under-test"
ENV = "pr-1"


@dataclass
class Setup:
    cluster: SimCluster
    base: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, headers=AUTH, **kwargs) as r:
            return r.status, await r.json(content_type=None)


def cluster_ssl(cluster: SimCluster) -> ssl.SSLContext | bool:
    """What verifies the emulator's certificate when it serves HTTPS."""
    if cluster.certificates is None:
        return True
    return ssl.create_default_context(cadata=cluster.certificates.ca_pem.decode())


async def service_account_token(cluster: SimCluster, name: str = "kollie") -> str:
    """A token for a ServiceAccount from the TokenRequest API, as the kubelet gets one for a pod."""
    path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{name}/token"
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cluster_ssl(cluster))) as http,
        http.post(
            cluster.url + path, json=request, headers={"Authorization": "Bearer kubesim-admin"}
        ) as r,
    ):
        assert r.status == 201, await r.text()
        return str((await r.json())["status"]["token"])


@dataclass(frozen=True)
class Diagnosis:
    """What the diagnosis reads beyond Kollie's objects (the chart's `diagnosis` values)."""

    catalog_sources: bool = True
    helm_releases: bool = False

    def values(self) -> dict[str, bool]:
        return {"catalogSources": self.catalog_sources, "helmReleases": self.helm_releases}

    def environ(self) -> dict[str, str]:
        return {
            "KOLLIE_DIAGNOSIS_SOURCES": str(self.catalog_sources).lower(),
            "KOLLIE_DIAGNOSIS_HELM_RELEASES": str(self.helm_releases).lower(),
        }


DEFAULT_DIAGNOSIS = Diagnosis()
"""The chart's defaults."""


def plain_settings(tmp_path: Path, diagnosis: Diagnosis = DEFAULT_DIAGNOSIS) -> dict[str, str]:
    """Settings with the demo catalog, one API token and the webhook secret, as files and
    variables."""
    catalog, tokens = tmp_path / "catalog.yaml", tmp_path / "tokens"
    catalog.write_text(yaml.safe_dump(DEMO_CATALOG))
    tokens.write_text(f"ci:{TOKEN}\n")
    return {
        "KOLLIE_NAMESPACE": NAMESPACE,
        "KOLLIE_CATALOG": str(catalog),
        "KOLLIE_API_TOKENS_FILE": str(tokens),
        "KOLLIE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **diagnosis.environ(),
    }


@asynccontextmanager
async def kollie_as_service_account(
    cluster: SimCluster, environ: dict[str, str], tmp_path: Path, service_account: str = "kollie"
) -> AsyncIterator[Setup]:
    """Kollie with these settings, talking to `cluster` with the ServiceAccount's token."""
    token = await service_account_token(cluster, service_account)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(cluster.kubeconfig(token=token)))
    app = create_app(
        Settings.from_env(environ),
        kubeconfig=str(kubeconfig),
        identity=IDENTITY,
        timing=Timing(watch_timeout=30, lease_duration=1.5),
    )
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Setup(cluster, str(server.make_url("")).rstrip("/"), http)
    finally:
        await server.close()


async def full_cycle(
    s: Setup, *, within: float, done: list[str], diagnosis: Diagnosis = DEFAULT_DIAGNOSIS
) -> None:
    """Everything Kollie does to the cluster, step by step into `done` (raises at the first
    failure)."""
    store = s.cluster.store
    flux = s.cluster.flux

    async def ready() -> bool:
        async with s.http.get(s.base + "/readyz") as r:
            return r.status == 200

    await eventually(ready, within=within, message="/readyz: every watch listed and connected")
    done.append("ready")

    def lease() -> dict[str, Any]:
        return (store.get(("coordination.k8s.io", "leases"), NAMESPACE, "kollie-leader") or {}).get(
            "spec"
        ) or {}

    await eventually(
        lambda: lease().get("holderIdentity") == IDENTITY, within=within, message="leadership"
    )
    first_renewal = lease().get("renewTime")
    await eventually(
        lambda: (
            lease().get("holderIdentity") == IDENTITY and lease().get("renewTime") != first_renewal
        ),
        within=within,
        message="the leader renews its Lease",
    )
    done.append("leader")

    status, body = await s.call(
        "PUT",
        f"/api/v1/environments/{ENV}",
        json={"apps": {"web": {"prefix": "feature-checkout"}, "api": {}}},
    )
    assert status in (200, 201), body

    async def environment() -> dict[str, Any] | None:
        status, body = await s.call("GET", f"/api/v1/environments/{ENV}")
        return body if status == 200 else None

    async def apps_with_tags() -> dict[str, str] | None:
        env = await environment()
        tags = {a["name"]: a.get("imageTag") for a in (env or {}).get("apps", [])}
        return tags if set(tags) == {"web", "api"} and all(tags.values()) else None

    tags = await eventually(apps_with_tags, within=within, message="both apps with image tags")
    assert tags["web"].startswith("feature-checkout-")
    done.append("create")

    newer = "feature-checkout-fff0000-1999999999"
    flux.registry.push(f"{REGISTRY}/web", newer)
    delivery = json.dumps({"repository": f"{REGISTRY}/web", "tag": newer}).encode()
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), delivery, hashlib.sha256).hexdigest()
    async with s.http.post(
        s.base + "/webhooks/registry/generic",
        data=delivery,
        headers={"Content-Type": "application/json", "X-Signature": signature},
    ) as r:
        assert r.status == 202, await r.text()

    def rescan_requested() -> bool:
        repo = (
            store.get(("image.toolkit.fluxcd.io", "imagerepositories"), "flux-system", "web") or {}
        )
        return "reconcile.fluxcd.io/requestedAt" in (
            repo.get("metadata", {}).get("annotations") or {}
        )

    await eventually(rescan_requested, within=within, message="the webhook asks Flux to rescan")
    done.append("webhook rescan")

    async def followed() -> bool:
        return (await apps_with_tags() or {}).get("web") == newer

    await eventually(followed, within=within, message="image follow moves web to the pushed tag")
    done.append("image follow")

    before = (await environment() or {}).get("uptime")
    status, body = await s.call("POST", f"/api/v1/environments/{ENV}/extend", json={"hours": 3})
    assert status == 200, body
    await eventually(
        lambda: _changed(environment, "uptime", before), within=within, message="extended uptime"
    )
    done.append("extend")

    status, body = await s.call(
        "PUT", f"/api/v1/environments/{ENV}/flux-branch", json={"branch": "kollie-test"}
    )
    assert status == 200, body
    copy_key = (("source.toolkit.fluxcd.io", "gitrepositories"), NAMESPACE, f"platform-{ENV}")
    assert store.get(*copy_key) is not None, "the GitRepository copy"
    status, body = await s.call(
        "PUT", f"/api/v1/environments/{ENV}/flux-branch", json={"branch": None}
    )
    assert status == 200, body
    await eventually(
        lambda: store.get(*copy_key) is None, within=within, message="the copy is removed"
    )
    done.append("flux branch")

    # The demo app's manifests (applied by the simulated Flux) include a labelled Ingress.
    async def url_shown() -> bool:
        env = await environment() or {}
        web = next((a for a in env.get("apps", []) if a["name"] == "web"), {})
        return any(f"web.{ENV}.test.example.com" in u for u in web.get("urls", []))

    await eventually(url_shown, within=within, message="the app's Ingress URL")
    done.append("urls")

    await diagnosis_cycle(s, within=within, diagnosis=diagnosis)
    done.append("diagnosis")

    async def history() -> set[str]:
        status, body = await s.call("GET", f"/api/v1/environments/{ENV}/history")
        return {e["reason"] for e in body["items"]} if status == 200 else set()

    await eventually(
        lambda: _superset(
            history, {"EnvironmentCreated", "UptimeChanged", "FluxBranchChanged", "ImageFollowed"}
        ),
        within=within,
        message="the audit trail",
    )
    done.append("history")

    status, body = await s.call("DELETE", f"/api/v1/environments/{ENV}/apps/api")
    assert status in (200, 202, 204), body

    async def only_web() -> bool:
        return {a["name"] for a in (await environment() or {}).get("apps", [])} == {"web"}

    await eventually(only_web, within=within, message="api removed")
    done.append("remove app")

    status, body = await s.call("DELETE", f"/api/v1/environments/{ENV}")
    assert status in (200, 202, 204), body

    async def gone() -> bool:
        return await environment() is None and store.get(("", "configmaps"), NAMESPACE, ENV) is None

    await eventually(gone, within=within, message="the environment is deleted")
    done.append("delete")


async def diagnosis_cycle(s: Setup, *, within: float, diagnosis: Diagnosis) -> None:
    """Why two apps are not ready, as far as Kollie may read: web's branch has no image (the
    catalog's ImageRepository says which tags there are), payments' chart fails to install
    (its HelmRelease says how; without HelmReleases, the Kustomization's health check)."""
    s.cluster.flux.helm.failures.set(Failure("payments", "", "", "install", DEADLINE))
    status, body = await s.call(
        "PUT",
        "/api/v1/environments/why",
        json={"apps": {"web": {"prefix": "feature-nothing"}, "payments": {}}},
    )
    assert status == 201, body

    async def diagnosed(app: str, kind: str, reason: str) -> dict[str, Any] | None:
        _, env = await s.call("GET", "/api/v1/environments/why")
        found = next((a["diagnosis"] for a in env.get("apps", []) if a["name"] == app), None)
        cause = (found or {}).get("cause") or {}
        return found if cause.get("kind") == kind and cause.get("reason") == reason else None

    web = await eventually(
        lambda: diagnosed("web", "ImagePolicy", "Failure"), within=within, message="web's"
    )
    if diagnosis.catalog_sources:
        assert web["summary"].startswith(
            f"No tag of {REGISTRY}/web starts with `feature-nothing-`"
        ), web
    else:
        assert "KOLLIE_DIAGNOSIS_SOURCES" in web["summary"], web
    kind, reason = (
        ("HelmRelease", "InstallFailed")
        if diagnosis.helm_releases
        else ("Kustomization", "HealthCheckFailed")
    )
    payments = await eventually(
        lambda: diagnosed("payments", kind, reason), within=within, message="payments'"
    )
    git = next(step for step in payments["steps"] if step["kind"] == "GitRepository")
    assert git["ok"] is (True if diagnosis.catalog_sources else None), payments
    if not diagnosis.helm_releases:
        assert "so the diagnosis stops at the Kustomization" in payments["summary"], payments
    s.cluster.flux.helm.failures.clear("payments", "", "")
    status, body = await s.call("DELETE", "/api/v1/environments/why")
    assert status == 202, body


async def _changed(read: Callable[[], Any], key: str, before: Any) -> bool:
    return ((await read()) or {}).get(key) not in (None, before)


async def _superset(read: Callable[[], Any], wanted: set[str]) -> bool:
    return bool(wanted <= await read())


ALL_STEPS = [
    "ready",
    "leader",
    "create",
    "webhook rescan",
    "image follow",
    "extend",
    "flux branch",
    "urls",
    "diagnosis",
    "history",
    "remove app",
    "delete",
]
