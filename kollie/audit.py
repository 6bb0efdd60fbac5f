"""The audit trail: every change to an environment becomes a Kubernetes Event on its record
(and a log line), so `kubectl describe configmap <env>` and the UI show who did what, how."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kollie import labels
from kollie.manifests import owner_reference

REASONS = {
    "EnvironmentCreated",
    "EnvironmentUpdated",
    "EnvironmentDeleted",
    "AppAdded",
    "AppRemoved",
    "UptimeChanged",
    "FluxBranchChanged",
    "ImageFollowed",
    "KeepChanged",
    "EnvironmentExpired",
}


def event(
    *,
    environment: str,
    namespace: str,
    uid: str,
    reason: str,
    message: str,
    actor: str,
    via: str,
    now: datetime,
    instance: str,
    app: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about an environment record; owned by it, so it goes when the record goes."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    micro = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{environment}.",
            "namespace": namespace,
            "labels": labels.app_labels(environment, app)
            if app
            else labels.common_labels(environment),
            "annotations": {"kollie.io/actor": actor, "kollie.io/via": via},
            "ownerReferences": [owner_reference(environment, uid)],
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": environment,
            "namespace": namespace,
            "uid": uid,
        },
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "kollie"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": micro,
        "count": 1,
        "action": reason,
        "reportingComponent": "kollie",
        "reportingInstance": instance,
    }
