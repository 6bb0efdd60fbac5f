"""Kollie's access to the Kubernetes API: one generic client and one error hierarchy."""

from kollie.kube.client import KubeClient, RetryPolicy
from kollie.kube.errors import (
    ApiUnavailable,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
)

__all__ = [
    "ApiUnavailable",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClient",
    "KubeError",
    "NotFound",
    "RetryPolicy",
]
