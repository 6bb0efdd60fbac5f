"""The simulated helm-controller (v1.4.5): HelmReleases installed, upgraded and remediated from
a chart in a HelmChart it keeps for `spec.chart` (from a HelmRepository) or from
`spec.chartRef` (an OCIRepository or HelmChart).

Before any Helm action the controller checks, in order (internal/controller/
helmrelease_controller.go `reconcileRelease`), each failing with Ready=False:

- `dependsOn`: `DependencyNotReady`, `dependency '<ns>/<name>' is not ready`;
- the source object: `ArtifactFailed`, `could not get Source object: <the client's error>`,
  e.g. `ocirepositories.source.toolkit.fluxcd.io "<name>" not found`;
- the source's readiness: `SourceNotReady`, `<Kind> '<ns>/<name>' is not ready: <its Ready
  message, "latest generation of object has not been reconciled" or "does not have an
  artifact">`;
- `valuesFrom`: `ValuesError`, `could not resolve ConfigMap chart values reference
  '<ns>/<name>' with key 'values.yaml': configmaps "<name>" not found`;
- the chart in the artifact: `ArtifactFailed`, `Source not ready: artifact not found. Retrying
  in 30s`;

then runs the atomic release (kubesim.flux.atomic). `Reconciling` stays True with
`Fulfilling prerequisites` while it waits; `status.observedGeneration` advances when a
reconcile ends without an error or immediate requeue, or with no retries left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubesim.errors import not_found
from kubesim.flux import conditions as cond
from kubesim.flux.atomic import AtomicRelease, Outcome
from kubesim.flux.charts import Chart
from kubesim.flux.controller import Controller, Result, Settings, object_key
from kubesim.flux.helmactions import Helm, values_digest
from kubesim.flux.helminputs import (
    GROUP,
    ValuesError,
    chart_template,
    delete_chart,
    source_not_ready,
    source_of,
    values_of,
    with_digest,
)
from kubesim.flux.helmstate import (
    FAILURE_COUNTERS,
    FORCE_AT,
    RESET_AT,
    Request,
    record_request,
    requested,
)
from kubesim.flux.source import ArtifactStorage
from kubesim.objects import ObjectApi


class HelmReleaseController(Controller):
    group = GROUP
    plural = "helmreleases"
    kind = "HelmRelease"
    manager = "helm-controller"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, storage: ArtifactStorage, helm: Helm
    ) -> None:
        super().__init__(api, settings)
        self.storage = storage
        self.helm = helm

    # ------------------------------------------------------------ reconcile
    def reconcile(self, obj: dict[str, Any]) -> Result:
        if obj["metadata"].get("deletionTimestamp"):
            return self._finalize(obj)
        obj = self.ensure_finalizer(obj)
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return self.suspended(obj)
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())
        chart_template(self.api, obj, status, self.manager)
        c.mark_true(cond.RECONCILING, cond.PROGRESSING, "Fulfilling prerequisites")
        c.delete(cond.STALLED)

        waiting = self._dependency_problem(obj)
        if waiting:
            c.mark_false(cond.READY, "DependencyNotReady", waiting)
            return self._finish(obj, status, c, after=self.settings.dependency_requeue)
        _unknown_unless(c, "DependencyNotReady")

        source, problem = source_of(self.api, obj, status)
        if source is None:
            c.mark_false(cond.READY, "ArtifactFailed", f"could not get Source object: {problem}")
            return self._finish(obj, status, c, failed=True)
        _unknown_unless(c, "ArtifactFailed", "AccessDenied")
        not_ready = source_not_ready(source)
        if not_ready:
            c.mark_false(cond.READY, "SourceNotReady", not_ready)
            return self._finish(obj, status, c, after=self.settings.dependency_requeue)
        _unknown_unless(c, "SourceNotReady")

        try:
            values = values_of(self.api, obj)
        except ValuesError as e:
            c.mark_false(cond.READY, "ValuesError", str(e))
            return self._finish(obj, status, c, failed=True)
        _unknown_unless(c, "ValuesError")

        artifact = (source.get("status") or {}).get("artifact") or {}
        content = self.storage.get(str(artifact.get("url", "")))
        if content is None or content.chart is None:
            wait = cond.format_duration(self.settings.dependency_requeue)
            message = f"Source not ready: artifact not found. Retrying in {wait}"
            c.mark_false(cond.READY, "ArtifactFailed", message)
            return self._finish(obj, status, c, after=self.settings.dependency_requeue)
        _unknown_unless(c, "ArtifactFailed")

        chart, oci_digest = content.chart, ""
        if source.get("kind") == "OCIRepository":
            chart, oci_digest = with_digest(chart, str(artifact.get("revision", "")))
        request = self._request(obj, status, c, chart, values, oci_digest)
        outcome = AtomicRelease(self.helm, request).run()
        interval = cond.parse_duration(spec.get("interval"), 600.0)
        if outcome is Outcome.DONE:
            return self._finish(obj, status, c, after=interval, observed=True)
        if outcome is Outcome.RETRY_AFTER:
            retry = request.active_retry() or interval
            return self._finish(obj, status, c, after=retry, observed=True)
        if outcome is Outcome.TERMINAL:
            return self._finish(obj, status, c, observed=True)
        if outcome is Outcome.REQUEUE:
            return self._finish(obj, status, c, after=0.0)
        return self._finish(obj, status, c, failed=True)

    def _request(
        self,
        obj: Mapping[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        chart: Chart,
        values: Mapping[str, Any],
        oci_digest: str,
    ) -> Request:
        spec = obj.get("spec") or {}
        ns, name = object_key(obj)
        target = str(spec.get("targetNamespace") or "")
        release_name = str(spec.get("releaseName") or (f"{target}-{name}" if target else name))
        storage_namespace = str(spec.get("storageNamespace") or ns)
        status["storageNamespace"] = storage_namespace
        request = Request(
            obj,
            status,
            c,
            chart,
            values,
            storage_namespace,
            release_name,
            target or ns,
            oci_digest,
        )
        reset = requested(obj, status, RESET_AT, "lastHandledResetAt")
        record_request(obj, status, RESET_AT, "lastHandledResetAt")
        digest = values_digest(values)
        if (
            reset
            or status.get("lastAttemptedGeneration") != obj["metadata"].get("generation")
            or status.get("lastAttemptedRevision") != chart.version
            or status.get("lastAttemptedConfigDigest", digest) != digest
        ):
            for key in FAILURE_COUNTERS:
                status.pop(key, None)
        status.update(
            lastAttemptedGeneration=obj["metadata"].get("generation"),
            lastAttemptedRevision=chart.version,
            lastAttemptedConfigDigest=digest,
        )
        if oci_digest:
            status["lastAttemptedRevisionDigest"] = oci_digest
        else:
            status.pop("lastAttemptedRevisionDigest", None)
        return request

    def _finish(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        *,
        after: float | None = None,
        failed: bool = False,
        observed: bool = False,
    ) -> Result:
        if observed:
            status["observedGeneration"] = obj["metadata"].get("generation")
        record_request(obj, status, FORCE_AT, "lastHandledForceAt")
        status["conditions"] = c.items()
        self.write_status(obj, self.handled(obj, status))
        if failed:
            return Result(failed=True)
        return Result(after=after)

    # ------------------------------------------------------------ prerequisites
    def _dependency_problem(self, obj: Mapping[str, Any]) -> str:
        for dep in (obj.get("spec") or {}).get("dependsOn") or []:
            ns = str(dep.get("namespace") or obj["metadata"]["namespace"])
            name = str(dep.get("name", ""))
            found = self.get((ns, name))
            if found is None:
                error = not_found(self.plural, self.group, name).message
                return f"unable to get '{ns}/{name}' dependency: {error}"
            if (
                found["metadata"].get("generation")
                != (found.get("status") or {}).get("observedGeneration")
                or cond.status_of(found) != "True"
            ):
                return f"dependency '{ns}/{name}' is not ready"
        return ""

    # ------------------------------------------------------------ deletion
    def _finalize(self, obj: dict[str, Any]) -> Result:
        """reconcileDelete: uninstall the release and delete the HelmChart, unless suspended."""
        spec = obj.get("spec") or {}
        status = dict(obj.get("status") or {})
        if not spec.get("suspend"):
            storage_namespace = status.get("storageNamespace")
            history = status.get("history") or []
            if storage_namespace and history:
                self.helm.uninstall(str(storage_namespace), str(history[0]["name"]))
            delete_chart(self.api, status)
        self.release(obj)
        return Result()

    # ------------------------------------------------------------ progress and triggers
    def announce(self, obj: dict[str, Any]) -> None:
        c = cond.Conditions(obj, self.now())
        c.mark_true(cond.RECONCILING, cond.PROGRESSING, "Fulfilling prerequisites")
        c.delete(cond.STALLED)
        self.write_status(obj, {**(obj.get("status") or {}), "conditions": c.items()})

    def using_source(self, source: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool]:
        """HelmReleases whose chart comes from `source` (a HelmChart or OCIRepository)."""
        ns, name = object_key(source)
        kind = str(source.get("kind", ""))

        def check(hr: Mapping[str, Any]) -> bool:
            spec = hr.get("spec") or {}
            ref = spec.get("chartRef")
            if ref:
                return bool(
                    ref.get("kind") == kind
                    and ref.get("name") == name
                    and (ref.get("namespace") or hr["metadata"]["namespace"]) == ns
                )
            return (
                kind == "HelmChart" and (hr.get("status") or {}).get("helmChart") == f"{ns}/{name}"
            )

        return check


def _unknown_unless(c: cond.Conditions, *reasons: str) -> None:
    """Replace a stale Ready=False of these reasons with Unknown, as each check passes."""
    ready = c.get(cond.READY)
    if ready and ready.get("reason") in reasons:
        c.mark_unknown(cond.READY, cond.PROGRESSING, "reconciliation in progress")
