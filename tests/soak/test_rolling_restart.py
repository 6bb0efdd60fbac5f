"""A rolling restart of two `kollie serve` processes under API load loses no request.

The load balancer is played as Kubernetes does it: it learns that a replica is going away
only from its failing /readyz, a moment after SIGTERM, and keeps sending it requests until
then. Each replica, on SIGTERM: fails /readyz first, still answers what it is sent, tells its
live pages to reconnect, gives up the leader Lease, finishes what is in flight, and exits
within its shutdown timeout.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from bench.soak.client import Balancer, Calls
from bench.soak.processes import Emulator, Replica, replica_environ
from bench.soak.run import TOKEN, converge

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SHUTDOWN = {"KOLLIE_SHUTDOWN_DELAY": "1", "KOLLIE_SHUTDOWN_TIMEOUT": "10"}
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kollie/leases/kollie-leader"


@contextmanager
def _stopped_at_exit(*processes: Emulator | Replica) -> Iterator[None]:
    try:
        yield
    finally:
        for p in processes:
            p.stop()


async def _follow_readiness(balancer: Balancer, http: aiohttp.ClientSession) -> None:
    """The endpoints controller: a replica is in rotation while its /readyz answers 200."""
    while True:
        for replica in balancer.replicas:
            try:
                async with http.get(f"{replica.url}/readyz") as r:
                    ready = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ready = False
            if ready:
                balancer.out_of_rotation.discard(replica.name)
            else:
                balancer.out_of_rotation.add(replica.name)
        await asyncio.sleep(0.1)


async def _load(balancer: Balancer, rng: random.Random, stop: asyncio.Event) -> None:
    """A CI job's calls, as fast as they are answered."""
    while not stop.is_set():
        env = f"roll-{rng.randrange(8)}"
        choice = rng.random()
        if choice < 0.4:
            await balancer.send("api", "GET", "/api/v1/environments", headers=AUTH)
        elif choice < 0.7:
            body = {"apps": {rng.choice(["web", "api", "worker"]): {}}}
            await balancer.send(
                "api", "PUT", f"/api/v1/environments/{env}", json=body, headers=AUTH
            )
        elif choice < 0.9:
            await balancer.send(
                "api", "POST", f"/api/v1/environments/{env}/extend", json={"hours": 2}, headers=AUTH
            )
        else:
            await balancer.send(
                "api", "GET", f"/api/v1/environments/{env}?wait=ready&timeout=30", headers=AUTH
            )


async def _holder(http: aiohttp.ClientSession, emulator: Emulator) -> str:
    async with http.get(emulator.url + LEASE) as r:
        if r.status != 200:
            return ""
        return str(((await r.json()).get("spec") or {}).get("holderIdentity") or "")


async def _reconnect_told(http: aiohttp.ClientSession, replica: Replica) -> asyncio.Task[bool]:
    """A live page on `replica`: whether its stream ends with the request to reconnect."""
    response = await http.get(
        f"{replica.url}/events", headers=AUTH, timeout=aiohttp.ClientTimeout(total=60)
    )

    async def read() -> bool:
        text = ""
        async for chunk in response.content.iter_any():
            text += chunk.decode()
        response.release()
        return "event: reconnect" in text

    return asyncio.create_task(read())


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_rolling_restart_under_load_loses_no_request(tmp_path: Path) -> None:
    emulator = Emulator(tmp_path)
    environ = {**replica_environ(tmp_path, token=TOKEN, webhook_secret="s" * 20), **SHUTDOWN}
    replicas = [Replica(n, tmp_path, environ, emulator.kubeconfig) for n in ("a", "b")]
    calls = Calls()
    with _stopped_at_exit(emulator, *replicas):
        await emulator.start()
        await asyncio.gather(*(r.start() for r in replicas))
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            Balancer(replicas, calls, random.Random(7)) as balancer,
        ):
            endpoints = asyncio.create_task(_follow_readiness(balancer, http))
            stop = asyncio.Event()
            load = [asyncio.create_task(_load(balancer, random.Random(i), stop)) for i in range(6)]
            try:
                await asyncio.sleep(2)  # load before the first restart
                for replica in replicas:
                    assert replica.process is not None
                    pid = replica.process.pid
                    live_page = await _reconnect_told(http, replica)
                    led = f"-{pid}-" in await _holder(http, emulator)
                    replica.terminate()
                    code = await replica.wait_exit(within=30)
                    assert code == 0, f"replica {replica.name} exited on its own, cleanly"
                    assert await live_page, "its live page was told to reconnect"
                    if led:
                        holder = await _holder(http, emulator)
                        assert f"-{pid}-" not in holder, "the leader gave its Lease up"
                    await replica.start()
                    await asyncio.sleep(1)  # load on both again before the next one
            finally:
                stop.set()
                await asyncio.gather(*load)
                endpoints.cancel()
            assert calls.total("dropped") == 0, calls.dropped
            assert calls.total("ok") > 50, f"load ran through the restarts: {calls.outcomes}"
            converged, _, diffs, _ = await converge(http, emulator.url, replicas, within=30)
            assert converged, diffs
    for replica in replicas:
        records = replica.log_records()
        assert any(r.get("event") == "shutdown_started" for r in records)
        assert not any(r.get("event") == "shutdown_timed_out" for r in records)
