"""Named background tasks that are restarted when they crash and stopped within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("kollie.tasks")

TaskFactory = Callable[[], Awaitable[None]]


@dataclass
class Supervisor:
    """Owns long-running tasks: none dies silently, all stop when asked."""

    restart_delay: float = 1.0
    max_restart_delay: float = 30.0
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    crashes: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, factory: TaskFactory) -> None:
        if name in self.tasks:
            raise ValueError(f"task {name!r} is already running")
        self.crashes.setdefault(name, 0)
        self.tasks[name] = asyncio.create_task(self._guard(name, factory), name=name)

    async def _guard(self, name: str, factory: TaskFactory) -> None:
        delay = self.restart_delay
        while True:
            try:
                await factory()
                log.error("task_returned", task=name)
            except asyncio.CancelledError:
                raise
            except Exception:
                if _being_stopped():
                    # Its clean-up failed while it was being cancelled: stopping, not a crash
                    # to restart from (the supervisor's stop logs the failure).
                    raise
                log.exception("task_crashed", task=name)
            self.crashes[name] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_restart_delay)
            log.info("task_restarting", task=name)

    async def stop_one(self, name: str, grace: float = 5.0) -> None:
        """Cancel one task (if running) and wait at most `grace` seconds for it to finish."""
        task = self.tasks.pop(name, None)
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.error("task_did_not_stop", task=name)
            return
        _reap(task)

    async def stop(self, grace: float = 5.0) -> None:
        """Cancel every task and wait at most `grace` seconds for them to finish."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                log.error("task_did_not_stop", task=task.get_name())
            for task in done:
                _reap(task)
        self.tasks.clear()


def _reap(task: asyncio.Task[None]) -> None:
    """Collect a stopped task's outcome: cancellation is the expected end; anything its clean-up
    raised while stopping is logged, not lost."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("task_failed_while_stopping", task=task.get_name(), exc_info=error)


def _being_stopped() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
