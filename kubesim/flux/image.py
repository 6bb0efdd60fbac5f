"""The simulated image-reflector-controller: ImageRepository scans and ImagePolicy selection."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubesim.flux.common import Key, Reconciler, is_ready, now_rfc3339, parse_duration
from kubesim.flux.policies import PolicyError, select
from kubesim.flux.registry import Registry

GROUP = "image.toolkit.fluxcd.io"
DEFAULT_EXCLUSIONS = ["^.*\\.sig$"]


class ImageRepositoryReconciler(Reconciler):
    group = GROUP
    plural = "imagerepositories"
    manager = "image-reflector-controller"

    def __init__(self, *args: Any, registry: Registry, scans: dict[Key, dict[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.scans = scans
        """What the last scan of each ImageRepository saw: tag -> digest (the controller's database)."""

    def reconcile(self, key: Key) -> None:
        obj = self.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.scans.pop(key, None)
            return
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return
        self.schedule(key, after=parse_duration(spec.get("interval"), 60.0))
        status = dict(obj.get("status") or {})
        image = str(spec.get("image", ""))
        tags = self.registry.tags(image)
        exclusions = spec.get("exclusionList") or DEFAULT_EXCLUSIONS
        status["observedExclusionList"] = list(exclusions)
        status["canonicalImageName"] = image
        if tags is None:
            host, _, path = image.partition("/")
            self.finish(obj, status, ready=False, reason="ReadOperationFailed",
                        message=f"GET https://{host}/v2/{path}/tags/list: NAME_UNKNOWN: repository name not "
                                "known to registry")
            return
        kept = {t: p.digest for t, p in tags.items() if not any(re.search(x, t) for x in exclusions)}
        self.scans[key] = kept
        latest = sorted(kept, reverse=True)[:10]
        status["lastScanResult"] = {"tagCount": len(kept), "scanTime": now_rfc3339(self.clock()), "latestTags": latest}
        self.finish(obj, status, ready=True, reason="Succeeded", message=f"successful scan: found {len(kept)} tags")


def _labels_match(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


class ImagePolicyReconciler(Reconciler):
    group = GROUP
    plural = "imagepolicies"
    manager = "image-reflector-controller"

    def __init__(self, *args: Any, registry: Registry, scans: dict[Key, dict[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.scans = scans

    def _access_denied(self, repo: Mapping[str, Any], namespace: str) -> bool:
        if repo["metadata"]["namespace"] == namespace:
            return False
        access = (repo.get("spec") or {}).get("accessFrom") or {}
        ns_obj = self.api.store.get(("", "namespaces"), "", namespace)
        labels = (ns_obj or {}).get("metadata", {}).get("labels") or {}
        return not any(_labels_match(s, labels) for s in access.get("namespaceSelectors") or [])

    def reconcile(self, key: Key) -> None:
        obj = self.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return
        status = dict(obj.get("status") or {})
        ref = spec.get("imageRepositoryRef") or {}
        repo_key = (str(ref.get("namespace") or key[0]), str(ref.get("name", "")))
        repo = self.api.store.get(("image.toolkit.fluxcd.io", "imagerepositories"), *repo_key)
        repo_id = f"{repo_key[0]}/{repo_key[1]}"
        if repo is None:
            self.finish(obj, status, ready=False, reason="DependencyNotReady",
                        message=f"referenced ImageRepository '{repo_id}' not found")
            return
        if self._access_denied(repo, key[0]):
            self.finish(obj, status, ready=False, reason="AccessDenied",
                        message=f"ImageRepository '{repo_id}' can't be accessed due to missing ACL labels on "
                                "'accessFrom'", stalled=True)
            return
        tags = self.scans.get(repo_key)
        if tags is None or not is_ready(repo):
            self.finish(obj, status, ready=False, reason="DependencyNotReady",
                        message=f"referenced ImageRepository '{repo_id}' is not ready")
            return
        try:
            chosen = select(list(tags), spec.get("filterTags") or {}, spec.get("policy") or {})
        except PolicyError as e:
            self.finish(obj, status, ready=False, reason="InvalidPolicy", message=str(e), stalled=True)
            return
        if chosen is None:
            self.finish(obj, status, ready=False, reason="ReconciliationFailed",
                        message="unable to determine latest version from provided list")
            return
        image = str((repo.get("spec") or {}).get("image", ""))
        latest: dict[str, str] = {"name": image, "tag": chosen}
        if spec.get("digestReflectionPolicy") in ("IfNotPresent", "Always"):
            previous = status.get("latestRef") or {}
            if spec["digestReflectionPolicy"] == "IfNotPresent" and previous.get("tag") == chosen and previous.get("digest"):
                latest["digest"] = previous["digest"]
            else:
                latest["digest"] = tags[chosen]
        old = status.get("latestRef")
        message = f"Latest image tag for {image} resolved to {chosen}"
        if old and old != latest:
            status["observedPreviousRef"] = old
            if old.get("tag") != chosen:
                message = f"Latest image tag for {image} updated from {old.get('tag')} to {chosen}"
        status["latestRef"] = latest
        self.finish(obj, status, ready=True, reason="Succeeded", message=message)

    def on_repository(self, repo: Mapping[str, Any]) -> None:
        ns, name = repo["metadata"]["namespace"], repo["metadata"]["name"]

        def refers(policy: dict[str, Any]) -> bool:
            ref = (policy.get("spec") or {}).get("imageRepositoryRef") or {}
            return bool(ref.get("name") == name and (ref.get("namespace") or policy["metadata"]["namespace"]) == ns)

        self.schedule_all(refers)
