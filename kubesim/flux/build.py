"""What kustomize-controller's build step does to a path of a source artifact: collect the
manifests (a directory without a kustomization.yaml includes everything below it), apply the
generated kustomization (`targetNamespace`, `namePrefix`/`nameSuffix`, `commonMetadata`),
order the resources as kustomize does, then run post-build variable substitution.

Errors carry the controller's wording, e.g.
`post build failed for '~G_v1_ConfigMap/web': envsubst error: variable substitution failed:
variable not set (strict mode): "image_tag"`.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kubesim.flux.githost import files_under, normalise_path
from kubesim.flux.substitution import SubstitutionError, substitute

SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute"

# kustomize's legacy resource order (api/resid/gvk.go).
_ORDER_FIRST = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]
_ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
_TYPE_ORDER = {k: i - len(_ORDER_FIRST) for i, k in enumerate(_ORDER_FIRST)} | {
    k: 1 + i for i, k in enumerate(_ORDER_LAST)
}

# Kinds kustomize never gives a namespace (resid.NotNamespaceableKinds).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "Cluster",
        "ClusterRole",
        "ClusterRoleBinding",
        "ComponentStatus",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "RuntimeClass",
        "SelfSubjectAccessReview",
        "SelfSubjectRulesReview",
        "StorageClass",
        "SubjectAccessReview",
        "TokenReview",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "IngressClass",
    }
)


class BuildError(Exception):
    """The build failed; `reason` is the Ready reason kustomize-controller reports."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


VariableSource = Callable[[str, str], Mapping[str, Any] | None]
"""(kind, name) -> the ConfigMap or Secret in the Kustomization's namespace, or None."""


@dataclass(frozen=True)
class Build:
    objects: list[dict[str, Any]]
    digest: str
    """`sha256:<hex>` of the built YAML (the history snapshot's digest)."""


def gvk_string(obj: Mapping[str, Any]) -> str:
    """kustomize's `resid.Gvk.String()`: `~G_v1_ConfigMap`, `apps_v1_Deployment`."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    return "_".join([group or "~G", version or "~V", str(obj.get("kind") or "~K")])


def workdir(uid: str) -> str:
    """The controller's temporary directory (random there; stable here so messages do not churn)."""
    return f"/tmp/kustomization-{zlib.crc32(uid.encode())}"


@dataclass(frozen=True)
class Resource:
    source: str
    """The document's YAML text as written in the repository (substitution works on it, so
    quoting survives as it does with kustomize's style-preserving nodes)."""
    obj: dict[str, Any]
    """The document parsed and transformed, before substitution."""


def build(
    kustomization: Mapping[str, Any],
    files: Mapping[str, str],
    variables: VariableSource,
    *,
    strict: bool,
) -> Build:
    spec = kustomization.get("spec") or {}
    path = str(spec.get("path") or "./")
    texts = files_under(files, path)
    if texts is None:
        target = "/".join(
            p
            for p in (workdir(str(kustomization["metadata"].get("uid", ""))), normalise_path(path))
            if p
        )
        raise BuildError(
            "ArtifactFailed",
            f"kustomization path not found: stat {target}: no such file or directory",
        )
    resources = [r for text in texts for r in _documents(text, spec)]
    resources.sort(key=lambda r: _order(r.obj))
    objects = [r.obj for r in resources]
    post = spec.get("postBuild")
    if post is not None:
        objects = _substitute_all(post, resources, variables, spec, strict=strict)
    rendered = yaml.safe_dump_all(objects, sort_keys=True).encode()
    return Build(objects, "sha256:" + hashlib.sha256(rendered).hexdigest())


def _documents(text: str, spec: Mapping[str, Any]) -> list[Resource]:
    out = []
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise BuildError("BuildFailed", f"kustomize build failed: {_one_line(e)}") from e
    for node in nodes:
        if node is None:
            continue
        source = " " * node.start_mark.column + text[node.start_mark.index : node.end_mark.index]
        doc = yaml.safe_load(source)
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        if (
            not isinstance(doc, dict)
            or not doc.get("apiVersion")
            or not doc.get("kind")
            or not isinstance(meta, dict)
            or not meta.get("name")
        ):
            raise BuildError(
                "BuildFailed",
                "failed to decode Kubernetes apiVersion, kind and name from: "
                + yaml.safe_dump(doc, sort_keys=True).strip(),
            )
        out.append(Resource(source, _transform(doc, spec)))
    return out


def _transform(doc: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(doc["metadata"])
    kind = str(doc["kind"])
    if spec.get("targetNamespace") and kind not in CLUSTER_SCOPED_KINDS:
        meta["namespace"] = spec["targetNamespace"]
    if kind not in ("Namespace", "CustomResourceDefinition"):
        meta["name"] = f"{spec.get('namePrefix') or ''}{meta['name']}{spec.get('nameSuffix') or ''}"
    common = spec.get("commonMetadata") or {}
    for field in ("labels", "annotations"):
        if common.get(field):
            meta[field] = {**(meta.get(field) or {}), **common[field]}
    return {**doc, "metadata": meta}


def _order(obj: Mapping[str, Any]) -> tuple[int, str, str, str]:
    meta = obj["metadata"]
    return (
        _TYPE_ORDER.get(str(obj["kind"]), 0),
        gvk_string(obj),
        str(meta.get("namespace") or ""),
        str(meta["name"]),
    )


def _substitute_all(
    post: Mapping[str, Any],
    resources: list[Resource],
    variables: VariableSource,
    spec: Mapping[str, Any],
    *,
    strict: bool,
) -> list[dict[str, Any]]:
    out = []
    loaded: dict[str, str] | None = None
    for r in resources:
        meta = r.obj["metadata"]
        if "disabled" in (
            (meta.get("labels") or {}).get(SUBSTITUTE_KEY),
            (meta.get("annotations") or {}).get(SUBSTITUTE_KEY),
        ):
            out.append(r.obj)
            continue
        where = f"post build failed for '{gvk_string(r.obj)}/{meta['name']}'"
        if loaded is None:
            try:
                loaded = _load_variables(post, variables)
            except BuildError as e:
                raise BuildError("BuildFailed", f"{where}: {e.message}") from e
        if not loaded:
            out.append(r.obj)
            continue
        try:
            text = substitute(r.source, loaded, strict=strict)
        except SubstitutionError as e:
            raise BuildError("BuildFailed", f"{where}: envsubst error: {e}") from e
        try:
            result = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise BuildError(
                "BuildFailed", f"{where}: envsubst error: YAMLToJSON: {_one_line(e)}"
            ) from e
        if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
            raise BuildError(
                "BuildFailed", f"{where}: envsubst error: YAMLToJSON: not a Kubernetes object"
            )
        out.append(_transform(result, spec))
    return out


def _load_variables(post: Mapping[str, Any], variables: VariableSource) -> dict[str, str]:
    """`substituteFrom` in order, then `substitute`; newlines are dropped from values."""
    out: dict[str, str] = {}
    for ref in post.get("substituteFrom") or []:
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        found = variables(kind, name)
        if found is None:
            if ref.get("optional"):
                continue
            plural = "configmaps" if kind == "ConfigMap" else "secrets"
            raise BuildError(
                "BuildFailed",
                f"substitute from '{kind}/{name}' error: {plural} \"{name}\" not found",
            )
        data = found.get("data") or {}
        for k, v in data.items():
            value = (
                base64.b64decode(str(v)).decode(errors="replace") if kind == "Secret" else str(v)
            )
            out[str(k)] = value.replace("\n", "")
    for k, v in (post.get("substitute") or {}).items():
        out[str(k)] = str(v).replace("\n", "")
    return out


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
