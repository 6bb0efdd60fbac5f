"""Demo content for the emulated cluster: a platform git repository with six apps, their
ImageRepositories, and a registry holding `main-…` and branch images for them.

This is the kind of Flux set-up a platform team has before installing Kollie; the app
manifests use the substitutions Kollie provides (`${environment}`, `${image_tag}`,
`${downscaler_uptime}`) and label their Ingress so Kollie can show its URL.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubesim.cluster import SimCluster

GIT_URL = "https://git.example.com/acme/platform"
REGISTRY = "registry.example.com/acme"
APPS = ("web", "api", "worker", "payments", "search", "admin")
BRANCH_IMAGES = {
    "feature-checkout": ("web", "api"),
    "fix-login": ("admin",),
    "feature-search-v2": ("search",),
}


def app_manifests(app: str) -> str:
    return f"""
apiVersion: v1
kind: Namespace
metadata:
  name: ${{environment}}
  annotations:
    downscaler/uptime: "${{downscaler_uptime:=always}}"
    kustomize.toolkit.fluxcd.io/prune: disabled
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}
  namespace: ${{environment}}
data:
  image: "{REGISTRY}/{app}:${{image_tag}}"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {app}
  namespace: ${{environment}}
  labels:
    kollie.io/environment: ${{environment}}
    kollie.io/app: {app}
spec:
  rules:
    - host: {app}.${{environment}}.${{zone_name:=test.example.com}}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {{name: {app}, port: {{number: 80}}}}
"""


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:7]


def seed_demo(cluster: SimCluster, *, now: float | None = None) -> dict[str, Any]:
    """Load the demo set-up into a started cluster; returns a summary of what was created."""
    flux: Any = next(
        (c for c in cluster.controllers if hasattr(c, "registry") and hasattr(c, "git")), None
    )
    if flux is None:
        raise RuntimeError("the demo needs the simulated Flux controllers")
    ts = int(now or time.time())
    flux.git.add_repository(
        GIT_URL, branches=["main"], paths={f"./apps/{a}": app_manifests(a) for a in APPS}
    )
    cluster.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kollie"}})
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "platform", "namespace": "flux-system"},
            "spec": {"url": GIT_URL, "interval": "5m", "ref": {"branch": "main"}},
        }
    )
    tags = 0
    for app in APPS:
        image = f"{REGISTRY}/{app}"
        for age in (3, 2, 1):
            flux.registry.push(image, f"main-{_sha(app + str(age))}-{ts - age * 3600}")
            tags += 1
        cluster.apply_object(
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageRepository",
                "metadata": {"name": app, "namespace": "flux-system"},
                "spec": {
                    "image": image,
                    "interval": "5m",
                    "accessFrom": {
                        "namespaceSelectors": [
                            {"matchLabels": {"kubernetes.io/metadata.name": "kollie"}}
                        ]
                    },
                },
            }
        )
    for branch, apps in BRANCH_IMAGES.items():
        for app in apps:
            flux.registry.push(f"{REGISTRY}/{app}", f"{branch}-{_sha(branch + app)}-{ts - 600}")
            tags += 1
    return {"apps": list(APPS), "git": GIT_URL, "registry": REGISTRY, "tags": tags}
