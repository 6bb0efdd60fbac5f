"""Expiry never deletes an environment whose window was extended after the sweep decided
(outside security review: the sweep listed what was due, then deleted each by uid alone, so an
extension answered 200 while expiry was at work, on this replica or another, was deleted).

The emulator holds the sweep's first write (recording the deletion, kollie.tombstones) until the
test has extended an environment: the moment between expiry's decision and its delete."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from tests.service.conftest import Kollie, StartKollie
from tests.service.test_lifecycle import CM, Clock, _env


class HeldDeletionRecord:
    """Holds the first write of `kollie.deletions` until `release`."""

    def __init__(self, kollie: Kollie) -> None:
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        faults = kollie.cluster.faults
        self._original: Callable[[web.Request], Awaitable[None]] = faults.before
        faults.before = self._before  # type: ignore[method-assign]

    async def _before(self, request: web.Request) -> None:
        if "kollie.deletions" in request.path and not self.held.is_set():
            self.held.set()
            await self.release.wait()
        await self._original(request)


async def _due_environments(start_kollie: StartKollie, *names: str) -> tuple[Kollie, Clock]:
    clock = Clock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    kollie = await start_kollie(clock=clock, KOLLIE_ENV_TTL="1h")
    for name in names:
        await _env(kollie, name)
    clock.now = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)  # up until 19:00, due at 20:00
    return kollie, clock


def _alive(kollie: Kollie, name: str) -> bool:
    record = kollie.cluster.store.get(CM, "kollie", name)
    return record is not None and "deletionTimestamp" not in record["metadata"]


async def test_an_extension_while_expiry_deletes_it_keeps_the_environment(
    start_kollie: StartKollie,
) -> None:
    kollie, _ = await _due_environments(start_kollie, "late")
    expiry = kollie.background.expiry
    assert expiry is not None
    gate = HeldDeletionRecord(kollie)
    sweep = asyncio.create_task(expiry.sweep())
    await asyncio.wait_for(gate.held.wait(), 10)  # expiry chose "late" and is deleting it
    status, body = await kollie.call("POST", "/api/v1/environments/late/extend", json={"hours": 3})
    assert status == 200, body
    gate.release.set()
    assert await sweep == []
    assert _alive(kollie, "late"), "the extension answered 200, so the environment stays"
    assert await expiry.sweep() == [], "and the next sweep sees the new window"
    assert _alive(kollie, "late")


async def test_an_extension_after_the_sweep_listed_what_is_due_keeps_the_environment(
    start_kollie: StartKollie,
) -> None:
    kollie, _ = await _due_environments(start_kollie, "first", "second")
    expiry = kollie.background.expiry
    assert expiry is not None
    gate = HeldDeletionRecord(kollie)
    sweep = asyncio.create_task(expiry.sweep())
    await asyncio.wait_for(gate.held.wait(), 10)  # deleting "first"; "second" is next
    status, body = await kollie.call(
        "POST", "/api/v1/environments/second/extend", json={"hours": 3}
    )
    assert status == 200, body
    gate.release.set()
    assert await sweep == ["first"]
    assert not _alive(kollie, "first")
    assert _alive(kollie, "second"), "extended after the sweep listed it: not deleted"
