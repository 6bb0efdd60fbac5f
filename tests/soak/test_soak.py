"""The soak at suite size: two replicas and the emulator as processes, random changes through
every door under injected faults and a replica restart; then every replica serves exactly what
the cluster holds. `python -m bench soak` runs the same at 10,000 changes with figures."""

from __future__ import annotations

import pytest

from bench.soak import SoakConfig, print_report, run_soak

CHANGES = 600
"""Enough for every fault of the schedule to meet traffic; the suite's budget allows ~1.5 min."""


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_replicas_serve_exactly_the_cluster_after_a_soak_under_faults() -> None:
    report = await run_soak(SoakConfig(changes=CHANGES, concurrency=8, seed=13))
    print_report(report)

    assert sum(report.changes.values()) == CHANGES
    assert {"api.put", "form.create", "webhook.push", "kubectl.patch"} <= set(report.changes)
    assert {"500s", "429s", "cut watches", "forced 410", "API restart", "replica restart"} <= set(
        report.faults
    ), report.faults
    assert report.faults["API restart"] == 2
    assert report.environments > 0, "the soak ends with environments to compare"
    assert len(report.app_states) >= 2, f"apps in several states compared: {report.app_states}"

    assert report.converged, report.divergences
    assert report.lag_seconds <= 2.0, "each replica caught up within 2 s of the last change"

    calls = report.calls
    assert calls.total("dropped") == 0, calls.dropped
    assert calls.total("ok") > CHANGES // 2, "most changes succeed"
    assert report.shutdown_exit_codes == [0], "the restarted replica exited on its own, cleanly"
    assert report.log_failures == [], "no supervised task or request handler failed"

    for name, memory in report.memory.items():
        if name != report.restarted:
            assert memory.after <= memory.baseline * 1.25 + 20, (name, memory)
