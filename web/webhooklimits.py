"""Per-source admission of registry deliveries, so one source cannot starve the others.

Each source has a few slots: a delivery holds one from reading its body to its answer. When all
are taken, a bounded number of deliveries wait (their bodies stay unread, in the kernel's and
aiohttp's bounded buffers); any more, or one that waited too long, is answered 429 with
`Retry-After` at once. Memory stays bounded by `slots * body limit` per source, and another
source's deliveries never wait behind a flood.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from web.errors import ApiError

RETRY_AFTER = "1"
"""Seconds a flooding source is told to wait."""


@dataclass
class _Source:
    slots: asyncio.Semaphore
    waiting: int = 0
    active: int = 0


@dataclass
class SourceLimits:
    slots: int = 8
    """Deliveries of one source read and worked on at once."""
    queue: int = 32
    """Deliveries of one source that may wait for a slot; more are answered 429."""
    wait_seconds: float = 2.0
    """How long a delivery may wait for a slot before it is answered 429."""
    _sources: dict[str, _Source] = field(default_factory=dict)

    def _busy(self, source: str) -> ApiError:
        return ApiError(
            429,
            "too_many_deliveries",
            f"too many {source} deliveries at once; retry after {RETRY_AFTER}s",
            headers={"Retry-After": RETRY_AFTER},
        )

    @contextlib.asynccontextmanager
    async def admit(self, source: str) -> AsyncIterator[None]:
        """Hold one of `source`'s slots for the block, or raise 429."""
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _Source(asyncio.Semaphore(self.slots))
        if state.slots.locked() and state.waiting >= self.queue:
            raise self._busy(source)
        if state.slots.locked():
            state.waiting += 1
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await state.slots.acquire()
            except TimeoutError:
                raise self._busy(source) from None
            finally:
                state.waiting -= 1
        else:
            await state.slots.acquire()  # free: taken at once
        state.active += 1
        try:
            yield
        finally:
            state.active -= 1
            state.slots.release()

    def in_use(self, source: str) -> int:
        """Slots of `source` taken now (for metrics and tests)."""
        state = self._sources.get(source)
        return state.active if state else 0
