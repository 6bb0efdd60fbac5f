"""Registry webhooks: deliveries answered per second (an image no app tracks: verify, parse,
answer), and push → rescan requested / → environment objects applied latency (the answer comes
after both). Baseline in the same run: /healthz requests per second at the same concurrency
(the HTTP floor of the same client and server), and a bare aiohttp server (bench.baseline_server:
reads the body, answers) receiving the same signed deliveries from the same client, both measured
in slices interleaved with Kollie's deliveries so all see the same machine load."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.emulator import server_url
from bench.harness import emulator, free_port, median, percentile, process, row
from kollie.cli import DEMO_CATALOG

SECRET = "bench-webhook-secret"
SLICES = 6


def _signed(body: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Signature": sig, "Content-Type": "application/json"}


async def _rate(session: aiohttp.ClientSession, url: str, n: int, make: object) -> float:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            raw, headers = make(i)  # type: ignore[operator]
            async with (
                session.post(url, data=raw, headers=headers)
                if raw is not None
                else session.get(url) as r
            ):
                await r.read()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


async def _watch_for(
    session: aiohttp.ClientSession, url: str, predicate: object, within: float = 10
) -> float:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        async with session.get(url) as r:
            if r.status == 200 and predicate(await r.json()):  # type: ignore[operator]
                return time.perf_counter()
        await asyncio.sleep(0.005)
    raise TimeoutError(url)


async def run(*, quick: bool = False) -> None:
    n = 500 if quick else 3000
    rounds = 5 if quick else 20
    print("== registry webhooks ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with emulator(workdir, "--demo", "--reconcile-delay", "0") as kubeconfig:
            port, bare_port = free_port(), free_port()
            env = {
                **os.environ,
                "KOLLIE_CATALOG": str(DEMO_CATALOG),
                "KOLLIE_WEBHOOK_SECRET": SECRET,
                "KOLLIE_LOG_LEVEL": "warning",
            }
            serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
            with (
                process(
                    [sys.executable, "-m", "kollie.cli", *serve, "--kubeconfig", kubeconfig],
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                    workdir=workdir,
                    env=env,
                ),
                process(
                    [sys.executable, "-m", "bench.baseline_server", str(bare_port)],
                    ready_url=f"http://127.0.0.1:{bare_port}/healthz",
                    workdir=workdir,
                ),
            ):
                await _measure(
                    f"http://127.0.0.1:{port}",
                    f"http://127.0.0.1:{bare_port}",
                    server_url(kubeconfig),
                    n=n,
                    rounds=rounds,
                )


async def _measure(base: str, bare: str, api: str, *, n: int, rounds: int) -> None:
    hook = f"{base}/webhooks/registry/generic"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        while True:
            async with s.get(f"{base}/readyz") as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.05)
        # Interleaved slices, so all rates see the same machine load (a shared machine's load
        # changes within seconds); the medians are reported.
        healths, accepts, bares = [], [], []
        for part in range(SLICES):

            def delivery(i: int, p: int = part) -> tuple[bytes, dict[str, str]]:
                return _signed(
                    {"repository": "registry.example.com/other/thing", "tag": f"v{p}-{i}"}
                )

            healths.append(await _rate(s, f"{base}/healthz", n // SLICES, lambda i: (None, {})))
            accepts.append(await _rate(s, hook, n // SLICES, delivery))
            bares.append(await _rate(s, f"{bare}/webhooks/registry/generic", n // SLICES, delivery))
        health, accepted, bare_rate = median(healths), median(accepts), median(bares)
        row(
            f"deliveries answered/s ({n}, 32 in flight, HMAC verified)",
            f"{accepted:7.0f}   (bare aiohttp, same deliveries: {bare_rate:.0f}/s, "
            f"ratio {accepted / bare_rate:.2f}; /healthz: {health:.0f}/s, "
            f"ratio {accepted / health:.2f})",
        )
        rescans, creates = [], []
        repo_url = (
            f"{api}/apis/image.toolkit.fluxcd.io/v1/namespaces/flux-system/imagerepositories/web"
        )
        for i in range(rounds):
            prefix = f"feature-bench{i}"
            tag = f"{prefix}-abc{i:04d}-{1900000000 + i}"
            async with s.get(repo_url) as r:
                before = ((await r.json())["metadata"].get("annotations") or {}).get(
                    "reconcile.fluxcd.io/requestedAt"
                )
            raw, headers = _signed({"repository": "registry.example.com/acme/web", "tag": tag})
            started = time.perf_counter()
            async with s.post(hook, data=raw, headers=headers) as r:
                assert r.status < 300, await r.text()
            seen = await _watch_for(
                s,
                repo_url,
                lambda o, b=before: (
                    (o["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")
                    not in (None, b)
                ),
            )
            rescans.append(seen - started)
            ks = f"{api}/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations"
            ks = f"{ks}/{prefix}-worker"
            done = await _watch_for(s, ks, lambda o: True)
            creates.append(done - started)
    row(
        "push -> ImageRepository rescan requested, p50 / p99",
        f"{percentile(rescans, 50) * 1000:7.1f} / {percentile(rescans, 99) * 1000:.1f} ms",
    )
    row(
        "push -> auto-created environment's objects applied, p50 / p99",
        f"{percentile(creates, 50) * 1000:7.1f} / {percentile(creates, 99) * 1000:.1f} ms",
    )
