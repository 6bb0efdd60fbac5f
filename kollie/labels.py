"""Every label, annotation and resource identity Kollie uses, in one place.

A deployment that must map these keys changes them here only.
"""

from __future__ import annotations

from dataclasses import dataclass

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "kollie"
ENVIRONMENT = "kollie.io/environment"
APP = "kollie.io/app"
OWNER = "kollie.io/owner"
CREATED_AT = "kollie.io/created-at"
IMAGE_TAG_PREFIX = "kollie.io/image-tag-prefix"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FLUX_OWNER_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_OWNER_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
"""kustomize-controller labels every object it applies with the Kustomization that owns it."""

RECORD_KEY = "environment.json"
"""The key of the environment ConfigMap's data that holds its settings as JSON."""

SUB_ENVIRONMENT = "environment"
SUB_UPTIME = "downscaler_uptime"
SUB_IMAGE_TAG = "image_tag"


@dataclass(frozen=True)
class Resource:
    """A Kubernetes resource type."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


NAMESPACE = Resource("", "v1", "namespaces", "Namespace")
CONFIG_MAP = Resource("", "v1", "configmaps", "ConfigMap")
EVENT = Resource("", "v1", "events", "Event")
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")
INGRESS = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
KUSTOMIZATION = Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization")
IMAGE_POLICY = Resource("image.toolkit.fluxcd.io", "v1", "imagepolicies", "ImagePolicy")
IMAGE_REPOSITORY = Resource("image.toolkit.fluxcd.io", "v1", "imagerepositories", "ImageRepository")
GIT_REPOSITORY = Resource("source.toolkit.fluxcd.io", "v1", "gitrepositories", "GitRepository")
HELM_RELEASE = Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease")

MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
"""Selects every object Kollie manages."""


def common_labels(environment: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGED_BY_VALUE, ENVIRONMENT: environment}


def app_labels(environment: str, app: str) -> dict[str, str]:
    return {**common_labels(environment), APP: app}
