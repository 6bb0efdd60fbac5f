"""The dashboard over plain HTTP: forms with CSRF, post/redirect/get, escaping, errors beside
forms."""

from __future__ import annotations

import re

import aiohttp

from tests.service.conftest import Kollie, StartKollie

USER = {"X-Auth-Request-Email": "dev@example.com"}


async def _page(kollie: Kollie, session: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    async with session.get(kollie.url(path), headers=USER) as r:
        return r.status, await r.text()


def _token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert m, "every form carries a CSRF token"
    return m.group(1)


async def test_create_through_the_form_then_see_it(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        status, html = await _page(kollie, browser, "/")
        assert status == 200 and "New environment" in html
        form = {
            "csrf_token": _token(html),
            "name": "from-form",
            "bundle": "",
            "app_api": "on",
            "app_web": "on",
            "prefix_web": "feature-checkout",
        }
        async with browser.post(
            kollie.url("/env"), data=form, headers=USER, allow_redirects=False
        ) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/env/from-form")
        status, html = await _page(kollie, browser, "/env/from-form")
        assert status == 200 and "feature-checkout" in html and "Delete environment" in html
        owner = kollie.cluster.store.get(("", "configmaps"), "kollie", "from-form")
        assert (
            owner is not None
            and owner["metadata"]["annotations"]["kollie.io/owner"] == "dev@example.com"
        )


async def test_post_without_csrf_token_is_refused(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        await _page(kollie, browser, "/")
        async with browser.post(
            kollie.url("/env"), data={"name": "sneaky", "app_api": "on"}, headers=USER
        ) as r:
            assert r.status == 403
        async with browser.post(
            kollie.url("/env"),
            data={"name": "sneaky", "app_api": "on", "csrf_token": "0" * 64},
            headers=USER,
        ) as r:
            assert r.status == 403
    assert kollie.cluster.store.get(("", "configmaps"), "kollie", "sneaky") is None


async def test_proxy_identity_is_for_the_dashboard_not_the_api(start_kollie: StartKollie) -> None:
    """The API can be exposed without the auth proxy (for CI), so it never believes proxy
    headers."""
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession() as http:
        async with http.put(
            kollie.url("/api/v1/environments/spoofed"), json={"apps": {"api": {}}}, headers=USER
        ) as r:
            assert r.status == 401 and "Bearer" in (await r.json())["message"]
        async with http.get(kollie.url("/api/v1/environments"), headers=USER) as r:
            assert r.status == 401
    assert kollie.cluster.store.get(("", "configmaps"), "kollie", "spoofed") is None
    status, _ = await kollie.call("GET", "/api/v1/environments")
    assert status == 200, "tokens still work"


async def test_replicas_sharing_the_csrf_secret_accept_each_others_forms(
    start_kollie: StartKollie,
) -> None:
    shared = {"KOLLIE_TRUST_PROXY_HEADERS": "true", "KOLLIE_CSRF_SECRET": "s" * 40}
    first, second = await start_kollie(**shared), await start_kollie(**shared)
    alone = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        _, html = await _page(first, browser, "/")
        form = {"csrf_token": _token(html), "name": "via-second", "app_api": "on"}
        async with browser.post(
            alone.url("/env"), data=form, headers=USER, allow_redirects=False
        ) as r:
            assert r.status == 403, "a replica with its own key refuses the form"
        async with browser.post(
            second.url("/env"), data=form, headers=USER, allow_redirects=False
        ) as r:
            assert r.status == 303, "a replica with the shared key accepts it"
    assert second.cluster.store.get(("", "configmaps"), "kollie", "via-second") is not None


async def test_branch_names_are_escaped(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    evil = "<img src=x onerror=alert(1)>"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        _, html = await _page(kollie, browser, "/")
        form = {"csrf_token": _token(html), "name": "xss", "app_api": "on", "prefix_api": evil}
        async with browser.post(kollie.url("/env"), data=form, headers=USER) as r:
            body = await r.text()
        assert r.status == 422, "an invalid prefix is refused"
        assert "<img" not in body and "&lt;img" in body, "the error shows the text, escaped"
        _, html = await _page(kollie, browser, "/?q=" + evil)
        assert "<img src=x" not in html


async def test_errors_show_beside_the_form_and_pages_need_identity(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        _status, html = await _page(kollie, browser, "/")
        form = {"csrf_token": _token(html), "name": "Bad Name!", "app_api": "on"}
        async with browser.post(kollie.url("/env"), data=form, headers=USER) as r:
            text = await r.text()
            assert r.status == 422 and 'role="alert"' in text and "Traceback" not in text
        async with browser.get(kollie.url("/")) as r:
            assert r.status == 401
        async with browser.get(kollie.url("/"), headers=USER) as r:
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_filters_sorting_wording_and_environment_forms(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    for name in ("b-env", "a-env"):
        await kollie.call("PUT", f"/api/v1/environments/{name}", json={"apps": {"api": {}}})
    kollie.cluster.flux.fail("kollie", "b-env-api", "health check failed")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:

        async def failed_only() -> str | None:
            _, html = await _page(kollie, browser, "/?state=Failed")
            return html if 'data-env="b-env"' in html and 'data-env="a-env"' not in html else None

        from tests.helpers import eventually

        await eventually(failed_only, within=5, message="the Failed filter")
        _, html = await _page(kollie, browser, "/?sort=name")
        assert html.index('data-env="a-env"') < html.index('data-env="b-env"')
        # The time is machine-readable for the browser to word ("sleeps in 2 h, at 19:00" in
        # the viewer's zone, see the browser test); without JavaScript it reads "up until".
        assert re.search(r'<time datetime="[0-9T:-]+Z" data-until>up until ', html)
        _, html = await _page(kollie, browser, "/env/a-env")
        token = _token(html)
        async with browser.post(
            kollie.url("/env/a-env/bundle"),
            data={"csrf_token": token, "bundle": "storefront"},
            headers=USER,
            allow_redirects=False,
        ) as r:
            assert r.status == 303
        _, env = await kollie.call("GET", "/api/v1/environments/a-env")
        assert {a["name"] for a in env["apps"]} == {"api", "web", "worker"}
        async with browser.post(
            kollie.url("/env/a-env/flux-branch"),
            data={"csrf_token": token, "branch": "bad..x"},
            headers=USER,
        ) as r:
            assert r.status == 422 and "not a valid git branch" in await r.text()


async def test_keep_and_schedule_from_the_page(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        _, html = await _page(kollie, browser, "/")
        form = {"csrf_token": _token(html), "name": "mine", "app_api": "on"}
        async with browser.post(kollie.url("/env"), data=form, headers=USER) as r:
            assert r.status == 200
        token = _token(html)
        async with browser.post(
            kollie.url("/env/mine/keep"),
            data={"csrf_token": token, "keep": "true"},
            headers=USER,
            allow_redirects=False,
        ) as r:
            assert r.status == 303
        async with browser.post(
            kollie.url("/env/mine/schedule"),
            data={"csrf_token": token, "schedule": "Mon-Fri 08:00-18:00 Europe/Paris"},
            headers=USER,
            allow_redirects=False,
        ) as r:
            assert r.status == 303
        async with browser.post(
            kollie.url("/env/mine/schedule"),
            data={"csrf_token": token, "schedule": "nope"},
            headers=USER,
        ) as r:
            assert r.status == 422
    from tests.helpers import eventually

    async def applied() -> bool:
        _, env = await kollie.call("GET", "/api/v1/environments/mine")
        return env["keep"] is True and env["uptime"] == {
            "schedule": "Mon-Fri 08:00-18:00 Europe/Paris"
        }

    await eventually(applied, within=5, message="keep and schedule applied")


async def test_extend_form_switches_a_schedule_only_when_it_says_so(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(
        KOLLIE_TRUST_PROXY_HEADERS="true", KOLLIE_LEASE_EXCLUSION_LIST="office"
    )
    await kollie.call("PUT", "/api/v1/environments/office", json={"apps": {"api": {}}})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        _, html = await _page(kollie, browser, "/env/office")
        assert "Switch to an end time" in html, (
            "a scheduled environment's form says it replaces the schedule"
        )
        async with browser.post(
            kollie.url("/env/office/extend"),
            data={"csrf_token": _token(html), "hours": "4"},
            headers=USER,
            allow_redirects=False,
        ) as r:
            assert r.status == 303 and r.headers["Location"] == "/env/office"
        _, html = await _page(kollie, browser, "/env/office")
        assert "Schedule replaced: up for 4 hours" in html, "the page says what the form did"


async def test_app_conditions_and_history_on_the_page(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, _ = await kollie.call("PUT", "/api/v1/environments/cond", json={"apps": {"api": {}}})
    assert status == 201
    await kollie.call("GET", "/api/v1/environments/cond?wait=ready&timeout=15")
    from tests.helpers import eventually

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:

        async def page() -> str | None:
            _, html = await _page(kollie, browser, "/env/cond")
            return html if "Ready=True" in html and "api now runs main-" in html else None

        html = await eventually(page, within=5, message="conditions and per-app history")
        assert "Kustomization" in html and "ImagePolicy" in html
    _, env = await kollie.call("GET", "/api/v1/environments/cond")
    objects = {c["object"] for c in env["apps"][0]["conditions"]}
    assert objects == {"Kustomization", "ImagePolicy"}
