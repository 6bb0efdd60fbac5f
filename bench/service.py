"""Kollie at 1,000 environments x 5 apps (11,000 objects): cold start, API latency, create latency.

Baselines measured in the same run: a raw paged LIST of the same objects through
kubernetes-asyncio (the floor of any cold start), an idle Kollie's RSS, and /healthz latency
(the floor of any request).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config

from bench.emulator import server_url
from bench.harness import emulator, free_port, percentile, process, row, rss_mb
from kollie.cli import DEMO_CATALOG

APPS = ("web", "api", "worker", "payments", "search")
TOKEN = "bench-token-0123456789"


def _record(i: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"env-{i}",
            "namespace": "kollie",
            "labels": {
                "app.kubernetes.io/managed-by": "kollie",
                "kollie.io/environment": f"env-{i}",
            },
            "annotations": {
                "kollie.io/owner": "bench@example.com",
                "kollie.io/created-at": "2026-01-01T00:00:00Z",
            },
        },
        "data": {
            "environment.json": '{"uptime":{"since":"2026-01-01T00:00:00Z",'
            '"until":"2026-01-01T19:00:00Z"}}'
        },
    }


def _app_objects(app: str) -> list[dict[str, Any]]:
    labels = {
        "app.kubernetes.io/managed-by": "kollie",
        "kollie.io/environment": "env-{i}",
        "kollie.io/app": app,
    }
    meta = {
        "name": f"env-{{i}}-{app}",
        "namespace": "kollie",
        "labels": labels,
        "annotations": {"kollie.io/image-tag-prefix": "main"},
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
                "postBuild": {
                    "substitute": {"environment": "env-{i}", "image_tag": "main-abc1234-1"}
                },
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


async def _load(url: str, environments: int) -> None:
    async with aiohttp.ClientSession() as s:
        for template in [_record("{i}")] + [o for a in APPS for o in _app_objects(a)]:
            async with s.post(
                f"{url}/sim/load", json={"object": template, "count": environments}
            ) as r:
                assert r.status == 200, await r.text()


async def _raw_list(kubeconfig: str) -> float:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        started = time.perf_counter()
        await core.list_namespaced_config_map(
            "kollie", label_selector="app.kubernetes.io/managed-by=kollie", _preload_content=False
        )
        for group, plural in (
            ("kustomize.toolkit.fluxcd.io", "kustomizations"),
            ("image.toolkit.fluxcd.io", "imagepolicies"),
        ):
            await custom.list_namespaced_custom_object(group, "v1", "kollie", plural)
        return time.perf_counter() - started


def _kollie(kubeconfig: str, port: int, workdir: Path) -> Any:
    tokens = workdir / "tokens"
    tokens.write_text(f"bench:{TOKEN}\n")
    env = {
        **os.environ,
        "KOLLIE_CATALOG": str(DEMO_CATALOG),
        "KOLLIE_API_TOKENS_FILE": str(tokens),
        "KOLLIE_LOG_LEVEL": "warning",
        "KOLLIE_TRUST_PROXY_HEADERS": "true",
    }
    return process(
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
    )


async def _wait_ready(port: int) -> None:
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)


async def _latencies(
    url: str,
    n: int,
    method: str = "GET",
    body_of: Any = None,
    headers: dict[str, str] | None = None,
) -> list[float]:
    out = []
    headers = headers or {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as s:
        for i in range(n):
            started = time.perf_counter()
            async with s.request(
                method, url.format(i=i), headers=headers, json=body_of(i) if body_of else None
            ) as r:
                await r.read()
                assert r.status < 300, (r.status, await r.text())
            out.append(time.perf_counter() - started)
    return out


async def run(*, quick: bool = False) -> None:
    environments = 200 if quick else 1000
    print(
        f"== service: {environments} environments x {len(APPS)} apps "
        f"({environments * 11} objects) ==",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with emulator(
            workdir,
            "--flux-crds",
            "--no-flux",
            "--namespace",
            "kollie",
            "--namespace",
            "flux-system",
        ) as kc:
            url = server_url(kc)
            port = free_port()
            with _kollie(kc, port, workdir) as idle:
                await _wait_ready(port)
                idle_rss = rss_mb(idle.pid)
            await _load(url, environments)
            raw = await _raw_list(kc)
            port = free_port()
            started = time.perf_counter()
            with _kollie(kc, port, workdir) as proc:
                await _wait_ready(port)
                cold = time.perf_counter() - started
                await asyncio.sleep(1)
                rss = rss_mb(proc.pid)
                base = f"http://127.0.0.1:{port}"
                health = await _latencies(base + "/healthz", 50)
                listing = await _latencies(base + "/api/v1/environments", 20)
                page = await _latencies(
                    base + "/", 20, headers={"X-Auth-Request-Email": "bench@example.com"}
                )
                creates = await _latencies(
                    base + "/api/v1/environments/new-{i}",
                    20 if not quick else 5,
                    "PUT",
                    lambda i: {"apps": {"web": {}, "api": {}, "worker": {}}},
                )
        row(
            "cold start to /readyz (process start, list, cache)",
            f"{cold:6.2f} s   (raw LIST of the same objects: {raw:.2f} s, ratio {cold / raw:.1f})",
        )
        row(
            "RSS after sync",
            f"{rss:6.0f} MB  (idle Kollie: {idle_rss:.0f} MB, "
            f"+{rss - idle_rss:.0f} MB for the cache)",
        )
        row(
            "GET /api/v1/environments p50 / p99",
            f"{percentile(listing, 50) * 1000:6.1f} / {percentile(listing, 99) * 1000:.1f} ms  "
            f"(/healthz p50 {percentile(health, 50) * 1000:.1f} ms)",
        )
        row(
            "render the dashboard / (all environments) p50 / p99",
            f"{percentile(page, 50) * 1000:6.1f} / {percentile(page, 99) * 1000:.1f} ms",
        )
        row(
            "PUT 3-app environment until its objects are applied and cached, p50 / p99",
            f"{percentile(creates, 50) * 1000:6.1f} / {percentile(creates, 99) * 1000:.1f} ms",
        )
