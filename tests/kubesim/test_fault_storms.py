"""Fault injection for the reliability soak: errors limited to some verbs and paths, long
outages, and repeated forced 410s answered as a real API server answers them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kubesim import SimCluster
from kubesim.listing import INCONSISTENT_CONTINUE
from tests.helpers import eventually

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def http(bare_cluster: SimCluster) -> AsyncIterator[tuple[aiohttp.ClientSession, SimCluster]]:
    async with aiohttp.ClientSession(base_url=bare_cluster.url) as session:
        yield session, bare_cluster


async def test_faults_limited_to_verbs_and_paths(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _ = http
    faults = {
        "error_rate": 1.0,
        "error_code": 429,
        "retry_after": 7,
        "methods": "get",
        "path_pattern": "/configmaps",
    }
    async with session.put("/sim/faults", json=faults) as r:
        assert r.status == 200
    async with session.get("/api/v1/namespaces") as r:
        assert r.status == 200, "another path"
    async with session.post(CONFIGMAPS, json={"metadata": {"name": "a"}}) as r:
        assert r.status == 201, "another verb"
    async with session.get(CONFIGMAPS) as r:
        body = await r.json()
        assert r.status == 429 and r.headers["Retry-After"] == "7"
        assert body["reason"] == "TooManyRequests"
        assert body["details"] == {"retryAfterSeconds": 7}
    async with session.put("/sim/faults", json={"path_pattern": "("}) as r:
        assert r.status == 400, "a pattern that does not compile is refused"


async def test_restart_downtime_is_validated(
    http: tuple[aiohttp.ClientSession, SimCluster],
) -> None:
    session, _ = http
    for bad in ("abc", "-1", "inf", "nan", "3601"):
        async with session.post(f"/sim/restart?downtime={bad}") as r:
            assert r.status == 400, bad
            assert (await r.json())["error"].startswith("downtime must be a number of seconds")


async def test_long_outage_refuses_connections_and_stop_cancels_it(
    bare_cluster: SimCluster,
) -> None:
    async with aiohttp.ClientSession(base_url=bare_cluster.url) as session:
        async with session.post("/sim/restart?downtime=30") as r:
            assert r.status == 202 and (await r.json())["downtime"] == 30

        async def refused() -> bool:
            try:
                async with session.get("/healthz") as r:
                    return r.status != 200
            except aiohttp.ClientConnectionError:
                return True

        await eventually(refused, message="the emulator stops serving for the downtime")
    task = bare_cluster._restart_task
    assert task is not None and not task.done(), "still inside the 30 s outage"
    await bare_cluster.stop()
    assert task.cancelled(), "stopping the cluster ends the outage instead of serving again"


async def _watch_events(session: aiohttp.ClientSession, rv: str) -> list[dict[str, Any]]:
    """The events of a one-second watch from `rv` (the server ends it)."""
    async with session.get(f"{CONFIGMAPS}?watch=1&resourceVersion={rv}&timeoutSeconds=1") as r:
        assert r.status == 200
        return [json.loads(line) async for line in r.content if line.strip()]


async def test_forced_410_storm(http: tuple[aiohttp.ClientSession, SimCluster]) -> None:
    session, cluster = http
    for i in range(3):
        await session.post(CONFIGMAPS, json={"metadata": {"name": f"c{i}"}})
    async with session.get(f"{CONFIGMAPS}?limit=1") as r:
        page = await r.json()
    stale_rv = page["metadata"]["resourceVersion"]
    token = page["metadata"]["continue"]
    # A resume from the current version misses nothing, so it survives a compaction; one from
    # before a later change does not.
    await session.post(CONFIGMAPS, json={"metadata": {"name": "c3"}})

    for _ in range(5):  # a storm: every expiry cuts watches and forgets all history
        watch = await session.get(f"{CONFIGMAPS}?watch=1&resourceVersion={stale_rv}")
        async with session.post("/sim/expire") as r:
            assert r.status == 200
        async with asyncio.timeout(5):
            lines = [json.loads(x) async for x in watch.content if x.strip()]
        watch.release()
        # A watch opened before this expiry replays what it missed (or, once stale, gets
        # its 410) and is cut: the stream ends.
        assert all(
            e["type"] == "ADDED" or (e["type"] == "ERROR" and e["object"]["code"] == 410)
            for e in lines
        ), lines
        [event] = await _watch_events(session, stale_rv)
        assert event["type"] == "ERROR"
        status = event["object"]
        assert (status["code"], status["reason"]) == (410, "Expired")
        assert status["message"].startswith(f"too old resource version: {stale_rv} (")

    # A relist gives a version a watch can resume from, until the next expiry.
    async with session.get(CONFIGMAPS) as r:
        fresh_rv = (await r.json())["metadata"]["resourceVersion"]
    await session.post(CONFIGMAPS, json={"metadata": {"name": "after"}})
    events = await _watch_events(session, fresh_rv)
    assert [e["object"]["metadata"]["name"] for e in events] == ["after"]

    # The second page of a list begun before the storm: 410, with a token that goes on at the
    # latest version, as the etcd3 store offers it.
    async with session.get(f"{CONFIGMAPS}?limit=1&continue={token}") as r:
        status = await r.json()
        assert r.status == 410 and status["reason"] == "Expired"
        assert status["message"] == INCONSISTENT_CONTINUE
        inconsistent = status["metadata"]["continue"]
    async with session.get(f"{CONFIGMAPS}?continue={inconsistent}") as r:
        rest = await r.json()
        assert r.status == 200
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c1", "c2", "c3"], "after c0"
    assert int(rest["metadata"]["resourceVersion"]) == cluster.store.resource_version
