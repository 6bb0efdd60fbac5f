"""The soak: two `kollie serve` replicas and `python -m kubesim` as separate processes, 10,000
random changes through the API, the dashboard's forms, registry webhooks and kubectl-style
edits, while the emulator injects faults and one replica is restarted. Then each replica must
serve exactly what the cluster holds, within 2 s of its last change.

`python -m bench soak` runs it at full size and prints its figures; `tests/soak/` runs a
smaller one in the suite and asserts the same properties.
"""

from __future__ import annotations

import math
import os

from bench.harness import row
from bench.soak.run import SoakConfig, SoakReport, run_soak

__all__ = ["SoakConfig", "SoakReport", "print_report", "run", "run_soak"]


def print_report(report: SoakReport) -> None:
    c = report.config
    calls = report.calls
    row("changes (API, forms, webhooks, kubectl, Flux)", f"{sum(report.changes.values()):,}")
    for kind, n in sorted(report.changes.items()):
        row(f"  {kind}", f"{n:,}")
    row("faults injected", f"{sum(report.faults.values())}")
    for kind, n in sorted(report.faults.items()):
        row(f"  {kind}", str(n))
    rate = sum(report.changes.values()) / report.workload_seconds
    row(
        "workload",
        f"{report.workload_seconds:6.1f} s  ({rate:.0f} changes/s, "
        f"{c.concurrency} concurrent clients)",
    )
    states = ", ".join(f"{state} {n}" for state, n in sorted(report.app_states.items()))
    row("environments / apps at the end", f"{report.environments} / {report.app_states.total()}")
    row("  apps by state", states)
    row("divergences (replica view vs cluster)", str(len(report.divergences)))
    for d in report.divergences[:10]:
        row("  ", d)
    lag = "never" if math.isnan(report.lag_seconds) else f"{report.lag_seconds:.2f} s"
    row("converged after the cluster's last change", lag)
    row("converged after the last change's answer", f"{report.settle_seconds:.2f} s")
    answered = calls.total() - calls.total("dropped")
    row(
        "calls answered / dropped",
        f"{answered:,} / {calls.total('dropped')}  "
        f"(ok {calls.total('ok'):,}, refused {calls.total('refused'):,}, "
        f"503+Retry-After {calls.total('retryable'):,})",
    )
    for d in calls.dropped[:10]:
        row("  dropped", d)
    doors = sorted({door for door, _ in calls.outcomes})
    for door in doors:
        parts = ", ".join(
            f"{o} {calls.outcomes[(door, o)]:,}"
            for o in ("ok", "refused", "retryable", "dropped")
            if calls.outcomes[(door, o)]
        )
        row(f"  {door}", parts)
    for name, m in sorted(report.memory.items()):
        restarted = " (restarted)" if name == report.restarted else ""
        row(
            f"replica {name}{restarted} RSS idle / populated / after",
            f"{m.idle:.0f} / {m.baseline:.0f} / {m.after:.0f} MB",
        )
    for name, objects in sorted(report.cache_objects.items()):
        listed = ", ".join(f"{kind} {n:,}" for kind, n in sorted(objects.items()))
        row(f"replica {name} cache at the end", listed)
    row(
        "replica restart: SIGTERM to exit",
        ", ".join(
            f"{s:.2f} s (exit {code})"
            for s, code in zip(report.shutdown_seconds, report.shutdown_exit_codes, strict=True)
        )
        or "none",
    )
    row("failures in the replicas' logs", str(len(report.log_failures)))
    for line in report.log_failures[:10]:
        row("  ", line)


async def run(*, quick: bool = False) -> None:
    changes = int(os.environ.get("SOAK_CHANGES", "1000" if quick else "10000"))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    print(f"== soak: {changes:,} changes, seed {seed} ==", flush=True)
    report = await run_soak(SoakConfig(changes=changes, seed=seed))
    print_report(report)
