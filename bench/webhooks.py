"""Registry webhooks: deliveries answered per second (an image no app tracks: verify, parse,
answer), and push → rescan requested / → environment objects applied latency (the answer comes
after both). Baseline in the same run: /healthz requests per second at the same concurrency
(the HTTP floor of the same client and server), measured in slices interleaved with the
deliveries so both see the same machine load."""

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
            api = server_url(kubeconfig)
            port = free_port()
            env = {
                **os.environ,
                "KOLLIE_CATALOG": str(DEMO_CATALOG),
                "KOLLIE_WEBHOOK_SECRET": SECRET,
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
                hook = f"{base}/webhooks/registry/generic"
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
                    while True:
                        async with s.get(f"{base}/readyz") as r:
                            if r.status == 200:
                                break
                        await asyncio.sleep(0.05)
                    # Interleaved slices, so both rates see the same machine load (a shared
                    # machine's load changes within seconds); the medians are reported.
                    healths, accepts = [], []
                    for part in range(SLICES):
                        healths.append(
                            await _rate(s, f"{base}/healthz", n // SLICES, lambda i: (None, {}))
                        )
                        accepts.append(
                            await _rate(
                                s,
                                hook,
                                n // SLICES,
                                lambda i, p=part: _signed(
                                    {
                                        "repository": "registry.example.com/other/thing",
                                        "tag": f"v{p}-{i}",
                                    }
                                ),
                            )
                        )
                    health, accepted = median(healths), median(accepts)
                    row(
                        f"deliveries answered/s ({n}, 32 in flight, HMAC verified)",
                        f"{accepted:7.0f}   "
                        f"(/healthz: {health:.0f}/s, ratio {accepted / health:.2f})",
                    )
                    rescans, creates = [], []
                    repo_url = (
                        f"{api}/apis/image.toolkit.fluxcd.io/v1"
                        "/namespaces/flux-system/imagerepositories/web"
                    )
                    for i in range(rounds):
                        prefix = f"feature-bench{i}"
                        tag = f"{prefix}-abc{i:04d}-{1900000000 + i}"
                        async with s.get(repo_url) as r:
                            before = ((await r.json())["metadata"].get("annotations") or {}).get(
                                "reconcile.fluxcd.io/requestedAt"
                            )
                        raw, headers = _signed(
                            {"repository": "registry.example.com/acme/web", "tag": tag}
                        )
                        started = time.perf_counter()
                        async with s.post(hook, data=raw, headers=headers) as r:
                            assert r.status == 200, await r.text()
                        seen = await _watch_for(
                            s,
                            repo_url,
                            lambda o, b=before: (
                                (o["metadata"].get("annotations") or {}).get(
                                    "reconcile.fluxcd.io/requestedAt"
                                )
                                not in (None, b)
                            ),
                        )
                        rescans.append(seen - started)
                        ks = (
                            f"{api}/apis/kustomize.toolkit.fluxcd.io/v1"
                            f"/namespaces/kollie/kustomizations/{prefix}-worker"
                        )
                        done = await _watch_for(s, ks, lambda o: True)
                        creates.append(done - started)
                row(
                    "push -> ImageRepository rescan requested, p50 / p99",
                    f"{percentile(rescans, 50) * 1000:7.1f} / "
                    f"{percentile(rescans, 99) * 1000:.1f} ms",
                )
                row(
                    "push -> auto-created environment's objects applied, p50 / p99",
                    f"{percentile(creates, 50) * 1000:7.1f} / "
                    f"{percentile(creates, 99) * 1000:.1f} ms",
                )
