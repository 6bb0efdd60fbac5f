"""Kollie never takes over an object it did not make for the same environment.

Kollie writes its objects by name in its namespace (the record `<env>`, each app's
Kustomization and ImagePolicy `<env>-<app>`, GitRepository copies `<repository>-<env>`) with
server-side apply, which writes into whatever object has that name. Other objects live there
too: the chart's catalog ConfigMap (`<release>-catalog`), the catalog's own GitRepositories and
ImageRepositories when `--no-cross-namespace-refs` puts them there, and the objects of another
environment whose names run together (environment `a` with app `b-web`, and `a-b` with `web`).
An environment named to match would change such an object and, through its owner reference,
delete it with the environment. So before it writes a name for the first time, Kollie asks the
API server whether an object of that name exists that is not labelled as this environment's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kollie import labels
from kollie.kube import KubeClient
from kollie.kube.client import Resource, collection_path


def _environment_of(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    found = ((meta or {}).get("labels") or {}).get(labels.ENVIRONMENT) if meta else None
    return found if isinstance(found, str) else None


async def taken_name(
    client: KubeClient, namespace: str, environment: str, wanted: Iterable[tuple[Resource, str]]
) -> str | None:
    """The first of `wanted` (resource, name) that exists in `namespace` and is not one of
    `environment`'s own objects, described ("ConfigMap kollie-catalog"), or None.

    A list by name (Kollie's RBAC allows lists, not gets, in its namespace); errors propagate:
    a name not known to be free is not written.
    """
    for resource, name in wanted:
        answer = await client.request(
            "GET",
            collection_path(resource, namespace),
            query={"fieldSelector": f"metadata.name={name}"},
        )
        for item in answer.get("items") or []:
            if _environment_of(item) != environment:
                return f"{resource.kind} {name}"
    return None
