"""The simulated kustomize-controller: builds a path of the source artifact, substitutes
variables, applies the objects, keeps an inventory and prunes what left it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from kubesim.errors import ApiError
from kubesim.flux.common import FINALIZER, Key, Reconciler, is_ready, parse_duration
from kubesim.flux.githost import GitHost, normalise_path
from kubesim.flux.substitution import MissingVariable, substitute
from kubesim.objects import WriteOptions

GROUP = "kustomize.toolkit.fluxcd.io"
NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
"""`disabled` keeps an object when its Kustomization prunes it (shared namespaces, for one)."""


class BuildFailed(Exception):
    pass


class KustomizationReconciler(Reconciler):
    group = GROUP
    plural = "kustomizations"
    manager = "kustomize-controller"

    def __init__(self, *args: Any, git: GitHost, failures: dict[Key, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.git = git
        self.failures = failures
        """Injected health-check failures by Kustomization (tests and demos)."""

    def reconcile(self, key: Key) -> None:
        obj = self.get(key)
        if obj is None:
            return
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        if meta.get("deletionTimestamp"):
            self._finalize(obj)
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            obj = self.set_finalizers(obj, [*(meta.get("finalizers") or []), FINALIZER])
        if spec.get("suspend"):
            return
        interval = parse_duration(spec.get("interval"), 600.0)
        status = dict(obj.get("status") or {})
        source, revision, problem = self._source(obj)
        if problem:
            self.schedule(key, after=min(interval, 30.0))
            self.finish(obj, status, ready=False, reason="ArtifactFailed", message=problem)
            return
        for dep in spec.get("dependsOn") or []:
            dep_key = (str(dep.get("namespace") or key[0]), str(dep.get("name", "")))
            if not is_ready(self.api.store.get(self.gr, *dep_key)):
                self.schedule(key, after=min(interval, 30.0))
                self.finish(obj, status, ready=False, reason="DependencyNotReady",
                            message=f"dependency '{dep_key[0]}/{dep_key[1]}' is not ready")
                return
        status["lastAttemptedRevision"] = revision
        self.schedule(key, after=interval)
        try:
            objects = self._build(obj, source, revision)
            inventory = self._apply(obj, objects)
        except BuildFailed as e:
            self.finish(obj, status, ready=False, reason="BuildFailed", message=str(e))
            return
        except ApiError as e:
            self.finish(obj, status, ready=False, reason="ReconciliationFailed", message=e.message)
            return
        if spec.get("prune"):
            self._prune(status.get("inventory") or {}, inventory)
        status["inventory"] = inventory
        injected = self.failures.get(key)
        if injected:
            self.finish(obj, status, ready=False, reason="HealthCheckFailed", message=injected)
            return
        status["lastAppliedRevision"] = revision
        self.finish(obj, status, ready=True, reason="ReconciliationSucceeded", message=f"Applied revision: {revision}")

    # ------------------------------------------------------------ source and build
    def _source(self, obj: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str, str]:
        ref = (obj.get("spec") or {}).get("sourceRef") or {}
        kind = ref.get("kind", "GitRepository")
        ns = ref.get("namespace") or obj["metadata"]["namespace"]
        name = ref.get("name", "")
        source = self.api.store.get(("source.toolkit.fluxcd.io", "gitrepositories"), ns, name) \
            if kind == "GitRepository" else None
        if source is None:
            return None, "", f"Source '{kind}/{ns}/{name}' not found"
        artifact = (source.get("status") or {}).get("artifact")
        if not artifact:
            return None, "", "Source artifact not found, retrying in 30s"
        return source, str(artifact.get("revision", "")), ""

    def _build(self, obj: Mapping[str, Any], source: Mapping[str, Any] | None, revision: str) -> list[dict[str, Any]]:
        spec = obj.get("spec") or {}
        url = str(((source or {}).get("spec") or {}).get("url", ""))
        branch = revision.split("@", 1)[0]
        repo = self.git.repositories.get(url)
        path = normalise_path(str(spec.get("path") or "./"))
        manifests = (repo.paths.get(branch, {}) if repo else {}).get(path)
        if manifests is None:
            raise BuildFailed(f"kustomization path not found: stat /tmp/kustomization-sim/{path}: no such file or directory")
        text = manifests if isinstance(manifests, str) else yaml.safe_dump_all(manifests, sort_keys=False)
        post = spec.get("postBuild") or {}
        variables: dict[str, str] = {}
        for ref in post.get("substituteFrom") or []:
            variables.update(self._variables_from(obj["metadata"]["namespace"], ref))
        variables.update({str(k): str(v) for k, v in (post.get("substitute") or {}).items()})
        objects = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        out = []
        for doc in objects:
            meta = doc.get("metadata") or {}
            rid = f"{doc.get('kind')}/{meta.get('namespace') or obj['metadata']['namespace']}/{meta.get('name')}"
            if post:
                try:
                    doc = yaml.safe_load(substitute(yaml.safe_dump(doc, sort_keys=False), variables))
                except MissingVariable as e:
                    raise BuildFailed(f"{rid} var substitution failed: variable not set (strict mode): "
                                      f"\"{e.name}\"") from e
            out.append(doc)
        return out

    def _variables_from(self, namespace: str, ref: Mapping[str, Any]) -> dict[str, str]:
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        obj = self.api.store.get(("", "configmaps") if kind == "ConfigMap" else ("", "secrets"), namespace, name)
        if obj is None:
            if ref.get("optional"):
                return {}
            raise BuildFailed(f"substitute from '{kind}/{name}' failed: {kind} \"{name}\" not found")
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}

    # ------------------------------------------------------------ apply, prune, finalize
    def _apply(self, owner: Mapping[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
        spec = owner.get("spec") or {}
        default_ns = spec.get("targetNamespace") or owner["metadata"]["namespace"]
        labels = {NAME_LABEL: owner["metadata"]["name"], NAMESPACE_LABEL: owner["metadata"]["namespace"]}
        entries = []
        # Namespaces first, as kustomize-controller applies cluster definitions before their content.
        for doc in sorted(objects, key=lambda d: d.get("kind") != "Namespace"):
            group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
            rt = self.api.catalog.by_kind(group, str(doc.get("kind", "")))
            if rt is None:
                raise BuildFailed(f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')} dry-run failed: "
                                  f"no matches for kind \"{doc.get('kind')}\" in version \"{doc.get('apiVersion')}\"")
            meta = dict(doc.get("metadata") or {})
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
            ns = (meta.get("namespace") or default_ns) if rt.namespaced else ""
            if rt.namespaced:
                meta["namespace"] = ns
            body = {**doc, "metadata": meta}
            self.api.patch(rt, version, ns, meta["name"], "application/apply-patch+yaml", json.dumps(body).encode(),
                           WriteOptions(manager=self.manager, force=True))
            entries.append({"id": f"{ns}_{meta['name']}_{group}_{rt.kind}", "v": version})
        return {"entries": entries}

    def _prune(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        keep = {e["id"] for e in new.get("entries") or []}
        for entry in old.get("entries") or []:
            if entry.get("id") not in keep:
                self._delete_entry(entry)

    def _delete_entry(self, entry: Mapping[str, Any]) -> None:
        ns, name, group, kind = str(entry.get("id", "")).split("_", 3)
        rt = self.api.catalog.by_kind(group, kind)
        if rt is None:
            return
        obj = self.api.store.get(rt.gr, ns, name)
        if obj is None or (obj["metadata"].get("annotations") or {}).get(PRUNE_ANNOTATION) == "disabled":
            return
        try:
            self.api.delete(rt, ns, name)
        except ApiError as e:
            if e.code != 404:
                raise

    def _finalize(self, obj: dict[str, Any]) -> None:
        finalizers = obj["metadata"].get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        spec = obj.get("spec") or {}
        if spec.get("prune") and not spec.get("suspend"):
            for entry in ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []:
                self._delete_entry(entry)
        self.set_finalizers(obj, [f for f in finalizers if f != FINALIZER])

    # ------------------------------------------------------------ dependencies
    def on_source(self, source: Mapping[str, Any]) -> None:
        ns, name = source["metadata"]["namespace"], source["metadata"]["name"]

        def uses(k: dict[str, Any]) -> bool:
            ref = (k.get("spec") or {}).get("sourceRef") or {}
            return bool(ref.get("name") == name and (ref.get("namespace") or k["metadata"]["namespace"]) == ns)

        self.schedule_all(uses)

    def on_kustomization(self, changed: Mapping[str, Any]) -> None:
        ns, name = changed["metadata"]["namespace"], changed["metadata"]["name"]

        def depends(k: dict[str, Any]) -> bool:
            return any(d.get("name") == name and (d.get("namespace") or k["metadata"]["namespace"]) == ns
                       for d in (k.get("spec") or {}).get("dependsOn") or [])

        self.schedule_all(depends)
