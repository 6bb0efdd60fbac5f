"""Bad input gets the status code and `Status` body a real API server gives, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kubesim import SimCluster

CM_PATH = "/api/v1/namespaces/default/configmaps"
KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations"


@pytest.fixture
async def http(bare_cluster: SimCluster) -> AsyncIterator[tuple[aiohttp.ClientSession, SimCluster]]:
    async with aiohttp.ClientSession(base_url=bare_cluster.url) as session:
        yield session, bare_cluster


async def _status(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body = await response.json(content_type=None)
    assert body["kind"] == "Status" and body["status"] == "Failure", body
    assert body["code"] == response.status
    return dict(body)


async def test_malformed_json_is_400(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, cluster = http
    rv = cluster.store.resource_version
    async with session.post(
        CM_PATH, data=b'{"metadata": {', headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
        assert "json" in (await _status(r))["message"].lower()
    async with session.patch(
        f"{CM_PATH}/x", data=b"not json", headers={"Content-Type": "application/merge-patch+json"}
    ) as r:
        assert r.status == 400
    assert cluster.store.resource_version == rv, "nothing may be written"


async def test_malformed_yaml_apply_is_400(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, _cluster = http
    async with session.patch(
        f"{CM_PATH}/x?fieldManager=t",
        data=b"metadata: [unclosed",
        headers={"Content-Type": "application/apply-patch+yaml"},
    ) as r:
        assert r.status == 400


async def test_unknown_resource_and_version_are_404(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    for path in (
        "/api/v1/namespaces/default/widgets",
        "/apis/kustomize.toolkit.fluxcd.io/v9/kustomizations",
        "/apis/nope.example.com/v1/things",
        "/api/v2/configmaps",
    ):
        async with session.get(path) as r:
            assert r.status == 404, path
            assert (await _status(r))["reason"] == "NotFound"


async def test_wrong_api_version_or_kind_in_body_is_400(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, cluster = http
    body = {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "a"}}
    async with session.post(CM_PATH, json=body) as r:
        assert r.status == 400
        assert "does not match the expected API version" in (await _status(r))["message"]
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}
    async with session.post(CM_PATH, json=body) as r:
        assert r.status == 400
    assert cluster.store.get(("", "configmaps"), "default", "a") is None


async def test_oversized_body_is_413(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, cluster = http
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"k": "x" * (3 * 1024 * 1024 + 10)},
    }
    async with session.post(
        CM_PATH, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 413
        assert (await _status(r))["reason"] == "RequestEntityTooLarge"
    assert cluster.store.get(("", "configmaps"), "default", "big") is None


async def test_unsupported_patch_type_is_415(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    await session.post(KS_PATH, json=_kustomization("k"))
    async with session.patch(
        f"{KS_PATH}/k",
        json={"spec": {}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    ) as r:
        assert r.status == 415, "custom resources do not support strategic merge patch"
    async with session.patch(
        f"{KS_PATH}/k", data=b"{}", headers={"Content-Type": "text/plain"}
    ) as r:
        assert r.status == 415


async def test_conflicting_writes_are_409_and_keep_the_winner(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, cluster = http
    async with session.post(KS_PATH, json=_kustomization("k")) as r:
        created = await r.json()
    first = {**created, "spec": {**created["spec"], "interval": "1m"}}
    second = {**created, "spec": {**created["spec"], "interval": "2m"}}
    async with session.put(f"{KS_PATH}/k", json=first) as r:
        assert r.status == 200
    async with session.put(f"{KS_PATH}/k", json=second) as r:
        assert r.status == 409
        assert (await _status(r))["reason"] == "Conflict"
    without_rv = {
        **second,
        "metadata": {k: v for k, v in second["metadata"].items() if k != "resourceVersion"},
    }
    async with session.put(f"{KS_PATH}/k", json=without_rv) as r:
        assert r.status == 422, "custom resources refuse unconditional updates"
    stored = cluster.store.get(("kustomize.toolkit.fluxcd.io", "kustomizations"), "default", "k")
    assert stored is not None and stored["spec"]["interval"] == "1m"


async def test_invalid_labels_and_names_are_422(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, cluster = http
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "Bad_Name", "labels": {"a": "x y"}},
    }
    async with session.post(CM_PATH, json=body) as r:
        status = await _status(r)
        assert r.status == 422 and status["reason"] == "Invalid"
        assert {c["field"] for c in status["details"]["causes"]} == {
            "metadata.name",
            "metadata.labels",
        }
    assert cluster.store.count(("", "configmaps")) == 0


async def test_bad_selectors_are_400(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, _cluster = http
    async with session.get(CM_PATH, params={"labelSelector": "a in (b"}) as r:
        assert r.status == 400
    async with session.get(CM_PATH, params={"fieldSelector": "spec.colour=blue"}) as r:
        assert r.status == 400
        assert "field label not supported" in (await _status(r))["message"]


async def test_namespace_mismatch_and_missing_namespace(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "other"},
    }
    async with session.post(CM_PATH, json=body) as r:
        assert r.status == 400
    async with session.post(
        "/api/v1/namespaces/ghost/configmaps", json={**body, "metadata": {"name": "a"}}
    ) as r:
        assert r.status == 404
        assert (await _status(r))["message"] == 'namespaces "ghost" not found'


def _kustomization(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name},
        "spec": {
            "interval": "5m",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "p"},
        },
    }
