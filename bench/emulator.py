"""Emulator throughput: writes/s and watch events/s through real clients, LIST of 20,000.

The emulator must never be what limits Kollie's benchmarks (targets: >= 2,000 writes/s,
>= 20,000 watch events/s). Write rates are also shown as a ratio to a do-nothing server driven
by the same client in the same run, so a slow or busy machine shows up in both figures.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client, config

from bench.harness import emulator, free_port, gather_limited, median, process, row
from kubesim import PACKAGED_CRDS, ssa

GROUP, VERSION, PLURAL = "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"
CONCURRENCY = 32


def kustomization(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": "bench",
            "labels": {"kollie.io/environment": "bench"},
        },
        "spec": {
            "interval": "5m",
            "path": "./apps/web",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform", "namespace": "flux-system"},
            "postBuild": {
                "substitute": {"environment": "bench", "image_tag": "main-abc1234-1700000000"}
            },
        },
    }


async def _api(kubeconfig: str | None, host: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        configuration.host = host
    configuration.connection_pool_maxsize = CONCURRENCY
    return client.ApiClient(configuration)


async def _writes(api: client.ApiClient, n: int) -> tuple[float, float]:
    custom = client.CustomObjectsApi(api)
    started = time.perf_counter()
    await gather_limited(
        n,
        CONCURRENCY,
        lambda i: custom.create_namespaced_custom_object(
            GROUP, VERSION, "bench", PLURAL, kustomization(f"k{i}")
        ),
    )
    creates = n / (time.perf_counter() - started)
    started = time.perf_counter()
    await gather_limited(
        n,
        CONCURRENCY,
        lambda i: custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "bench",
            PLURAL,
            f"k{i}",
            {"spec": {"interval": "10m"}},
            _content_type="application/merge-patch+json",
        ),
    )
    patches = n / (time.perf_counter() - started)
    return creates, patches


async def _watch_rate(url: str, watchers: int, events: int) -> float:
    """Aggregate events/s delivered to `watchers` concurrent watch streams."""
    ns = f"w{watchers}"
    async with aiohttp.ClientSession() as session:
        await session.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": ns}})
        async with session.get(f"{url}/api/v1/namespaces/{ns}/configmaps?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        received = [0] * watchers
        ready = asyncio.Event()

        async def watch(i: int) -> None:
            async with session.get(
                f"{url}/api/v1/namespaces/{ns}/configmaps",
                params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "120"},
            ) as r:
                if i == watchers - 1:
                    ready.set()
                async for chunk in r.content.iter_any():
                    received[i] += chunk.count(b"\n")
                    if received[i] >= events:
                        return

        tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
        await ready.wait()
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        template = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "e", "namespace": ns},
            "data": {"key": "value" * 10},
        }
        async with session.post(f"{url}/sim/load", json={"object": template, "count": events}) as r:
            assert r.status == 200, await r.text()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=180)
        elapsed = time.perf_counter() - started
    return watchers * events / elapsed


async def _list_rate(api: client.ApiClient, url: str, n: int) -> tuple[float, int]:
    async with aiohttp.ClientSession() as session:
        await session.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": "big"}})
        obj = kustomization("l")
        obj["metadata"]["namespace"] = "big"
        async with session.post(f"{url}/sim/load", json={"object": obj, "count": n}) as r:
            assert r.status == 200, await r.text()
    custom = client.CustomObjectsApi(api)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        result = await custom.list_namespaced_custom_object(GROUP, VERSION, "big", PLURAL)
        times.append(time.perf_counter() - started)
    return median(times), len(result["items"])


def _apply_rate(n: int) -> tuple[float, float]:
    """In-process server-side applies/s of one Kustomization with a new image tag each time,
    and, as a same-run reference for the machine's speed, deep copies of the same inputs."""
    crd = yaml.safe_load(
        (PACKAGED_CRDS / "kustomize.toolkit.fluxcd.io_kustomizations.yaml").read_text()
    )
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    info = ssa.type_info_from_schema(version["schema"]["openAPIV3Schema"])

    def tagged(i: int) -> dict[str, Any]:
        obj = kustomization("a")
        obj["spec"]["postBuild"]["substitute"]["image_tag"] = f"main-abc1234-{i}"
        return obj

    def apply(live: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, Any]:
        return ssa.apply(
            live,
            config,
            manager="kollie",
            force=False,
            type_info=info,
            api_version=f"{GROUP}/{VERSION}",
            now="2026-01-01T00:00:00Z",
        )

    live = apply(None, tagged(0))
    started = time.perf_counter()
    for i in range(n):
        live = apply(live, tagged(i))
    applies = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(n):
        copy.deepcopy((live, tagged(i)))
    copies = n / (time.perf_counter() - started)
    return applies, copies


def server_url(kubeconfig: str) -> str:
    return str(yaml.safe_load(Path(kubeconfig).read_bytes())["clusters"][0]["cluster"]["server"])


async def run(*, quick: bool = False) -> None:
    n_writes = 1000 if quick else 4000
    n_events = 5000 if quick else 20000
    n_list = 2000 if quick else 20000
    print("== emulator (kubesim) ==", flush=True)
    applies, copies = _apply_rate(n_writes)
    row(
        f"server-side applies/s in process ({n_writes} new tags)",
        f"{applies:8.0f}   (reference: deep copies of the inputs {copies:.0f}/s)",
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        with process(
            [sys.executable, "-m", "bench.baseline_server", str(port)],
            ready_url=f"http://127.0.0.1:{port}/",
            workdir=workdir,
        ):
            api = await _api(None, host=f"http://127.0.0.1:{port}")
            async with api:
                base_creates, base_patches = await _writes(api, n_writes)
        with emulator(workdir, "--flux-crds", "--no-flux", "--namespace", "bench") as kubeconfig:
            url = server_url(kubeconfig)
            api = await _api(kubeconfig)
            async with api:
                creates, patches = await _writes(api, n_writes)
                row(
                    f"creates/s via kubernetes-asyncio ({n_writes}, {CONCURRENCY} in flight)",
                    f"{creates:8.0f}   (do-nothing server: {base_creates:.0f}/s, "
                    f"ratio {creates / base_creates:.2f})",
                )
                row(
                    "merge patches/s via kubernetes-asyncio",
                    f"{patches:8.0f}   (do-nothing server: {base_patches:.0f}/s, "
                    f"ratio {patches / base_patches:.2f})",
                )
                for watchers in (1, 10):
                    rate = await _watch_rate(url, watchers, n_events)
                    row(
                        f"watch events/s delivered to {watchers} watcher(s) ({n_events} writes)",
                        f"{rate:8.0f}",
                    )
                seconds, count = await _list_rate(api, url, n_list)
                row(
                    f"LIST {count} Kustomizations via kubernetes-asyncio (median of 3)",
                    f"{seconds * 1000:8.0f} ms",
                )
