"""One soak run: the processes, the population, the random changes under faults, and the
checks afterwards (convergence, calls, logs, memory)."""

from __future__ import annotations

import asyncio
import random
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.soak.client import Balancer, Calls
from bench.soak.expected import (
    View,
    cluster_objects,
    differences,
    expected_view,
    served_view,
)
from bench.soak.faults import FaultInjector
from bench.soak.processes import Emulator, Replica, replica_environ
from bench.soak.workload import BUNDLES, Workload

TOKEN = "soak-token-0123456789abcdef"
WEBHOOK_SECRET = "soak-webhook-secret"
FAILURE_EVENTS = {
    "task_crashed",
    "task_returned",
    "task_did_not_stop",
    "leader_work_ended",
    "request_failed",
}
"""Log events that mean a supervised task or a request handler failed."""


@dataclass(frozen=True)
class SoakConfig:
    changes: int = 10_000
    concurrency: int = 8
    seed: int = 1
    environments: int = 24
    reconcile_delay: float = 0.3
    converge_timeout: float = 60.0


@dataclass
class Memory:
    idle: float
    baseline: float
    after: float = 0.0


@dataclass
class SoakReport:
    config: SoakConfig
    changes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    calls: Calls = field(default_factory=Calls)
    workload_seconds: float = 0.0
    converged: bool = False
    lag_seconds: float = float("nan")
    """From the cluster view's last change to every replica serving exactly that view."""
    settle_seconds: float = float("nan")
    """From the last change's answer to every replica serving the final cluster view."""
    divergences: list[str] = field(default_factory=list)
    environments: int = 0
    app_states: Counter[str] = field(default_factory=Counter)
    """The apps of the final cluster view by state: what the comparison covered."""
    memory: dict[str, Memory] = field(default_factory=dict)
    log_failures: list[str] = field(default_factory=list)
    cache_objects: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per replica, the objects its cache holds at the end (what its memory is spent on)."""
    shutdown_seconds: list[float] = field(default_factory=list)
    shutdown_exit_codes: list[int | None] = field(default_factory=list)
    restarted: str = ""


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="kollie-soak-") as tmp:
        yield Path(tmp)


async def _served(http: aiohttp.ClientSession, replica: Replica) -> View | None:
    try:
        async with http.get(
            f"{replica.url}/api/v1/environments",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as r:
            if r.status != 200:
                return None
            return served_view((await r.json())["items"])
    except (aiohttp.ClientError, TimeoutError):
        return None


async def converge(
    http: aiohttp.ClientSession, emulator: str, replicas: list[Replica], *, within: float
) -> tuple[bool, float, list[str], View]:
    """Poll until every replica serves what the cluster holds, and the cluster held it both
    before and after the replicas were asked. Returns (converged, lag since the cluster view
    last changed, differences if not converged, environments)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    last: View | None = None
    changed_at = started
    diffs: list[str] = []
    while True:
        # Every request of one step at once: the lag measured is the replicas', not the
        # harness's own round trips.
        before = expected_view(await cluster_objects(http, emulator))
        now = loop.time()
        if before != last:
            last, changed_at = before, now
        served = list(await asyncio.gather(*(_served(http, r) for r in replicas)))
        after = expected_view(await cluster_objects(http, emulator))
        if after == before and all(view == before for view in served):
            return True, loop.time() - changed_at, [], before
        diffs = []
        for replica, view in zip(replicas, served, strict=True):
            if view is None:
                diffs.append(f"{replica.name}: no answer")
            else:
                diffs += [f"{replica.name}: {d}" for d in differences(before, view)]
        if loop.time() - started > within:
            return False, float("nan"), diffs, before
        await asyncio.sleep(0.02)


def log_failures(replicas: list[Replica]) -> list[str]:
    """Failures the replicas logged: crashed or returned tasks, failed requests, tracebacks."""
    found = []
    for replica in replicas:
        for record in replica.log_records():
            raw = str(record.get("raw", ""))
            if (
                record.get("event") in FAILURE_EVENTS
                or record.get("level") in ("error", "critical")
                or "Traceback" in raw
                or "exception was never retrieved" in raw
            ):
                found.append(f"{replica.name}: {str(record)[:400]}")
    return found


async def _cache_objects(http: aiohttp.ClientSession, replica: Replica) -> dict[str, int]:
    """kollie_cache_objects{kind=...} from the replica's /metrics."""
    async with http.get(f"{replica.url}/metrics") as r:
        text = await r.text()
    found = re.findall(r'^kollie_cache_objects\{kind="([a-z]+)"\} ([0-9.e+]+)$', text, re.M)
    return {kind: int(float(n)) for kind, n in found}


async def _leader(http: aiohttp.ClientSession, replicas: list[Replica]) -> Replica:
    """The replica holding the Lease (its loss is the interesting one), else the first."""
    for replica in replicas:
        try:
            async with http.get(f"{replica.url}/readyz") as r:
                if (await r.json()).get("leader"):
                    return replica
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
    return replicas[0]


async def _populate(workload: Workload, balancer: Balancer) -> None:
    """Every environment of the pool, created once, so memory is measured at steady size."""
    for i, name in enumerate(workload.names):
        await balancer.send(
            "api",
            "PUT",
            f"/api/v1/environments/{name}",
            json={"bundle": BUNDLES[i % len(BUNDLES)], "apps": {}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )


async def run_soak(config: SoakConfig, *, workdir: Path | None = None) -> SoakReport:
    report = SoakReport(config)
    rng = random.Random(config.seed)
    with _workdir(workdir) as wd:
        emulator = Emulator(wd, reconcile_delay=config.reconcile_delay)
        replicas: list[Replica] = []
        try:
            await emulator.start()
            environ = replica_environ(wd, token=TOKEN, webhook_secret=WEBHOOK_SECRET)
            replicas = [Replica(n, wd, environ, emulator.kubeconfig) for n in ("a", "b")]
            await asyncio.gather(*(r.start() for r in replicas))
            idle = {r.name: r.rss_mb() for r in replicas}
            timeout = aiohttp.ClientTimeout(total=30)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                Balancer(replicas, report.calls, random.Random(rng.random())) as balancer,
            ):
                workload = Workload(
                    balancer,
                    http,
                    emulator.url,
                    TOKEN,
                    WEBHOOK_SECRET,
                    random.Random(rng.random()),
                    environments=config.environments,
                )
                await workload.setup()
                await _populate(workload, balancer)
                await converge(http, emulator.url, replicas, within=config.converge_timeout)
                for r in replicas:
                    report.memory[r.name] = Memory(idle[r.name], r.rss_mb())

                async def restart_target() -> Replica:
                    target = await _leader(http, replicas)
                    report.restarted = target.name
                    return target

                injector = FaultInjector(http, emulator.url, balancer, restart_target)
                await _drive(config, workload, injector, report)
                report.faults = injector.injected
                report.shutdown_seconds = injector.shutdown_seconds
                report.shutdown_exit_codes = injector.replica_exit_codes
                report.changes = workload.counts
                ended = asyncio.get_running_loop().time()
                converged, lag, diffs, final = await converge(
                    http, emulator.url, replicas, within=config.converge_timeout
                )
                report.converged, report.lag_seconds = converged, lag
                report.settle_seconds = asyncio.get_running_loop().time() - ended
                report.divergences, report.environments = diffs, len(final)
                report.app_states = Counter(
                    app["state"] for env in final.values() for app in env["apps"].values()
                )
                await asyncio.sleep(1.0)  # let the last responses and watch events be freed
                for r in replicas:
                    report.memory[r.name].after = r.rss_mb()
                    report.cache_objects[r.name] = await _cache_objects(http, r)
        finally:
            for r in replicas:
                r.stop()
            emulator.stop()
        report.log_failures = log_failures(replicas)
    return report


async def _drive(
    config: SoakConfig, workload: Workload, injector: FaultInjector, report: SoakReport
) -> None:
    """`config.changes` random changes from `config.concurrency` concurrent clients."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    issued = done = 0

    async def client() -> None:
        nonlocal issued, done
        while issued < config.changes:
            issued += 1
            await workload.change()
            done += 1
            await injector.progress(done / config.changes)

    await asyncio.gather(*(client() for _ in range(config.concurrency)))
    await injector.finish()
    report.workload_seconds = loop.time() - started
