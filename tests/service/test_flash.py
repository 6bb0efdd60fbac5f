"""The message after a form comes in a short-lived cookie signed for its user, never from the
URL: `/?msg=...` links would let anyone put their own words on Kollie's pages."""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie

import aiohttp
from aiohttp import web

from tests.service.conftest import Kollie, StartKollie
from web.flash import Flash
from web.pages import CSRF

ALICE = {"X-Auth-Request-Email": "alice@example.com"}
BOB = {"X-Auth-Request-Email": "bob@example.com"}
PHISHING = "Your session expired: send your API token to security@evil.example"


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _page(
    kollie: Kollie, http: aiohttp.ClientSession, path: str, user: dict[str, str]
) -> str:
    async with http.get(kollie.url(path), headers=user) as r:
        assert r.status == 200, r.status
        return await r.text()


async def test_no_text_from_the_url_on_any_page(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, _ = await kollie.call("PUT", "/api/v1/environments/one", json={"apps": {"api": {}}})
    assert status == 201
    async with _browser() as http:
        for path in ("/", "/env/one"):
            page = await _page(kollie, http, f"{path}?msg={PHISHING}", ALICE)
            assert "security@evil.example" not in page, path


async def test_a_form_says_what_it_did_once_to_its_user(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with _browser() as alice:
        page = await _page(kollie, alice, "/", ALICE)
        token = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', page)[0]
        async with alice.post(
            kollie.url("/env"),
            data={"csrf_token": token, "name": "flashy", "app_api": "on"},
            headers=ALICE,
            allow_redirects=False,
        ) as r:
            assert r.status == 303 and r.headers["Location"] == "/env/flashy"
            cookie = SimpleCookie(r.headers["Set-Cookie"])["kollie_flash"]
            assert cookie["httponly"] and cookie["max-age"] == "60"
        shown = await _page(kollie, alice, "/env/flashy", ALICE)
        assert "Environment flashy is being created" in shown
        again = await _page(kollie, alice, "/env/flashy", ALICE)
        assert "is being created" not in again, "shown once"
    async with aiohttp.ClientSession() as bob:
        headers = {**BOB, "Cookie": f"kollie_flash={cookie.value}"}
        assert "is being created" not in await _page(kollie, bob, "/", headers), (
            "another user's message"
        )


def _cookie(flash: Flash, identity: str, text: str) -> str:
    response = web.Response()
    flash.put(response, identity, text)
    return response.cookies["kollie_flash"].value


async def test_forged_and_stale_messages_are_not_shown(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    key = kollie.server.app[CSRF].secret
    stale = Flash(key, secure=False, clock=lambda: time.time() - 3600)
    other_key = Flash(b"k" * 32, secure=False)
    genuine = Flash(key, secure=False)
    async with aiohttp.ClientSession() as http:
        for value, shown in (
            (_cookie(stale, "alice@example.com", PHISHING), False),
            (_cookie(other_key, "alice@example.com", PHISHING), False),
            (_cookie(genuine, "alice@example.com", PHISHING).replace(".", "x", 1), False),
            ("garbage", False),
            (_cookie(genuine, "alice@example.com", PHISHING), True),
        ):
            page = await _page(kollie, http, "/", {**ALICE, "Cookie": f"kollie_flash={value}"})
            assert ("security@evil.example" in page) == shown, value
