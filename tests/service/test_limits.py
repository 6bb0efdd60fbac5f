"""Per-identity limits: live streams, waits for readiness and environments owned; a refusal is
429 with Retry-After and says which limit."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from kollie.config import ConfigError, Settings
from tests.helpers import eventually
from tests.service.conftest import AUTH, Kollie, StartKollie
from web.concurrency import LONG_REQUESTS

ALICE = {"X-Auth-Request-Email": "alice@example.com"}


def _assert_too_many(status: int, headers: Any, body: Any, setting: str) -> None:
    assert status == 429, (status, body)
    assert int(headers["Retry-After"]) > 0
    assert body["error"] in ("too_many_requests", "quota_exceeded") and setting in body["message"]


async def test_event_streams_per_identity(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_LIMIT_EVENT_STREAMS="2", KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession() as http:
        first = await http.get(kollie.url("/events"), headers=AUTH)
        second = await http.get(kollie.url("/events"), headers=AUTH)
        assert (first.status, second.status) == (200, 200)
        async with http.get(kollie.url("/events"), headers=AUTH) as third:
            assert third.status == 429, "a third stream of the same identity"
            _assert_too_many(
                third.status, third.headers, await third.json(), "KOLLIE_LIMIT_EVENT_STREAMS"
            )
        async with http.get(kollie.url("/events"), headers=ALICE) as other:
            assert other.status == 200, "another identity has its own allowance"
        first.close()

        async def reopened() -> bool:
            response = await http.get(kollie.url("/events"), headers=AUTH)
            response.close()
            return response.status == 200

        await eventually(reopened, within=10, message="a closed stream frees its place")
        second.close()


async def _wait(kollie: Kollie, http: aiohttp.ClientSession, query: str) -> tuple[int, Any, Any]:
    async with http.get(kollie.url(f"/api/v1/environments/stuck?{query}"), headers=AUTH) as r:
        return r.status, r.headers, await r.json()


async def test_waits_per_identity_and_their_longest_timeout(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_LIMIT_WAITS="1", KOLLIE_LIMIT_WAIT_SECONDS="60")
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/stuck", json={"apps": {"api": {"prefix": "no-such-images"}}}
    )
    assert status == 201, body
    async with aiohttp.ClientSession() as http:
        status, _, body = await _wait(kollie, http, "wait=ready&timeout=61")
        assert status == 422 and "KOLLIE_LIMIT_WAIT_SECONDS" in body["message"]
        waiting = asyncio.create_task(_wait(kollie, http, "wait=ready&timeout=60"))
        waits = kollie.server.app[LONG_REQUESTS].waits
        await eventually(
            lambda: waits.held("token:ci") == 1,
            within=5,
            message="the first wait is held",
        )
        _assert_too_many(*await _wait(kollie, http, "wait=ready&timeout=5"), "KOLLIE_LIMIT_WAITS")
        waiting.cancel()
        await eventually(
            lambda: waits.held("token:ci") == 0,
            within=10,
            message="a wait given up frees its place",
        )
        status, _, body = await _wait(kollie, http, "wait=ready&timeout=0.2")
        assert status == 408, body


async def test_environments_per_owner(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_LIMIT_ENVIRONMENTS="2", KOLLIE_TRUST_PROXY_HEADERS="true")
    for name in ("one", "two"):
        status, body = await kollie.call(
            "PUT", f"/api/v1/environments/{name}", json={"apps": {"api": {}}}
        )
        assert status == 201, body
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            kollie.url("/api/v1/environments/three"), json={"apps": {"api": {}}}, headers=AUTH
        ) as r,
    ):
        _assert_too_many(r.status, r.headers, await r.json(), "KOLLIE_LIMIT_ENVIRONMENTS")
    assert kollie.cluster.store.get(("", "configmaps"), "kollie", "three") is None
    status, _ = await kollie.call(
        "PUT", "/api/v1/environments/one", json={"apps": {"api": {}, "web": {}}}
    )
    assert status == 200, "changing an environment one owns is not limited"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(kollie.url("/"), headers=ALICE) as r:
            token = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', await r.text())[0]
        for name, expected in (("a1", 303), ("a2", 303), ("a3", 429)):
            async with browser.post(
                kollie.url("/env"),
                data={"csrf_token": token, "name": name, "app_api": "on"},
                headers=ALICE,
                allow_redirects=False,
            ) as r:
                assert r.status == expected, (name, await r.text())
                if expected == 429:
                    assert "KOLLIE_LIMIT_ENVIRONMENTS" in await r.text()
                    assert r.headers["Retry-After"]
    status, _ = await kollie.call("DELETE", "/api/v1/environments/two")
    assert status == 202

    async def room_again() -> bool:
        status, _ = await kollie.call(
            "PUT", "/api/v1/environments/three", json={"apps": {"api": {}}}
        )
        return status == 201

    await eventually(room_again, within=10, message="a deleted environment frees its place")


async def test_admins_are_not_limited(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_LIMIT_ENVIRONMENTS="1", KOLLIE_ADMINS="token:ci")
    for name in ("one", "two"):
        status, body = await kollie.call(
            "PUT", f"/api/v1/environments/{name}", json={"apps": {"api": {}}}
        )
        assert status == 201, body


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KOLLIE_LIMIT_EVENT_STREAMS", "0"),
        ("KOLLIE_LIMIT_WAITS", "many"),
        ("KOLLIE_LIMIT_WAIT_SECONDS", "90000"),
        ("KOLLIE_LIMIT_ENVIRONMENTS", "-1"),
    ],
)
def test_limits_are_checked_at_start(name: str, value: str) -> None:
    limits = Settings.from_env({}).limits
    assert (limits.event_streams, limits.waits, limits.wait_seconds, limits.environments) == (
        20,
        10,
        3600,
        0,
    )
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
