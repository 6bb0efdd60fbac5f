"""Demo content for the emulated cluster: a platform git repository with six apps, their
ImageRepositories, a registry holding `main-…` and branch images for them, and the Helm charts
two of the apps deploy through.

This is the kind of Flux set-up a platform team has before installing Kollie; the app
manifests use the substitutions Kollie provides (`${environment}`, `${image_tag}`,
`${downscaler_uptime}`) and label their Ingress so Kollie can show its URL. `payments` deploys
through a HelmRelease of the `payments` chart in the `acme` HelmRepository, `search` through a
HelmRelease of the `search` chart pushed to the registry as an OCI artifact (an OCIRepository in
`flux-system`); the others are plain manifests.

One branch is broken on purpose, so the demo shows a failure to diagnose: CI pushed the
`fix-login` image of `admin` as `fix-login-<sha>` without the timestamp Kollie's image policy
expects, so an environment following that branch waits for an image that never matches.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from kubesim.flux.charts import Chart

if TYPE_CHECKING:
    from kubesim.cluster import SimCluster

GIT_URL = "https://git.example.com/acme/platform"
REGISTRY = "registry.example.com/acme"
CHARTS_URL = "https://charts.example.com/acme"
OCI_CHARTS = "oci://registry.example.com/acme/charts"
APPS = ("web", "api", "worker", "payments", "search", "admin")
BRANCH_IMAGES = {
    "feature-checkout": ("web", "api"),
    "feature-search-v2": ("search",),
}
BROKEN_TAGS = {"fix-login": ("admin",)}
"""Branch images pushed without the `-<timestamp>` suffix Kollie's image policies select by."""

NAMESPACE = """
apiVersion: v1
kind: Namespace
metadata:
  name: ${environment}
  annotations:
    downscaler/uptime: "${downscaler_uptime:=always}"
    kustomize.toolkit.fluxcd.io/prune: disabled
"""

CHART_TEMPLATES = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  chart: "{{ .Chart.Name }}-{{ .Chart.Version }}"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .Release.Name }}
  labels:
    kollie.io/environment: "{{ .Values.environment }}"
    kollie.io/app: {{ .Chart.Name }}
spec:
  rules:
    - host: "{{ .Values.host }}"
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: "{{ .Release.Name }}", port: {number: 80}}
"""
CHARTS = {
    "payments": Chart("payments", "1.4.0", "3.2.0", CHART_TEMPLATES, {"image": {"tag": ""}}),
    "search": Chart("search", "0.9.1", "1.9.0", CHART_TEMPLATES, {"image": {"tag": ""}}),
}


def app_manifests(app: str) -> str:
    if app in CHARTS:
        return NAMESPACE + "---" + helm_release(app)
    return (
        NAMESPACE
        + f"""---
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
    )


def helm_release(app: str) -> str:
    """The app's HelmRelease: `payments` from the HelmRepository, `search` from the OCI chart."""
    if app == "search":
        chart = """  chartRef:
    kind: OCIRepository
    name: search
    namespace: flux-system"""
    else:
        chart = f"""  chart:
    spec:
      chart: {app}
      version: "1.x"
      sourceRef:
        kind: HelmRepository
        name: acme
        namespace: flux-system"""
    return f"""
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {app}
  namespace: ${{environment}}
spec:
  interval: 10m
{chart}
  install:
    remediation:
      retries: 2
  values:
    environment: "${{environment}}"
    host: "{app}.${{environment}}.${{zone_name:=test.example.com}}"
    image:
      repository: {REGISTRY}/{app}
      tag: "${{image_tag}}"
"""


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:7]


def seed_demo(cluster: SimCluster, *, now: float | None = None) -> dict[str, Any]:
    """Load the demo set-up into a started cluster; returns a summary of what was created."""
    flux = cluster.flux
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
    flux.charts.add_chart(CHARTS_URL, CHARTS["payments"])
    flux.charts.push_oci(f"{OCI_CHARTS}/search", CHARTS["search"])
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "acme", "namespace": "flux-system"},
            "spec": {"url": CHARTS_URL, "interval": "10m"},
        }
    )
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "search", "namespace": "flux-system"},
            "spec": {
                "url": f"{OCI_CHARTS}/search",
                "interval": "10m",
                "ref": {"semver": "0.x"},
            },
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
    for branch, apps in BROKEN_TAGS.items():
        for app in apps:
            flux.registry.push(f"{REGISTRY}/{app}", f"{branch}-{_sha(branch + app)}")
            tags += 1
    return {
        "apps": list(APPS),
        "git": GIT_URL,
        "registry": REGISTRY,
        "tags": tags,
        "charts": {app: f"{c.name}@{c.version}" for app, c in CHARTS.items()},
    }
