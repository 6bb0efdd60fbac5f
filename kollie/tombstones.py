"""When each environment was last deleted, kept in the cluster (Kollie has no database).

A registry webhook must never bring back an environment someone deleted by replaying an old
delivery: auto-create refuses a tag built before the environment's last deletion (the tag
carries its build time, `<prefix>-<sha>-<unixts>`). The deletion times live in one ConfigMap in
Kollie's namespace, `kollie.deletions` (a dot, so no environment can ever be named like it).
It carries no environment label, so nothing that lists environment records mistakes it for one;
it is read straight from the API server (a list by name, which Kollie's RBAC already allows)
when an auto-create is about to happen, so a deletion on another replica a moment ago counts.

The map is bounded: past `LIMIT` entries the oldest are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kollie import labels
from kollie.kube import Conflict, KubeClient, NotFound
from kollie.kube.client import collection_path

NAME = "kollie.deletions"
LIMIT = 1000
"""Environments remembered; a ConfigMap of 1000 short entries stays far below 1 MiB."""


def deletions(obj: Mapping[str, Any]) -> dict[str, float] | None:
    """Environment name → unix time of its last deletion, if `obj` is the tombstone ConfigMap."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("name") != NAME:
        return None
    data = obj.get("data")
    out: dict[str, float] = {}
    for env, stamp in (data if isinstance(data, Mapping) else {}).items():
        try:
            out[str(env)] = datetime.fromisoformat(str(stamp)).timestamp()
        except ValueError:
            continue
    return out


async def read(client: KubeClient, namespace: str) -> dict[str, float]:
    """The recorded deletions, as the API server holds them now (errors propagate: a caller
    that cannot know whether an environment was deleted must not create it)."""
    answer = await client.request(
        "GET",
        collection_path(labels.CONFIG_MAP, namespace),
        query={"fieldSelector": f"metadata.name={NAME}"},
    )
    for item in answer.get("items") or []:
        found = deletions(item)
        if found is not None:
            return found
    return {}


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def record(client: KubeClient, namespace: str, environment: str, when: datetime) -> None:
    """Remember that `environment` is deleted at `when` (call before deleting it).

    A merge patch adds one key atomically, so replicas deleting at once do not lose each
    other's entries; the object is created on first use. Errors propagate: the caller should not
    delete an environment whose deletion could not be recorded.
    """
    patch = {"data": {environment: _stamp(when)}}
    try:
        current = await client.merge_patch(labels.CONFIG_MAP, namespace, NAME, patch)
    except NotFound:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": namespace,
                "labels": {labels.MANAGED_BY: labels.MANAGED_BY_VALUE},
            },
            **patch,
        }
        try:
            current = await client.create(labels.CONFIG_MAP, namespace, body)
        except Conflict:  # another replica created it first
            current = await client.merge_patch(labels.CONFIG_MAP, namespace, NAME, patch)
    known = deletions(current) or {}
    if len(known) > LIMIT:
        oldest = sorted(known, key=lambda env: known[env])[: len(known) - LIMIT]
        prune: dict[str, Any] = {"data": dict.fromkeys(oldest)}
        await client.merge_patch(labels.CONFIG_MAP, namespace, NAME, prune)
