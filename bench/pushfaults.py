"""No acknowledged push is lost: a flood of registry deliveries to a replica that is stopped
(SIGTERM) or killed (SIGKILL) in the middle of it, with the emulator and two `kollie serve`
replicas as separate processes.

Each delivery announces a push of a new branch (`feature-<round>-<i>`), which auto-creates that
branch's environment. Afterwards every delivery answered 2xx must have its effect in the
cluster: the environment, with the pushed app on the branch, and a rescan requested after it
was sent. Deliveries not answered 2xx are then delivered again to the other replica, as a
registry retrying would, until every push has its environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp

from bench.harness import row
from bench.soak.processes import Emulator, Replica, replica_environ

SECRET = "pushfaults-webhook-secret"
IMAGE = "registry.example.com/acme/web"
HOOK = "/webhooks/registry/generic"
KOLLIE_PATH = "/api/v1/namespaces/kollie"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations"
IMAGE_REPOSITORY = "/apis/image.toolkit.fluxcd.io/v1/namespaces/flux-system/imagerepositories/web"


@dataclass
class Round:
    """One flood across one stop of the receiving replica."""

    name: str
    signal: str
    sent: int = 0
    acknowledged: dict[str, float] = field(default_factory=dict)
    """Branch → when its delivery was sent, for the deliveries answered 2xx."""
    refused: int = 0
    """Answered, but not 2xx (503 while stopping): the sender knows to deliver again."""
    unanswered: int = 0
    """Connection refused or reset: the sender knows to deliver again."""
    lost: list[str] = field(default_factory=list)
    """Acknowledged branches whose effect is not in the cluster (must stay empty)."""
    rescan_after_last_ack: bool = False
    redelivered: int = 0
    converged: bool = False
    """Every branch has its environment after the redeliveries."""
    exit_code: int | None = None


def _delivery(branch: str, i: int) -> tuple[bytes, dict[str, str]]:
    tag = f"{branch}-{i:07x}-{int(time.time())}"
    raw = json.dumps({"repository": IMAGE, "tag": tag}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Signature": signature}


async def _send(http: aiohttp.ClientSession, url: str, raw: bytes, headers: dict[str, str]) -> int:
    """The answer's status, or 0 when the connection was refused or cut."""
    try:
        async with http.post(url + HOOK, data=raw, headers=headers) as r:
            await r.read()
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def _effects(http: aiohttp.ClientSession, api: str) -> set[str]:
    """Branches whose environment has the pushed app (web) on the branch, in the cluster."""
    async with http.get(api + KUSTOMIZATIONS) as r:
        items = (await r.json())["items"]
    return {
        k["metadata"]["annotations"].get("kollie.io/image-tag-prefix", "")
        for k in items
        if k["metadata"]["name"].endswith("-web")
        and k["metadata"]["annotations"].get("kollie.io/image-tag-prefix", "")
        == k["metadata"]["name"].removesuffix("-web")
    }


async def _requested_at(http: aiohttp.ClientSession, api: str) -> float:
    async with http.get(api + IMAGE_REPOSITORY) as r:
        annotations = (await r.json())["metadata"].get("annotations") or {}
    stamp = annotations.get("reconcile.fluxcd.io/requestedAt")
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


async def flood_across_stop(
    result: Round,
    target: Replica,
    survivor: Replica,
    api: str,
    *,
    count: int,
    concurrency: int,
    stop_after: float = 0.0,
    stop_after_acks: int = 0,
) -> Round:
    """Flood `target`, signal it `stop_after` seconds in (or once `stop_after_acks` deliveries
    were answered 2xx), then check every acknowledged push and redeliver the rest."""
    branches = [f"feature-{result.name}-{i}" for i in range(count)]
    deliveries = {b: _delivery(b, i) for i, b in enumerate(branches)}
    limit = asyncio.Semaphore(concurrency)
    enough = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def one(branch: str) -> None:
            async with limit:
                sent = time.time()
                status = await _send(http, target.url, *deliveries[branch])
            result.sent += 1
            if 200 <= status < 300:
                result.acknowledged[branch] = sent
                if len(result.acknowledged) >= stop_after_acks:
                    enough.set()
            elif status:
                result.refused += 1
            else:
                result.unanswered += 1

        async def stop() -> None:
            await asyncio.sleep(stop_after)
            if stop_after_acks:
                await enough.wait()
            assert target.process is not None
            target.process.send_signal(getattr(signal, result.signal))

        await asyncio.gather(stop(), *(one(b) for b in branches))
        result.exit_code = await target.wait_exit(30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        done = await _effects(http, api)
        result.lost = sorted(b for b in result.acknowledged if b not in done)
        if result.acknowledged:
            last = max(result.acknowledged.values())
            result.rescan_after_last_ack = await _requested_at(http, api) >= last - 1e-3

        async def redeliver(branch: str) -> None:
            for _ in range(20):  # a registry retrying, against the replica still serving
                async with limit:
                    result.redelivered += 1
                    status = await _send(http, survivor.url, *deliveries[branch])
                if 200 <= status < 300:
                    return
                await asyncio.sleep(0.5)

        await asyncio.gather(*(redeliver(b) for b in branches if b not in result.acknowledged))
        result.converged = set(branches) <= await _effects(http, api)
    return result


async def run_rounds(workdir: Path, *, count: int = 200, concurrency: int = 16) -> list[Round]:
    """A SIGTERM round and a SIGKILL round, each against a freshly started replica."""
    emulator = Emulator(workdir, reconcile_delay=0.0)
    await emulator.start()
    environ = replica_environ(workdir, token="pushfaults-token-0123456789", webhook_secret=SECRET)
    environ["KOLLIE_LOG_LEVEL"] = "warning"
    survivor = Replica("b", workdir, environ, emulator.kubeconfig)
    rounds = []
    try:
        await survivor.start()
        # SIGTERM 50 ms into the flood (the measurement); SIGKILL once a quarter of the
        # deliveries were acknowledged, with others in flight.
        stops = {"term": {"stop_after": 0.05}, "kill": {"stop_after_acks": count // 4}}
        for name, sig in (("term", "SIGTERM"), ("kill", "SIGKILL")):
            target = Replica(f"a-{name}", workdir, environ, emulator.kubeconfig)
            await target.start()
            try:
                rounds.append(
                    await flood_across_stop(
                        Round(name, sig),
                        target,
                        survivor,
                        emulator.url,
                        count=count,
                        concurrency=concurrency,
                        **stops[name],  # type: ignore[arg-type]
                    )
                )
            finally:
                target.stop()
    finally:
        survivor.stop()
        emulator.stop()
    return rounds


async def run(*, quick: bool = False) -> None:
    print("== acknowledged pushes across a stopped or killed replica ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rounds = await run_rounds(Path(tmp), count=100 if quick else 200)
    for r in rounds:
        when = "50 ms into" if r.signal == "SIGTERM" else "a quarter through"
        row(
            f"{r.signal} {when} {r.sent} deliveries: answered 2xx / acted on",
            f"{len(r.acknowledged):7d} / {len(r.acknowledged) - len(r.lost)}"
            f"   (lost {len(r.lost)}; told to retry {r.refused}, cut {r.unanswered};"
            f" exit {r.exit_code})",
        )
        row(
            "  redelivered to the other replica -> every push acted on",
            f"{r.redelivered:7d}   {'yes' if r.converged else 'NO'}",
        )
