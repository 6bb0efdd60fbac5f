"""`kollie demo` as `make demo` runs it: the real command in its own process, checked through
its API and its emulator the way a visitor would look. Its platform deploys apps through
HelmReleases, and one of its environments fails in a way the diagnosis explains."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import eventually

RELEASES = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases/{name}"
KUSTOMIZATION = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations/{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Demo:
    def __init__(self, url: str, emulator: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.emulator = emulator
        self.http = http

    async def get(self, base: str, path: str) -> tuple[int, Any]:
        async with self.http.get(base + path) as response:
            return response.status, await response.json()

    async def app(self, env: str, name: str) -> dict[str, Any] | None:
        status, body = await self.get(self.url, f"/api/v1/environments/{env}")
        if status != 200:
            return None
        found: dict[str, Any] | None = next((a for a in body["apps"] if a["name"] == name), None)
        return found


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KOLLIE_", "KUBECONFIG"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kollie.cli",
        "demo",
        "--port",
        str(port),
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        "--reconcile-delay",
        "0.2",
        cwd=tmp_path,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    printed: list[str] = []
    emulator = ""
    drain: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(60):
            while not emulator:
                line = (await process.stdout.readline()).decode()
                assert line, "kollie demo ended:\n" + "".join(printed)
                printed.append(line)
                found = re.search(r"emulator:\s+(http://\S+)", line)
                emulator = found.group(1) if found else ""
        # Keep reading its log so the pipe never fills.
        drain = asyncio.create_task(process.stdout.read())
        async with aiohttp.ClientSession() as http:
            yield Demo(f"http://127.0.0.1:{port}", emulator, http)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    rest = (await drain).decode() if drain else ""
    assert code == 0, "".join(printed) + rest


async def test_the_demo_deploys_through_helm_releases_and_explains_its_broken_environment(
    demo: Demo,
) -> None:
    async def search_ready() -> bool:
        app = await demo.app("search-v2", "search")
        return app is not None and app["state"] == "Ready"

    await eventually(search_ready, within=60, message="search-v2/search Ready")
    status, release = await demo.get(demo.emulator, RELEASES.format(ns="search-v2", name="search"))
    assert status == 200, release
    ready = next(c for c in release["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "InstallSucceeded")
    status, kustomization = await demo.get(
        demo.emulator, KUSTOMIZATION.format(name="search-v2-search")
    )
    assert status == 200, kustomization
    entries = [e["id"] for e in kustomization["status"]["inventory"]["entries"]]
    assert "search-v2_search_helm.toolkit.fluxcd.io_HelmRelease" in entries

    async def explained() -> dict[str, Any] | None:
        app = await demo.app("login-fix", "admin")
        found = app["diagnosis"] if app else None
        return found if found and found["cause"]["kind"] == "ImagePolicy" else None

    why = await eventually(explained, within=60, message="login-fix/admin diagnosed")
    assert why["summary"].startswith("CI pushed `fix-login-")
    assert "it has no `-<timestamp>` after the commit" in why["summary"]
    assert [(s["kind"], s["ok"]) for s in why["steps"]] == [
        ("ImageRepository", True),
        ("ImagePolicy", False),
    ]
    assert "flux get image policy login-fix-admin -n kollie" in why["commands"]
