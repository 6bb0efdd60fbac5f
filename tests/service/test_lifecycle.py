"""Uptime windows, office hours, keep, and safe expiry, with a controlled clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.helpers import eventually
from tests.service.conftest import Kollie, StartKollie

CM = ("", "configmaps")
KS = ("kustomize.toolkit.fluxcd.io", "kustomizations")


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def _env(kollie: Kollie, name: str) -> None:
    status, body = await kollie.call(
        "PUT", f"/api/v1/environments/{name}", json={"apps": {"api": {}}}
    )
    assert status == 201, body


async def test_expiry_deletes_only_what_is_due(start_kollie: StartKollie) -> None:
    clock = Clock(datetime(2026, 3, 27, 10, 0, tzinfo=UTC))
    kollie = await start_kollie(clock=clock, KOLLIE_ENV_TTL="2d")
    for name in ("old", "kept"):
        await _env(kollie, name)
    status, body = await kollie.call("PUT", "/api/v1/environments/kept/keep", json={"keep": True})
    assert status == 200 and body["keep"] is True and body["expiresAt"] is None
    status, body = await kollie.call("GET", "/api/v1/environments/old")
    assert (
        body["uptime"]["until"] == "2026-03-27T19:00:00Z"
        and body["expiresAt"] == "2026-03-29T19:00:00Z"
    )

    expiry = kollie.background.expiry
    assert expiry is not None
    clock.now = datetime(2026, 3, 29, 18, 59, tzinfo=UTC)  # across the DST change in Europe/London
    assert await expiry.sweep() == []
    clock.now += timedelta(minutes=2)
    await _env(kollie, "fresh")
    assert await expiry.sweep() == ["old"]
    await eventually(lambda: kollie.cluster.store.get(CM, "kollie", "old") is None, within=5)
    assert kollie.cluster.store.get(CM, "kollie", "kept") is not None
    assert kollie.cluster.store.get(CM, "kollie", "fresh") is not None
    events = [
        e["reason"]
        for e in kollie.cluster.store.iter(("", "events"), "kollie")
        if e["involvedObject"]["name"] == "old"
    ]
    assert (
        "EnvironmentExpired" in events or not events
    )  # the Event is garbage-collected with its environment


async def test_expiry_waits_for_a_settled_cache_and_is_rate_limited(
    start_kollie: StartKollie,
) -> None:
    clock = Clock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    kollie = await start_kollie(
        clock=clock, settle=3600, KOLLIE_ENV_TTL="1h", KOLLIE_EXPIRY_MAX_PER_MINUTE="1"
    )
    for name in ("a", "b"):
        await _env(kollie, name)
    clock.now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    expiry = kollie.background.expiry
    assert expiry is not None
    assert await expiry.sweep() == [], "a cache that relisted within the settle time is not trusted"
    expiry.settle = 0
    assert len(await expiry.sweep()) == 1, "at most one deletion per minute"
    assert len(await expiry.sweep()) == 0


async def test_dry_run_deletes_nothing(start_kollie: StartKollie) -> None:
    clock = Clock(datetime(2028, 2, 28, 20, 0, tzinfo=UTC))
    kollie = await start_kollie(clock=clock, KOLLIE_ENV_TTL="1d", KOLLIE_EXPIRY_DRY_RUN="true")
    await _env(kollie, "leap")
    _status, body = await kollie.call("GET", "/api/v1/environments/leap")
    assert body["uptime"]["until"] == "2028-02-29T19:00:00Z", (
        "created after 19:00: the next day, a leap day"
    )
    clock.now = datetime(2028, 3, 2, 0, 0, tzinfo=UTC)
    expiry = kollie.background.expiry
    assert expiry is not None and await expiry.sweep() == ["leap"]
    assert kollie.cluster.store.get(CM, "kollie", "leap") is not None


async def test_office_hours_and_switching(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_LEASE_EXCLUSION_LIST="office,shared")
    await _env(kollie, "office")
    ks = kollie.cluster.store.get(KS, "kollie", "office-api")
    assert ks is not None
    assert (
        ks["spec"]["postBuild"]["substitute"]["downscaler_uptime"]
        == "Mon-Fri 07:00-19:00 Europe/London"
    )
    status, body = await kollie.call(
        "POST", "/api/v1/environments/office/extend", json={"hours": 2}
    )
    assert status == 422 and "schedule" in body["message"], (
        "an extension never overwrites a schedule silently"
    )
    status, body = await kollie.call("PUT", "/api/v1/environments/office/uptime", json={"hours": 4})
    assert status == 200 and "until" in body["uptime"], body
    ks = kollie.cluster.store.get(KS, "kollie", "office-api")
    assert ks is not None and ks["spec"]["postBuild"]["substitute"]["downscaler_uptime"].endswith(
        "Z"
    )
    status, body = await kollie.call(
        "PUT",
        "/api/v1/environments/office/uptime",
        json={"schedule": "Mon-Sun 06:00-22:00 Europe/Berlin"},
    )
    assert status == 200 and body["uptime"] == {"schedule": "Mon-Sun 06:00-22:00 Europe/Berlin"}
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/office/uptime", json={"schedule": "always"}
    )
    assert status == 422


async def test_only_owner_or_admin_may_keep(start_kollie: StartKollie) -> None:
    kollie = await start_kollie()
    await _env(kollie, "mine")
    async with kollie.http.put(
        kollie.url("/api/v1/environments/mine/keep"),
        json={"keep": True},
        headers={"Authorization": "Bearer someone-else-token"},
    ) as r:
        assert r.status == 401


async def test_expiry_fails_over_without_double_work(start_kollie: StartKollie) -> None:
    clock = Clock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    settings = {"KOLLIE_ENV_TTL": "1h", "KOLLIE_EXPIRY_MAX_PER_MINUTE": "1"}
    first = await start_kollie(clock=clock, expiry_interval=0.1, **settings)
    second = await start_kollie(clock=clock, expiry_interval=0.1, **settings)
    for name in ("one", "two"):
        await _env(first, name)
    b1, b2 = first.background, second.background
    assert b1 is not None and b2 is not None and b1.expiry is not None and b2.expiry is not None
    await eventually(lambda: b1.is_leader or b2.is_leader, within=10, message="a leader")
    leader, other = (first, second) if b1.is_leader else (second, first)
    lead_bg, other_bg = leader.background, other.background
    assert lead_bg is not None and other_bg is not None and lead_bg.expiry and other_bg.expiry
    clock.now = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)  # both windows ended long ago
    await eventually(
        lambda: len(lead_bg.expiry.deleted) == 1, within=10, message="the leader's first deletion"
    )
    passes = lead_bg.expiry.passes
    await eventually(
        lambda: lead_bg.expiry.passes >= passes + 2, within=10, message="two more expiry passes"
    )
    assert len(lead_bg.expiry.deleted) == 1, "rate limited to one a minute"
    await leader.server.close()  # the leader dies in the middle of its work
    await eventually(
        lambda: len(other_bg.expiry.deleted) == 1, within=15, message="the new leader finishes"
    )
    assert sorted(lead_bg.expiry.deleted + other_bg.expiry.deleted) == ["one", "two"], (
        "each deleted exactly once"
    )
