"""Doing a push's work while its delivery waits, once per push.

A registry delivery is answered only after the cluster holds the push's effect, so a replica
stopped or killed right after answering loses nothing: either the sender saw a success and the
rescan request and environment are written, or it saw an error and may deliver again. The work
takes tens of milliseconds; senders wait seconds. When it does not finish within `deadline` the
delivery is answered with a retryable error while the work goes on, and a redelivery finds it
done.

Equal pushes (registry, repository, tag, digest) share one piece of work while it runs and,
once it succeeded, are answered as duplicates for `remember` seconds without doing it again.
A failed piece of work is forgotten, so a redelivery tries again.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

import structlog

from kollie.kube import KubeError
from kollie.pushes import Push
from kollie.pushhandler import UNTRACKED, PushHandler, PushOutcome
from kollie.refusals import OperationError

log = structlog.get_logger("kollie.pushes")

Status = Literal["done", "duplicate", "failed", "pending", "overloaded"]


@dataclass(frozen=True)
class PushResult:
    status: Status
    outcome: PushOutcome | None = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        """Whether the push's effect is in the cluster (the delivery may be answered 2xx)."""
        return self.status in ("done", "duplicate")


@dataclass
class PushWork:
    handler: PushHandler
    remember: float = 600.0
    """Seconds a done push is answered as a duplicate without doing its work again."""
    max_running: int = 256
    """Pushes whose work may run at once (including work that outlived its delivery)."""
    _running: dict[Push, asyncio.Task[PushOutcome]] = field(default_factory=dict)
    _done: OrderedDict[Push, tuple[float, PushOutcome]] = field(default_factory=OrderedDict)
    _done_limit: int = 10_000

    async def perform(self, push: Push, *, deadline: float) -> PushResult:
        """Do `push`'s work (or join the same push's running work), waiting until the loop
        time `deadline`."""
        if self.handler.known_untracked(push):
            return PushResult("done", UNTRACKED)
        done = self._recall(push)
        if done is not None:
            return PushResult("duplicate", done)
        task = self._running.get(push)
        mine = task is None
        if task is None:
            if len(self._running) >= self.max_running:
                return PushResult("overloaded", error="too many pushes in progress")
            task = asyncio.create_task(self.handler.handle(push), name=f"push-{push.tag}")
            self._running[push] = task
            task.add_done_callback(functools.partial(self._finished, push))
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                outcome = await asyncio.shield(task)
        except TimeoutError:
            return PushResult("pending", error="the cluster did not answer in time")
        except (KubeError, OperationError) as e:
            return PushResult("failed", error=str(e))
        return PushResult("done" if mine else "duplicate", outcome)

    def _recall(self, push: Push) -> PushOutcome | None:
        now = time.monotonic()
        while self._done and next(iter(self._done.values()))[0] < now - self.remember:
            self._done.popitem(last=False)
        found = self._done.get(push)
        return found[1] if found else None

    def _finished(self, push: Push, task: asyncio.Task[PushOutcome]) -> None:
        if self._running.get(push) is task:
            del self._running[push]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning("push_failed", repository=push.repository, tag=push.tag, error=str(error))
            return
        outcome = task.result()
        self._done[push] = (time.monotonic(), outcome)
        self._done.move_to_end(push)
        while len(self._done) > self._done_limit:
            self._done.popitem(last=False)
        log.info(
            "push_processed",
            repository=push.repository,
            tag=push.tag,
            rescanned=outcome.rescanned,
            joined=outcome.joined,
            created=outcome.created,
        )

    async def close(self) -> None:
        """Cancel work that outlived its deliveries (none of it was acknowledged)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.handler.close()
