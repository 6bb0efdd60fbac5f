"""The simulated image-reflector-controller (v1.0): ImageRepository scans the simulated registry
into a tag database; ImagePolicy picks a tag from it.

As in the real controller, a push is not seen until the repository's next scan: at its
interval, on `reconcile.fluxcd.io/requestedAt`, or when its image or exclusion list changes.
Policies re-evaluate when a scan changes the tag set (`lastScanResult.revision`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubesim.errors import not_found
from kubesim.flux import conditions as cond
from kubesim.flux.controller import (
    REQUESTED_AT,
    Controller,
    Result,
    Settings,
    annotation,
    object_key,
)
from kubesim.flux.policies import InvalidPolicy, NoLatest, check_policy, select
from kubesim.flux.registry import InvalidReference, Registry, canonical_name
from kubesim.objects import ObjectApi

GROUP = "image.toolkit.fluxcd.io"
REPOSITORIES = (GROUP, "imagerepositories")
DEFAULT_EXCLUSIONS = ["^.*\\.sig$"]
LATEST_TAGS = 10


class TagDatabase:
    """The controller's badger database: the tags of the last scan, by canonical image name."""

    def __init__(self) -> None:
        self._tags: dict[str, list[str]] = {}

    def set(self, image: str, tags: list[str]) -> str:
        """Store tags; returns the revision (adler32 of the JSON list, as the controller writes)."""
        self._tags[image] = list(tags)
        return str(zlib.adler32(json.dumps(tags, separators=(",", ":")).encode()))

    def tags(self, image: str) -> list[str]:
        return list(self._tags.get(image, []))


def exclusions_of(spec: Mapping[str, Any]) -> list[str]:
    return list(spec.get("exclusionList") or DEFAULT_EXCLUSIONS)


class ImageRepositoryController(Controller):
    group = GROUP
    plural = "imagerepositories"
    kind = "ImageRepository"
    manager = "image-reflector-controller"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, registry: Registry, database: TagDatabase
    ) -> None:
        super().__init__(api, settings)
        self.registry = registry
        self.database = database

    def reconcile(self, obj: dict[str, Any]) -> Result:
        if obj["metadata"].get("deletionTimestamp"):
            self.release(obj)
            return Result()
        obj = self.ensure_finalizer(obj)
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return self.suspended(obj)
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        image = str(spec.get("image", ""))
        try:
            canonical = canonical_name(image)
        except InvalidReference as e:
            c.mark_true(cond.STALLED, "ImageURLInvalid", str(e))
            c.mark_false(cond.READY, "ImageURLInvalid", str(e))
            c.delete(cond.RECONCILING)
            status.update(
                conditions=c.items(), observedGeneration=obj["metadata"].get("generation")
            )
            self.write_status(obj, self.handled(obj, status))
            return Result()
        c.delete(cond.STALLED)
        interval = cond.parse_duration(spec.get("interval"), 600.0)
        exclusions = exclusions_of(spec)
        scan, after = self._should_scan(obj, canonical, exclusions, interval)
        if scan:
            tags = self.registry.tags(canonical)
            if tags is None:
                host, _, path = canonical.partition("/")
                message = (
                    f"scan failed: GET https://{host}/v2/{path}/tags/list?n=1000: NAME_UNKNOWN: "
                    f"repository name not known to registry; map[name:{path}]"
                )
                c.mark_false(cond.READY, "ReadOperationFailed", message)
                c.retrying()
                status["conditions"] = c.items()
                self.write_status(obj, self.handled(obj, status))
                return Result(failed=True)
            kept = sorted(
                (t for t in tags if not any(re.search(x, t) for x in exclusions)), reverse=True
            )
            revision = self.database.set(canonical, kept)
            scan_result: dict[str, Any] = {
                "revision": revision,
                "scanTime": cond.rfc3339(self.now()),
                "tagCount": len(kept),
            }
            if kept:
                scan_result["latestTags"] = kept[:LATEST_TAGS]
            status["lastScanResult"] = scan_result
        result = status.get("lastScanResult") or {}
        status.update(canonicalImageName=canonical, observedExclusionList=exclusions)
        c.delete(cond.RECONCILING)
        c.mark_true(
            cond.READY,
            cond.SUCCEEDED,
            f"successful scan: found {result.get('tagCount', 0)} tags with checksum {result.get('revision', '')}",
        )
        status.update(conditions=c.items(), observedGeneration=obj["metadata"].get("generation"))
        self.write_status(obj, self.handled(obj, status))
        return Result(after=after)

    def _should_scan(
        self, obj: Mapping[str, Any], canonical: str, exclusions: list[str], interval: float
    ) -> tuple[bool, float]:
        """The controller's `shouldScan`: whether to scan now, and when to look again."""
        status = obj.get("status") or {}
        last = status.get("lastScanResult")
        if not last:
            return True, interval
        requested = annotation(obj, REQUESTED_AT)
        if requested is not None and requested != status.get("lastHandledReconcileAt"):
            return True, interval
        if canonical != status.get("canonicalImageName"):
            return True, interval
        if sorted(exclusions) != sorted(status.get("observedExclusionList") or []):
            return True, interval
        if not self.database.tags(canonical):
            return True, interval
        try:
            scanned = datetime.fromisoformat(str(last.get("scanTime")).replace("Z", "+00:00"))
        except ValueError:
            return True, interval
        remaining = interval - (self.now() - scanned).total_seconds()
        return (True, interval) if remaining < 1 else (False, remaining)

    def announce(self, obj: dict[str, Any]) -> None:
        c = cond.Conditions(obj, self.now())
        status = obj.get("status") or {}
        if not status.get("lastScanResult"):
            c.progressing("scanning: first scan")
        elif annotation(obj, REQUESTED_AT) not in (None, status.get("lastHandledReconcileAt")):
            c.progressing("scanning: reconcile requested")
        else:
            super().announce(obj)
            return
        self.write_status(obj, {**status, "conditions": c.items()})


def _labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


class ImagePolicyController(Controller):
    group = GROUP
    plural = "imagepolicies"
    kind = "ImagePolicy"
    manager = "image-reflector-controller"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, registry: Registry, database: TagDatabase
    ) -> None:
        super().__init__(api, settings)
        self.registry = registry
        self.database = database

    def reconcile(self, obj: dict[str, Any]) -> Result:
        if obj["metadata"].get("deletionTimestamp"):
            self.release(obj)
            return Result()
        obj = self.ensure_finalizer(obj)
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return self.suspended(obj)
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())
        reflect = spec.get("digestReflectionPolicy") or "Never"
        if (
            reflect == "Always" and spec.get("interval") is None
        ):  # the v1 CRD's CEL rule rejects this first
            return self._stalled(
                obj,
                status,
                c,
                "IntervalNotConfigured",
                "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
            )
        c.progressing("reconciliation in progress")
        repo, reason, problem = self._repository(obj)
        if repo is None:
            return self._failed(
                obj, status, c, reason, f"failed to get the referred ImageRepository: {problem}"
            )
        image = str((repo.get("spec") or {}).get("image", ""))
        try:
            canonical = canonical_name(image)
            check_policy(spec.get("policy") or {})
            tags = self.database.tags(
                str((repo.get("status") or {}).get("canonicalImageName") or canonical)
            )
            if not tags:
                wait = self.settings.dependency_requeue
                c.mark_false(
                    cond.READY,
                    "DependencyNotReady",
                    f"retrying in {cond.format_duration(wait)} error: no tags in database",
                )
                c.retrying()
                status["conditions"] = c.items()
                self.write_status(obj, self.handled(obj, status))
                return Result(after=wait)
            chosen = select(tags, spec.get("filterTags"), spec.get("policy") or {})
        except InvalidReference as e:
            return self._stalled(obj, status, c, "ImageURLInvalid", str(e))
        except InvalidPolicy as e:
            return self._stalled(obj, status, c, "InvalidPolicy", str(e))
        except NoLatest as e:
            return self._failed(obj, status, c, "Failure", str(e))
        latest: dict[str, str] = {"name": image, "tag": chosen}
        previous = status.get("latestRef")
        if reflect in ("IfNotPresent", "Always"):
            keep = (
                reflect == "IfNotPresent"
                and previous
                and previous.get("name") == image
                and previous.get("tag") == chosen
                and previous.get("digest")
            )
            digest = (
                previous["digest"] if keep and previous else self.registry.digest(canonical, chosen)
            )
            if digest is None:
                return self._failed(
                    obj, status, c, cond.FAILED, _digest_error(image, canonical, chosen)
                )
            latest["digest"] = digest
        if previous != latest:
            if previous:
                status["observedPreviousRef"] = previous
            status["latestRef"] = latest
        c.delete(cond.RECONCILING)
        c.delete(cond.STALLED)
        c.mark_true(cond.READY, cond.SUCCEEDED, ready_message(status))
        status.update(conditions=c.items(), observedGeneration=obj["metadata"].get("generation"))
        self.write_status(obj, self.handled(obj, status))
        return Result(after=cond.parse_duration(spec.get("interval"), 0.0) or None)

    def _repository(self, obj: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
        """The referenced ImageRepository, or (None, reason, message) as the controller reports."""
        ns = obj["metadata"]["namespace"]
        ref = (obj.get("spec") or {}).get("imageRepositoryRef") or {}
        repo_ns, repo_name = str(ref.get("namespace") or ns), str(ref.get("name", ""))
        repo = self.api.store.get(REPOSITORIES, repo_ns, repo_name)
        if repo is None:
            error = not_found("imagerepositories", GROUP, repo_name)
            return (
                None,
                "DependencyNotReady",
                f"referenced ImageRepository does not exist: {error.message}",
            )
        if repo_ns == ns:
            return repo, "", ""
        access = (repo.get("spec") or {}).get("accessFrom")
        if access is None:
            return (
                None,
                "AccessDenied",
                (
                    f"access denied: '{repo_ns}/{repo_name}' can't be accessed due to missing "
                    "ACL labels on 'accessFrom'"
                ),
            )
        namespace = self.api.store.get(("", "namespaces"), "", ns) or {"metadata": {}}
        labels = namespace["metadata"].get("labels") or {}
        if any(_labels_match(s, labels) for s in access.get("namespaceSelectors") or []):
            return repo, "", ""
        return (
            None,
            "AccessDenied",
            (
                f"access denied: '{repo_ns}/{repo_name}' can't be accessed due to ACL labels "
                f"mismatch on namespace '{ns}'"
            ),
        )

    def _failed(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        reason: str,
        message: str,
    ) -> Result:
        c.mark_false(cond.READY, reason, message)
        c.delete(cond.STALLED)
        c.retrying()
        status["conditions"] = c.items()
        self.write_status(obj, self.handled(obj, status))
        return Result(failed=True)

    def _stalled(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        reason: str,
        message: str,
    ) -> Result:
        c.mark_true(cond.STALLED, reason, message)
        c.mark_false(cond.READY, reason, message)
        c.delete(cond.RECONCILING)
        status.update(conditions=c.items(), observedGeneration=obj["metadata"].get("generation"))
        self.write_status(obj, self.handled(obj, status))
        return Result()

    def refers_to(self, repo: Mapping[str, Any]) -> Any:
        ns, name = object_key(repo)

        def check(policy: dict[str, Any]) -> bool:
            ref = (policy.get("spec") or {}).get("imageRepositoryRef") or {}
            return bool(
                ref.get("name") == name
                and (ref.get("namespace") or policy["metadata"]["namespace"]) == ns
            )

        return check


def ready_message(status: Mapping[str, Any]) -> str:
    """composeImagePolicyReadyMessage of the controller."""
    latest = status["latestRef"]
    message = f"Latest image tag for {latest['name']} resolved to {latest['tag']}"
    if latest.get("digest"):
        message += f" with digest {latest['digest']}"
    previous = status.get("observedPreviousRef")
    if previous and previous != latest:
        message += f" (previously {previous.get('name')}:{previous.get('tag')}"
        if previous.get("digest"):
            message += f"@{previous['digest']}"
        message += ")"
    return message


def _digest_error(image: str, canonical: str, tag: str) -> str:
    """What a HEAD of a tag the registry no longer has gives the controller."""
    host, _, path = canonical.partition("/")
    return (
        f'failed fetching digest of {image}:{tag}: failed fetching descriptor for "{canonical}:{tag}": '
        f"HEAD https://{host}/v2/{path}/manifests/{tag}: unexpected status code 404 Not Found (HEAD responses "
        "have no body, use GET for details)"
    )
