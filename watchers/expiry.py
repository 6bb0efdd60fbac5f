"""Expiry: the leader deletes environments whose uptime window ended more than KOLLIE_ENV_TTL ago.

Deleting is the one thing Kollie does on its own that loses work, so it refuses to act on an
uncertain view: only from a cache whose every informer is synced, connected and has had no
error or relist for `settle` seconds; at most `max_per_minute` deletions per minute; never an
environment marked keep; and every decision is logged (dry-run logs and deletes nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from kollie import uptime
from kollie.cache import Cache
from kollie.kube import KubeError
from kollie.operations import Actor, OperationError, Operations
from kollie.projections import EnvironmentRecord
from watchers.informer import Informer

log = structlog.get_logger("kollie.expiry")
EXPIRY = Actor("kollie", "expiry")


def expires_at(settings_json: object, ttl_seconds: int, keep: bool) -> datetime | None:
    """When an environment becomes due for deletion (None: never)."""
    if ttl_seconds <= 0 or keep:
        return None
    window = uptime.from_json(settings_json)
    if window is None or window.mode != "until" or window.until is None:
        return None
    return window.until + timedelta(seconds=ttl_seconds)


@dataclass
class Expiry:
    cache: Cache
    operations: Operations
    informers: Sequence[Informer]
    ttl_seconds: int
    max_per_minute: int = 10
    dry_run: bool = False
    interval: float = 30.0
    settle: float = 60.0
    """Seconds every informer must have been healthy (no error, no relist) before deleting."""
    monotonic: Callable[[], float] = time.monotonic
    deleted: list[str] = field(default_factory=list)
    passes: int = 0
    """Sweeps the loop has completed (what a test waits for before asserting nothing more)."""
    _recent: deque[float] = field(default_factory=deque)

    def is_due(self, record: EnvironmentRecord, now: datetime) -> bool:
        """Whether this version of an environment's record is due for deletion at `now`."""
        if record.deleting:
            return False
        when = expires_at(
            record.settings.get("uptime"), self.ttl_seconds, bool(record.settings.get("keep"))
        )
        return when is not None and when <= now

    def due(self, now: datetime) -> list[str]:
        return [
            name
            for name in self.cache.environment_names()
            if (record := self.cache.environment(name)) is not None and self.is_due(record, now)
        ]

    def unsafe_reason(self) -> str | None:
        """Why the cache cannot be trusted for deletion right now, or None."""
        now = self.monotonic()
        for inf in self.informers:
            since = inf.healthy_since()
            if since is None:
                return f"{inf.kind} informer is not synced and connected"
            if now - since < self.settle:
                return f"{inf.kind} informer relisted or failed {now - since:.0f}s ago"
        return None

    async def sweep(self) -> list[str]:
        """One pass; returns the environments deleted (or, in dry-run, that would be)."""
        if self.ttl_seconds <= 0:
            return []
        now = self.operations.clock()
        due = self.due(now)
        if not due:
            return []
        reason = self.unsafe_reason()
        if reason is not None:
            log.warning("expiry_postponed", due=due, reason=reason)
            return []
        done = []
        for name in due:
            clock = self.monotonic()
            while self._recent and clock - self._recent[0] > 60:
                self._recent.popleft()
            if len(self._recent) >= self.max_per_minute:
                log.warning(
                    "expiry_rate_limited",
                    remaining=due[due.index(name) :],
                    per_minute=self.max_per_minute,
                )
                break
            if self.dry_run:
                log.info("expiry_would_delete", environment=name)
                done.append(name)
                continue
            try:
                # Judged again on the record as it is now: the list above was made before the
                # deletions this pass has already waited for.
                deleted = await self.operations.expire(
                    name, actor=EXPIRY, due=lambda record: self.is_due(record, now)
                )
            except (KubeError, OperationError) as e:
                # An API error ends the pass: the next one starts again from a fresh view
                # (Conflict: the environment changed, such as an extension, while being deleted).
                log.warning("expiry_failed", environment=name, error=str(e))
                break
            if not deleted:
                log.info("expiry_skipped", environment=name, reason="changed since listed as due")
                continue
            self._recent.append(clock)
            self.deleted.append(name)
            done.append(name)
            log.info("expiry_deleted", environment=name)
        return done

    async def run(self) -> None:
        while True:
            await self.sweep()
            self.passes += 1
            await asyncio.sleep(self.interval)
