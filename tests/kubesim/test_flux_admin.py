"""The simulated Flux over HTTP (`/sim/...` admin routes) and its timing: the reconcile delay
that shows progress first, and periodic reconciles at `spec.interval`."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from kubesim import SimCluster
from kubesim.flux import FluxSimulation
from kubesim.store import Event
from tests.helpers import eventually

IMAGE = "registry.example.com/acme/web"
GIT_URL = "https://git.example.com/acme/platform"
SOURCES = ("source.toolkit.fluxcd.io", "gitrepositories")
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io", "kustomizations")
REPOS = ("image.toolkit.fluxcd.io", "imagerepositories")


def flux(cluster: SimCluster) -> FluxSimulation:
    sim = cluster.controllers[0]
    assert isinstance(sim, FluxSimulation)
    return sim


async def call(
    cluster: SimCluster,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"params": params}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with session.request(method, cluster.url + path, **kwargs) as response:
            return response.status, await response.json()


async def test_registry_routes(cluster: SimCluster) -> None:
    status, body = await call(
        cluster, "POST", "/sim/registry/push", {"image": IMAGE, "tag": "main-abc1234-1"}
    )
    assert status == 201 and body["image"] == IMAGE and body["digest"].startswith("sha256:")
    digest = "sha256:" + "ab" * 32
    status, body = await call(
        cluster, "POST", "/sim/registry/push", {"image": IMAGE, "tag": "v1", "digest": digest}
    )
    assert status == 201 and body["digest"] == digest
    status, body = await call(cluster, "GET", "/sim/registry/tags", params={"image": IMAGE})
    assert (
        status == 200
        and set(body["tags"]) == {"main-abc1234-1", "v1"}
        and body["tags"]["v1"] == digest
    )
    status, body = await call(
        cluster, "DELETE", "/sim/registry/tags", params={"image": IMAGE, "tag": "v1"}
    )
    assert status == 200 and flux(cluster).registry.digest(IMAGE, "v1") is None
    for bad in (
        {"image": IMAGE},
        {"image": IMAGE, "tag": "-x"},
        {"image": "Bad/Name", "tag": "x"},
        {"image": IMAGE, "tag": "x", "digest": "md5:1"},
        ["not", "an", "object"],
    ):
        status, body = await call(cluster, "POST", "/sim/registry/push", bad)
        assert status == 400 and isinstance(body["error"], str), bad
    status, body = await call(cluster, "POST", "/sim/registry/push", raw=b"{nope")
    assert status == 400 and body["error"].startswith("malformed JSON")
    status, body = await call(
        cluster, "GET", "/sim/registry/tags", params={"image": "registry.example.com/x/y"}
    )
    assert status == 404 and "error" in body
    status, _ = await call(
        cluster, "DELETE", "/sim/registry/tags", params={"image": IMAGE, "tag": "v1"}
    )
    assert status == 404


async def test_git_routes_drive_a_git_repository(cluster: SimCluster) -> None:
    status, body = await call(
        cluster,
        "POST",
        "/sim/git/repositories",
        {
            "url": GIT_URL,
            "branches": ["main"],
            "paths": {
                "./apps/web": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "web", "namespace": "default"},
                    }
                ]
            },
        },
    )
    assert status == 201 and set(body["branches"]) == {"main"}
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "platform", "namespace": "flux-system"},
            "spec": {"url": GIT_URL, "interval": "5m", "ref": {"branch": "main"}},
        }
    )
    status, body = await call(
        cluster,
        "POST",
        "/sim/git/push",
        {"url": GIT_URL, "branch": "main", "paths": {"./apps/api": "kind: ConfigMap\n"}},
    )
    assert status == 200 and len(body["sha"]) == 40

    def revision() -> str:
        obj = cluster.store.get(SOURCES, "flux-system", "platform") or {}
        return str((obj.get("status") or {}).get("artifact", {}).get("revision", ""))

    await eventually(
        lambda: revision() == f"main@sha1:{body['sha']}",
        message="the pushed commit is the artifact",
    )
    status, listing = await call(cluster, "GET", "/sim/git/repositories")
    assert status == 200 and listing["items"][0]["paths"] == ["apps/api", "apps/web"]
    for bad in (
        {"branches": ["main"]},
        {"url": GIT_URL, "branches": "main"},
        {"url": GIT_URL, "paths": {"a": 3}},
        {"url": GIT_URL, "branches": {"main": "not-a-sha"}},
    ):
        status, body = await call(cluster, "POST", "/sim/git/repositories", bad)
        assert status == 400 and "error" in body, bad
    status, body = await call(
        cluster, "POST", "/sim/git/push", {"url": "https://nowhere", "branch": "main"}
    )
    assert status == 404 and "error" in body


async def test_settings_and_failure_routes(cluster: SimCluster) -> None:
    status, body = await call(cluster, "PUT", "/sim/flux", {"reconcileDelay": 0.25})
    assert (
        status == 200 and body["reconcileDelay"] == 0.25 and flux(cluster).reconcile_delay == 0.25
    )
    for bad in ({"reconcileDelay": -1}, {"reconcileDelay": "1"}, {"reconcileDelay": True}):
        status, body = await call(cluster, "PUT", "/sim/flux", bad)
        assert status == 400 and "error" in body
    status, body = await call(
        cluster,
        "PUT",
        "/sim/flux/failures",
        {"namespace": "flux-system", "name": "web", "message": "broken"},
    )
    assert status == 200 and body["failures"] == [
        {"namespace": "flux-system", "name": "web", "message": "broken"}
    ]
    status, body = await call(
        cluster, "PUT", "/sim/flux/failures", {"namespace": "flux-system", "name": "web"}
    )
    assert status == 200 and body["failures"] == []
    status, body = await call(cluster, "GET", "/sim/flux")
    assert status == 200 and body["reconcileDelay"] == 0.25


async def test_reconcile_delay_shows_progress_first(cluster: SimCluster) -> None:
    flux(cluster).reconcile_delay = 0.3
    flux(cluster).git.add_repository(
        GIT_URL,
        paths={
            "./apps/web": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "web", "namespace": "default"},
                }
            ]
        },
    )
    seen: list[tuple[str, str, str]] = []

    def record(event: Event) -> None:
        if event.gr in (SOURCES, KUSTOMIZATIONS) and event.type != "DELETED":
            for c in (event.obj.get("status") or {}).get("conditions") or []:
                if c["type"] == "Ready":
                    seen.append((event.obj["kind"], c["status"], c["message"]))

    unsubscribe = cluster.store.subscribe(record)
    try:
        started = asyncio.get_running_loop().time()
        cluster.apply_object(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "platform", "namespace": "flux-system"},
                "spec": {"url": GIT_URL, "interval": "5m", "ref": {"branch": "main"}},
            }
        )
        cluster.apply_object(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": "web", "namespace": "flux-system"},
                "spec": {
                    "interval": "10m",
                    "path": "./apps/web",
                    "prune": True,
                    "sourceRef": {"kind": "GitRepository", "name": "platform"},
                },
            }
        )
        await eventually(
            lambda: ("Kustomization", "True") in [(k, s) for k, s, _ in seen], message="applied"
        )
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        unsubscribe()
    sources = [(s, m) for k, s, m in seen if k == "GitRepository"]
    assert sources[0] == ("Unknown", "building artifact") and sources[-1][0] == "True"
    kustomizations = [(s, m) for k, s, m in seen if k == "Kustomization"]
    assert ("Unknown", "Reconciliation in progress") in kustomizations and kustomizations[-1][
        0
    ] == "True"
    assert elapsed >= 0.6, "source then Kustomization, each after the delay"


async def test_interval_rescans_without_a_request(cluster: SimCluster) -> None:
    registry = flux(cluster).registry
    registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "web", "namespace": "flux-system"},
            "spec": {"image": IMAGE, "interval": "1s"},
        }
    )

    def tag_count() -> int:
        obj = cluster.store.get(REPOS, "flux-system", "web") or {}
        return int((obj.get("status") or {}).get("lastScanResult", {}).get("tagCount", 0))

    await eventually(lambda: tag_count() == 1, message="first scan")
    registry.push(IMAGE, "main-abc1235-2")
    await eventually(
        lambda: tag_count() == 2, within=4, message="the next periodic scan sees the push"
    )
