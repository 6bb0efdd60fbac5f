"""A registry push moves what environments already run; it adds an app to an environment only
where a catalog rule asks for it, never on a default prefix, and never past owner-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kollie.cli import DEMO_CATALOG
from tests.service.conftest import Kollie, StartKollie
from tests.service.webhook_fixtures import SECRET, deliver, signed

REGISTRY = "registry.example.com/acme"


async def _push(kollie: Kollie, app: str, tag: str) -> dict[str, Any]:
    kollie.cluster.flux.registry.push(f"{REGISTRY}/{app}", tag)
    raw, headers = signed("generic", {"repository": f"{REGISTRY}/{app}", "tag": tag})
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 202, answer
    (push,) = answer["pushes"]
    return dict(push)


async def _apps(kollie: Kollie, env: str) -> dict[str, str]:
    status, body = await kollie.call("GET", f"/api/v1/environments/{env}")
    assert status == 200, body
    return {a["name"]: a["prefix"] for a in body["apps"]}


async def _create(kollie: Kollie, env: str, apps: dict[str, str | None]) -> None:
    body = {"apps": {name: ({"prefix": p} if p else {}) for name, p in apps.items()}}
    status, answer = await kollie.call("PUT", f"/api/v1/environments/{env}", json=body)
    assert status == 201, answer


def _catalog(tmp_path: Path, add_pushed_apps: bool) -> str:
    catalog = yaml.safe_load(DEMO_CATALOG.read_text())
    for rule in catalog["autoCreate"]:
        rule["addPushedApps"] = add_pushed_apps
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return str(path)


async def test_a_push_on_the_default_prefix_adds_its_app_nowhere(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET, KOLLIE_OWNER_ONLY="true")
    await _create(kollie, "alice-demo", {"web": None, "api": None})
    await _create(kollie, "bob-demo", {"api": None})
    await _create(kollie, "checkout", {"web": "feature-checkout", "worker": None})
    before = {env: await _apps(kollie, env) for env in ("alice-demo", "bob-demo", "checkout")}
    push = await _push(kollie, "payments", "main-abc1234-1900000000")
    assert push["rescanned"] == ["flux-system/payments"]
    assert push["joined"] == [] and push["created"] is None
    assert sorted(push["following"]) == ["alice-demo", "bob-demo", "checkout"]
    assert "default prefix" in push["skipped"][0]["reason"]
    after = {env: await _apps(kollie, env) for env in before}
    assert after == before, "payments joined no environment"


async def test_without_the_rule_a_push_only_moves_what_environments_run(
    start_kollie: StartKollie, tmp_path: Path
) -> None:
    kollie = await start_kollie(
        KOLLIE_WEBHOOK_SECRET=SECRET, KOLLIE_CATALOG=_catalog(tmp_path, add_pushed_apps=False)
    )
    await _create(kollie, "pr-7", {"web": "feature-pay", "api": None})
    push = await _push(kollie, "api", "feature-pay-abc1234-1900000000")
    assert push["following"] == ["pr-7"] and push["joined"] == []
    assert push["skipped"] == [
        {
            "environment": "pr-7",
            "reason": "no autoCreate rule with addPushedApps matches 'feature-pay'",
        }
    ]
    assert await _apps(kollie, "pr-7") == {"web": "feature-pay", "api": "main"}
    # The app it runs on the prefix is followed: a rescan, nothing else to write.
    push = await _push(kollie, "web", "feature-pay-def5678-1900000001")
    assert push["following"] == ["pr-7"] and push["joined"] == [] and push["skipped"] == []
    assert push["rescanned"] == ["flux-system/web"]


async def test_with_the_rule_pushed_apps_join_only_environments_the_webhook_may_change(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET, KOLLIE_OWNER_ONLY="true")
    await _create(kollie, "ci-checkout", {"web": "feature-pay", "api": None})
    created = await _push(kollie, "web", "feature-pay2-abc1234-1900000000")
    assert created["created"] == "feature-pay2"
    # The environment the webhook created for its branch takes in the branch's other apps;
    # one owned by someone else, with owner-only on, does not.
    push = await _push(kollie, "api", "feature-pay2-def5678-1900000001")
    assert push["joined"] == ["feature-pay2"]
    assert (await _apps(kollie, "feature-pay2"))["api"] == "feature-pay2"
    push = await _push(kollie, "api", "feature-pay-def5678-1900000002")
    assert push["joined"] == []
    assert push["skipped"] == [
        {"environment": "ci-checkout", "reason": "owner-only: 'ci-checkout' belongs to token:ci"}
    ]
    assert (await _apps(kollie, "ci-checkout"))["api"] == "main"


async def test_with_the_rule_and_owner_only_off_pushed_apps_join(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    await _create(kollie, "pr-9", {"web": "fix-login", "api": None})
    push = await _push(kollie, "api", "fix-login-abc1234-1900000000")
    assert push["joined"] == ["pr-9"]
    assert await _apps(kollie, "pr-9") == {"web": "fix-login", "api": "fix-login"}
