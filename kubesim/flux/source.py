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

from kubesim.errors import not_found
from kubesim.flux import conditions as cond
from kubesim.flux.charts import Chart
from kubesim.flux.controller import Controller, Result, Settings, object_key
from kubesim.flux.githost import Checkout, Commit, GitError, GitHost
from kubesim.flux.policies import InvalidPolicy, parse_range, parse_version
from kubesim.objects import ObjectApi

GROUP = "source.toolkit.fluxcd.io"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
FETCH_FAILED = "FetchFailed"
GIT_OPERATION_FAILED = "GitOperationFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
SECRETS = ("", "secrets")
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
    try:
        constraint = parse_range(range_text)
    except InvalidPolicy:
        return None
    best: tuple[Any, str] | None = None
    for tag in tags:
        v = parse_version(tag)
        if v is not None and constraint.allows(v) and (best is None or v.key() > best[0]):
            best = (v.key(), tag)
    return best[1] if best else None


def _digest(commit: Commit, revision: str) -> tuple[str, int]:
    content = revision + "\n" + "".join(f"{p}\n{t}" for p, t in sorted(commit.files.items()))
    data = content.encode()
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


class GitRepositoryController(Controller):
    group = GROUP
    plural = "gitrepositories"
    kind = "GitRepository"
    manager = "source-controller"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, git: GitHost, storage: ArtifactStorage
    ) -> None:
        super().__init__(api, settings)
        self.git = git
        self.storage = storage

    def reconcile(self, obj: dict[str, Any]) -> Result:
        ns, name = object_key(obj)
        if obj["metadata"].get("deletionTimestamp"):
            self.storage.remove_for(self.kind, ns, name)
            self.release(obj)
            return Result()
        obj = self.ensure_finalizer(obj)
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return self.suspended(obj)
        interval = cond.parse_duration(spec.get("interval"), 60.0)
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        problem = self._missing_secret(obj)
        if problem:
            return self._fetch_failed(obj, status, c, AUTHENTICATION_FAILED, problem)
        try:
            checkout = self.git.checkout(
                str(spec.get("url", "")), spec.get("ref"), semver=highest_semver
            )
        except GitError as e:
            message = f"failed to checkout and determine revision: {e}"
            return self._fetch_failed(obj, status, c, GIT_OPERATION_FAILED, message)
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
        ref = (obj.get("spec") or {}).get("secretRef") or {}
        name = str(ref.get("name") or "")
        if not name or self.api.store.get(SECRETS, ns, name) is not None:
            return ""
        prefix = f"failed to get secret '{ns}/{name}': "
        return f"{prefix}{prefix}{not_found('secrets', '', name).message}"

    def _fetch_failed(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        reason: str,
        message: str,
    ) -> Result:
        """FetchFailed=True and Ready=False with the same reason and message, Reconciling left
        True (`ProgressingWithRetry`), observedGeneration not advanced; retried with backoff."""
        c.mark_true(FETCH_FAILED, reason, message)
        c.mark_false(cond.READY, reason, message)
        c.retrying()
        status["conditions"] = c.items()
        self.write_status(obj, self.handled(obj, status))
        return Result(failed=True)

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
