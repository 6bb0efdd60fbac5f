"""SingleFlight: a flood of equal requests costs two calls at a time, each after its callers."""

from __future__ import annotations

import asyncio

import pytest

from kollie.singleflight import SingleFlight
from tests.helpers import eventually


async def test_callers_share_the_next_call_never_one_that_started_before_them() -> None:
    flight: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()
    started: list[int] = []
    arrivals: dict[int, int] = {}

    async def call() -> None:
        started.append(len(arrivals))  # how many callers had arrived when this call began
        await release.wait()

    async def caller(i: int) -> int:
        arrivals[i] = len(started)
        await flight.run("web", call)
        return len(started)

    first = asyncio.create_task(caller(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(caller(i)) for i in range(1, 50)]
    await asyncio.sleep(0)
    assert started == [1], "one call runs; the 49 later callers wait for the next"
    release.set()
    served = await asyncio.gather(first, *rest)
    assert len(started) == 2
    assert started[1] == 50, "the shared call began after every caller it serves had arrived"
    assert served[0] >= 1 and all(n == 2 for n in served[1:])


async def test_a_failure_reaches_every_caller_and_the_next_caller_tries_again() -> None:
    flight: SingleFlight[str] = SingleFlight()
    attempts = 0

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("cluster unavailable")

    results = await asyncio.gather(
        *(flight.run("web", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert attempts <= 2
    with pytest.raises(RuntimeError):
        await flight.run("web", failing)
    assert attempts <= 3


async def test_keys_are_independent_and_close_cancels_what_runs() -> None:
    flight: SingleFlight[str] = SingleFlight()
    never = asyncio.Event()
    calls: list[str] = []

    async def blocked(key: str) -> None:
        calls.append(key)
        await never.wait()

    waiters = [asyncio.create_task(flight.run(k, lambda k=k: blocked(k))) for k in "abc"]
    await eventually(lambda: sorted(calls) == ["a", "b", "c"], message="one call per key")
    await flight.close()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
