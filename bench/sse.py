"""Live updates: latency from a cluster change to its arrival at 100 and 1,000 SSE clients.

A status change is written to the API server (as Flux would); every connected `/events`
client records when the environment's event arrives. Baseline in the same run: /healthz
round trips from the same client process, the floor of anything it can measure.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.emulator import server_url
from bench.harness import emulator, free_port, percentile, process, row
from kollie.cli import DEMO_CATALOG

TOKEN = "bench-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    arrivals: dict[int, list[float]],
    ready: asyncio.Event,
    counter: list[int],
    total: int,
) -> None:
    async with session.get(url, headers=AUTH, timeout=aiohttp.ClientTimeout(total=None)) as r:
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        async for line in r.content:
            if line.startswith(b"data:") and b'"round"' not in line and b"bench-round-" in line:
                marker = line.split(b"bench-round-", 1)[1].split(b'"', 1)[0]
                arrivals.setdefault(int(marker), []).append(time.perf_counter())


async def _measure(base: str, api: str, clients: int, rounds: int) -> list[float]:
    arrivals: dict[int, list[float]] = {}
    ready = asyncio.Event()
    counter = [0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(
                _client(session, f"{base}/events?env=bench", arrivals, ready, counter, clients)
            )
            for _ in range(clients)
        ]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        obj_path = (
            f"{api}/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations/bench-api"
        )
        # The app gets an image tag, so its Ready message (which carries the round marker) is shown.
        async with session.patch(
            obj_path,
            json={
                "spec": {
                    "suspend": False,
                    "postBuild": {"substitute": {"image_tag": "main-abc1234-1"}},
                }
            },
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            generation = (await r.json())["metadata"]["generation"]
        path = f"{obj_path}/status"
        for i in range(rounds):
            started = time.perf_counter()
            patch = {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "ReconciliationSucceeded",
                            "message": f"bench-round-{i}",
                            "observedGeneration": generation,
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }
                    ],
                    "observedGeneration": generation,
                }
            }
            async with session.patch(
                path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
            ) as r:
                assert r.status == 200, await r.text()
            deadline = time.perf_counter() + 10
            while len(arrivals.get(i, [])) < clients and time.perf_counter() < deadline:  # noqa: ASYNC110 - clients stay free of extra signalling work
                await asyncio.sleep(0.005)
            latencies += [t - started for t in arrivals.get(i, [])]
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


async def run(*, quick: bool = False) -> None:
    sizes = (100,) if quick else (100, 1000)
    rounds = 10 if quick else 20
    print("== live updates (SSE) ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with emulator(
            workdir,
            "--flux-crds",
            "--no-flux",
            "--namespace",
            "kollie",
            "--namespace",
            "flux-system",
        ) as kubeconfig:
            api = server_url(kubeconfig)
            tokens = workdir / "tokens"
            tokens.write_text(f"bench:{TOKEN}\n")
            port = free_port()
            env = {
                **os.environ,
                "KOLLIE_CATALOG": str(DEMO_CATALOG),
                "KOLLIE_API_TOKENS_FILE": str(tokens),
                "KOLLIE_LOG_LEVEL": "warning",
            }
            with process(
                [
                    sys.executable,
                    "-m",
                    "kollie.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--kubeconfig",
                    kubeconfig,
                ],
                ready_url=f"http://127.0.0.1:{port}/healthz",
                workdir=workdir,
                env=env,
            ):
                base = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession() as s:
                    while True:
                        async with s.get(f"{base}/readyz") as r:
                            if r.status == 200:
                                break
                        await asyncio.sleep(0.05)
                    async with s.put(
                        f"{base}/api/v1/environments/bench",
                        json={"apps": {"api": {}}},
                        headers=AUTH,
                    ) as r:
                        assert r.status == 201, await r.text()
                    health = []
                    for _ in range(50):
                        started = time.perf_counter()
                        async with s.get(f"{base}/healthz") as r:
                            await r.read()
                        health.append(time.perf_counter() - started)
                for clients in sizes:
                    latencies = await _measure(base, api, clients, rounds)
                    expected = clients * rounds
                    row(
                        f"cluster change -> SSE receipt, {clients} clients "
                        f"({len(latencies)}/{expected} received)",
                        f"p50 {percentile(latencies, 50) * 1000:6.1f} ms  "
                        f"p99 {percentile(latencies, 99) * 1000:6.1f} ms"
                        f"   (/healthz round trip p50 {percentile(health, 50) * 1000:.1f} ms)",
                    )
