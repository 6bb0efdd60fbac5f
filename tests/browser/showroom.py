"""A dashboard with something of everything on it: the viewer's environments, another
user's, one with a failing app, one asleep, one on office hours, a long name and long branch
prefixes; made through Kollie's own operations as the people named would make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kollie import uptime
from kollie.refusals import Actor
from tests.browser.conftest import VIEWER
from tests.helpers import eventually
from tests.service.conftest import Kollie

FAILING = "payments-outage"
FAILURE = (
    "Health check failed after 30s: timeout waiting for: [Deployment/payments-outage/payments "
    "status: 'InProgress']"
)
LONG_NAME = "a-rather-long-environment-name-for-tests"  # 40 characters, the most there can be


async def build(kollie: Kollie) -> None:
    ops = kollie.services.operations
    me, sam = Actor(VIEWER, "ui"), Actor("samantha.long-surname@example.com", "ui")
    kollie.cluster.flux.reconcile_delay = 0.1
    await ops.put_environment(
        "checkout-redesign",
        apps={"web": "feature-checkout", "api": "feature-checkout", "worker": None},
        bundle=None,
        actor=me,
    )
    await ops.put_environment(
        "search-v2", apps={"search": "feature-search-v2"}, bundle="everything", actor=me
    )
    await ops.put_environment(FAILING, apps={"api": None, "payments": None}, bundle=None, actor=sam)
    now = datetime.now(UTC).replace(microsecond=0)
    asleep = uptime.Uptime("until", since=now - timedelta(hours=9), until=now - timedelta(hours=2))
    await ops.put_environment(
        "nightly-qa", apps={"api": None, "worker": None}, bundle=None, actor=sam, window=asleep
    )
    office = uptime.office_hours("Mon-Fri 07:00-19:00 Europe/London")
    await ops.put_environment(
        "office-demo", apps={"admin": None}, bundle=None, actor=sam, window=office
    )
    await ops.set_keep("office-demo", True, actor=sam)
    await ops.put_environment(
        LONG_NAME,
        apps={"search": "feature-search-v2", "web": "feature-checkout"},
        bundle=None,
        actor=sam,
    )
    kollie.cluster.flux.fail("kollie", f"{FAILING}-payments", FAILURE)

    async def settled() -> bool:
        envs = kollie.services.renderer.all()
        states = {(e["name"], a["name"]): a["state"] for e in envs for a in e["apps"]}
        return len(envs) == 6 and all(
            state == ("Failed" if key == (FAILING, "payments") else "Ready")
            for key, state in states.items()
        )

    await eventually(settled, within=30, message="every app Ready but the failing one")
