"""How the leader's work ends is never silent, and stopping the campaign is not swallowed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from kollie.kube import KubeClient
from kubesim import SimCluster
from watchers.leader import LeaderElector


async def test_work_that_fails_while_being_stopped_is_logged(
    bare_cluster: SimCluster, tmp_path: Path
) -> None:
    client = await KubeClient.from_config(str(bare_cluster.write_kubeconfig(tmp_path / "kc")))
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    elector = LeaderElector(
        client, "default", "me", lease_duration=2.0, renew_deadline=1.3, retry_period=0.2
    )
    try:
        with capture_logs() as logs:
            campaign = asyncio.create_task(elector.run(work))
            await asyncio.wait_for(started.wait(), 10)
            campaign.cancel()
            with pytest.raises(asyncio.CancelledError):
                await campaign
    finally:
        await client.close()
    ended = [e for e in logs if e["event"] == "leader_work_ended"]
    assert len(ended) == 1 and "cleanup failed" in ended[0]["error"], logs
    assert isinstance(ended[0]["exc_info"], RuntimeError), "logged with its traceback"
