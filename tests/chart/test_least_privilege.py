"""The chart's RBAC is exactly what Kollie needs, proven against an RBAC-enforcing API server.

The emulator runs with RBAC on. The chart's rendered ServiceAccount, Roles and bindings are
applied to it; Kollie runs with a token of that ServiceAccount (TokenRequest, as a pod's projected
token) through a full cycle: readiness, leader election, create, image follow, webhook rescan,
extend, follow a Flux branch, app URLs, history, remove an app, delete. With all rules it passes;
with any one verb of any one rule taken away, it fails.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubesim import SimCluster
from kubesim.demo import seed_demo
from tests.chart.conftest import render_chart
from tests.chart.cycle import (
    ALL_STEPS,
    DEFAULT_DIAGNOSIS,
    DEMO_CATALOG,
    Diagnosis,
    Setup,
    full_cycle,
    kollie_as_service_account,
    plain_settings,
)
from tests.conftest import flux_crd_files
from tests.helpers import eventually

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}

Grant = tuple[str, str, int, str]
"""(kind, namespace/name, rule index, verb): one verb of one rule of one role."""


def chart_rbac(
    chart: Any, diagnosis: Diagnosis = DEFAULT_DIAGNOSIS, **rbac_values: bool
) -> list[dict[str, Any]]:
    values = {"catalog": DEMO_CATALOG, "rbac": rbac_values, "diagnosis": diagnosis.values()}
    docs, _ = render_chart(chart, values)
    return [d for d in docs if d["kind"] in RBAC_KINDS]


def grants(rbac: list[dict[str, Any]]) -> list[Grant]:
    return [
        (d["kind"], f"{d['metadata'].get('namespace', '')}/{d['metadata']['name']}", i, verb)
        for d in rbac
        if d["kind"] in {"Role", "ClusterRole"}
        for i, rule in enumerate(d["rules"])
        for verb in rule["verbs"]
    ]


def without(rbac: list[dict[str, Any]], grant: Grant) -> list[dict[str, Any]]:
    kind, where, index, verb = grant
    out = copy.deepcopy(rbac)
    for doc in out:
        if (
            doc["kind"] == kind
            and f"{doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}" == where
        ):
            rule = doc["rules"][index]
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
            if not rule["verbs"]:
                del doc["rules"][index]
    return out


def _refused(cluster: SimCluster, rbac: list[dict[str, Any]], grant: Grant) -> bool:
    """Whether the API server refused Kollie a request that the removed verb would have allowed."""
    kind, where, index, verb = grant
    namespace = where.split("/")[0]
    rule = next(
        d
        for d in rbac
        if d["kind"] == kind
        and f"{d['metadata'].get('namespace', '')}/{d['metadata']['name']}" == where
    )["rules"][index]
    resources = set(rule["resources"])
    authorizer = cluster.server.authorizer
    assert authorizer is not None
    return any(
        d.verb == verb
        and (d.resource in resources or f"{d.resource}/{d.subresource}" in resources)
        and (kind == "ClusterRole" or d.namespace == namespace)
        and d.user.name.endswith(":kollie")
        for d in authorizer.denied
    )


@asynccontextmanager
async def kollie_with(
    rbac: list[dict[str, Any]],
    tmp_path: Path,
    *,
    plugins: tuple[str, ...] = (),
    diagnosis: Diagnosis = DEFAULT_DIAGNOSIS,
) -> AsyncIterator[Setup]:
    """An RBAC-enforcing cluster with the demo's Flux objects and `rbac` applied, Kollie running
    with the ServiceAccount's token."""
    async with SimCluster(
        crd_files=flux_crd_files(),
        reconcile_delay=0.0,
        bookmark_interval=0.2,
        rbac=True,
        admission_plugins=plugins,
    ) as cluster:
        seed_demo(cluster)
        for doc in rbac:
            cluster.apply_object(doc)
        settings = plain_settings(tmp_path, diagnosis)
        async with kollie_as_service_account(cluster, settings, tmp_path) as setup:
            yield setup


@pytest.mark.parametrize(
    "diagnosis",
    [DEFAULT_DIAGNOSIS, Diagnosis(helm_releases=True), Diagnosis(catalog_sources=False)],
    ids=["default", "helm-releases", "no-catalog-sources"],
)
async def test_kollie_runs_a_full_cycle_with_the_charts_rbac(
    chart: Any, tmp_path: Path, diagnosis: Diagnosis
) -> None:
    done: list[str] = []
    async with kollie_with(chart_rbac(chart, diagnosis), tmp_path, diagnosis=diagnosis) as setup:
        await full_cycle(setup, within=10, done=done, diagnosis=diagnosis)
    assert done == ALL_STEPS


async def test_reading_helm_releases_needs_each_verb_the_chart_adds_for_it(
    chart: Any, tmp_path: Path
) -> None:
    on = Diagnosis(helm_releases=True)
    rbac = chart_rbac(chart, on)
    added = [g for g in grants(rbac) if g not in grants(chart_rbac(chart))]
    assert [(kind, verb) for kind, _, _, verb in added] == [
        ("ClusterRole", "list"),
        ("ClusterRole", "watch"),
    ]
    for grant in added:
        done: list[str] = []
        directory = tmp_path / grant[3]
        directory.mkdir()
        with pytest.raises(AssertionError):
            async with kollie_with(without(rbac, grant), directory, diagnosis=on) as setup:
                await full_cycle(setup, within=4, done=done, diagnosis=on)
        assert done == [], f"without {grant}, Kollie is never ready (it watches what it needs)"


async def test_without_any_one_granted_verb_the_cycle_fails(chart: Any, tmp_path: Path) -> None:
    rbac = chart_rbac(chart)
    every = grants(rbac)
    assert len(every) >= 25, every
    outcomes: dict[Grant, str] = {}
    limit = asyncio.Semaphore(6)

    async def attempt(index: int, grant: Grant, within: float = 4) -> None:
        async with limit:
            done: list[str] = []
            cluster: list[SimCluster] = []
            directory = tmp_path / f"v{index}-{within:g}"
            directory.mkdir()
            try:
                async with kollie_with(without(rbac, grant), directory) as setup:
                    cluster.append(setup.cluster)
                    await full_cycle(setup, within=within, done=done)
            except (AssertionError, aiohttp.ClientError) as e:
                refused = _refused(cluster[0], rbac, grant) if cluster else False
                outcomes[grant] = (
                    f"failed after {done or 'nothing'}"
                    f"{'' if refused else ' WITHOUT A 403 FOR IT'}: "
                    f"{str(e).splitlines()[0][:100]}"
                )
                return
            outcomes[grant] = "PASSED"

    await asyncio.gather(*(attempt(i, g) for i, g in enumerate(every)))
    # A loaded machine can time a step out before Kollie even tried the refused call: those run
    # again, alone, with more time, so the verdict is about permissions and not about speed.
    slow = [(i, g) for i, g in enumerate(every) if "WITHOUT A 403" in outcomes[g]]
    for i, g in slow:
        await attempt(i, g, within=15)
    report = "\n".join(f"{g}: {outcome}" for g, outcome in outcomes.items())
    print(report)
    unneeded = [g for g, outcome in outcomes.items() if outcome == "PASSED"]
    assert not unneeded, f"granted but not needed:\n{report}"
    unexplained = [g for g, outcome in outcomes.items() if "WITHOUT A 403" in outcome]
    assert not unexplained, (
        f"failures the API server did not refuse for the removed verb:\n{report}"
    )


async def test_clusters_enforcing_owner_reference_permissions_need_the_charts_option(
    chart: Any, tmp_path: Path
) -> None:
    """OpenShift-like clusters: blockOwnerDeletion needs update on configmaps/finalizers, which the
    chart grants with rbac.ownerReferencesPermissionEnforcement."""
    plugins = ("OwnerReferencesPermissionEnforcement",)
    done: list[str] = []
    (tmp_path / "default").mkdir()
    with pytest.raises(AssertionError, match="cannot set blockOwnerDeletion"):
        async with kollie_with(chart_rbac(chart), tmp_path / "default", plugins=plugins) as setup:
            await full_cycle(setup, within=4, done=done)
    assert done == ["ready", "leader"]
    done = []
    (tmp_path / "option").mkdir()
    rbac = chart_rbac(chart, ownerReferencesPermissionEnforcement=True)
    async with kollie_with(rbac, tmp_path / "option", plugins=plugins) as setup:
        await full_cycle(setup, within=10, done=done)
    assert done == ALL_STEPS


async def test_a_refused_write_says_what_was_refused(chart: Any, tmp_path: Path) -> None:
    """The patch handler's 403 for an apply that would create names no verb; Kollie adds the
    request."""
    rbac = without(chart_rbac(chart), ("Role", "kollie/kollie", 0, "create"))
    async with kollie_with(rbac, tmp_path) as setup:
        await eventually_ready(setup)
        status, body = await setup.call(
            "PUT", "/api/v1/environments/pr-9", json={"apps": {"api": {}}}
        )
    assert status == 503 and body["error"] == "cluster_forbidden"
    assert body["message"] == (
        'Kollie is not allowed to do this in the cluster: configmaps "pr-9" is forbidden '
        "(PATCH /api/v1/namespaces/kollie/configmaps/pr-9)"
    )


async def eventually_ready(setup: Setup) -> None:
    async def ready() -> bool:
        async with setup.http.get(setup.base + "/readyz") as r:
            return r.status == 200

    await eventually(ready, within=10, message="ready")
