"""The soak's processes: the emulator and the Kollie replicas, each a separate OS process.

Nothing here imports Kollie: the replicas are started as `python -m kollie.cli serve`, exactly
as an operator would run them, and are stopped with signals.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.harness import ROOT, free_port, rss_mb

DEMO_CATALOG = ROOT / "kollie" / "demo" / "catalog.yaml"


async def _wait_http(
    url: str, process: subprocess.Popen[bytes], log: Path, *, within: float, status: int = 200
) -> None:
    """Poll `url` until it answers `status`; fail with the process's log if it dies first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            try:
                async with http.get(url) as r:
                    if r.status == status:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited:\n{_tail(log)}")
            if loop.time() > deadline:
                raise RuntimeError(f"{url} did not answer {status} within {within}s")
            await asyncio.sleep(0.05)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)


async def wait_exit(process: subprocess.Popen[bytes], within: float) -> int | None:
    """The exit code, or None if the process still runs after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while process.poll() is None:
        if loop.time() > deadline:
            return None
        await asyncio.sleep(0.02)
    return process.returncode


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class Emulator:
    """`python -m kubesim`, with the demo's content and simulated Flux, on its own port."""

    workdir: Path
    reconcile_delay: float = 0.3
    flux: bool = True
    """With the demo's Flux sources and simulated controllers; without, Kollie (and the test)
    are the only writers."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def log(self) -> Path:
        return self.workdir / "kubesim.log"

    async def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            "kubesim",
            "--port",
            str(self.port),
            "--kubeconfig",
            str(self.kubeconfig),
            *(
                ["--demo", "--reconcile-delay", str(self.reconcile_delay)]
                if self.flux
                else ["--flux-crds", "--no-flux", "--namespace", "kollie"]
            ),
        ]
        self.process = _spawn(args, self.log)
        await _wait_http(f"{self.url}/healthz", self.process, self.log, within=60)
        while True:  # the kubeconfig is written just after the server starts
            if self.kubeconfig.exists():
                return
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class Replica:
    """One `kollie serve` process; restartable on the same port, as a pod behind a Service."""

    name: str
    workdir: Path
    environ: dict[str, str]
    kubeconfig: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, within: float = 60) -> None:
        log = self.workdir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        args = [
            sys.executable,
            "-m",
            "kollie.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--kubeconfig",
            str(self.kubeconfig),
        ]
        self.process = _spawn(args, log, self.environ)
        await _wait_http(f"{self.url}/readyz", self.process, log, within=within)

    def terminate(self) -> None:
        """SIGTERM, as the kubelet sends when a pod is deleted."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float) -> int | None:
        assert self.process is not None
        code = await wait_exit(self.process, within)
        self.exit_codes.append(code)
        return code

    def stop(self) -> None:
        _stop(self.process)

    def rss_mb(self) -> float:
        assert self.process is not None
        return rss_mb(self.process.pid)

    def log_records(self) -> list[dict[str, object]]:
        """Every JSON log line of every run of this replica (other lines as `{"raw": ...}`)."""
        out: list[dict[str, object]] = []
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = {"raw": line}
                out.append(record if isinstance(record, dict) else {"raw": line})
        return out


def replica_environ(workdir: Path, *, token: str, webhook_secret: str) -> dict[str, str]:
    """The settings both replicas share, as a Deployment's pod template would give them."""
    tokens = workdir / "api-tokens"
    tokens.write_text(f"soak:{token}\n")
    return {
        **os.environ,
        "KOLLIE_CATALOG": str(DEMO_CATALOG),
        "KOLLIE_API_TOKENS_FILE": str(tokens),
        "KOLLIE_WEBHOOK_SECRET": webhook_secret,
        "KOLLIE_TRUST_PROXY_HEADERS": "true",
        "KOLLIE_CSRF_SECRET": "soak-csrf-secret-shared-by-both-replicas",
        "KOLLIE_LOG_FORMAT": "json",
        "KOLLIE_LOG_LEVEL": "info",
    }
