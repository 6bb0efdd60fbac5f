"""The reconcile loop every simulated Flux controller shares.

Each controller has one worker, like a controller-runtime controller with one goroutine: keys
are queued with a due time and reconciled one at a time.  A reconcile is synchronous (it reads
and writes the store through `ObjectApi` with no `await`), so it is atomic in the event loop.

Timing, as the real controllers have it: a reconcile asked for by a change (new generation,
`reconcile.fluxcd.io/requestedAt`, a source or dependency that moved) first shows progress and
then runs `settings.reconcile_delay` seconds later; a successful reconcile requeues itself at
its interval; a failed one retries with per-object exponential backoff (controller-runtime's
5 ms doubling, capped by `settings.max_backoff`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from kubesim.errors import ApiError, not_found
from kubesim.flux import conditions as cond
from kubesim.objects import ObjectApi, WriteOptions
from kubesim.resources import GroupResource, ResourceType

log = structlog.get_logger("kubesim.flux")

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FINALIZER = "finalizers.fluxcd.io"
SECRETS = ("", "secrets")
Key = tuple[str, str]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Settings:
    """Knobs shared by the simulated controllers; `reconcile_delay` may change at run time."""

    reconcile_delay: float = 0.0
    """Seconds between a requested reconcile (shown as progressing) and its outcome."""
    min_interval: float = 1.0
    """Floor for `spec.interval` requeues, so a `1s`-ish interval cannot spin the event loop."""
    dependency_requeue: float = 30.0
    """The controllers' `--requeue-dependency` flag: retry period while waiting on another
    object."""
    max_backoff: float = 60.0
    """Cap of the error backoff (controller-runtime's is 1000 s; shorter keeps the sim lively)."""
    clock: Callable[[], datetime] = field(default=_utcnow)


@dataclass(frozen=True)
class Result:
    """What a reconcile asks of the queue: requeue after `after` seconds (None: only on events),
    or, when `failed`, retry with backoff."""

    after: float | None = None
    failed: bool = False


def object_key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (str(meta.get("namespace", "")), str(meta["name"]))


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def annotation(obj: Mapping[str, Any], name: str) -> str | None:
    value = (obj["metadata"].get("annotations") or {}).get(name)
    return str(value) if value is not None else None


class Controller:
    """Base of the simulated controllers: a queue, a worker task, and Flux-style status writes."""

    group: str = ""
    plural: str = ""
    kind: str = ""
    manager: str = ""
    """Field manager of the controller's status and finalizer writes."""

    def __init__(self, api: ObjectApi, settings: Settings) -> None:
        self.api = api
        self.settings = settings
        self._due: dict[Key, float] = {}
        # Due times in order; an entry whose time is no longer the key's in `_due` is stale
        # and skipped (a heap, not a scan of `_due`: 10,000 queued objects stay cheap).
        self._order: list[tuple[float, Key]] = []
        self._announce: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ identity
    @property
    def gr(self) -> GroupResource:
        return (self.group, self.plural)

    def rt(self) -> ResourceType | None:
        return self.api.catalog.get(self.gr)

    def get(self, key: Key) -> dict[str, Any] | None:
        return self.api.store.get(self.gr, key[0], key[1])

    def now(self) -> datetime:
        return self.settings.clock()

    # ------------------------------------------------------------ queue
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"kubesim-flux-{self.plural}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def schedule(self, key: Key, *, after: float = 0.0) -> None:
        """Reconcile `key` in `after` seconds, or sooner if already due sooner."""
        when = asyncio.get_running_loop().time() + max(after, 0.0)
        if key not in self._due or self._due[key] > when:
            self._due[key] = when
            heapq.heappush(self._order, (when, key))
            self._wake.set()

    def trigger(self, key: Key) -> None:
        """A change asks for a reconcile: show progress now and reconcile after the delay."""
        if self.settings.reconcile_delay > 0:
            self._announce.add(key)
        self.schedule(key)

    def trigger_where(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        for obj in self.api.store.iter(self.gr):
            if predicate(obj):
                self.trigger(object_key(obj))

    def forget(self, key: Key) -> None:
        self._due.pop(key, None)
        self._announce.discard(key)
        self._failures.pop(key, None)

    def pending(self) -> dict[Key, float]:
        """Seconds until each queued key is due (for tests and the admin API)."""
        now = asyncio.get_running_loop().time()
        return {k: max(0.0, v - now) for k, v in self._due.items()}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while self._order and self._due.get(self._order[0][1]) != self._order[0][0]:
                heapq.heappop(self._order)
            if not self._order:
                self._wake.clear()
                await self._wake.wait()
                continue
            when, key = self._order[0]
            wait = when - loop.time()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            heapq.heappop(self._order)
            del self._due[key]
            self._step(key)
            await asyncio.sleep(0)

    def _step(self, key: Key) -> None:
        try:
            obj = self.get(key)
            if key in self._announce:
                self._announce.discard(key)
                if obj is not None and self.rt() is not None and not _deleting(obj):
                    # The real controllers add their finalizer on first sight, before any
                    # work, and act on a deletion at once: only the work itself is delayed.
                    self.announce(self.ensure_finalizer(obj))
                    self.schedule(key, after=self.settings.reconcile_delay)
                    return
            if obj is None or self.rt() is None:
                self.forget(key)
                return
            result = self.reconcile(obj)
        except ApiError as e:
            # A conflict or a vanished object: another writer got there first; look again soon.
            log.debug(
                "flux_reconcile_conflict", kind=self.kind, key=key, code=e.code, error=e.message
            )
            self.schedule(key, after=self._backoff(key))
            return
        except Exception:
            log.exception("flux_reconcile_crashed", kind=self.kind, key=key)
            self.schedule(key, after=self._backoff(key))
            return
        if result.failed:
            self.schedule(key, after=self._backoff(key))
            return
        self._failures.pop(key, None)
        if result.after is not None:
            self.schedule(key, after=max(result.after, self.settings.min_interval))

    def _backoff(self, key: Key) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return float(min(0.005 * 2**n, self.settings.max_backoff))

    # ------------------------------------------------------------ per kind
    def reconcile(self, obj: dict[str, Any]) -> Result:
        raise NotImplementedError

    def announce(self, obj: dict[str, Any]) -> None:
        """Write the in-progress status the real controller shows while it works (delay > 0)."""
        c = cond.Conditions(obj, self.now())
        generation = obj["metadata"].get("generation")
        observed = (obj.get("status") or {}).get("observedGeneration")
        message = (
            f"processing object: new generation {observed} -> {generation}"
            if observed != generation
            else "reconciliation in progress"
        )
        c.progressing(message)
        self.write_status(obj, {**(obj.get("status") or {}), "conditions": c.items()})

    # ------------------------------------------------------------ writes
    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Replace the status (status subresource) unless it is unchanged."""
        rt = self.rt()
        if rt is None or (obj.get("status") or {}) == status:
            return obj
        meta = obj["metadata"]
        return self.api.update(
            rt,
            rt.storage_version,
            meta.get("namespace", ""),
            meta["name"],
            {**obj, "status": status},
            WriteOptions(manager=self.manager),
            subresource="status",
        )

    def set_finalizers(self, obj: dict[str, Any], finalizers: list[str]) -> dict[str, Any] | None:
        """Write `metadata.finalizers`; None when that removed the last one of a deleting object."""
        rt = self.rt()
        if rt is None:
            return obj
        meta = {k: v for k, v in obj["metadata"].items() if k != "finalizers"}
        if finalizers:
            meta["finalizers"] = finalizers
        written = self.api.update(
            rt,
            rt.storage_version,
            meta.get("namespace", ""),
            meta["name"],
            {**obj, "metadata": meta},
            WriteOptions(manager=self.manager),
        )
        gone = self.api.store.get(self.gr, meta.get("namespace", ""), meta["name"]) is None
        return None if gone else written

    def ensure_finalizer(self, obj: dict[str, Any]) -> dict[str, Any]:
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            return obj
        return self.set_finalizers(obj, [*finalizers, FINALIZER]) or obj

    def release(self, obj: dict[str, Any]) -> None:
        """Remove our finalizer from a deleting object (which then goes away if it was the last)."""
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            self.set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
        self.forget(object_key(obj))

    def begin(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The start every reconcile shares: a deleting object loses our finalizer, a new one
        gets it, a suspended one only has its requests acknowledged; None when that is all."""
        if obj["metadata"].get("deletionTimestamp"):
            self.release(obj)
            return None
        obj = self.ensure_finalizer(obj)
        if (obj.get("spec") or {}).get("suspend"):
            self.suspended(obj)
            return None
        return obj

    def failed(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        reason: str,
        message: str,
        *,
        condition: str = "",
    ) -> Result:
        """A failure the controller retries with backoff: Ready=False (and `condition`, such as
        FetchFailed, True) with `reason` and `message`, Reconciling left True with
        `ProgressingWithRetry`, observedGeneration not advanced."""
        if condition:
            c.mark_true(condition, reason, message)
        c.mark_false(cond.READY, reason, message)
        c.delete(cond.STALLED)
        c.retrying()
        status["conditions"] = c.items()
        self.write_status(obj, self.handled(obj, status))
        return Result(failed=True)

    def missing_secret(self, obj: Mapping[str, Any], name: str) -> str:
        """The client's error for a Secret `name` absent from the object's namespace, or ``."""
        if not name or self.api.store.get(SECRETS, obj["metadata"]["namespace"], name):
            return ""
        return not_found("secrets", "", name).message

    def handled(self, obj: Mapping[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Record `requestedAt` as handled, as every Flux controller does after any reconcile."""
        token = annotation(obj, REQUESTED_AT)
        if token is not None:
            status["lastHandledReconcileAt"] = token
        return status

    def suspended(self, obj: dict[str, Any]) -> Result:
        """A suspended object only acknowledges reconcile requests."""
        status = dict(obj.get("status") or {})
        self.write_status(obj, self.handled(obj, status))
        return Result()
