"""An acknowledged push is never lost: replicas stopped (SIGTERM) or killed (SIGKILL) in the
middle of a flood of deliveries, with the emulator and `kollie serve` as separate processes.
`python -m bench pushfaults` runs the same with figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pushfaults import run_rounds


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_every_push_answered_2xx_has_its_effect_across_sigterm_and_kill(
    tmp_path: Path,
) -> None:
    term, kill = await run_rounds(tmp_path, count=120, concurrency=16)
    for r in (term, kill):
        assert r.sent == 120
        assert r.lost == [], f"{r.signal}: acknowledged without effect: {r.lost}"
        assert r.rescan_after_last_ack, f"{r.signal}: a rescan requested after the last ack"
        assert r.converged, f"{r.signal}: redelivered pushes all acted on"
    assert term.exit_code == 0, "SIGTERM: the replica answered what it had and exited cleanly"
    assert term.acknowledged, "SIGTERM: deliveries in flight were finished, not dropped"
    assert kill.exit_code == -9 and len(kill.acknowledged) >= 30
    assert kill.unanswered + kill.refused == 120 - len(kill.acknowledged)
