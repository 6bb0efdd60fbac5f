"""Suite-wide fixtures: an emulated cluster in-process, or the standalone emulator process."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubesim import PACKAGED_CRDS, SimCluster
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
SHARED_CRDS = ROOT.parent / "shared" / "flux-crds"


def flux_crd_files() -> list[Path]:
    return sorted(PACKAGED_CRDS.glob("*.yaml"))


@pytest.fixture
async def cluster() -> AsyncIterator[SimCluster]:
    """An emulated cluster with the Flux CRDs and instant simulated Flux, in this event loop."""
    async with SimCluster(
        crd_files=flux_crd_files(), reconcile_delay=0.0, bookmark_interval=0.2
    ) as c:
        yield c


@pytest.fixture
async def bare_cluster() -> AsyncIterator[SimCluster]:
    """An emulated cluster with the Flux CRDs but no simulated controllers writing to it."""
    async with SimCluster(crd_files=flux_crd_files(), flux=False, bookmark_interval=0.2) as c:
        yield c


@dataclass(frozen=True)
class Standalone:
    """`python -m kubesim` running in its own process."""

    url: str
    kubeconfig: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """One standalone emulator (no simulated Flux, Flux CRDs installed) for the client-fidelity
    tests."""
    port = free_port()
    kubeconfig = tmp_path_factory.mktemp("kubesim") / "kubeconfig"
    log = tmp_path_factory.mktemp("kubesim-log") / "kubesim.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubesim",
                "--port",
                str(port),
                "--kubeconfig",
                str(kubeconfig),
                "--flux-crds",
                "--no-flux",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200 and kubeconfig.exists():
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"kubesim did not start:\n{log.read_text()}")
        time.sleep(0.05)
    yield Standalone(url, kubeconfig, process)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, log.read_text()
