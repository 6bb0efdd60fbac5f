"""Form posts are bound to the user they were given to and to the dashboard's own origin; over
HTTPS the CSRF cookie is `Secure` and `__Host-` prefixed. Test apps live on sibling subdomains of
the dashboard's site: SameSite alone does not stop them."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import aiohttp

from tests.service.conftest import Kollie, StartKollie

ALICE = {"X-Auth-Request-Email": "alice@example.com"}
BOB = {"X-Auth-Request-Email": "bob@example.com"}
EVIL = "https://evil.test.example.com"


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _form_token(kollie: Kollie, browser: aiohttp.ClientSession, user: dict[str, str]) -> str:
    async with browser.get(kollie.url("/env/shared"), headers=user) as r:
        assert r.status == 200, await r.text()
        m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', await r.text())
    assert m
    return m.group(1)


async def _delete(
    kollie: Kollie, browser: aiohttp.ClientSession, token: str, headers: dict[str, str]
) -> int:
    async with browser.post(
        kollie.url("/env/shared/delete"),
        data={"csrf_token": token, "confirm": "shared"},
        headers=headers,
        allow_redirects=False,
    ) as r:
        return r.status


def _exists(kollie: Kollie) -> bool:
    record = kollie.cluster.store.get(("", "configmaps"), "kollie", "shared")
    return record is not None and "deletionTimestamp" not in record["metadata"]


async def _with_environment(start_kollie: StartKollie, **env: str) -> Kollie:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true", **env)
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/shared", json={"apps": {"api": {}}}
    )
    assert status == 201, body
    return kollie


async def test_a_form_token_is_good_only_for_the_user_it_was_given_to(
    start_kollie: StartKollie,
) -> None:
    kollie = await _with_environment(start_kollie)
    async with _browser() as bob:
        bobs = await _form_token(kollie, bob, BOB)
        # Bob's cookie and token in a request that carries Alice's identity (the proxy adds it to
        # whatever her browser sends, cookies a sibling subdomain planted included).
        assert await _delete(kollie, bob, bobs, ALICE) == 403
    assert _exists(kollie)
    async with _browser() as alice:
        alices = await _form_token(kollie, alice, ALICE)
        assert await _delete(kollie, alice, alices, ALICE) == 303
    assert not _exists(kollie)


async def test_form_posts_the_browser_says_came_from_elsewhere_are_refused(
    start_kollie: StartKollie,
) -> None:
    kollie = await _with_environment(start_kollie)
    own = f"http://{kollie.server.host}:{kollie.server.port}"
    async with _browser() as alice:
        token = await _form_token(kollie, alice, ALICE)
        for foreign in (
            {"Origin": EVIL},
            {"Origin": EVIL, "Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},
            {"Origin": f"http://{kollie.server.host}:1"},
        ):
            assert await _delete(kollie, alice, token, {**ALICE, **foreign}) == 403, foreign
        assert _exists(kollie)
        same = {"Origin": own, "Sec-Fetch-Site": "same-origin"}
        assert await _delete(kollie, alice, token, {**ALICE, **same}) == 303
    assert not _exists(kollie)


async def test_over_https_the_cookie_is_secure_and_host_prefixed(
    start_kollie: StartKollie,
) -> None:
    kollie = await _with_environment(start_kollie, KOLLIE_PUBLIC_URL="https://kollie.example.com")
    # Sent to the dashboard's host, the only one on which identity headers count.
    alice = {**ALICE, "Host": "kollie.example.com"}
    async with aiohttp.ClientSession() as http:
        async with http.get(kollie.url("/env/shared"), headers=alice) as r:
            html = await r.text()
            cookies = SimpleCookie(r.headers["Set-Cookie"])
        token = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', html)[0]
        assert list(cookies) == ["__Host-kollie_csrf"]
        cookie = cookies["__Host-kollie_csrf"]
        assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/"
        assert cookie["samesite"] == "Strict" and not cookie["domain"]
        sent = {**alice, "Cookie": f"__Host-kollie_csrf={cookie.value}"}
        for origin, status in (
            ("http://kollie.example.com", 403),  # the same host over plain HTTP is another origin
            (EVIL, 403),
            ("https://kollie.example.com", 303),
        ):
            async with http.post(
                kollie.url("/env/shared/delete"),
                data={"csrf_token": token, "confirm": "shared"},
                headers={**sent, "Origin": origin, "Sec-Fetch-Site": "same-origin"},
                allow_redirects=False,
            ) as r:
                assert r.status == status, (origin, await r.text())
    assert not _exists(kollie)
