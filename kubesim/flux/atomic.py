"""helm-controller's atomic release (internal/reconcile/atomic_release.go, v1.4.5): determine
the state of the release in Helm's storage, run the Helm action it calls for (install, upgrade,
rollback or uninstall remediation), and repeat until the release is in sync, a remediation has
run, or the retries are used up.

Conditions and messages as helm-controller writes them (install.go, upgrade.go,
rollback_remediation.go, uninstall_remediation.go, release.go `summarize`):

- install: Released=True `InstallSucceeded`,
  `Helm install succeeded for release <ns>/<name>.v<N> with chart <chart>@<version>`;
  failed: Released=False `InstallFailed`,
  `Helm install failed for release <ns>/<name> with chart <chart>@<version>: <error>`;
- upgrade: Released=True `UpgradeSucceeded`,
  `Helm upgrade succeeded for release <ns>/<name>.v<N> with chart <chart>@<version>`;
  failed: Released=False `UpgradeFailed`,
  `Helm upgrade failed for release <ns>/<name> with chart <chart>@<version>: <error>`;
- rollback: Remediated=True `RollbackSucceeded`,
  `Helm rollback to previous release <ns>/<name>.v<N> with chart <chart>@<version> succeeded`;
- uninstall: Remediated=True `UninstallSucceeded`,
  `Helm uninstall remediation for release <ns>/<name>.v<N> with chart <chart>@<version> succeeded`;
- no retries left: Stalled=True `RetriesExceeded`, `Failed to install after <n> attempt(s)`
  (or `upgrade`).

Ready mirrors Remediated (always False) or Released, whichever is newer (`summarize`); an
uninstall remediation does not re-summarize, so Ready keeps the failure message. Helm tests and
drift detection are not simulated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import Enum
from typing import Any

from kubesim.flux import conditions as cond
from kubesim.flux.helmactions import DEPLOYED, UNINSTALLED, ActionError, Helm, values_digest
from kubesim.flux.helmstate import (
    RELEASED,
    REMEDIATED,
    TEST_SUCCESS,
    Request,
    chart_name,
    clear_failures,
    full_name,
    previous,
    remediation_of,
    retry_interval,
    summarize,
    truncate,
)

ABSENT, UNMANAGED, OUT_OF_SYNC, IN_SYNC, FAILED_STATE = (
    "Absent",
    "Unmanaged",
    "OutOfSync",
    "InSync",
    "Failed",
)
"""The release states of internal/reconcile/state.go that the simulation reaches."""


class Outcome(Enum):
    DONE = "done"
    """In sync (or nothing more to do): requeue at `spec.interval`."""
    REQUEUE = "requeue"
    """A remediation ran: reconcile again at once."""
    RETRY_AFTER = "retry"
    """The RetryOnFailure strategy: try again after its interval."""
    TERMINAL = "terminal"
    """Out of retries: wait for a change (observedGeneration is recorded)."""
    ERROR = "error"
    """Nothing stored: retry with backoff."""


class AtomicRelease:
    def __init__(self, helm: Helm, req: Request) -> None:
        self.helm = helm
        self.req = req

    def run(self) -> Outcome:
        """Drive the release towards the desired state as far as one reconcile goes."""
        req, c = self.req, self.req.c
        done: list[str] = []
        for _ in range(8):
            try:
                action = self.next_action()
            except Exhausted:
                self._stalled()
                return Outcome.TERMINAL
            except MissingRollbackTarget as e:
                c.mark_stalled("MissingRollbackTarget", f"Failed to perform remediation: {e}")
                return Outcome.TERMINAL
            if action is None:
                c.delete(cond.RECONCILING)
                summarize(req)
                return Outcome.DONE
            kind = "remediate" if action in ("rollback", "uninstall") else "release"
            if kind in done:
                return self._stop(remediated=False)
            message = f"Running '{action}' action with timeout of {req.timeout(action)}"
            c.mark_true(cond.RECONCILING, cond.PROGRESSING, message)
            c.delete(cond.STALLED)
            if kind == "release":
                c.mark_unknown(cond.READY, cond.PROGRESSING, message)
            error = getattr(self, f"_{action}")()
            if error:
                retry = req.active_retry()
                if retry is not None:
                    return self._retry(retry)
                if c.is_true(cond.READY):
                    c.mark_false(cond.READY, "ReconcileError", error)
                return Outcome.ERROR
            if kind == "remediate":
                return self._stop(remediated=True)
            done.append(kind)
        return Outcome.ERROR

    # ------------------------------------------------------------ state
    def next_action(self) -> str | None:
        """actionForState on DetermineReleaseState (no tests, drift detection or locks): the
        next Helm action, None when in sync; raises Exhausted or MissingRollbackTarget."""
        state = self.state()
        forced = self.req.forced()
        if state == ABSENT:
            return self._unless_exhausted("install", forced)
        if state == UNMANAGED:
            self.req.status["history"] = []  # the history cannot be relied on
            return "upgrade"
        if state == OUT_OF_SYNC:
            return self._unless_exhausted("upgrade", forced)
        if state == IN_SYNC:
            return self._in_sync(forced)
        return self._failed(forced)

    def state(self) -> str:
        """DetermineReleaseState: the release in storage against the history and the request."""
        req = self.req
        release = self.helm.last(req.storage_namespace, req.release_name)
        history = req.history()
        if release is None or release.status == UNINSTALLED:
            return ABSENT
        if not history or history[0]["version"] != release.version:
            return UNMANAGED
        if release.status != DEPLOYED:
            return FAILED_STATE
        in_sync = (
            release.chart.name == req.chart.name
            and release.chart.version == req.chart.version
            and release.config_digest == values_digest(req.values)
        )
        return IN_SYNC if in_sync else OUT_OF_SYNC

    def _unless_exhausted(self, action: str, forced: bool) -> str:
        if remediation_of(self.req.spec, action).exhausted(self.req.status) and not forced:
            raise Exhausted(f"cannot {action} release")
        return action

    def _in_sync(self, forced: bool) -> str | None:
        req = self.req
        history = req.history()
        req.status["history"] = history[:5] if req.active_retry() is not None else truncate(history)
        if forced:
            return "upgrade"
        if req.c.is_true(REMEDIATED):
            self._replace_remediated(history[0])
        return None

    def _failed(self, forced: bool) -> str:
        """A failed release: retry, upgrade after a change, or remediate while retries last."""
        req, status = self.req, self.req.status
        if req.active_retry() is not None:
            status["history"] = req.history()[:5]
            return "upgrade"
        active = req.active_remediation()
        if active is None or active.failure_count(status) <= 0 or forced:
            return "upgrade"
        if active.exhausted(status) and not active.remediate_last:
            raise Exhausted("cannot remediate failed release")
        status["history"] = truncate(req.history())
        if active.strategy == "uninstall":
            return "uninstall"
        if previous(status["history"]) is None:
            raise MissingRollbackTarget("cannot remediate failed release")
        return "rollback"

    def _replace_remediated(self, current: Mapping[str, Any]) -> None:
        """An in-sync release that came from a rollback counts as upgraded."""
        message = (
            f"Helm upgrade succeeded for release {full_name(current)} with chart "
            f"{chart_name(current)}"
        )
        self.req.c.delete(REMEDIATED)
        self.req.c.mark_true(RELEASED, "UpgradeSucceeded", message)

    # ------------------------------------------------------------ actions
    def _install(self) -> str:
        req = self.req
        req.status["lastAttemptedReleaseAction"] = "install"
        req.status["history"] = []
        req.c.delete(TEST_SUCCESS)
        req.c.delete(REMEDIATED)
        return self._release("install")

    def _upgrade(self) -> str:
        req = self.req
        req.status["lastAttemptedReleaseAction"] = "upgrade"
        req.c.delete(TEST_SUCCESS)
        req.c.delete(REMEDIATED)
        return self._release("upgrade")

    def _release(self, action: str) -> str:
        req, helm = self.req, self.helm
        started = time.perf_counter()
        helm.observed = []
        try:
            if action == "install":
                helm.install(
                    req.storage_namespace,
                    name=req.release_name,
                    namespace=req.release_namespace,
                    chart=req.chart,
                    values=req.values,
                    origin=req.origin,
                    oci_digest=req.oci_digest,
                )
            else:
                current = helm.last(req.storage_namespace, req.release_name)
                assert current is not None
                helm.upgrade(
                    req.storage_namespace,
                    current,
                    chart=req.chart,
                    values=req.values,
                    origin=req.origin,
                    oci_digest=req.oci_digest,
                )
        except ActionError as e:
            error: ActionError | None = e
        else:
            error = None
        req.status["lastAttemptedReleaseActionDuration"] = cond.format_duration(
            round(time.perf_counter() - started, 3)
        )
        self._record_observed()
        title = action.capitalize()
        if error is not None:
            message = (
                f"Helm {action} failed for release {req.release_namespace}/{req.release_name} "
                f"with chart {req.chart.name}@{req.chart.version}: {error.message.strip()}"
            )
            req.status["failures"] = int(req.status.get("failures") or 0) + 1
            req.c.mark_false(RELEASED, f"{title}Failed", message)
            summarize(req)
            if not error.stored:
                return message
            key = f"{action}Failures"
            req.status[key] = int(req.status.get(key) or 0) + 1
            return ""
        latest = req.history()[0]
        message = (
            f"Helm {action} succeeded for release {full_name(latest)} with chart "
            f"{chart_name(latest)}"
        )
        req.c.mark_true(RELEASED, f"{title}Succeeded", message)
        if retry_interval(req.spec, action) is not None:
            clear_failures(req.status)
        summarize(req)
        return ""

    def _rollback(self) -> str:
        req, helm = self.req, self.helm
        history = req.history()
        target = previous(history)
        assert target is not None
        release = helm.get(req.storage_namespace, req.release_name, int(target["version"]))
        if release is None:
            raise MissingRollbackTarget("cannot remediate failed release")
        helm.observed = []
        helm.rollback(req.storage_namespace, release, req.origin)
        self._record_observed()
        message = (
            f"Helm rollback to previous release {full_name(target)} with chart "
            f"{chart_name(target)} succeeded"
        )
        req.c.mark_true(REMEDIATED, "RollbackSucceeded", message)
        summarize(req)
        return ""

    def _uninstall(self) -> str:
        req = self.req
        current = req.history()[0]
        uninstalled = self.helm.uninstall(req.storage_namespace, req.release_name)
        if uninstalled is not None:
            req.status["history"] = [
                {**s, "status": UNINSTALLED} if s["version"] == current["version"] else s
                for s in req.history()
            ]
        message = (
            f"Helm uninstall remediation for release {full_name(current)} with chart "
            f"{chart_name(current)} succeeded"
        )
        req.c.mark_true(REMEDIATED, "UninstallSucceeded", message)
        return ""

    def _record_observed(self) -> None:
        """observedReleases.recordOnObject: the newest written release first, and the history
        entries of other written releases updated in place."""
        observed = sorted(self.helm.observed, key=lambda r: -r.version)
        if not observed:
            return
        history = self.req.history()
        snapshots = {r.version: r.snapshot() for r in observed}
        newest = snapshots.pop(observed[0].version)
        kept = [
            snapshots.get(int(s["version"]), s)
            for s in history
            if s["version"] != newest["version"]
        ]
        self.req.status["history"] = [newest, *kept]

    # ------------------------------------------------------------ stopping
    def _retry(self, interval: float) -> Outcome:
        self.req.c.mark_true(
            cond.RECONCILING,
            cond.PROGRESSING_WITH_RETRY,
            f"retrying after {cond.format_duration(interval)}",
        )
        return Outcome.RETRY_AFTER

    def _stop(self, *, remediated: bool) -> Outcome:
        """Stop for now, before a second action of a kind (`MustContinue`) or after a
        remediation (`MustStop`): retry later, requeue at once while retries remain, else
        give up (stalled after a remediation)."""
        retry = self.req.active_retry()
        if retry is not None:
            return self._retry(retry)
        active = self.req.active_remediation()
        if active is None or not active.exhausted(self.req.status):
            self._requeue_message()
            return Outcome.REQUEUE
        if remediated:
            self._stalled()
            return Outcome.TERMINAL
        self.req.c.delete(cond.RECONCILING)
        return Outcome.DONE

    def _requeue_message(self) -> None:
        ready = self.req.c.get(cond.READY) or {}
        self.req.c.mark_true(
            cond.RECONCILING, cond.PROGRESSING_WITH_RETRY, str(ready.get("message", ""))
        )

    def _stalled(self) -> None:
        action = self.req.status.get("lastAttemptedReleaseAction", "")
        active = self.req.active_remediation()
        count = active.failure_count(self.req.status) if active else 0
        self.req.c.mark_stalled("RetriesExceeded", f"Failed to {action} after {count} attempt(s)")


class Exhausted(Exception):
    """ErrExceededMaxRetries."""


class MissingRollbackTarget(Exception):
    """ErrMissingRollbackTarget."""
