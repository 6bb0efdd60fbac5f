"""Discovery documents (`/api`, `/apis`, resource lists, `/version`) and OpenAPI v3."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubesim.builtin_schemas import SCHEMAS
from kubesim.resources import ResourceCatalog, ResourceType

KUBE_VERSION = {
    "major": "1",
    "minor": "35",
    "gitVersion": "v1.35.0+kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


# Create-only APIs served next to the catalog's kinds, as discovery lists them.
REVIEWS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("authentication.k8s.io", "v1"): [
        {
            "name": "selfsubjectreviews",
            "singularName": "selfsubjectreview",
            "namespaced": False,
            "kind": "SelfSubjectReview",
            "verbs": ["create"],
        }
    ],
    ("authorization.k8s.io", "v1"): [
        {
            "name": "selfsubjectaccessreviews",
            "singularName": "selfsubjectaccessreview",
            "namespaced": False,
            "kind": "SelfSubjectAccessReview",
            "verbs": ["create"],
        }
    ],
}
TOKEN_REQUEST = {
    "name": "serviceaccounts/token",
    "singularName": "",
    "namespaced": True,
    "group": "authentication.k8s.io",
    "version": "v1",
    "kind": "TokenRequest",
    "verbs": ["create"],
}


def _group_versions(catalog: ResourceCatalog) -> dict[str, list[str]]:
    versions = {g: list(vs) for g, vs in catalog.group_versions().items()}
    for group, version in REVIEWS:
        served = versions.setdefault(group, [])
        if version not in served:
            served.append(version)
    return versions


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(catalog: ResourceCatalog) -> dict[str, Any]:
    groups = [_group_doc(g, vs) for g, vs in sorted(_group_versions(catalog).items()) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(catalog: ResourceCatalog, group: str) -> dict[str, Any] | None:
    versions = _group_versions(catalog).get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.group}/{rt.storage_version}/{rt.kind}".encode()).hexdigest()[:11]


def resource_list(catalog: ResourceCatalog, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in catalog.all() if rt.group == group and version in rt.versions]
    if not types and (group, version) not in REVIEWS:
        return None
    resources: list[dict[str, Any]] = list(REVIEWS.get((group, version), []))
    for rt in sorted(types, key=lambda t: t.plural):
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs,
            "storageVersionHash": _storage_hash(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        if rt.status_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if rt.gr == ("", "serviceaccounts"):
            resources.append(dict(TOKEN_REQUEST))
        if rt.gr == ("", "namespaces"):
            resources.append(
                {
                    "name": "namespaces/finalize",
                    "singularName": "",
                    "namespaced": False,
                    "kind": "Namespace",
                    "verbs": ["update"],
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


# --------------------------------------------------------------------------- OpenAPI v3


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema_name(rt: ResourceType, version: str) -> str:
    if rt.group:
        reversed_group = ".".join(reversed(rt.group.split(".")))
        return f"{reversed_group}.{version}.{rt.kind}"
    return f"io.k8s.api.core.{version}.{rt.kind}"


def openapi_index(catalog: ResourceCatalog) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in catalog.group_versions().items():
        for version in versions:
            doc = openapi_group_version(catalog, group, version)
            digest = (
                hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
            )
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


_PARAMS = {
    name: {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("fieldValidation", "fieldManager", "dryRun", "force", "pretty")
}


def openapi_group_version(catalog: ResourceCatalog, group: str, version: str) -> dict[str, Any]:
    """A small OpenAPI v3 document: schemas with their GVK, and paths advertising the write
    parameters (kubectl checks for `fieldValidation` before choosing server-side validation)."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for rt in catalog.all():
        if rt.group != group or version not in rt.versions:
            continue
        schema = rt.schema(version) if rt.is_crd else SCHEMAS.get(rt.gr)
        name = _schema_name(rt, version)
        gvk = [{"group": group, "version": version, "kind": rt.kind}]
        schemas[name] = {**(schema or {"type": "object"}), "x-kubernetes-group-version-kind": gvk}
        base = "/" + _gv_path(group, version)
        collection = (
            f"{base}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{base}/{rt.plural}"
        )
        ref = {
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
        }
        action = {
            "x-kubernetes-group-version-kind": gvk[0],
            "responses": {"200": {"description": "OK", **ref}},
        }
        write_params = [_PARAMS["dryRun"], _PARAMS["fieldManager"], _PARAMS["fieldValidation"]]
        write = {**action, "parameters": write_params}
        paths[collection] = {
            "get": {**action, "x-kubernetes-action": "list"},
            "post": {**write, "x-kubernetes-action": "post", "requestBody": ref},
        }
        paths[f"{collection}/{{name}}"] = {
            "get": {**action, "x-kubernetes-action": "get"},
            "put": {**write, "x-kubernetes-action": "put", "requestBody": ref},
            "patch": {
                **write,
                "x-kubernetes-action": "patch",
                "parameters": [*write_params, _PARAMS["force"]],
                "requestBody": {
                    "content": {
                        t: {"schema": {"type": "object"}}
                        for t in (
                            "application/apply-patch+yaml",
                            "application/json-patch+json",
                            "application/merge-patch+json",
                            "application/strategic-merge-patch+json",
                        )
                    }
                },
            },
            "delete": {**action, "x-kubernetes-action": "delete"},
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
