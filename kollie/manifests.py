"""The objects Kollie writes, exactly as DESIGN §2 shapes them. Pure functions: no I/O.

Each builder returns the whole desired object; Kollie applies it with server-side apply, so
building it again from the same inputs and applying it is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kollie import labels
from kollie.catalog import AppTemplate, Catalog, ObjectRef
from kollie.naming import kube_name, tag_pattern


def owner_reference(environment: str, uid: str) -> dict[str, Any]:
    """Makes an object a dependent of its environment record, for garbage collection."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": environment,
        "uid": uid,
        "blockOwnerDeletion": True,
        "controller": False,
    }


def environment_record(
    name: str, *, namespace: str, owner: str, created_at: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels.common_labels(name),
            "annotations": {labels.OWNER: owner, labels.CREATED_AT: created_at},
        },
        "data": {
            labels.RECORD_KEY: json.dumps(dict(settings), sort_keys=True, separators=(",", ":"))
        },
    }


def substitutions(
    catalog: Catalog, app: AppTemplate, *, environment: str, uptime: str, image_tag: str | None
) -> dict[str, str]:
    """Catalog-wide, then the app's own, then Kollie's keys (which win)."""
    out = {**catalog.substitutions, **app.substitutions}
    out[labels.SUB_ENVIRONMENT] = environment
    out[labels.SUB_UPTIME] = uptime
    if image_tag:
        out[labels.SUB_IMAGE_TAG] = image_tag
    return {k: str(v) for k, v in out.items()}


def kustomization(
    catalog: Catalog,
    app: AppTemplate,
    *,
    environment: str,
    namespace: str,
    prefix: str,
    uptime: str,
    image_tag: str | None,
    owner_uid: str,
    source: ObjectRef,
    apps_in_environment: set[str],
) -> dict[str, Any]:
    """An app's Kustomization. It stays suspended until its image tag is known, so Flux never
    builds it with an empty `${image_tag}`."""
    spec: dict[str, Any] = {
        "interval": app.interval,
        "timeout": app.timeout,
        "path": app.path,
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": source.name, "namespace": source.namespace},
        "postBuild": {
            "substitute": substitutions(
                catalog, app, environment=environment, uptime=uptime, image_tag=image_tag
            )
        },
        "suspend": image_tag is None,
    }
    depends = [
        {"name": kube_name(environment, d)} for d in app.depends_on if d in apps_in_environment
    ]
    if depends:
        spec["dependsOn"] = depends
    if app.service_account_name:
        spec["serviceAccountName"] = app.service_account_name
    if app.wait:
        spec["wait"] = True
    return {
        "apiVersion": labels.KUSTOMIZATION.api_version,
        "kind": labels.KUSTOMIZATION.kind,
        "metadata": {
            "name": kube_name(environment, app.name),
            "namespace": namespace,
            "labels": labels.app_labels(environment, app.name),
            "annotations": {labels.IMAGE_TAG_PREFIX: prefix},
            "ownerReferences": [owner_reference(environment, owner_uid)],
        },
        "spec": spec,
    }


def image_policy(
    app: AppTemplate, *, environment: str, namespace: str, prefix: str, owner_uid: str
) -> dict[str, Any]:
    """Tracks the newest `<prefix>-<sha>-<ts>` image, newest by timestamp; reflects its digest."""
    return {
        "apiVersion": labels.IMAGE_POLICY.api_version,
        "kind": labels.IMAGE_POLICY.kind,
        "metadata": {
            "name": kube_name(environment, app.name),
            "namespace": namespace,
            "labels": labels.app_labels(environment, app.name),
            "annotations": {labels.IMAGE_TAG_PREFIX: prefix},
            "ownerReferences": [owner_reference(environment, owner_uid)],
        },
        "spec": {
            "imageRepositoryRef": {
                "name": app.image_repository.name,
                "namespace": app.image_repository.namespace,
            },
            "filterTags": {"pattern": tag_pattern(prefix), "extract": "$ts"},
            "policy": {"numerical": {"order": "asc"}},
            "digestReflectionPolicy": "IfNotPresent",
        },
    }


def git_repository_name(template: ObjectRef, environment: str) -> str:
    return f"{template.name}-{environment}"


def git_repository_copy(
    template: Mapping[str, Any], *, environment: str, namespace: str, branch: str, owner_uid: str
) -> dict[str, Any]:
    """The template GitRepository (as read from the cluster) following another branch."""
    spec = dict(template.get("spec") or {})
    spec["ref"] = {"branch": branch}
    name = f"{template['metadata']['name']}-{environment}"
    return {
        "apiVersion": labels.GIT_REPOSITORY.api_version,
        "kind": labels.GIT_REPOSITORY.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels.common_labels(environment),
            "ownerReferences": [owner_reference(environment, owner_uid)],
        },
        "spec": spec,
    }
