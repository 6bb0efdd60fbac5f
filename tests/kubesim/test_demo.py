"""The demo content works end to end: an app Kustomization of the demo repository becomes Ready."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.demo import APPS, seed_demo
from tests.helpers import eventually


async def test_demo_app_deploys(cluster: SimCluster) -> None:
    summary = seed_demo(cluster)
    assert summary["apps"] == list(APPS)
    ns_labels = (cluster.store.get(("", "namespaces"), "", "kollie") or {})["metadata"]["labels"]
    assert ns_labels["kubernetes.io/metadata.name"] == "kollie"
    cluster.apply_object(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "pr-web", "namespace": "kollie"},
            "spec": {
                "imageRepositoryRef": {"name": "web", "namespace": "flux-system"},
                "filterTags": {
                    "pattern": "^feature-checkout-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$",
                    "extract": "$ts",
                },
                "policy": {"numerical": {"order": "asc"}},
            },
        }
    )

    def tag() -> str | None:
        policy = (
            cluster.store.get(("image.toolkit.fluxcd.io", "imagepolicies"), "kollie", "pr-web")
            or {}
        )
        return ((policy.get("status") or {}).get("latestRef") or {}).get("tag")

    image_tag = await eventually(tag, message="branch image resolved")
    assert image_tag.startswith("feature-checkout-")
    cluster.apply_object(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "pr-web", "namespace": "kollie"},
            "spec": {
                "interval": "10m",
                "path": "./apps/web",
                "prune": True,
                "sourceRef": {
                    "kind": "GitRepository",
                    "name": "platform",
                    "namespace": "flux-system",
                },
                "postBuild": {"substitute": {"environment": "pr", "image_tag": image_tag}},
            },
        }
    )

    def ingress() -> dict[str, Any] | None:
        return cluster.store.get(("networking.k8s.io", "ingresses"), "pr", "web")

    ing = await eventually(ingress, message="the app's Ingress applied")
    assert ing["spec"]["rules"][0]["host"] == "web.pr.test.example.com"
    assert ing["metadata"]["labels"]["kollie.io/environment"] == "pr"
    configmap = cluster.store.get(("", "configmaps"), "pr", "web")
    assert configmap is not None and configmap["data"]["image"].endswith(f":{image_tag}")
