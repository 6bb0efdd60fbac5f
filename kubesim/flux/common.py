"""What the simulated Flux controllers share: conditions, durations and a reconcile scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from kubesim.errors import ApiError
from kubesim.objects import ObjectApi, WriteOptions
from kubesim.resources import GroupResource, ResourceType

log = structlog.get_logger("kubesim.flux")

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FINALIZER = "finalizers.fluxcd.io"
Key = tuple[str, str]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None, default: float) -> float:
    """A Go duration (`1m`, `10m0s`, `1h30m`) in seconds; `default` if absent or malformed."""
    if not text:
        return default
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return sum(float(n) * _UNITS[u] for n, u in parts)


def now_rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]], *, type: str, status: str, reason: str, message: str,
    generation: int, now: str,
) -> list[dict[str, Any]]:
    """Conditions with one of them set; lastTransitionTime moves only when the status flips."""
    out = [dict(c) for c in conditions if c.get("type") != type]
    old = next((c for c in conditions if c.get("type") == type), None)
    transition = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    out.append({"type": type, "status": status, "reason": reason, "message": message,
                "observedGeneration": generation, "lastTransitionTime": transition})
    order = {"Ready": 0, "Reconciling": 1, "Stalled": 2}
    out.sort(key=lambda c: order.get(c["type"], 3))
    return out


def drop_condition(conditions: list[dict[str, Any]], type: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type]


def ready_status(obj: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """(status, reason, message) of an object's Ready condition."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status")), str(c.get("reason", "")), str(c.get("message", ""))
    return "Unknown", "", ""


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    if obj is None:
        return False
    status, _, _ = ready_status(obj)
    observed = (obj.get("status") or {}).get("observedGeneration")
    return status == "True" and observed == obj["metadata"].get("generation")


class Reconciler:
    """Schedules reconciles of one Flux kind and runs them one at a time, like a controller
    with a single worker: `reconcile(key)` is called at or after the time a key is due."""

    group: str = ""
    plural: str = ""
    manager: str = ""

    def __init__(self, api: ObjectApi, *, delay: Callable[[], float], clock: Callable[[], datetime]) -> None:
        self.api = api
        self.delay = delay
        self.clock = clock
        self._due: dict[Key, float] = {}
        self._announce: set[Key] = set()
        """Keys to mark Progressing before their (delayed) reconcile, as controllers do."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def gr(self) -> GroupResource:
        return (self.group, self.plural)

    def rt(self) -> ResourceType | None:
        return self.api.catalog.get(self.gr)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"kubesim-flux-{self.plural}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def schedule(self, key: Key, *, after: float = 0.0) -> None:
        when = asyncio.get_running_loop().time() + after
        if key not in self._due or self._due[key] > when:
            self._due[key] = when
            self._wake.set()

    def trigger(self, key: Key) -> None:
        """A change asked for a reconcile: show progress now, reconcile after the delay."""
        if self.delay() > 0:
            self._announce.add(key)
            self.schedule(key)
        else:
            self.schedule(key)

    def schedule_all(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        for obj in self.api.store.iter(self.gr):
            if predicate(obj):
                self.schedule((obj["metadata"]["namespace"], obj["metadata"]["name"]), after=self.delay())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            key, when = min(self._due.items(), key=lambda kv: kv[1])
            wait = when - loop.time()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            del self._due[key]
            try:
                if key in self._announce:
                    self._announce.discard(key)
                    obj = self.get(key)
                    if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                        self.progressing(obj)
                    self.schedule(key, after=self.delay())
                    continue
                self.reconcile(key)
            except ApiError as e:
                log.debug("flux_reconcile_retry", kind=self.plural, key=key, error=e.message)
                self.schedule(key, after=max(self.delay(), 0.05))
            except Exception:
                log.exception("flux_reconcile_crashed", kind=self.plural, key=key)
                self.schedule(key, after=1.0)
            await asyncio.sleep(0)

    def reconcile(self, key: Key) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ writing
    def get(self, key: Key) -> dict[str, Any] | None:
        return self.api.store.get(self.gr, key[0], key[1])

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        rt = self.rt()
        if rt is None or obj.get("status") == status:
            return obj
        meta = obj["metadata"]
        body = {**obj, "status": status}
        return self.api.update(rt, rt.storage_version, meta["namespace"], meta["name"], body,
                               WriteOptions(manager=self.manager), subresource="status")

    def set_finalizers(self, obj: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
        rt = self.rt()
        if rt is None:
            return obj
        meta = {**obj["metadata"], "finalizers": finalizers}
        if not finalizers:
            meta.pop("finalizers")
        return self.api.update(rt, rt.storage_version, meta["namespace"], meta["name"], {**obj, "metadata": meta},
                               WriteOptions(manager=self.manager))

    def progressing(self, obj: dict[str, Any], message: str = "reconciliation in progress") -> dict[str, Any]:
        """What a controller shows while it works on a new generation or request."""
        status = dict(obj.get("status") or {})
        now = now_rfc3339(self.clock())
        generation = int(obj["metadata"].get("generation", 1))
        conditions = set_condition(status.get("conditions") or [], type="Reconciling", status="True",
                                   reason="Progressing", message=message, generation=generation, now=now)
        ready, _, _ = ready_status(obj)
        if ready != "True" or status.get("observedGeneration") != generation:
            conditions = set_condition(conditions, type="Ready", status="Unknown", reason="Progressing",
                                       message=message, generation=generation, now=now)
        status["conditions"] = conditions
        return self.write_status(obj, status)

    def finish(
        self, obj: dict[str, Any], status: dict[str, Any], *, ready: bool, reason: str, message: str,
        stalled: bool = False,
    ) -> dict[str, Any]:
        """Write the outcome of a reconcile the way Flux does (Ready, Reconciling, Stalled)."""
        now = now_rfc3339(self.clock())
        generation = int(obj["metadata"].get("generation", 1))
        conditions = set_condition(status.get("conditions") or [], type="Ready", status="True" if ready else "False",
                                   reason=reason, message=message, generation=generation, now=now)
        conditions = drop_condition(conditions, "Reconciling")
        if stalled:
            conditions = set_condition(conditions, type="Stalled", status="True", reason=reason, message=message,
                                       generation=generation, now=now)
        else:
            conditions = drop_condition(conditions, "Stalled")
        status = {**status, "conditions": conditions, "observedGeneration": generation}
        requested = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        return self.write_status(obj, status)


def triggers(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether a change asks its controller for a reconcile (not status-only changes)."""
    if old is None:
        return True
    om, nm = old["metadata"], new["metadata"]
    return (
        om.get("generation") != nm.get("generation")
        or (om.get("annotations") or {}).get(REQUESTED_AT) != (nm.get("annotations") or {}).get(REQUESTED_AT)
        or bool(nm.get("deletionTimestamp")) != bool(om.get("deletionTimestamp"))
        or om.get("finalizers") != nm.get("finalizers")
    )
