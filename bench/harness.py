"""Processes and timing shared by the benchmarks."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(
    args: list[str],
    *,
    ready_url: str,
    workdir: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends; wait until `ready_url` answers."""
    log = workdir / f"{Path(args[2] if len(args) > 2 else args[0]).name}-{os.getpid()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args} did not start:\n{log.read_text()}") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def emulator(workdir: Path, *extra: str) -> Iterator[str]:
    port = free_port()
    kubeconfig = workdir / "kubeconfig"
    args = [
        sys.executable,
        "-m",
        "kubesim",
        "--port",
        str(port),
        "--kubeconfig",
        str(kubeconfig),
        *extra,
    ]
    with process(args, ready_url=f"http://127.0.0.1:{port}/healthz", workdir=workdir):
        yield str(kubeconfig)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def gather_limited(n: int, concurrency: int, make: object) -> None:
    """Run `make(i)` for i in range(n), at most `concurrency` at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await make(i)  # type: ignore[operator]

    await asyncio.gather(*(one(i) for i in range(n)))


def row(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)
