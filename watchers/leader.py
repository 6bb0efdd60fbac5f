"""Leader election with a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does.

Every replica serves reads, the API and webhooks; only the Lease holder runs the loops that
write on their own initiative (image follow, expiry). Takeover is judged by *local*
observation time of the lease record, never by comparing clocks across machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from kollie import labels
from kollie.kube import Conflict, KubeClient, KubeError, NotFound
from kollie.kube.client import NO_RETRY

log = structlog.get_logger("kollie.leader")

LeaderWork = Callable[[], Coroutine[Any, Any, None]]


def _micro_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    """Acquires and renews one Lease; runs `work` while it holds it."""

    client: KubeClient
    namespace: str
    identity: str
    name: str = "kollie-leader"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    is_leader: bool = False
    transitions: int = 0
    attempts: int = 0
    """Tries to acquire the Lease, including those that found it held by another replica."""
    _observed: tuple[str, str] | None = None
    """(holder, renewTime) of the last lease record seen, and when we saw it change."""
    _observed_at: float = 0.0

    async def run(self, work: LeaderWork) -> None:
        """Campaign forever; while leading, run `work` (cancelled when leadership is lost)."""
        try:
            while True:
                await self._acquire()
                self.is_leader = True
                self.transitions += 1
                log.info("leader_acquired", identity=self.identity, lease=self.name)
                task = asyncio.create_task(work(), name="kollie-leader-work")
                try:
                    await self._renew_until_lost(task)
                finally:
                    self.is_leader = False
                    await self._stop_work(task)
                log.warning("leader_lost", identity=self.identity, lease=self.name)
        finally:
            if self.is_leader:
                self.is_leader = False
            await asyncio.shield(self._release())

    async def _acquire(self) -> None:
        while True:
            self.attempts += 1
            try:
                if await self._try_acquire_or_renew():
                    return
            except KubeError as e:
                log.info("leader_campaign_failed", error=e.message)
            await asyncio.sleep(self.retry_period)

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        last_renewed = self.monotonic()
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.retry_period)
            if done:
                # Leader work must not end on its own; if it crashed, step down so another
                # replica (or this one, after the lease cycles) takes over with a fresh start.
                return
            try:
                if await self._try_acquire_or_renew():
                    last_renewed = self.monotonic()
                    continue
                return
            except KubeError as e:
                log.warning("leader_renew_failed", error=e.message)
            if self.monotonic() - last_renewed > self.renew_deadline:
                return

    async def _stop_work(self, task: asyncio.Task[None]) -> None:
        """Cancel the leader's work and wait for it. Work that ended on its own, or raised
        while being cancelled, is logged with its error; only a cancellation of this
        campaign itself propagates."""
        ended_on_its_own = task.done()
        task.cancel()
        error: Exception | None = None
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception as e:
            error = e
        if ended_on_its_own or error is not None:
            log.error("leader_work_ended", error=repr(error), exc_info=error)

    def _lease_body(self, *, acquire: bool, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time(self.wall_clock())
        spec = dict((previous or {}).get("spec") or {})
        transitions = int(spec.get("leaseTransitions") or 0)
        if acquire:
            spec["acquireTime"] = now
            if previous is not None:
                transitions += 1
        spec.update(
            {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "renewTime": now,
                "leaseTransitions": transitions,
            }
        )
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {labels.MANAGED_BY: labels.MANAGED_BY_VALUE},
        }
        if previous is not None:
            meta["resourceVersion"] = previous["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self.client.get(labels.LEASE, self.namespace, self.name)
        except NotFound:
            try:
                await self.client.create(
                    labels.LEASE, self.namespace, self._lease_body(acquire=True, previous=None)
                )
            except Conflict:
                return False
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, str(spec.get("renewTime", "")))
        if record != self._observed:
            self._observed = record
            self._observed_at = self.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        expired = self.monotonic() - self._observed_at > duration
        if holder and holder != self.identity and not expired:
            return False
        body = self._lease_body(acquire=holder != self.identity, previous=lease)
        try:
            # The resourceVersion in the body makes this a compare-and-swap: two replicas that
            # both saw an expired lease cannot both win it.
            await self.client.replace(labels.LEASE, self.namespace, body)
        except Conflict:
            return False
        return True

    async def _release(self) -> None:
        """Give the lease up on shutdown so a successor need not wait for it to expire."""
        with contextlib.suppress(KubeError, asyncio.CancelledError):
            lease = await self.client.get(labels.LEASE, self.namespace, self.name)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1}
            body = {**lease, "spec": spec}
            await self.client.request(
                "PUT",
                f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}",
                body=body,
                retry=NO_RETRY,
            )
            log.info("leader_released", identity=self.identity)
