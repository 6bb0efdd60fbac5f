"""Kustomization `status.inventory` as kustomize-controller writes it: one `{id, v}` entry per
applied object, in the order of fluxcd/pkg/ssa `ApplyAllStaged` (cluster definitions, then
`*Class` kinds, then the rest, each stage in kind order)."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from tests.kubesim.test_flux_kustomize import (
    GIT_URL,
    KUSTOMIZATIONS,
    flux,
    git_repository,
    kustomization,
    settled,
)


def widget_class_crd() -> dict[str, Any]:
    """A cluster-scoped `*Class` kind from a group that sorts after every other one."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgetclasses.zz.example.com"},
        "spec": {
            "group": "zz.example.com",
            "scope": "Cluster",
            "names": {
                "plural": "widgetclasses",
                "singular": "widgetclass",
                "kind": "WidgetClass",
                "listKind": "WidgetClassList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


MANIFESTS: list[dict[str, Any]] = [
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "pr-1"},
    },
    {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "pr-1"},
        "spec": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "web"}},
    },
    {"apiVersion": "zz.example.com/v1", "kind": "WidgetClass", "metadata": {"name": "fast"}},
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "pr-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    },
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": "pr-1"}},
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
    },
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pr-1"}},
]


async def test_inventory_lists_every_applied_object_in_apply_order(cluster: SimCluster) -> None:
    cluster.apply_object(widget_class_crd())
    flux(cluster).git.add_repository(GIT_URL, paths={"./apps/web": MANIFESTS})
    cluster.apply_object(git_repository())
    cluster.apply_object(kustomization())
    obj = await settled(cluster, KUSTOMIZATIONS, "web", ready="True")
    assert obj["status"]["inventory"] == {
        "entries": [
            {"id": "_pr-1__Namespace", "v": "v1"},
            {"id": "_reader_rbac.authorization.k8s.io_ClusterRole", "v": "v1"},
            {"id": "_fast_zz.example.com_WidgetClass", "v": "v1"},
            {"id": "pr-1_web__ConfigMap", "v": "v1"},
            {"id": "pr-1_web_apps_Deployment", "v": "v1"},
            {"id": "pr-1_web_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"},
            {"id": "pr-1_web_networking.k8s.io_Ingress", "v": "v1"},
        ]
    }
    assert cluster.store.get(("helm.toolkit.fluxcd.io", "helmreleases"), "pr-1", "web")
