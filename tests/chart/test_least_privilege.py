"""The chart's RBAC is exactly what Kollie needs, proven against an RBAC-enforcing API server.

The emulator runs with RBAC on. The chart's rendered ServiceAccount, Roles and bindings are
applied to it; Kollie runs with a token of that ServiceAccount (TokenRequest, as a pod's projected
token) through a full cycle: readiness, leader election, create, image follow, webhook rescan,
extend, follow a Flux branch, app URLs, history, remove an app, delete. With all rules it passes;
with any one verb of any one rule taken away, it fails.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestServer

from kollie.config import Settings
from kubesim import SimCluster
from kubesim.demo import REGISTRY, seed_demo
from tests.chart.conftest import NAMESPACE, render_chart
from tests.conftest import flux_crd_files
from tests.helpers import eventually
from web.app import create_app

DEMO_CATALOG = yaml.safe_load((Path(__file__).parents[2] / "kollie" / "demo" / "catalog.yaml").read_text())
TOKEN = "ci-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "webhook-secret-0123456789"
IDENTITY = "kollie-under-test"
ENV = "pr-1"
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}

Grant = tuple[str, str, int, str]
"""(kind, namespace/name, rule index, verb): one verb of one rule of one role."""


def chart_rbac(chart: Any) -> list[dict[str, Any]]:
    docs, _ = render_chart(chart, {"catalog": DEMO_CATALOG})
    return [d for d in docs if d["kind"] in RBAC_KINDS]


def grants(rbac: list[dict[str, Any]]) -> list[Grant]:
    return [(d["kind"], f"{d['metadata'].get('namespace', '')}/{d['metadata']['name']}", i, verb)
            for d in rbac if d["kind"] in {"Role", "ClusterRole"}
            for i, rule in enumerate(d["rules"]) for verb in rule["verbs"]]


def without(rbac: list[dict[str, Any]], grant: Grant) -> list[dict[str, Any]]:
    kind, where, index, verb = grant
    out = copy.deepcopy(rbac)
    for doc in out:
        if doc["kind"] == kind and f"{doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}" == where:
            rule = doc["rules"][index]
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
            if not rule["verbs"]:
                del doc["rules"][index]
    return out


@dataclass
class Setup:
    cluster: SimCluster
    base: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, headers=AUTH, **kwargs) as r:
            return r.status, await r.json(content_type=None)


async def _service_account_token(cluster: SimCluster) -> str:
    """A token for the chart's ServiceAccount from the TokenRequest API, as the kubelet gets one."""
    path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/kollie/token"
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    async with aiohttp.ClientSession() as http, http.post(
            cluster.url + path, json=request, headers={"Authorization": "Bearer kubesim-admin"}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["status"]["token"])


@asynccontextmanager
async def kollie_with(rbac: list[dict[str, Any]], tmp_path: Path) -> AsyncIterator[Setup]:
    """An RBAC-enforcing cluster with the demo's Flux objects and `rbac` applied, and Kollie running
    with the ServiceAccount's token (not the admin's)."""
    async with SimCluster(crd_files=flux_crd_files(), reconcile_delay=0.0, bookmark_interval=0.2, rbac=True) as cluster:
        seed_demo(cluster)
        for doc in rbac:
            cluster.apply_object(doc)
        token = await _service_account_token(cluster)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(cluster.kubeconfig(token=token)))
        tokens = tmp_path / "tokens"
        tokens.write_text(f"ci:{TOKEN}\n")
        settings = Settings.from_env({"KOLLIE_NAMESPACE": NAMESPACE, "KOLLIE_CATALOG": str(_catalog(tmp_path)),
                                      "KOLLIE_API_TOKENS_FILE": str(tokens), "KOLLIE_WEBHOOK_SECRET": WEBHOOK_SECRET})
        app = create_app(settings, kubeconfig=str(kubeconfig), watch_timeout=30, lease_duration=1.5, identity=IDENTITY)
        server = TestServer(app)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Setup(cluster, str(server.make_url("")).rstrip("/"), http)
        finally:
            await server.close()


def _catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(DEMO_CATALOG))
    return path


async def full_cycle(s: Setup, *, within: float, done: list[str]) -> None:
    """Everything Kollie does to the cluster, step by step into `done` (raises at the first failure)."""
    store = s.cluster.store
    flux: Any = s.cluster.controllers[0]

    async def ready() -> bool:
        async with s.http.get(s.base + "/readyz") as r:
            return r.status == 200

    await eventually(ready, within=within, message="/readyz: every watch listed and connected")
    done.append("ready")

    def lease() -> dict[str, Any]:
        return (store.get(("coordination.k8s.io", "leases"), NAMESPACE, "kollie-leader") or {}).get("spec") or {}

    await eventually(lambda: lease().get("holderIdentity") == IDENTITY, within=within, message="leadership")
    first_renewal = lease().get("renewTime")
    await eventually(lambda: lease().get("holderIdentity") == IDENTITY and lease().get("renewTime") != first_renewal,
                     within=within, message="the leader renews its Lease")
    done.append("leader")

    status, body = await s.call("PUT", f"/api/v1/environments/{ENV}",
                                json={"apps": {"web": {"prefix": "feature-checkout"}, "api": {}}})
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
    async with s.http.post(s.base + "/webhooks/registry/generic", data=delivery,
                           headers={"Content-Type": "application/json", "X-Signature": signature}) as r:
        assert r.status == 202, await r.text()

    def rescan_requested() -> bool:
        repo = store.get(("image.toolkit.fluxcd.io", "imagerepositories"), "flux-system", "web") or {}
        return "reconcile.fluxcd.io/requestedAt" in (repo.get("metadata", {}).get("annotations") or {})

    await eventually(rescan_requested, within=within, message="the webhook asks Flux to rescan")
    done.append("webhook rescan")

    async def followed() -> bool:
        return (await apps_with_tags() or {}).get("web") == newer

    await eventually(followed, within=within, message="image follow moves web to the pushed tag")
    done.append("image follow")

    before = (await environment() or {}).get("uptime")
    status, body = await s.call("POST", f"/api/v1/environments/{ENV}/extend", json={"hours": 3})
    assert status == 200, body
    await eventually(lambda: _changed(environment, "uptime", before), within=within, message="extended uptime")
    done.append("extend")

    status, body = await s.call("PUT", f"/api/v1/environments/{ENV}/flux-branch", json={"branch": "kollie-test"})
    assert status == 200, body
    copy_key = (("source.toolkit.fluxcd.io", "gitrepositories"), NAMESPACE, f"platform-{ENV}")
    assert store.get(*copy_key) is not None, "the GitRepository copy"
    status, body = await s.call("PUT", f"/api/v1/environments/{ENV}/flux-branch", json={"branch": None})
    assert status == 200, body
    await eventually(lambda: store.get(*copy_key) is None, within=within, message="the copy is removed")
    done.append("flux branch")

    # The demo app's manifests (applied by the simulated Flux) include a labelled Ingress.
    async def url_shown() -> bool:
        env = await environment() or {}
        web = next((a for a in env.get("apps", []) if a["name"] == "web"), {})
        return any(f"web.{ENV}.test.example.com" in u for u in web.get("urls", []))

    await eventually(url_shown, within=within, message="the app's Ingress URL")
    done.append("urls")

    async def history() -> set[str]:
        status, body = await s.call("GET", f"/api/v1/environments/{ENV}/history")
        return {e["reason"] for e in body["items"]} if status == 200 else set()

    await eventually(lambda: _superset(history, {"EnvironmentCreated", "UptimeChanged", "FluxBranchChanged", "ImageFollowed"}),
                     within=within, message="the audit trail")
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


async def _changed(read: Callable[[], Any], key: str, before: Any) -> bool:
    return ((await read()) or {}).get(key) not in (None, before)


async def _superset(read: Callable[[], Any], wanted: set[str]) -> bool:
    return bool(wanted <= await read())


ALL_STEPS = ["ready", "leader", "create", "webhook rescan", "image follow", "extend", "flux branch", "urls",
             "history", "remove app", "delete"]


async def test_kollie_runs_a_full_cycle_with_the_charts_rbac(chart: Any, tmp_path: Path) -> None:
    done: list[str] = []
    async with kollie_with(chart_rbac(chart), tmp_path) as setup:
        await full_cycle(setup, within=10, done=done)
    assert done == ALL_STEPS


async def test_without_any_one_granted_verb_the_cycle_fails(chart: Any, tmp_path: Path) -> None:
    rbac = chart_rbac(chart)
    every = grants(rbac)
    assert len(every) >= 25, every
    outcomes: dict[Grant, str] = {}
    limit = asyncio.Semaphore(6)

    async def attempt(index: int, grant: Grant) -> None:
        async with limit:
            done: list[str] = []
            try:
                async with kollie_with(without(rbac, grant), tmp_path / f"v{index}") as setup:
                    await full_cycle(setup, within=4, done=done)
            except (AssertionError, aiohttp.ClientError) as e:
                outcomes[grant] = f"failed after {done or 'nothing'}: {str(e).splitlines()[0][:120]}"
                return
            outcomes[grant] = "PASSED"

    for i in range(len(every)):
        (tmp_path / f"v{i}").mkdir()
    await asyncio.gather(*(attempt(i, g) for i, g in enumerate(every)))
    report = "\n".join(f"{g}: {outcome}" for g, outcome in outcomes.items())
    print(report)
    unneeded = [g for g, outcome in outcomes.items() if outcome == "PASSED"]
    assert not unneeded, f"granted but not needed:\n{report}"
