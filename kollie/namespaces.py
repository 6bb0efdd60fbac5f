"""Whether a new environment's name is free as a namespace (DESIGN §2).

App bases deploy into a namespace named after their environment (`${environment}`), applied by
kustomize-controller with its own, usually cluster-wide, permissions. An environment named after
a namespace that exists for something else (`ingress-nginx`, `monitoring`, a team's production)
would put that namespace on a sleep schedule and write the environment's objects into it, so
such a name is refused when the environment is created.

Kollie reads the namespace by name when an environment is created (cluster-wide `get` on
namespaces): the cluster is the only place that knows which namespaces exist, and unlike an
allow-list or a required prefix in the configuration it cannot go stale, needs no upkeep when
teams add namespaces, and leaves users free to name environments. A namespace counts as the
environment's own when kustomize-controller applied it for one of that environment's
Kustomizations (its owner labels name `<environment>-<app>` in Kollie's namespace): apps keep
their namespace across deletion (`kustomize.toolkit.fluxcd.io/prune: disabled`), so an
environment deleted and created again finds its namespace still there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kollie import labels
from kollie.kube import KubeClient, NotFound
from kollie.naming import kube_name


def made_for_environment(
    namespace: Mapping[str, Any], *, environment: str, kollie_namespace: str, apps: Iterable[str]
) -> bool:
    """Whether kustomize-controller applied this Namespace for one of `environment`'s apps."""
    owner = (namespace.get("metadata") or {}).get("labels") or {}
    return owner.get(labels.FLUX_OWNER_NAMESPACE) == kollie_namespace and owner.get(
        labels.FLUX_OWNER_NAME
    ) in {kube_name(environment, app) for app in apps}


async def namespace_problem(
    client: KubeClient, environment: str, *, kollie_namespace: str, apps: Iterable[str]
) -> str | None:
    """Why `environment` may not be created because of an existing namespace, or None.

    `apps` are the catalog's apps (any of them may have made the namespace). API errors other
    than NotFound propagate: without an answer the name is not known to be free.
    """
    try:
        namespace = await client.get(labels.NAMESPACE, None, environment)
    except NotFound:
        return None
    if made_for_environment(
        namespace, environment=environment, kollie_namespace=kollie_namespace, apps=apps
    ):
        return None
    return (
        f"environment name {environment!r} is taken: namespace {environment!r} exists and was "
        "not made for this environment (apps deploy into a namespace named after their "
        "environment); choose another name"
    )
