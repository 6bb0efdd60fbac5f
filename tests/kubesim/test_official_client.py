"""Fidelity: the official (synchronous) `kubernetes` client against the standalone emulator."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.conftest import Standalone

GROUP, VERSION = "kustomize.toolkit.fluxcd.io", "v1"


@pytest.fixture
def api(standalone: Standalone) -> Iterator[tuple[client.ApiClient, str]]:
    api_client = config.new_client_from_config(config_file=str(standalone.kubeconfig))
    ns = f"o-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns))
    )
    yield api_client, ns
    api_client.close()


def _policy(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": name},
        "spec": {
            "imageRepositoryRef": {"name": "web", "namespace": "flux-system"},
            "filterTags": {"pattern": "^main-(?P<ts>[0-9]+)$", "extract": "$ts"},
            "policy": {"numerical": {"order": "asc"}},
        },
    }


def test_discovery_and_version(api: tuple[client.ApiClient, str]) -> None:
    api_client, _ = api
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1"
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {
        "kustomize.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
        "coordination.k8s.io",
    } <= groups


def test_custom_objects_status_and_generation(api: tuple[client.ApiClient, str]) -> None:
    api_client, ns = api
    custom = client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(
        "image.toolkit.fluxcd.io", "v1", ns, "imagepolicies", _policy("p")
    )
    assert created["metadata"]["generation"] == 1
    status = {
        "status": {
            "observedGeneration": 1,
            "latestRef": {"name": "registry.example.com/web", "tag": "main-2"},
        }
    }
    updated = custom.patch_namespaced_custom_object_status(
        "image.toolkit.fluxcd.io", "v1", ns, "imagepolicies", "p", status
    )
    assert (
        updated["metadata"]["generation"] == 1 and updated["status"]["latestRef"]["tag"] == "main-2"
    )
    spec_change = custom.patch_namespaced_custom_object(
        "image.toolkit.fluxcd.io",
        "v1",
        ns,
        "imagepolicies",
        "p",
        {"spec": {"policy": {"numerical": {"order": "desc"}}}},
    )
    assert spec_change["metadata"]["generation"] == 2
    assert spec_change["status"]["latestRef"]["tag"] == "main-2", "main-resource writes keep status"


def test_coordination_lease_round_trip(api: tuple[client.ApiClient, str]) -> None:
    api_client, ns = api
    coordination = client.CoordinationV1Api(api_client)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="leader"),
        spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
    )
    coordination.create_namespaced_lease(ns, lease)
    got = coordination.read_namespaced_lease("leader", ns)
    got.spec.holder_identity = "b"
    coordination.replace_namespaced_lease("leader", ns, got)
    with pytest.raises(ApiException) as exc:
        coordination.replace_namespaced_lease("leader", ns, got)  # stale resourceVersion
    assert exc.value.status == 409
    assert coordination.read_namespaced_lease("leader", ns).spec.holder_identity == "b"


def test_watch_with_official_client(api: tuple[client.ApiClient, str]) -> None:
    api_client, ns = api
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"))
    )
    core.delete_namespaced_config_map("a", ns)
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "a"), ("DELETED", "a")]


def test_errors_are_status_objects(api: tuple[client.ApiClient, str]) -> None:
    api_client, ns = api
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as exc:
        custom.get_namespaced_custom_object(GROUP, VERSION, ns, "kustomizations", "missing")
    body = json.loads(exc.value.body)
    assert exc.value.status == 404
    assert body["message"] == 'kustomizations.kustomize.toolkit.fluxcd.io "missing" not found'
    with pytest.raises(ApiException) as exc:
        custom.list_namespaced_custom_object(GROUP, "v9", ns, "kustomizations")
    assert exc.value.status == 404
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(api_client).create_namespaced_config_map(
            "no-such-namespace", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
        )
    assert (
        exc.value.status == 404
        and json.loads(exc.value.body)["message"] == 'namespaces "no-such-namespace" not found'
    )
