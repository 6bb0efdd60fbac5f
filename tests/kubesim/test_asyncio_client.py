"""Fidelity: kubernetes-asyncio (the client Kollie uses) against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from kubesim import SimCluster
from tests.helpers import eventually

GROUP, VERSION, PLURAL = "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"


@pytest.fixture
def cluster(bare_cluster: SimCluster) -> SimCluster:
    """These tests check API semantics alone: no simulated controllers write to the cluster."""
    return bare_cluster


@pytest.fixture
async def api(cluster: SimCluster, tmp_path: Any) -> AsyncIterator[client.ApiClient]:
    path = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        yield api_client


def kustomization(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Kustomization",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "interval": "5m",
            "path": "./apps",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "missing"},
            "suspend": True,
        },
    }


async def test_crud_and_selectors(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map(
        "default",
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="a", labels={"app": "x"}), data={"k": "v"}
        ),
    )
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="b", labels={"app": "y"}))
    )
    listed = await core.list_namespaced_config_map("default", label_selector="app=x")
    assert [cm.metadata.name for cm in listed.items] == ["a"]
    listed = await core.list_namespaced_config_map("default", label_selector="app!=x")
    assert [cm.metadata.name for cm in listed.items] == ["b"]
    listed = await core.list_namespaced_config_map("default", field_selector="metadata.name=b")
    assert [cm.metadata.name for cm in listed.items] == ["b"]
    with pytest.raises(ApiException) as exc:
        await core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"))
        )
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as exc:
        await core.read_namespaced_config_map("nope", "default")
    body = json.loads(exc.value.body)
    assert (
        exc.value.status == 404
        and body["kind"] == "Status"
        and body["message"] == 'configmaps "nope" not found'
    )


async def test_pagination(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    for i in range(7):
        await custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, kustomization(f"k{i}")
        )
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await custom.list_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, limit=3, _continue=token
        )
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 3 and seen == [f"k{i}" for i in range(7)]


async def test_optimistic_concurrency(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    created = await custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, kustomization("k")
    )
    stale = json.loads(json.dumps(created))
    created["spec"]["interval"] = "1m"
    await custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "k", created)
    stale["spec"]["interval"] = "2m"
    with pytest.raises(ApiException) as exc:
        await custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "k", stale)
    assert exc.value.status == 409
    assert "the object has been modified" in json.loads(exc.value.body)["message"]


async def test_server_side_apply_with_explicit_content_type(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    body = kustomization("applied")
    # Creation by apply answers 201, which this generated client maps to None: read it back.
    await custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "applied",
        body,
        field_manager="kollie",
        _content_type="application/apply-patch+yaml",
    )
    obj = await custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "applied")
    assert obj["metadata"]["managedFields"][0]["manager"] == "kollie"
    assert obj["metadata"]["managedFields"][0]["operation"] == "Apply"
    again = await custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "applied",
        body,
        field_manager="kollie",
        _content_type="application/apply-patch+yaml",
    )
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], (
        "a no-op apply must not write"
    )


async def _collect(
    cluster: SimCluster, path: str, count: int, within: float = 5
) -> list[dict[str, Any]]:
    """Read `count` events from a raw watch request."""
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.get(cluster.url + path) as response:
        assert response.status == 200

        async def read() -> None:
            async for line in response.content:
                events.append(json.loads(line))
                if len(events) >= count:
                    return

        await asyncio.wait_for(read(), within)
    return events


async def test_watch_resumes_with_exactly_the_missed_events(
    api: client.ApiClient, cluster: SimCluster
) -> None:
    core = client.CoreV1Api(api)
    first = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1"))
    )
    rv = first.metadata.resource_version
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w2"))
    )
    await core.patch_namespaced_config_map("w1", "default", {"data": {"x": "1"}})
    await core.delete_namespaced_config_map("w2", "default")
    events = []
    watch = Watch()
    async with watch:
        async for event in watch.stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
        ):
            events.append((event["type"], event["object"].metadata.name))
    assert events == [("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]


async def test_watch_from_compacted_version_gets_410(cluster: SimCluster) -> None:
    rv = cluster.store.resource_version
    cluster.api.create(
        cluster.catalog.get(("", "configmaps")),
        "v1",
        "default",  # type: ignore[arg-type]
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        __import__("kubesim.objects", fromlist=["WriteOptions"]).WriteOptions(),
    )
    cluster.expire_history()
    events = await _collect(
        cluster, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}", 1
    )
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def test_kubernetes_asyncio_watch_raises_410_after_compaction(
    api: client.ApiClient, cluster: SimCluster
) -> None:
    core = client.CoreV1Api(api)
    old = (await core.list_namespaced_config_map("default")).metadata.resource_version
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
    )
    cluster.expire_history()
    with pytest.raises(ApiException) as exc:
        async with Watch() as watch:
            async for _ in watch.stream(
                core.list_namespaced_config_map, "default", resource_version=old, timeout_seconds=2
            ):
                pass
    assert exc.value.status == 410


async def test_bookmarks_and_initial_events(cluster: SimCluster) -> None:
    api = cluster.api
    cm = cluster.catalog.get(("", "configmaps"))
    assert cm is not None
    from kubesim.objects import WriteOptions

    api.create(
        cm,
        "v1",
        "default",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "i1"}},
        WriteOptions(),
    )
    path = (
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=5"
    )
    events = await _collect(cluster, path, 3)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "i1"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events[2]["type"] == "BOOKMARK"  # periodic, while idle
    assert int(events[2]["object"]["metadata"]["resourceVersion"]) >= int(
        events[1]["object"]["metadata"]["resourceVersion"]
    )


async def test_label_selected_watch_sees_objects_leave_and_enter(cluster: SimCluster) -> None:
    from kubesim.objects import WriteOptions

    cm = cluster.catalog.get(("", "configmaps"))
    assert cm is not None
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sel", "labels": {"keep": "yes"}},
    }
    created = cluster.api.create(cm, "v1", "default", body, WriteOptions())
    rv = created["metadata"]["resourceVersion"]
    unlabelled = {**body, "metadata": {"name": "sel", "labels": {"keep": "no"}}}
    cluster.api.update(cm, "v1", "default", "sel", unlabelled, WriteOptions())
    cluster.api.update(cm, "v1", "default", "sel", body, WriteOptions())
    events = await _collect(
        cluster,
        f"/api/v1/namespaces/default/configmaps?watch=1&labelSelector=keep%3Dyes&resourceVersion={rv}",
        2,
    )
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


async def test_invalid_custom_resource_gets_422_naming_fields(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    body = kustomization("bad")
    body["spec"]["interval"] = 5
    del body["spec"]["prune"]
    with pytest.raises(ApiException) as exc:
        await custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    status = json.loads(exc.value.body)
    assert exc.value.status == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.interval", "spec.prune"} <= fields
    listed = await custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert listed["items"] == [], "a rejected write must store nothing"


async def test_gc_background_cascade(api: client.ApiClient, cluster: SimCluster) -> None:
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    owner = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="env"))
    )
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "env",
        "uid": owner.metadata.uid,
        "blockOwnerDeletion": True,
    }
    body = kustomization("env-web")
    body["metadata"]["ownerReferences"] = [ref]
    await custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    await core.delete_namespaced_config_map("env", "default")

    async def gone() -> bool:
        items = (await custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL))[
            "items"
        ]
        return not items

    await eventually(gone, message="dependent Kustomization garbage-collected")
