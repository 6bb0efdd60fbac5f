"""An environment never takes the name of a namespace that exists for something else: apps deploy
into a namespace named after their environment, with kustomize-controller's permissions."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp

from kubesim import SimCluster
from tests.helpers import eventually
from tests.service.conftest import Kollie, StartKollie

NAMESPACES = ("", "namespaces")
SECRET = "webhook-secret-0123456789"


def _namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _flux_owned(kustomization: str, namespace: str) -> dict[str, str]:
    return {
        "kustomize.toolkit.fluxcd.io/name": kustomization,
        "kustomize.toolkit.fluxcd.io/namespace": namespace,
    }


def _kollie_objects(cluster: SimCluster) -> set[tuple[str, str]]:
    return {
        (gr[1], o["metadata"]["name"])
        for gr in (
            ("", "configmaps"),
            ("kustomize.toolkit.fluxcd.io", "kustomizations"),
            ("image.toolkit.fluxcd.io", "imagepolicies"),
        )
        for o in cluster.store.iter(gr, "kollie")
    }


async def test_names_of_namespaces_that_exist_for_something_else_are_refused(
    kollie: Kollie,
) -> None:
    cluster = kollie.cluster
    cluster.apply_object(_namespace("ingress-nginx"))
    # Applied by the platform's own Kustomization, and by another environment's app.
    cluster.apply_object(_namespace("monitoring", _flux_owned("monitoring", "flux-system")))
    cluster.apply_object(_namespace("team-a", _flux_owned("other-web", "kollie")))
    before = _kollie_objects(cluster)
    for name in ("ingress-nginx", "monitoring", "team-a"):
        namespace = cluster.store.get(NAMESPACES, "", name)
        status, body = await kollie.call(
            "PUT", f"/api/v1/environments/{name}", json={"apps": {"api": {}}}
        )
        assert (status, body["error"]) == (409, "name_taken"), body
        assert f"namespace {name!r} exists" in body["message"]
        assert cluster.store.get(NAMESPACES, "", name) == namespace, "the namespace is untouched"
    assert _kollie_objects(cluster) == before, "nothing written"


async def test_an_environment_comes_back_to_the_namespace_its_apps_made(kollie: Kollie) -> None:
    """The demo apps keep their namespace when removed (prune disabled), as the example app base
    does: deleting an environment and creating it again must work."""
    cluster = kollie.cluster
    status, body = await kollie.call("PUT", "/api/v1/environments/pr-5", json={"apps": {"api": {}}})
    assert status == 201, body
    namespace = await eventually(
        lambda: cluster.store.get(NAMESPACES, "", "pr-5"),
        within=10,
        message="simulated Flux applies the app's namespace",
    )
    assert namespace["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "pr-5-api"
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/pr-5", json={"apps": {"api": {}, "web": {}}}
    )
    assert status == 200, body
    status, _ = await kollie.call("DELETE", "/api/v1/environments/pr-5")
    assert status == 202

    async def gone() -> bool:
        status, _ = await kollie.call("GET", "/api/v1/environments/pr-5")
        return status == 404 and not cluster.store.get(("", "configmaps"), "kollie", "pr-5")

    await eventually(gone, within=10, message="the environment is deleted")
    assert cluster.store.get(NAMESPACES, "", "pr-5"), "its namespace stays"
    status, body = await kollie.call("PUT", "/api/v1/environments/pr-5", json={"apps": {"api": {}}})
    assert status == 201, body


async def test_the_dashboard_refuses_a_taken_name(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    kollie.cluster.apply_object(_namespace("cert-manager"))
    user = {"X-Auth-Request-Email": "alice@example.com"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(kollie.url("/"), headers=user) as r:
            page = await r.text()
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        async with browser.post(
            kollie.url("/env"),
            data={"csrf_token": token, "name": "cert-manager", "app_api": "on"},
            headers=user,
            allow_redirects=False,
        ) as r:
            assert r.status == 409, await r.text()
            assert "namespace &#39;cert-manager&#39; exists" in await r.text()
    assert kollie.cluster.store.get(("", "configmaps"), "kollie", "cert-manager") is None


async def test_a_push_does_not_auto_create_an_environment_over_a_namespace(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    kollie.cluster.apply_object(_namespace("feature-payroll"))
    tag = "feature-payroll-abc1234-1900000000"
    kollie.cluster.flux.registry.push("registry.example.com/acme/web", tag)
    body = json.dumps({"repository": "registry.example.com/acme/web", "tag": tag}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"),
        data=body,
        headers={"Content-Type": "application/json", "X-Signature": signature},
    ) as r:
        # Answered once the push is handled: the refusal is in the answer, nothing was written.
        answer = await r.json()
        assert r.status == 202, answer
        assert answer["pushes"][0]["created"] is None
    assert kollie.cluster.store.get(("", "configmaps"), "kollie", "feature-payroll") is None
