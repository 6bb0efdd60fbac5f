"""The demo content works end to end: an app Kustomization of the demo repository becomes Ready."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.demo import APPS, REGISTRY, seed_demo
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


def app_kustomization(app: str, environment: str, image_tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": f"{environment}-{app}", "namespace": "kollie"},
        "spec": {
            "interval": "10m",
            "path": f"./apps/{app}",
            "prune": True,
            "wait": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform", "namespace": "flux-system"},
            "postBuild": {"substitute": {"environment": environment, "image_tag": image_tag}},
        },
    }


async def test_demo_apps_deploy_through_helm_releases(cluster: SimCluster) -> None:
    summary = seed_demo(cluster)
    assert summary["charts"] == {"payments": "payments@1.4.0", "search": "search@0.9.1"}
    for app in ("payments", "search"):
        cluster.apply_object(app_kustomization(app, "pr-9", "main-abc1234-1"))

    def ready(app: str) -> dict[str, Any] | None:
        ks = cluster.store.get(
            ("kustomize.toolkit.fluxcd.io", "kustomizations"), "kollie", f"pr-9-{app}"
        )
        conditions = {
            c["type"]: c for c in ((ks or {}).get("status") or {}).get("conditions") or []
        }
        return ks if conditions.get("Ready", {}).get("status") == "True" else None

    for app in ("payments", "search"):
        ks = await eventually(lambda app=app: ready(app), message=f"{app} deployed")
        entries = ks["status"]["inventory"]["entries"]
        assert {"id": f"pr-9_{app}_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"} in entries
        release = cluster.store.get(("helm.toolkit.fluxcd.io", "helmreleases"), "pr-9", app)
        assert release is not None and release["status"]["history"][0]["status"] == "deployed"
        ing = cluster.store.get(("networking.k8s.io", "ingresses"), "pr-9", app)
        assert ing is not None and ing["spec"]["rules"][0]["host"] == f"{app}.pr-9.test.example.com"
        assert ing["metadata"]["labels"]["kollie.io/environment"] == "pr-9"
        cm = cluster.store.get(("", "configmaps"), "pr-9", app)
        assert cm is not None and cm["data"]["image"] == f"{REGISTRY}/{app}:main-abc1234-1"
    search = cluster.store.get(("helm.toolkit.fluxcd.io", "helmreleases"), "pr-9", "search")
    assert (search or {})["status"]["lastAttemptedRevisionDigest"].startswith("sha256:")


async def test_demo_broken_branch_image_never_matches(cluster: SimCluster) -> None:
    seed_demo(cluster)
    cluster.apply_object(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "login-fix-admin", "namespace": "kollie"},
            "spec": {
                "imageRepositoryRef": {"name": "admin", "namespace": "flux-system"},
                "filterTags": {
                    "pattern": "^fix-login-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$",
                    "extract": "$ts",
                },
                "policy": {"numerical": {"order": "asc"}},
            },
        }
    )

    def failed() -> dict[str, Any] | None:
        policy = cluster.store.get(
            ("image.toolkit.fluxcd.io", "imagepolicies"), "kollie", "login-fix-admin"
        )
        for c in ((policy or {}).get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready" and c["status"] == "False" and c["reason"] == "Failure":
                return c
        return None

    condition = await eventually(failed, message="no tag matches the branch")
    assert condition["message"] == "version list argument cannot be empty"
    repo = cluster.store.get(
        ("image.toolkit.fluxcd.io", "imagerepositories"), "flux-system", "admin"
    )
    latest = (repo or {})["status"]["lastScanResult"]["latestTags"]
    assert any(t.startswith("fix-login-") for t in latest), "a tag has the prefix, not the form"
