"""Kollie itself, served over real HTTP, against an emulated cluster with instant simulated Flux."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from kollie.cli import DEMO_CATALOG
from kollie.composition import RUNTIME, create_app
from kollie.config import Settings
from kubesim import SimCluster
from kubesim.demo import seed_demo
from watchers.runtime import Background, Timing
from web.state import Services
from web.webhooks import Receiver

TOKEN = "ci-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Kollie:
    server: TestServer
    http: aiohttp.ClientSession
    cluster: SimCluster

    @property
    def services(self) -> Services:
        return self.server.app[RUNTIME].services

    @property
    def background(self) -> Background:
        return self.server.app[RUNTIME].background

    @property
    def webhooks(self) -> Receiver:
        return self.server.app[RUNTIME].webhooks

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, self.url(path), json=json, data=data, headers={**AUTH, **(headers or {})}
        ) as r:
            try:
                body = await r.json(content_type=None)
            except ValueError:
                body = await r.text()
            return r.status, body


StartKollie = Callable[..., Awaitable[Kollie]]


@pytest.fixture
async def start_kollie(cluster: SimCluster, tmp_path: Path) -> AsyncIterator[StartKollie]:
    seed_demo(cluster)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# CI\nci:{TOKEN}\n")
    started: list[tuple[TestServer, aiohttp.ClientSession]] = []

    async def start(
        *,
        clock: Callable[[], datetime] | None = None,
        settle: float = 0.0,
        expiry_interval: float = 30.0,
        **env: str,
    ) -> Kollie:
        environ = {
            "KOLLIE_CATALOG": str(DEMO_CATALOG),
            "KOLLIE_API_TOKENS_FILE": str(tokens),
            **env,
        }
        settings = Settings.from_env(environ)
        extra: dict[str, Any] = {"clock": clock} if clock else {}
        app = create_app(
            settings,
            kubeconfig=str(kubeconfig),
            identity=f"kollie-{len(started)}",
            timing=Timing(
                watch_timeout=30,
                lease_duration=2.0,
                expiry_settle=settle,
                expiry_interval=expiry_interval,
            ),
            **extra,
        )
        server = TestServer(app)
        await server.start_server()
        http = aiohttp.ClientSession()
        started.append((server, http))
        assert await app[RUNTIME].background.wait_synced(10)
        return Kollie(server, http, cluster)

    yield start
    for server, http in reversed(started):
        await http.close()
        await server.close()


@pytest.fixture
async def kollie(start_kollie: StartKollie) -> Kollie:
    return await start_kollie()
