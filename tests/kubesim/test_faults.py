"""Fault injection: latency, error rates, cut watches, forced 410 and restarts keep their
promises."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from kubesim import SimCluster


@pytest.fixture
async def http(bare_cluster: SimCluster) -> AsyncIterator[tuple[aiohttp.ClientSession, SimCluster]]:
    async with aiohttp.ClientSession(base_url=bare_cluster.url) as session:
        yield session, bare_cluster


async def test_error_rate_answers_429_with_retry_after(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    async with session.put(
        "/sim/faults", json={"error_rate": 1.0, "error_code": 429, "retry_after": 3}
    ) as r:
        assert r.status == 200
    async with session.get("/api/v1/namespaces") as r:
        assert r.status == 429 and r.headers["Retry-After"] == "3"
        assert (await r.json())["reason"] == "TooManyRequests"
    async with session.get("/sim/stats") as r:
        assert r.status == 200, "admin endpoints are never faulted"
    async with session.delete("/sim/faults") as r:
        assert r.status == 200
    async with session.get("/api/v1/namespaces") as r:
        assert r.status == 200


async def test_partial_error_rate_only_for_chosen_methods(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    await session.put("/sim/faults", json={"error_rate": 1.0, "methods": "POST", "seed": 1})
    async with session.get("/api/v1/namespaces/default/configmaps") as r:
        assert r.status == 200
    async with session.post(
        "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}}
    ) as r:
        assert r.status == 500


async def test_bad_fault_settings_are_rejected(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    for bad in ({"error_rate": 2}, {"no_such_fault": 1}, {"error_code": 404}):
        async with session.put("/sim/faults", json=bad) as r:
            assert r.status == 400, bad


async def test_latency_is_added(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, _cluster = http
    await session.put("/sim/faults", json={"latency": 0.3})
    started = time.monotonic()
    async with session.get("/api/v1/namespaces") as r:
        assert r.status == 200
    assert time.monotonic() - started >= 0.3


async def test_watch_cut_after_n_events(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, _cluster = http
    await session.put("/sim/faults", json={"watch_event_limit": 3})
    for i in range(5):
        await session.post(
            "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": f"c{i}"}}
        )
    async with session.get("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0") as r:
        lines = [line async for line in r.content if line.strip()]
    assert len(lines) == 3


async def test_restart_keeps_the_store_and_drops_watches(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    await session.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "kept"}})
    async with session.get("/api/v1/namespaces/default/configmaps?limit=1") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    watch = await session.get(f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
    async with session.post("/sim/restart?downtime=0.3") as r:
        assert r.status == 202
    with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
        async with asyncio.timeout(5):
            async for _ in watch.content:
                pass
            raise aiohttp.ClientPayloadError("stream ended")
    watch.release()
    for _ in range(100):
        try:
            async with session.get("/api/v1/namespaces/default/configmaps/kept") as r:
                if r.status == 200:
                    break
        except aiohttp.ClientError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("the emulator did not come back")
    # The history survived too: a watch resumes from the old version without 410.
    await session.post(
        "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "after"}}
    )
    async with session.get(
        f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    ) as r:
        events = [json.loads(line) for line in [x async for x in r.content] if line.strip()]
    assert [e["object"]["metadata"]["name"] for e in events] == ["after"]


async def test_expire_forces_410_and_cuts_watches(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _cluster = http
    async with session.get("/api/v1/namespaces/default/configmaps?limit=1") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    await session.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}})
    async with session.post("/sim/expire") as r:
        assert r.status == 200
    async with session.get(
        f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
    ) as r:
        events = [json.loads(line) async for line in r.content if line.strip()]
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
