"""Kollie at 1,000 and 10,000 environments, as users and dashboards see it.

`kollie serve` runs as its own process against the emulator (also its own process); at 1,000
environments simulated Flux reconciles every app, at 10,000 it does not (the figures are then
Kollie's alone). Measured, each next to a baseline from the same run:
- cold start to /readyz, and the RSS once synced;
- `/` as a user opens it, `/env/<env>` and `GET /api/v1/environments` (p50 and bytes), against
  the `/healthz` round trip of the same client, interleaved;
- live updates at 1,000 environments: 50 changes/s written to the cluster while 1,000
  unfiltered dashboard clients (a lightweight client in a separate process) read `/events`
  as the dashboard does (`?view=rows`),
  then the same with 10 % of the clients stalled; against the floor of an aiohttp server that
  encodes each event once and writes it straight to every socket (bench/fanout_floor.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.emulator import server_url
from bench.harness import ROOT, emulator, free_port, percentile, process, row, rss_mb
from kollie.cli import DEMO_CATALOG

APPS = ("web", "api", "worker", "payments", "search")
TOKEN = "bench-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIEWER = "user7@example.com"
PAGE = {"X-Auth-Request-Email": VIEWER}
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations"
IMAGE_TAG = "main-0123abc-1900000000"
"""The newest default-branch image of every app (pushed before the environments are loaded,
so Flux resolves every ImagePolicy to the tag the Kustomizations already run)."""


def _record() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "env-{i}",
            "namespace": "kollie",
            "labels": {
                "app.kubernetes.io/managed-by": "kollie",
                "kollie.io/environment": "env-{i}",
            },
            "annotations": {
                "kollie.io/owner": "user{i}@example.com",
                "kollie.io/created-at": "2026-01-01T00:00:00Z",
            },
        },
        "data": {
            "environment.json": json.dumps(
                {"uptime": {"since": "2026-01-01T00:00:00Z", "until": "2099-01-01T19:00:00Z"}}
            )
        },
    }


def _app(app: str) -> list[dict[str, Any]]:
    meta = {
        "name": f"env-{{i}}-{app}",
        "namespace": "kollie",
        "labels": {
            "app.kubernetes.io/managed-by": "kollie",
            "kollie.io/environment": "env-{i}",
            "kollie.io/app": app,
        },
        "annotations": {"kollie.io/image-tag-prefix": "main"},
    }
    substitute = {
        "environment": "env-{i}",
        "image_tag": IMAGE_TAG,
        "downscaler_uptime": "2026-01-01T00:00:00Z-2099-01-01T19:00:00Z",
    }
    return [
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": meta,
            "spec": {
                "interval": "5m",
                "path": f"./apps/{app}",
                "prune": True,
                "sourceRef": {
                    "kind": "GitRepository",
                    "name": "platform",
                    "namespace": "flux-system",
                },
                "postBuild": {"substitute": substitute},
            },
        },
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": meta,
            "spec": {
                "imageRepositoryRef": {"name": app, "namespace": "flux-system"},
                "filterTags": {
                    "pattern": "^main-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$",
                    "extract": "$ts",
                },
                "policy": {"numerical": {"order": "asc"}},
            },
        },
    ]


async def _load(api: str, environments: int) -> float:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        for template in [_record()] + [o for a in APPS for o in _app(a)]:
            async with s.post(
                f"{api}/sim/load", json={"object": template, "count": environments}
            ) as r:
                assert r.status == 200, await r.text()
    return time.perf_counter() - started


async def _cluster_writes_per_second(api: str, seconds: float = 5.0) -> float:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{api}/sim/stats") as r:
            before = int((await r.json())["resourceVersion"])
        await asyncio.sleep(seconds)
        async with s.get(f"{api}/sim/stats") as r:
            after = int((await r.json())["resourceVersion"])
    return (after - before) / seconds


@dataclass(frozen=True)
class Subject:
    """A Kollie to measure: this checkout, or the one named by KOLLIE_BENCH_BASELINE (an older
    checkout with its own .venv, measured in the same run against the same emulator)."""

    label: str
    root: Path
    events: str
    """The stream its dashboard reads."""

    @property
    def python(self) -> str:
        return sys.executable if self.root == ROOT else str(self.root / ".venv" / "bin" / "python")


def subjects() -> list[Subject]:
    current = Subject("", ROOT, "/events?view=rows")
    baseline = os.environ.get("KOLLIE_BENCH_BASELINE")
    if not baseline:
        return [current]
    # Before the rows view, the dashboard read every environment's JSON from /events.
    return [
        Subject("before: ", Path(baseline).resolve(), "/events"),
        Subject("after: ", ROOT, current.events),
    ]


@contextmanager
def _kollie(
    kubeconfig: str, port: int, workdir: Path, subject: Subject
) -> Iterator[subprocess.Popen[bytes]]:
    tokens = workdir / "tokens"
    tokens.write_text(f"bench:{TOKEN}\n")
    env = {
        **os.environ,
        "KOLLIE_CATALOG": str(DEMO_CATALOG),
        "KOLLIE_API_TOKENS_FILE": str(tokens),
        "KOLLIE_LOG_LEVEL": "warning",
        "KOLLIE_TRUST_PROXY_HEADERS": "true",
        # The load client's 1,000 streams share one identity; a dashboard's are 1,000 people.
        "KOLLIE_LIMIT_EVENT_STREAMS": "100000",
    }
    args = [subject.python, "-m", "kollie.cli", "serve", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--kubeconfig", kubeconfig]
    with process(
        args,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        workdir=workdir,
        env=env,
        cwd=subject.root,
    ) as proc:
        yield proc


async def _wait_ready(base: str, within: float = 300) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"{base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
    raise TimeoutError(f"{base}/readyz")


async def _interleaved(
    base: str, rounds: int, targets: dict[str, tuple[str, dict[str, str]]]
) -> dict[str, tuple[list[float], int]]:
    """GETs of `targets` in turn, `rounds` times: each one's latencies and last answer's size."""
    out: dict[str, tuple[list[float], int]] = {name: ([], 0) for name in targets}
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        for i in range(rounds + 5):
            for name, (path, headers) in targets.items():
                started = time.perf_counter()
                async with s.get(base + path, headers=headers) as r:
                    body = await r.read()
                    assert r.status == 200, (path, r.status, body[:200])
                elapsed = time.perf_counter() - started
                size, body = len(body), b""  # a big list is freed here, not in the next timing
                # Each request meets a server done with the previous one, as page views spread
                # over time do.
                await asyncio.sleep(0.05)
                if i >= 5:  # warm-up rounds are not counted
                    out[name][0].append(elapsed)
                    out[name] = (out[name][0], size)
    return out


async def _requests(base: str, rounds: int, env: str) -> dict[str, tuple[list[float], int]]:
    """The pages interleaved with /healthz; then the API list interleaved with /healthz in a
    pass of its own (a multi-megabyte answer slows the next requests of the server for a few
    ms, which would make the pages' reference look slower than it is). Each target's ratio is
    against the /healthz of its own pass."""
    health = ("/healthz", {})
    pages = await _interleaved(
        base,
        rounds,
        {"/healthz": health, "/": ("/", PAGE), "/env/<env>": (f"/env/{env}", PAGE)},
    )
    lists = await _interleaved(
        base,
        rounds,
        {
            "/healthz (API pass)": health,
            "/api/v1/environments": ("/api/v1/environments", AUTH),
        },
    )
    return {**pages, **lists}


async def _not_modified(base: str) -> tuple[int, float]:
    """The API list's 304 with If-None-Match, if the server sends an ETag (status, ms)."""
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/api/v1/environments", headers=AUTH) as r:
            etag = r.headers.get("ETag")
            await r.read()
        if not etag:
            return 0, float("nan")
        started = time.perf_counter()
        async with s.get(
            base + "/api/v1/environments", headers={**AUTH, "If-None-Match": etag}
        ) as r:
            await r.read()
            return r.status, (time.perf_counter() - started) * 1000


@contextmanager
def _clients(
    url: str, clients: int, stalled: int, headers: list[str], first: int = 0
) -> Iterator[dict[str, Any]]:
    """The load client process; yields a dict filled with its results when the block ends."""
    args = [sys.executable, "-m", "bench.sseclients", url, "--clients", str(clients)]
    args += ["--stalled", str(stalled), "--first", str(first)]
    for header in headers:
        args += ["--header", header]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the SSE client process did not start")
    result: dict[str, Any] = {}
    try:
        yield result
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        result.update(json.loads(out.decode().strip().splitlines()[-1]))


def marker(n: int) -> str:
    """The text a change carries: its number and when it was written (CLOCK_MONOTONIC)."""
    return f"bench-mark-{n}-{time.monotonic_ns()}"


_first_marker = 0
"""Numbers go on across live runs: an app still failing shows an earlier run's marker in its
row, which must not count as a receipt of this run's change of the same number."""


async def _write_changes(rate: float, seconds: float, write: Any) -> int:
    """Call `write(n)` `rate` times a second on a fixed schedule; returns how many."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = int(rate * seconds)
    pending = set()
    for n in range(count):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(write(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return count


def _status_patch(message: str, generation: int) -> dict[str, Any]:
    """A failure, as Flux writes it for the current generation, with `message`: what a row
    shows of an app that is not Ready (a Ready app's row carries no message, so a new one
    would change nothing on screen)."""
    condition = {
        "type": "Ready",
        "status": "False",
        "reason": "HealthCheckFailed",
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    return {"status": {"observedGeneration": generation, "conditions": [condition]}}


async def _live(
    base: str,
    api: str,
    environments: int,
    clients: int,
    stalled: int,
    seconds: float,
    *,
    events: str,
    apps: tuple[str, ...] = APPS,
) -> dict[str, Any]:
    """Changes written to the cluster → received by `/events` clients."""
    session = aiohttp.ClientSession()
    pick = random.Random(7)

    global _first_marker
    first = _first_marker
    commits: list[float] = []

    async def write(n: int) -> None:
        url = f"{api}{KUSTOMIZATIONS}/env-{pick.randrange(environments)}-{pick.choice(apps)}"
        # The change must be about the current generation, or pages show "waiting for Flux".
        async with session.get(url) as r:
            generation = (await r.json())["metadata"]["generation"]
        started = time.perf_counter()
        async with session.patch(
            f"{url}/status",
            json=_status_patch(marker(first + n), generation),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 200, await r.text()
        commits.append((time.perf_counter() - started) * 1000)

    headers = [f"{k}: {v}" for k, v in PAGE.items()]
    try:
        with _clients(f"{base}{events}", clients, stalled, headers, first) as result:
            await asyncio.sleep(2)
            written = await _write_changes(50, seconds, write)
            await asyncio.sleep(2)
    finally:
        await session.close()
    _first_marker += written
    result["written"] = written
    result["commits_ms"] = commits
    return result


async def _floor(clients: int, seconds: float, size: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench.fanout_floor", str(port)]
    with process(args, ready_url=f"{base}/healthz", workdir=workdir):
        session = aiohttp.ClientSession()
        padding = "x" * max(0, size - 100)

        async def write(n: int) -> None:
            async with session.post(f"{base}/emit", json={"m": marker(n), "p": padding}) as r:
                await r.read()

        try:
            with _clients(f"{base}/events", clients, 0, []) as result:
                await asyncio.sleep(2)
                written = await _write_changes(50, seconds, write)
                await asyncio.sleep(2)
        finally:
            await session.close()
    result["written"] = written
    return result


def _ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:7.2f} ms"


def _live_row(label: str, result: dict[str, Any], clients: int) -> None:
    latencies = result.get("latencies_ms", [])
    expected = result.get("written", 0) * clients
    row(
        label,
        f"p50 {percentile(latencies, 50):6.1f} ms  p99 {percentile(latencies, 99):6.1f} ms  "
        f"({len(latencies)}/{expected} received, {result.get('closed_by_server', 0)} closed)",
    )
    if commits := result.get("commits_ms"):
        # A change is timed from before its PATCH: this much of it is the emulator's.
        row(
            "  of which the cluster write (PATCH round trip)",
            f"p50 {percentile(commits, 50):6.1f} ms  p99 {percentile(commits, 99):6.1f} ms",
        )


async def _settle(api: str, *, quiet: float = 5.0, within: float = 180.0) -> float:
    """Wait until the cluster sees fewer than `quiet` writes/s (Flux and Kollie have caught
    up); returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if await _cluster_writes_per_second(api, 2.0) < quiet:
            break
    return time.perf_counter() - started


async def _push_image(api: str, app: str, tag: str) -> None:
    """An image in the simulated registry (a new default-branch image: everyone follows)."""
    image = {"image": f"registry.example.com/acme/{app}", "tag": tag}
    async with aiohttp.ClientSession() as s, s.post(f"{api}/sim/registry/push", json=image) as r:
        assert r.status < 300, await r.text()


async def _row_size(base: str) -> int:
    """Bytes of one dashboard row event, for a floor that sends the same amount."""
    async with aiohttp.ClientSession() as s, s.get(f"{base}/?q=env-0", headers=PAGE) as r:
        page = await r.text()
    start = page.index('<tr data-env="env-0"')
    return page.index("</tr>", start) - start + 60


async def _requests_rows(base: str, environments: int, quick: bool, label: str) -> None:
    timings = await _requests(base, 20 if quick else 60, f"env-{environments // 2}")
    for name, (values, size) in timings.items():
        api_pass = name.startswith("/api/") or "API pass" in name
        reference = "/healthz (API pass)" if api_pass else "/healthz"
        ratio = percentile(values, 50) / percentile(timings[reference][0], 50)
        row(
            f"{label}GET {name} p50 (x /healthz) and size",
            f"{_ms(values, 50)}  ({ratio:5.1f} x)  {size / 1024:8.1f} KB",
        )
    status, ms = await _not_modified(base)
    row(f"{label}GET /api/v1/environments with If-None-Match", f"{status or 'no ETag'} {ms:.2f} ms")


async def _live_rows(
    base: str,
    api: str,
    environments: int,
    proc: subprocess.Popen[bytes],
    *,
    quick: bool,
    subject: Subject,
    wave: int,
) -> tuple[int, float]:
    clients = 100 if quick else 1000
    seconds = 5 if quick else 20
    label, events = subject.label, subject.events
    live = await _live(base, api, environments, clients, 0, seconds, events=events)
    _live_row(f"{label}change -> /events receipt, {clients} clients, 50/s", live, clients)
    await _push_image(api, "web", f"main-0123abd-{1900000000 + wave}")
    writes = asyncio.create_task(_cluster_writes_per_second(api, seconds))
    # The changes go to the other apps: web's own status is Flux's to write meanwhile.
    others = tuple(a for a in APPS if a != "web")
    live = await _live(base, api, environments, clients, 0, seconds, events=events, apps=others)
    _live_row(
        f"{label}the same while Flux rolls out a new web image ({await writes:.0f} writes/s)",
        live,
        clients,
    )
    await _settle(api, quiet=1.0)
    rss_before = rss_mb(proc.pid)
    stalled = clients // 10
    live = await _live(base, api, environments, clients - stalled, stalled, seconds, events=events)
    _live_row(
        f"{label}the same with {stalled} more clients stalled (never reading)",
        live,
        clients - stalled,
    )
    row(
        f"{label}RSS before / after the stalled run",
        f"{rss_before:7.0f} / {rss_mb(proc.pid):.0f} MB",
    )
    return clients, seconds


async def _measure(
    subject: Subject,
    kubeconfig: str,
    environments: int,
    *,
    flux: bool,
    quick: bool,
    workdir: Path,
    wave: int,
) -> tuple[int, float, int] | None:
    """Everything about one Kollie; for the floor: clients, seconds and event size."""
    api = server_url(kubeconfig)
    label = subject.label
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with _kollie(kubeconfig, port, workdir, subject) as proc:
        await _wait_ready(base)
        cold = time.perf_counter() - started
        row(f"{label}cold start to /readyz (process start, list, cache)", f"{cold:7.2f} s")
        await (_settle(api) if flux else asyncio.sleep(2))
        row(f"{label}RSS after sync", f"{rss_mb(proc.pid):7.0f} MB")
        await _requests_rows(base, environments, quick, label)
        if not flux:
            return None
        clients, seconds = await _live_rows(
            base, api, environments, proc, quick=quick, subject=subject, wave=wave
        )
        return clients, seconds, await _row_size(base)


async def _scenario(environments: int, *, flux: bool, quick: bool, workdir: Path) -> None:
    print(
        f"== scale: {environments} environments x {len(APPS)} apps "
        f"({'simulated Flux reconciling' if flux else 'no Flux'}) ==",
        flush=True,
    )
    extra = ["--namespace", "kollie"]
    if flux:
        extra += ["--demo", "--reconcile-delay", "0.5"]
    else:
        extra += ["--flux-crds", "--no-flux", "--namespace", "flux-system"]
    with emulator(workdir, *extra) as kubeconfig:
        api = server_url(kubeconfig)
        if flux:
            for app in APPS:
                await _push_image(api, app, IMAGE_TAG)
        loaded = await _load(api, environments)
        row("objects loaded into the emulator", f"{environments * 11} in {loaded:.1f} s")
        if flux:
            row("simulated Flux reconciled them in", f"{await _settle(api):7.1f} s")
        floor = None
        for wave, subject in enumerate(subjects(), 1):
            floor = await _measure(
                subject,
                kubeconfig,
                environments,
                flux=flux,
                quick=quick,
                workdir=workdir,
                wave=wave,
            )
    if floor is not None:
        clients, seconds, size = floor
        result = await _floor(clients, seconds, size, workdir)
        _live_row(f"floor: encode once, write to every socket, {clients} clients", result, clients)


async def run(*, quick: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        await _scenario(200 if quick else 1000, flux=True, quick=quick, workdir=workdir)
        await _scenario(1000 if quick else 10000, flux=False, quick=quick, workdir=workdir)
