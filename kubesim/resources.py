"""Resource types the emulator serves: the built-in kinds and those defined by CRDs at run time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GroupResource = tuple[str, str]
"""(API group, plural resource name): the identity of a resource type in the store."""


@dataclass(frozen=True)
class PrinterColumn:
    """One `kubectl get` column (a CRD's additionalPrinterColumns entry)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    """Everything the server needs to know to serve one resource type."""

    group: str
    versions: tuple[str, ...]
    """Served versions, preferred first; objects are stored as `storage_version`."""
    kind: str
    plural: str
    singular: str
    namespaced: bool
    storage_version: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    has_generation: bool = False
    """Whether `metadata.generation` is maintained (CRDs and spec-carrying built-ins)."""
    schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """openAPIV3Schema per version; empty for kinds validated only structurally."""
    printer_columns: Mapping[str, tuple[PrinterColumn, ...]] = field(default_factory=dict)
    returns_deleted_object: bool = False
    """DELETE answers with the object (custom resources) rather than a Success `Status`."""
    allow_unconditional_update: bool = True
    """PUT without `metadata.resourceVersion` is allowed (false for custom resources)."""
    is_crd: bool = False

    @property
    def gr(self) -> GroupResource:
        return (self.group, self.plural)

    def api_version(self, version: str | None = None) -> str:
        v = version or self.storage_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def schema(self, version: str) -> Mapping[str, Any] | None:
        return self.schemas.get(version)

    @property
    def verbs(self) -> list[str]:
        return ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short_names: tuple[str, ...] = (),
    status: bool = False,
    generation: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        versions=(version,),
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        storage_version=version,
        short_names=short_names,
        categories=(),
        status_subresource=status,
        has_generation=generation,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",), status=True
    ),
    _builtin("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _builtin("", "v1", "Secret", "secrets"),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _builtin("", "v1", "Event", "events", short_names=("ev",)),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases"),
    _builtin(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        short_names=("ing",),
        status=True,
        generation=True,
    ),
    # Stored, not run: what a Helm chart installs next to its RBAC (no pods are ever scheduled).
    _builtin("", "v1", "Service", "services", short_names=("svc",), status=True),
    _builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        status=True,
        generation=True,
    ),
    _builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short_names=("pdb",),
        status=True,
        generation=True,
    ),
    _builtin(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        short_names=("netpol",),
        generation=True,
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        status=True,
        generation=True,
    ),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
)

CRD_GR: GroupResource = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_GR: GroupResource = ("", "namespaces")


def resource_type_from_crd(crd: Mapping[str, Any]) -> ResourceType:
    """Build the served type of a (validated) CustomResourceDefinition object."""
    spec = crd["spec"]
    names = spec["names"]
    versions = [v for v in spec["versions"] if v.get("served", True)]
    # Discovery lists the storage version's peers by Kubernetes version priority; served order
    # in the CRD is what real servers use to pick the preferred version, after sorting.
    ordered = sorted(versions, key=lambda v: _version_priority(v["name"]))
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    schemas: dict[str, Mapping[str, Any]] = {}
    columns: dict[str, tuple[PrinterColumn, ...]] = {}
    status = False
    for v in spec["versions"]:
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema:
            schemas[v["name"]] = schema
        columns[v["name"]] = tuple(
            PrinterColumn(
                name=c["name"],
                type=c.get("type", "string"),
                json_path=c["jsonPath"],
                description=c.get("description", ""),
                priority=int(c.get("priority", 0)),
                format=c.get("format", ""),
            )
            for c in v.get("additionalPrinterColumns", [])
        )
        if "status" in (v.get("subresources") or {}):
            status = True
    return ResourceType(
        group=spec["group"],
        versions=tuple(v["name"] for v in ordered),
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec["scope"] == "Namespaced",
        storage_version=storage,
        short_names=tuple(names.get("shortNames", [])),
        categories=tuple(names.get("categories", [])),
        status_subresource=status,
        has_generation=True,
        schemas=schemas,
        printer_columns=columns,
        returns_deleted_object=True,
        allow_unconditional_update=False,
        is_crd=True,
    )


def _version_priority(name: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first, then others."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", name)
    if not m:
        return (3, 0, 0, name)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, name)


class ResourceCatalog:
    """The set of types currently served, indexed the ways requests address them."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._by_gr: dict[GroupResource, ResourceType] = {}
        for t in types:
            self.add(t)

    def add(self, rt: ResourceType) -> None:
        self._by_gr[rt.gr] = rt

    def remove(self, gr: GroupResource) -> None:
        self._by_gr.pop(gr, None)

    def get(self, gr: GroupResource) -> ResourceType | None:
        return self._by_gr.get(gr)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self._by_gr.get((group, plural))
        if rt is None or version not in rt.versions:
            return None
        return rt

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        for rt in self._by_gr.values():
            if rt.group == group and rt.kind == kind:
                return rt
        return None

    def all(self) -> list[ResourceType]:
        return list(self._by_gr.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Every served group with its versions, preferred first."""
        groups: dict[str, list[str]] = {}
        for rt in self._by_gr.values():
            versions = groups.setdefault(rt.group, [])
            for v in rt.versions:
                if v not in versions:
                    versions.append(v)
        for versions in groups.values():
            versions.sort(key=_version_priority)
        return groups
