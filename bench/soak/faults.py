"""The faults of the soak, on a schedule over its progress (0 = first change, 1 = last).

The emulator injects them through its `/sim` routes (README "Fault injection"): latency,
500s, 429s with `Retry-After`, watch streams cut after a few events, every watch cut, a
forgotten watch history (resumes get 410 and relist) and two restarts. One replica is
restarted as a rolling update does it: sent SIGTERM, taken out of the Service's rotation a
moment later, started again and put back once ready.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.soak.client import Balancer
from bench.soak.processes import Replica

SHUTDOWN_WITHIN = 30.0
"""Seconds a replica has to exit after SIGTERM (the chart's terminationGracePeriodSeconds)."""
ENDPOINT_LAG = 0.5
"""Seconds the Service still routes to a replica after its SIGTERM, as an endpoint change
takes a moment to reach every load balancer: requests sent then must still be answered."""


@dataclass(frozen=True)
class Step:
    at: float
    kind: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)


SCHEDULE = (
    Step(0.05, "latency", "faults", {"latency": 0.02}),
    Step(0.10, "500s", "faults", {"error_rate": 0.05, "error_code": 500}),
    Step(0.15, "cut watches", "drop-watches"),
    Step(0.20, "forced 410", "expire"),
    Step(0.25, "429s", "faults", {"error_rate": 0.05, "error_code": 429, "retry_after": 1}),
    Step(0.30, "API restart", "restart", {"downtime": "0.5"}),
    Step(0.35, "watch cut every 5 events", "faults", {"watch_event_limit": 5}),
    Step(0.40, "cut watches", "drop-watches"),
    Step(0.45, "replica restart", "replica"),
    Step(0.50, "forced 410", "expire"),
    Step(0.55, "500s", "faults", {"error_rate": 0.1, "error_code": 500, "watch_event_limit": 0}),
    Step(0.60, "cut watches", "drop-watches"),
    Step(0.65, "API restart", "restart", {"downtime": "1.0"}),
    Step(0.70, "429s", "faults", {"error_rate": 0.1, "error_code": 429, "retry_after": 1}),
    Step(0.75, "forced 410", "expire"),
    Step(0.80, "cut watches", "drop-watches"),
    Step(0.85, "latency", "faults", {"latency": 0.05, "error_rate": 0.0}),
    Step(0.90, "cleared", "clear"),
)


@dataclass
class FaultInjector:
    http: aiohttp.ClientSession
    emulator: str
    balancer: Balancer
    replica_to_restart: Callable[[], Awaitable[Replica]]
    injected: Counter[str] = field(default_factory=Counter)
    replica_exit_codes: list[int | None] = field(default_factory=list)
    shutdown_seconds: list[float] = field(default_factory=list)
    _next: int = 0
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    async def progress(self, fraction: float) -> None:
        """Inject every fault scheduled up to `fraction` of the run."""
        while self._next < len(SCHEDULE) and SCHEDULE[self._next].at <= fraction:
            step = SCHEDULE[self._next]
            self._next += 1
            await self._inject(step)
            if step.action != "clear":
                self.injected[step.kind] += 1

    async def _inject(self, step: Step) -> None:
        if step.action == "faults":
            await self._admin("PUT", "/sim/faults", json={"seed": None, **step.args})
        elif step.action == "clear":
            await self._admin("DELETE", "/sim/faults")
        elif step.action == "restart":
            await self._admin("POST", "/sim/restart", params=step.args)
        elif step.action == "replica":
            task = asyncio.create_task(self._restart_replica(), name="soak-replica-restart")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            await self._admin("POST", f"/sim/{step.action}")

    async def _admin(self, method: str, path: str, **kwargs: Any) -> None:
        for _ in range(100):  # the emulator's admin routes are down while it restarts
            try:
                async with self.http.request(method, self.emulator + path, **kwargs) as r:
                    if r.status >= 300:
                        raise RuntimeError(f"{method} {path}: {r.status} {await r.text()}")
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{method} {path}: the emulator stayed unreachable")

    async def _restart_replica(self) -> None:
        replica = await self.replica_to_restart()
        loop = asyncio.get_running_loop()
        started = loop.time()
        replica.terminate()
        await asyncio.sleep(ENDPOINT_LAG)
        self.balancer.out_of_rotation.add(replica.name)
        code = await replica.wait_exit(SHUTDOWN_WITHIN)
        self.shutdown_seconds.append(loop.time() - started)
        self.replica_exit_codes.append(code)
        if code is None:
            replica.stop()
        await replica.start()
        self.balancer.out_of_rotation.discard(replica.name)

    async def finish(self) -> None:
        """Clear every fault and wait for a replica restart still under way."""
        while self._next < len(SCHEDULE):
            await self.progress(SCHEDULE[self._next].at)
        if self._background:
            await asyncio.gather(*self._background)
