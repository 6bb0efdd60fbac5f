"""The simulated kustomize-controller (v1.7): Kustomizations build a path of their source's
artifact, substitute variables, apply the result, keep an inventory and prune what left it.

Status as the real controller writes it (internal/controller/kustomization_controller.go):
`Ready` with reasons `ArtifactFailed`, `DependencyNotReady`, `BuildFailed`,
`ReconciliationFailed`, `PruneFailed`, `HealthCheckFailed` or `ReconciliationSucceeded`;
`status.observedGeneration` only advances when Ready becomes True (so a failing new generation
stays visibly unreconciled), and a failed attempt leaves `Reconciling` True with reason
`ProgressingWithRetry`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from kubesim.errors import not_found
from kubesim.flux import conditions as cond
from kubesim.flux.apply import Applier, ApplyError
from kubesim.flux.build import BuildError, build
from kubesim.flux.controller import Controller, Key, Result, Settings, object_key
from kubesim.flux.health import HealthChecks, Verdict
from kubesim.flux.source import ArtifactStorage
from kubesim.objects import ObjectApi

GROUP = "kustomize.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
SOURCE_PLURALS = {
    "GitRepository": "gitrepositories",
    "OCIRepository": "ocirepositories",
    "Bucket": "buckets",
    "ExternalArtifact": "externalartifacts",
}
HISTORY_SIZE = 5


def source_of(k: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name) of a Kustomization's sourceRef, namespace defaulted."""
    ref = (k.get("spec") or {}).get("sourceRef") or {}
    return (
        str(ref.get("kind", "")),
        str(ref.get("namespace") or k["metadata"]["namespace"]),
        str(ref.get("name", "")),
    )


class KustomizationController(Controller):
    group = GROUP
    plural = "kustomizations"
    kind = "Kustomization"
    manager = "gotk-kustomize-controller"
    applier_manager = "kustomize-controller"

    def __init__(
        self,
        api: ObjectApi,
        settings: Settings,
        *,
        storage: ArtifactStorage,
        strict_substitutions: bool = True,
    ) -> None:
        super().__init__(api, settings)
        self.storage = storage
        self.strict_substitutions = strict_substitutions
        self.failures: dict[Key, str] = {}
        """Injected health-check failures, by Kustomization (tests and demos)."""
        self.health = HealthChecks(api)
        self._depends_on: dict[Key, frozenset[Key]] = {}
        self._dependents: dict[Key, set[Key]] = {}

    # ------------------------------------------------------------ reconcile
    def reconcile(self, obj: dict[str, Any]) -> Result:
        if obj["metadata"].get("deletionTimestamp"):
            return self._finalize(obj)
        obj = self.ensure_finalizer(obj)
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return self.suspended(obj)
        interval = cond.parse_duration(spec.get("interval"), 600.0)
        retry = cond.parse_duration(spec.get("retryInterval"), interval)
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())

        source, problem, wait = self._source(obj, retry)
        if source is None:
            c.mark_false(cond.READY, "ArtifactFailed", problem)
            return self._finish(obj, status, c, after=wait)
        artifact = (source.get("status") or {})["artifact"]
        revision = str(artifact.get("revision", ""))
        waiting = self._dependency_problem(obj, revision)
        if waiting:
            c.mark_false(cond.READY, "DependencyNotReady", waiting)
            return self._finish(obj, status, c, after=self.settings.dependency_requeue)

        started = time.perf_counter()
        timeout = cond.format_duration(cond.parse_duration(spec.get("timeout"), interval))
        c.mark_unknown(cond.READY, cond.PROGRESSING, "Reconciliation in progress")
        c.mark_true(
            cond.RECONCILING,
            cond.PROGRESSING,
            f"Fetching manifests for revision {revision} with a timeout of {timeout}",
        )
        content = self.storage.get(str(artifact.get("url", "")))
        if content is None:
            c.mark_false(
                cond.READY,
                "ArtifactFailed",
                "Source is not ready, artifact not found, retrying in "
                + cond.format_duration(self.settings.dependency_requeue),
            )
            return self._finish(obj, status, c, after=self.settings.dependency_requeue)
        try:
            built = build(
                obj, content.files, self._variables(obj), strict=self.strict_substitutions
            )
        except BuildError as e:
            if e.reason == "BuildFailed":
                status["lastAttemptedRevision"] = revision
                c.mark_true(
                    cond.RECONCILING,
                    cond.PROGRESSING,
                    f"Building manifests for revision {revision} with a timeout of {timeout}",
                )
            c.mark_false(cond.READY, e.reason, e.message)
            return self._finish(obj, status, c, after=retry)
        status["lastAttemptedRevision"] = revision
        c.mark_true(
            cond.RECONCILING,
            cond.PROGRESSING,
            f"Detecting drift for revision {revision} with a timeout of {timeout}",
        )
        applier = Applier(
            self.api,
            name=obj["metadata"]["name"],
            namespace=obj["metadata"]["namespace"],
            manager=self.applier_manager,
        )
        history_meta = {"revision": revision}
        try:
            entries = applier.apply_all(built.objects)
        except ApplyError as e:
            c.mark_false(cond.READY, "ReconciliationFailed", e.message)
            status["history"] = _upsert(
                status.get("history"),
                built.digest,
                self.now(),
                started,
                "ReconciliationFailed",
                history_meta,
            )
            return self._finish(obj, status, c, after=retry)
        old_entries = ((status.get("inventory") or {}).get("entries")) or []
        status["inventory"] = {"entries": entries}
        if spec.get("prune"):
            kept = {e["id"] for e in entries}
            failures = applier.delete_all(e for e in old_entries if e.get("id") not in kept)
            if failures:
                c.mark_false(cond.READY, "PruneFailed", "\n".join(failures))
                status["history"] = _upsert(
                    status.get("history"),
                    built.digest,
                    self.now(),
                    started,
                    "PruneFailed",
                    history_meta,
                )
                return self._finish(obj, status, c, after=retry)
        verdict = self._health(obj, c, revision, timeout, entries)
        if verdict.state == "waiting":
            return self._finish(obj, status, c, after=verdict.after)
        if verdict.state == "failed":
            status["history"] = _upsert(
                status.get("history"),
                built.digest,
                self.now(),
                started,
                "HealthCheckFailed",
                history_meta,
            )
            return self._finish(obj, status, c, after=retry)
        status["lastAppliedRevision"] = revision
        c.mark_true(cond.READY, "ReconciliationSucceeded", f"Applied revision: {revision}")
        status["history"] = _upsert(
            status.get("history"),
            built.digest,
            self.now(),
            started,
            "ReconciliationSucceeded",
            history_meta,
        )
        return self._finish(obj, status, c, after=interval)

    def _finish(
        self, obj: dict[str, Any], status: dict[str, Any], c: cond.Conditions, *, after: float
    ) -> Result:
        """The controller's `finalizeStatus`: observedGeneration only on success."""
        if c.is_true(cond.READY):
            c.delete(cond.RECONCILING)
            status["observedGeneration"] = obj["metadata"].get("generation")
        if c.is_false(cond.READY):
            c.retrying()
        status["conditions"] = c.items()
        self.write_status(obj, self.handled(obj, status))
        return Result(after=after)

    def _source(
        self, obj: Mapping[str, Any], retry: float
    ) -> tuple[dict[str, Any] | None, str, float]:
        """The source with an artifact, or (None, Ready message, when to look again)."""
        kind, ns, name = source_of(obj)
        plural = SOURCE_PLURALS.get(kind)
        if plural is None:
            return None, f"source `{name}` kind '{kind}' not supported", retry
        source = self.api.store.get((SOURCE_GROUP, plural), ns, name)
        if source is None:
            return None, not_found(plural, SOURCE_GROUP, name).message, retry
        if not (source.get("status") or {}).get("artifact"):
            wait = self.settings.dependency_requeue
            return (
                None,
                f"Source artifact not found, retrying in {cond.format_duration(wait)}",
                wait,
            )
        return source, "", 0.0

    def _dependency_problem(self, obj: Mapping[str, Any], revision: str) -> str:
        """The first unmet `dependsOn`, worded as checkDependencies does; `` when all are met."""
        my_source = source_of(obj)
        for dep in (obj.get("spec") or {}).get("dependsOn") or []:
            ns = str(dep.get("namespace") or obj["metadata"]["namespace"])
            name = str(dep.get("name", ""))
            found = self.get((ns, name))
            if found is None:
                error = not_found(self.plural, self.group, name)
                return f"dependency '{ns}/{name}' not found: {error.message}"
            status = found.get("status") or {}
            if not status.get("conditions") or found["metadata"].get("generation") != status.get(
                "observedGeneration"
            ):
                return f"dependency '{ns}/{name}' is not ready"
            if cond.status_of(found) != "True":
                return f"dependency '{ns}/{name}' is not ready"
            if source_of(found) == my_source and status.get("lastAppliedRevision") != revision:
                return f"dependency '{ns}/{name}' revision is not up to date"
        return ""

    def _variables(self, obj: Mapping[str, Any]) -> Callable[[str, str], Mapping[str, Any] | None]:
        ns = obj["metadata"]["namespace"]

        def lookup(kind: str, name: str) -> Mapping[str, Any] | None:
            plural = {"ConfigMap": "configmaps", "Secret": "secrets"}.get(kind)
            return self.api.store.get(("", plural), ns, name) if plural else None

        return lookup

    def _health(
        self,
        obj: Mapping[str, Any],
        c: cond.Conditions,
        revision: str,
        timeout: str,
        entries: list[dict[str, str]],
    ) -> Verdict:
        """checkHealth: kstatus of what `wait` or `healthChecks` name (kubesim.flux.health),
        or an injected failure."""
        key = object_key(obj)
        running = f"Running health checks for revision {revision} with a timeout of {timeout}"
        injected = self.failures.get(key)
        if injected is not None:
            self.health.forget(key)
            c.mark_true(cond.RECONCILING, cond.PROGRESSING, running)
            c.mark_false(cond.READY, "HealthCheckFailed", injected)
            c.mark_false(cond.HEALTHY, "HealthCheckFailed", injected)
            return Verdict("failed", injected)
        targets = self.health.targets(obj, entries)
        if not targets:
            self.health.forget(key)
            c.delete(cond.HEALTHY)
            return Verdict("passed")
        verdict = self.health.check(key, targets, cond.parse_duration(timeout, 300.0))
        took = cond.format_duration(round(verdict.after, 6))
        if verdict.state == "passed":
            c.mark_true(cond.HEALTHY, cond.SUCCEEDED, f"Health check passed in {took}")
        elif verdict.state == "failed":
            c.mark_false(cond.HEALTHY, "HealthCheckFailed", verdict.message)
            c.mark_false(
                cond.READY,
                "HealthCheckFailed",
                f"health check failed after {took}: {verdict.message}",
            )
        else:
            c.mark_true(cond.RECONCILING, cond.PROGRESSING, running)
            c.mark_unknown(cond.HEALTHY, cond.PROGRESSING, running)
        return verdict

    # ------------------------------------------------------------ deletion
    def _finalize(self, obj: dict[str, Any]) -> Result:
        spec = obj.get("spec") or {}
        entries = ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []
        policy = spec.get("deletionPolicy") or "MirrorPrune"
        delete = (
            bool(entries)
            and not spec.get("suspend")
            and (
                policy in ("Delete", "WaitForTermination")
                or (policy == "MirrorPrune" and bool(spec.get("prune")))
            )
        )
        if delete:
            applier = Applier(
                self.api,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"]["namespace"],
                manager=self.applier_manager,
            )
            if applier.delete_all(entries):
                return Result(failed=True)
        self.failures.pop(object_key(obj), None)
        self.health.forget(object_key(obj))
        self.release(obj)
        return Result()

    # ------------------------------------------------------------ progress and triggers
    def announce(self, obj: dict[str, Any]) -> None:
        source, _, _ = self._source(obj, 0.0)
        if source is None:
            return  # the real controller shows no progress before it has a source artifact
        revision = str(((source.get("status") or {}).get("artifact") or {}).get("revision", ""))
        if self._dependency_problem(obj, revision):
            return
        spec = obj.get("spec") or {}
        timeout = cond.format_duration(
            cond.parse_duration(
                spec.get("timeout"), cond.parse_duration(spec.get("interval"), 600.0)
            )
        )
        c = cond.Conditions(obj, self.now())
        c.mark_unknown(cond.READY, cond.PROGRESSING, "Reconciliation in progress")
        c.mark_true(
            cond.RECONCILING,
            cond.PROGRESSING,
            f"Fetching manifests for revision {revision} with a timeout of {timeout}",
        )
        self.write_status(obj, {**(obj.get("status") or {}), "conditions": c.items()})

    def using_source(
        self, kind: str, source: Mapping[str, Any]
    ) -> Callable[[dict[str, Any]], bool]:
        ns, name = object_key(source)
        return lambda k: source_of(k) == (kind, ns, name)

    def track_dependencies(self, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Keep the index of who names whom in `dependsOn` current with a change of `obj`
        (every status write of every Kustomization asks it: it must not scan them all)."""
        key = object_key(obj)
        new = frozenset() if deleted else _dependencies(obj)
        old = self._depends_on.pop(key, frozenset())
        if new:
            self._depends_on[key] = new
        for dependency in old - new:
            dependents = self._dependents[dependency]
            dependents.discard(key)
            if not dependents:
                del self._dependents[dependency]
        for dependency in new - old:
            self._dependents.setdefault(dependency, set()).add(key)

    def dependents_of(self, dependency: Mapping[str, Any]) -> list[Key]:
        """The Kustomizations whose `dependsOn` names `dependency`."""
        return sorted(self._dependents.get(object_key(dependency), ()))


def _dependencies(obj: Mapping[str, Any]) -> frozenset[Key]:
    """The Kustomizations `obj` depends on (a `dependsOn` entry without a namespace means its
    own)."""
    own = str(obj["metadata"].get("namespace", ""))
    return frozenset(
        (str(d.get("namespace") or own), str(d.get("name")))
        for d in (obj.get("spec") or {}).get("dependsOn") or []
        if isinstance(d, Mapping)
    )


def _upsert(
    history: Any, digest: str, now: Any, started: float, reason: str, metadata: dict[str, str]
) -> list[dict[str, Any]]:
    """meta.History.Upsert: one snapshot per (digest, status), most recent first, at most 5."""
    stamp = cond.rfc3339(now)
    duration = cond.format_duration(round(time.perf_counter() - started, 6))
    items = [dict(h) for h in history or []]
    for i, h in enumerate(items):
        if h.get("digest") == digest and h.get("lastReconciledStatus") == reason:
            h.update(
                lastReconciled=stamp,
                lastReconciledDuration=duration,
                metadata=metadata,
                totalReconciliations=int(h.get("totalReconciliations", 0)) + 1,
            )
            items.insert(0, items.pop(i))
            return items[:HISTORY_SIZE]
    snapshot = {
        "digest": digest,
        "firstReconciled": stamp,
        "lastReconciled": stamp,
        "lastReconciledDuration": duration,
        "lastReconciledStatus": reason,
        "totalReconciliations": 1,
        "metadata": metadata,
    }
    return [snapshot, *items][:HISTORY_SIZE]
