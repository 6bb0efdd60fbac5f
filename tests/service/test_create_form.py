"""The dashboard's "New environment" form only creates (outside security review: posted with
the name of an environment that exists, it answered "being created" and silently removed every
app the form did not tick, as the API's create-or-update PUT does)."""

from __future__ import annotations

import re

import aiohttp

from tests.service.conftest import StartKollie

USER = {"X-Auth-Request-Email": "dev@example.com"}


async def test_the_new_environment_form_never_replaces_an_existing_one(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/taken", json={"apps": ["api", "web"]}
    )
    assert status == 201, body
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(kollie.url("/"), headers=USER) as r:
            found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', await r.text())
        assert found
        form = {"csrf_token": found.group(1), "name": "taken", "app_worker": "on"}
        async with browser.post(
            kollie.url("/env"), data=form, headers=USER, allow_redirects=False
        ) as r:
            page = await r.text()
            assert r.status == 409, "refused, not redirected to 'being created'"
            assert "already exists" in page and 'role="alert"' in page
    status, body = await kollie.call("GET", "/api/v1/environments/taken")
    assert status == 200 and {a["name"] for a in body["apps"]} == {"api", "web"}, body
    status, body = await kollie.call("PUT", "/api/v1/environments/taken", json={"apps": ["api"]})
    assert status == 200, "the API's PUT still creates or updates"
