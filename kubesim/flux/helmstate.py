"""What a HelmRelease's spec and status say about its release, read as helm-controller's API
types read them (api/v2/helmrelease_types.go, snapshot_types.go; v1.4.5): the active
remediation and retry strategy, the release history, `forceAt`/`resetAt` requests, and the
summary of `Released`/`Remediated` into `Ready`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.flux import conditions as cond
from kubesim.flux.charts import Chart
from kubesim.flux.helmactions import DEPLOYED, SUPERSEDED

RELEASED, REMEDIATED, TEST_SUCCESS = "Released", "Remediated", "TestSuccess"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
FAILURE_COUNTERS = ("failures", "installFailures", "upgradeFailures")


@dataclass(frozen=True)
class Remediation:
    """`spec.install.remediation` or `spec.upgrade.remediation` with its defaults."""

    action: str
    retries: int
    """Negative: unlimited."""
    strategy: str
    """`uninstall` (always, for install) or `rollback` (the upgrade default)."""
    remediate_last: bool

    def failure_count(self, status: Mapping[str, Any]) -> int:
        return int(status.get(f"{self.action}Failures") or 0)

    def exhausted(self, status: Mapping[str, Any]) -> bool:
        return self.retries >= 0 and self.failure_count(status) > self.retries


def remediation(spec: Mapping[str, Any], action: str | None) -> Remediation | None:
    """The remediation of the last attempted action (`GetActiveRemediation`), if any."""
    return remediation_of(spec, action) if action in ("install", "upgrade") else None


def remediation_of(spec: Mapping[str, Any], action: str) -> Remediation:
    config = (spec.get(action) or {}).get("remediation") or {}
    retries = int(config.get("retries") or 0)
    last = config.get("remediateLastFailure")
    if action == "install":
        return Remediation("install", retries, "uninstall", bool(last))
    strategy = str(config.get("strategy") or "rollback")
    return Remediation("upgrade", retries, strategy, retries > 0 if last is None else bool(last))


def retry_interval(spec: Mapping[str, Any], action: str | None) -> float | None:
    """The RetryOnFailure strategy's interval (default 5m) for `action`, if it has one."""
    if action not in ("install", "upgrade"):
        return None
    strategy = (spec.get(action) or {}).get("strategy") or {}
    if strategy.get("name") != "RetryOnFailure":
        return None
    return cond.parse_duration(strategy.get("retryInterval"), 300.0)


@dataclass
class Request:
    """One release attempt: the HelmRelease, the status and conditions being written, and the
    chart and values it asks for."""

    obj: Mapping[str, Any]
    status: dict[str, Any]
    c: cond.Conditions
    chart: Chart
    values: Mapping[str, Any]
    storage_namespace: str
    release_name: str
    release_namespace: str
    oci_digest: str = ""

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.obj.get("spec") or {}

    @property
    def origin(self) -> tuple[str, str]:
        return (str(self.obj["metadata"]["namespace"]), str(self.obj["metadata"]["name"]))

    def history(self) -> list[dict[str, Any]]:
        """`status.history`, newest version first."""
        return sorted(self.status.get("history") or [], key=lambda s: -int(s["version"]))

    def active_remediation(self) -> Remediation | None:
        return remediation(self.spec, self.status.get("lastAttemptedReleaseAction"))

    def active_retry(self) -> float | None:
        return retry_interval(self.spec, self.status.get("lastAttemptedReleaseAction"))

    def timeout(self, action: str) -> str:
        default = cond.parse_duration(self.spec.get("timeout"), 300.0)
        own = (self.spec.get(action) or {}).get("timeout")
        return cond.format_duration(cond.parse_duration(own, default))

    def forced(self) -> bool:
        """ShouldHandleForceRequest: a new `forceAt` request, recorded as handled, so only the
        first action of a reconcile is forced."""
        force = requested(self.obj, self.status, FORCE_AT, "lastHandledForceAt")
        record_request(self.obj, self.status, FORCE_AT, "lastHandledForceAt")
        return force


def full_name(snapshot: Mapping[str, Any]) -> str:
    """Snapshot.FullReleaseName: `<namespace>/<name>.v<version>`."""
    return f"{snapshot['namespace']}/{snapshot['name']}.v{snapshot['version']}"


def chart_name(snapshot: Mapping[str, Any]) -> str:
    """Snapshot.VersionedChartName: `<chart>@<version>`."""
    return f"{snapshot['chartName']}@{snapshot['chartVersion']}"


def previous(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Snapshots.Previous: the newest deployed or superseded release before the latest."""
    return next((s for s in history[1:] if s["status"] in (DEPLOYED, SUPERSEDED)), None)


def truncate(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Snapshots.Truncate: keep up to the previous deployed release (or the newest five)."""
    for i, s in enumerate(history[1:], start=1):
        if s["status"] in (DEPLOYED, SUPERSEDED):
            return history[: i + 1]
    return history[:5]


def summarize(req: Request) -> None:
    """release.go `summarize`: Ready from the newer of Remediated and Released (Remediated
    first on a tie), always False when it is Remediated."""
    c = req.c
    if not (req.spec.get("test") or {}).get("enable"):
        c.delete(TEST_SUCCESS)
    found = [x for x in (c.get(REMEDIATED), c.get(RELEASED)) if x is not None]
    if not found:
        return
    winner = found[0]
    if len(found) == 2 and int(found[1].get("observedGeneration") or 0) > int(
        found[0].get("observedGeneration") or 0
    ):
        winner = found[1]
    status = "False" if winner["type"] == REMEDIATED else str(winner["status"])
    if status == "True":
        c.delete(cond.STALLED)
    c.set(cond.READY, status, str(winner["reason"]), str(winner["message"]))


def clear_failures(status: dict[str, Any]) -> None:
    for key in FAILURE_COUNTERS:
        status.pop(key, None)


def requested(obj: Mapping[str, Any], status: Mapping[str, Any], name: str, field: str) -> bool:
    """meta.HandleAnnotationRequest's test: a `forceAt`/`resetAt` equal to `requestedAt`, neither
    handled yet."""
    annotations = obj["metadata"].get("annotations") or {}
    value = annotations.get(name)
    return bool(
        value is not None
        and value == annotations.get(REQUESTED_AT)
        and status.get("lastHandledReconcileAt") != value
        and status.get(field) != value
    )


def record_request(obj: Mapping[str, Any], status: dict[str, Any], name: str, field: str) -> None:
    """Remember a `forceAt`/`resetAt` value as handled (whether it asked for anything or not)."""
    value = (obj["metadata"].get("annotations") or {}).get(name)
    if value is not None:
        status[field] = str(value)
