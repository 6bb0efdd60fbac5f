"""Coalescing calls per key: at most one runs, and everyone who arrives meanwhile shares the next.

A caller's call is never one that started before the caller arrived, so its effect happens
after the caller asked for it (a rescan requested after the push it announces); a flood of
callers for one key costs two calls at a time, not one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class SingleFlight(Generic[K]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[None]] = {}
        self._next: dict[K, asyncio.Task[None]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[None]]) -> None:
        """Have `call` (or an equal call sharing it) run after now; raises what it raised.
        Cancelling the caller does not cancel the shared call."""
        task = self._next.get(key)
        if task is None:
            running = self._running.get(key)
            task = asyncio.create_task(self._after(key, running, call), name=f"singleflight-{key}")
            if running is None:
                self._running[key] = task
            else:
                self._next[key] = task
        await asyncio.shield(task)

    async def _after(
        self, key: K, previous: asyncio.Task[None] | None, call: Callable[[], Awaitable[None]]
    ) -> None:
        me = asyncio.current_task()
        assert me is not None
        if previous is not None:
            await asyncio.wait([previous])
            if self._next.get(key) is me:
                del self._next[key]
            self._running[key] = me
        try:
            await call()
        finally:
            if self._running.get(key) is me:
                del self._running[key]

    async def close(self) -> None:
        """Cancel every call still running or waiting (at shutdown)."""
        tasks = {*self._running.values(), *self._next.values()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        self._next.clear()
