"""The simulated image-reflector-controller (v1.0.4, internal/controller/
imagerepository_controller.go): ImageRepositories scan the simulated registry into a tag
database; ImagePolicies (kubesim.flux.imagepolicy) pick a tag from it.

As in the real controller, a push is not seen until the repository's next scan: at its
interval, on `reconcile.fluxcd.io/requestedAt`, or when its image or exclusion list changes.
Policies re-evaluate when a scan changes the tag set (`lastScanResult.revision`). A scan
records `lastScanResult`: `tagCount`, `scanTime`, the `revision` of the tag list and
`latestTags`, the first 10 tags in descending string order (`sortTagsAndGetLatestTags`).

Failures (Ready=False):

- `secretRef` names no Secret: `AuthenticationFailed`, `failed to configure authentication
  options: secrets "<name>" not found`;
- credentials refused: `ReadOperationFailed`, `scan failed: GET
  https://<host>/v2/<path>/tags/list?n=1000: UNAUTHORIZED: authentication required;
  [map[Action:pull Class: Name:<path> Type:repository]]`;
- no such repository: `ReadOperationFailed`, `scan failed: GET
  https://<host>/v2/<path>/tags/list?n=1000: NAME_UNKNOWN: repository name not known to
  registry; map[name:<path>]`;
- an invalid image (Stalled): `ImageURLInvalid`, `could not parse reference: <image>`.

A failure keeps the last scan result and leaves `Reconciling` True (`ProgressingWithRetry`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubesim.flux import conditions as cond
from kubesim.flux.controller import (
    REQUESTED_AT,
    Controller,
    Result,
    Settings,
    annotation,
)
from kubesim.flux.registry import InvalidReference, Registry, canonical_name, refused_error
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


class ImageReflector(Controller):
    """What image-reflector-controller's reconcilers share: the registry and the tag database."""

    group = GROUP
    manager = "image-reflector-controller"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, registry: Registry, database: TagDatabase
    ) -> None:
        super().__init__(api, settings)
        self.registry = registry
        self.database = database


class ImageRepositoryController(ImageReflector):
    plural = "imagerepositories"
    kind = "ImageRepository"

    def reconcile(self, obj: dict[str, Any]) -> Result:
        started = self.begin(obj)
        if started is None:
            return Result()
        obj, spec = started, started.get("spec") or {}
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
        problem = self.missing_secret(obj, str((spec.get("secretRef") or {}).get("name") or ""))
        if problem:
            message = f"failed to configure authentication options: {problem}"
            return self.failed(obj, status, c, "AuthenticationFailed", message)
        interval = cond.parse_duration(spec.get("interval"), 600.0)
        exclusions = exclusions_of(spec)
        scan, after = self._should_scan(obj, canonical, exclusions, interval)
        if scan:
            tags = self.registry.tags(canonical)
            if self.registry.refuses(canonical):
                message = f"scan failed: {refused_error(canonical, 'GET', 'tags/list')}"
                return self.failed(obj, status, c, "ReadOperationFailed", message)
            if tags is None:
                host, _, path = canonical.partition("/")
                message = (
                    f"scan failed: GET https://{host}/v2/{path}/tags/list?n=1000: NAME_UNKNOWN: "
                    f"repository name not known to registry; map[name:{path}]"
                )
                return self.failed(obj, status, c, "ReadOperationFailed", message)
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
            f"successful scan: found {result.get('tagCount', 0)} tags with checksum "
            f"{result.get('revision', '')}",
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
