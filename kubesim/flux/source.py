"""The simulated source-controller: GitRepository artifacts from the simulated git host.

Status as source-controller v1.7 writes it: on success `ArtifactInStorage` and `Ready` True
with reason `Succeeded` and message `stored artifact for revision 'main@sha1:<sha>'`, and an
`artifact`; on a failed checkout `FetchFailed` and `Ready` False with reason
`GitOperationFailed` (`AuthenticationFailed` when `secretRef` names a missing Secret),
`Reconciling` left True (`ProgressingWithRetry`) and `observedGeneration`
not advanced, so a client can tell the new generation has not been reconciled successfully.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.flux import conditions as cond
from kubesim.flux.charts import Chart
from kubesim.flux.controller import Controller, Result, Settings, object_key
from kubesim.flux.githost import Checkout, Commit, GitError, GitHost
from kubesim.flux.policies import highest
from kubesim.objects import ObjectApi

GROUP = "source.toolkit.fluxcd.io"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
FETCH_FAILED = "FetchFailed"
GIT_OPERATION_FAILED = "GitOperationFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
ARTIFACT_OUTDATED = "ArtifactOutdated"
STORAGE_HOST = "http://source-controller.flux-system.svc.cluster.local."


@dataclass(frozen=True)
class Artifact:
    """What an artifact holds: manifests by directory (GitRepository), a chart repository index
    (HelmRepository) or a chart (HelmChart, OCIRepository)."""

    revision: str
    files: Mapping[str, str]
    charts: Mapping[str, Mapping[str, Chart]] | None = None
    chart: Chart | None = None


class ArtifactStorage:
    """source-controller's artifact server: the content behind each `status.artifact.url`."""

    def __init__(self) -> None:
        self._by_url: dict[str, Artifact] = {}

    def put(self, url: str, artifact: Artifact) -> None:
        self._by_url[url] = artifact

    def get(self, url: str) -> Artifact | None:
        return self._by_url.get(url)

    def remove_for(self, kind: str, namespace: str, name: str) -> None:
        prefix = f"{STORAGE_HOST}/{kind.lower()}/{namespace}/{name}/"
        for url in [u for u in self._by_url if u.startswith(prefix)]:
            del self._by_url[url]


def highest_semver(tags: list[str], range_text: str) -> str | None:
    """The tag a GitRepository `ref.semver` picks (None if none matches or the range is bad)."""
    return highest(tags, range_text)


def _digest(commit: Commit, revision: str) -> tuple[str, int]:
    content = revision + "\n" + "".join(f"{p}\n{t}" for p, t in sorted(commit.files.items()))
    data = content.encode()
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


class SourceController(Controller):
    """What the source controllers share: artifact storage and the failure and success writes
    of source-controller's summarize helper."""

    group = GROUP
    manager = "source-controller"

    def __init__(self, api: ObjectApi, settings: Settings, *, storage: ArtifactStorage) -> None:
        super().__init__(api, settings)
        self.storage = storage

    def release(self, obj: dict[str, Any]) -> None:
        """A deleted source's artifacts go, then our finalizer."""
        ns, name = object_key(obj)
        self.storage.remove_for(self.kind, ns, name)
        super().release(obj)

    def fetch_failed(
        self, obj: dict[str, Any], c: cond.Conditions, reason: str, message: str
    ) -> Result:
        """FetchFailed=True and Ready=False with the same reason and message, retried."""
        status = dict(obj.get("status") or {})
        return self.failed(obj, status, c, reason, message, condition=FETCH_FAILED)

    def stalled(self, obj: dict[str, Any], c: cond.Conditions, reason: str, message: str) -> Result:
        """A persistent failure: FetchFailed, Stalled and Ready=False with the same reason and
        message, Reconciling removed, observedGeneration advanced; not retried."""
        status = dict(obj.get("status") or {})
        c.mark_true(FETCH_FAILED, reason, message)
        c.mark_false(cond.READY, reason, message)
        c.mark_stalled(reason, message)
        status.update(conditions=c.items(), observedGeneration=obj["metadata"].get("generation"))
        self.write_status(obj, self.handled(obj, status))
        return Result()

    def stored(
        self,
        obj: dict[str, Any],
        c: cond.Conditions,
        artifact: dict[str, Any],
        reason: str,
        message: str,
        **extra: Any,
    ) -> Result:
        status = dict(obj.get("status") or {})
        for failure in (FETCH_FAILED, "BuildFailed", "ArtifactOutdated", cond.STALLED):
            c.delete(failure)
        c.delete(cond.RECONCILING)
        c.mark_true(ARTIFACT_IN_STORAGE, reason, message)
        c.mark_true(cond.READY, reason, message)
        status.update(
            artifact=artifact,
            conditions=c.items(),
            observedGeneration=obj["metadata"].get("generation"),
            **extra,
        )
        self.write_status(obj, self.handled(obj, status))
        interval = cond.parse_duration((obj.get("spec") or {}).get("interval"), 600.0)
        return Result(after=interval)

    def artifact(
        self, obj: Mapping[str, Any], revision: str, filename: str, content: Artifact
    ) -> dict[str, Any]:
        """Store `content` and describe it as `status.artifact` (the current one if unchanged)."""
        ns, name = object_key(obj)
        current = (obj.get("status") or {}).get("artifact") or {}
        path = f"{self.kind.lower()}/{ns}/{name}/{filename}"
        url = f"{STORAGE_HOST}/{path}"
        self.storage.put(url, content)
        if current.get("revision") == revision and current.get("path") == path:
            return dict(current)
        data = f"{revision}\n{path}".encode()
        return {
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "lastUpdateTime": cond.rfc3339(self.now()),
            "path": path,
            "revision": revision,
            "size": len(data),
            "url": url,
        }

    def symlink(self, obj: Mapping[str, Any], name: str) -> str:
        ns, obj_name = object_key(obj)
        return f"{STORAGE_HOST}/{self.kind.lower()}/{ns}/{obj_name}/{name}"


class GitRepositoryController(SourceController):
    plural = "gitrepositories"
    kind = "GitRepository"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, git: GitHost, storage: ArtifactStorage
    ) -> None:
        super().__init__(api, settings, storage=storage)
        self.git = git

    def reconcile(self, obj: dict[str, Any]) -> Result:
        ns, name = object_key(obj)
        started = self.begin(obj)
        if started is None:
            return Result()
        obj, spec = started, started.get("spec") or {}
        interval = cond.parse_duration(spec.get("interval"), 60.0)
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        problem = self._missing_secret(obj)
        if problem:
            return self.fetch_failed(obj, c, AUTHENTICATION_FAILED, problem)
        try:
            checkout = self.git.checkout(
                str(spec.get("url", "")), spec.get("ref"), semver=highest_semver
            )
        except GitError as e:
            message = f"failed to checkout and determine revision: {e}"
            return self.fetch_failed(obj, c, GIT_OPERATION_FAILED, message)
        c.delete(FETCH_FAILED)
        c.delete(ARTIFACT_OUTDATED)
        artifact = status.get("artifact") or {}
        if (
            artifact.get("revision") != checkout.revision
            or self.storage.get(str(artifact.get("url"))) is None
        ):
            artifact = self._store(ns, name, checkout)
        message = f"stored artifact for revision '{checkout.revision}'"
        c.mark_true(ARTIFACT_IN_STORAGE, cond.SUCCEEDED, message)
        c.mark_true(cond.READY, cond.SUCCEEDED, message)
        c.delete(cond.RECONCILING)
        c.delete(cond.STALLED)
        status.update(
            artifact=artifact,
            conditions=c.items(),
            observedGeneration=obj["metadata"].get("generation"),
        )
        for field in ("ignore", "include", "recurseSubmodules", "sparseCheckout"):
            if spec.get(field) is not None:
                status["observed" + field[0].upper() + field[1:]] = spec[field]
        self.write_status(obj, self.handled(obj, status))
        return Result(after=interval)

    def _missing_secret(self, obj: Mapping[str, Any]) -> str:
        """getAuthOpts: a `secretRef` naming no Secret fails before any clone.

        source-controller v1.7 (internal/controller/gitrepository_controller.go, getAuthOpts and
        getSecret) wraps the client's not-found error twice with the same prefix, so the
        message reads `failed to get secret 'ns/name': failed to get secret 'ns/name':
        secrets "name" not found` (v1.6 had the prefix once)."""
        ns = obj["metadata"]["namespace"]
        name = str(((obj.get("spec") or {}).get("secretRef") or {}).get("name") or "")
        problem = self.missing_secret(obj, name)
        prefix = f"failed to get secret '{ns}/{name}': "
        return f"{prefix}{prefix}{problem}" if problem else ""

    def _store(self, ns: str, name: str, checkout: Checkout) -> dict[str, Any]:
        sha = checkout.commit.sha
        path = f"gitrepository/{ns}/{name}/{sha}.tar.gz"
        url = f"{STORAGE_HOST}/{path}"
        digest, size = _digest(checkout.commit, checkout.revision)
        self.storage.put(url, Artifact(checkout.revision, dict(checkout.commit.files)))
        return {
            "digest": digest,
            "lastUpdateTime": cond.rfc3339(self.now()),
            "path": path,
            "revision": checkout.revision,
            "size": size,
            "url": url,
        }

    def announce(self, obj: dict[str, Any]) -> None:
        c = cond.Conditions(obj, self.now())
        artifact = (obj.get("status") or {}).get("artifact")
        generation = obj["metadata"].get("generation")
        observed = (obj.get("status") or {}).get("observedGeneration")
        if artifact is None:
            c.progressing("building artifact", drift=True)
        elif observed != generation:
            c.progressing(f"processing object: new generation {observed} -> {generation}")
        else:
            c.progressing("reconciliation in progress")
        self.write_status(obj, {**(obj.get("status") or {}), "conditions": c.items()})

    def on_git_change(self, url: str) -> None:
        """A push to the simulated host: repositories following it look again now, as if a
        notification-controller Receiver had asked them to."""
        self.trigger_where(lambda o: (o.get("spec") or {}).get("url") == url)
