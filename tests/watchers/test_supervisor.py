"""The supervisor: a crashed task comes back, and stopping loses no failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from structlog.testing import capture_logs

from watchers.supervisor import Supervisor


async def test_a_crashed_task_is_restarted() -> None:
    runs: list[int] = []
    second_run = asyncio.Event()

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        second_run.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(restart_delay=0.01)
    with capture_logs() as logs:
        supervisor.start("work", work)
        await asyncio.wait_for(second_run.wait(), 5)
        await supervisor.stop()
    assert supervisor.crashes["work"] == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["task_crashed"]


async def test_a_failure_while_stopping_is_logged_not_swallowed() -> None:
    running = asyncio.Event()

    async def work() -> None:
        try:
            running.set()
            await asyncio.Event().wait()
        finally:
            raise OSError("clean-up failed")

    supervisor = Supervisor()
    supervisor.start("flaky-cleanup", work)
    await asyncio.wait_for(running.wait(), 5)
    with capture_logs() as logs:
        await supervisor.stop()
    failures = [e for e in logs if e["event"] == "task_failed_while_stopping"]
    assert [e["task"] for e in failures] == ["flaky-cleanup"]
    assert isinstance(failures[0]["exc_info"], OSError)
    assert supervisor.tasks == {}


async def test_stopping_one_task_leaves_the_others_running() -> None:
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def forever(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started[name].set()
            await asyncio.Event().wait()

        return run

    supervisor = Supervisor()
    supervisor.start("a", forever("a"))
    supervisor.start("b", forever("b"))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 5)
    await supervisor.stop_one("a")
    assert list(supervisor.tasks) == ["b"]
    assert not supervisor.tasks["b"].done()
    await supervisor.stop()
