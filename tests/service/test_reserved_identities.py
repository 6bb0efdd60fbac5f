"""A dashboard user cannot be named like one of Kollie's own callers (outside security review:
an identity provider's user name is often the user's choice, and `token:ci` from the proxy was
taken for the CI token's owner: with owner-only on it deleted CI's environment, and where
KOLLIE_ADMINS names the token it was an admin)."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.service.conftest import StartKollie

CM = ("", "configmaps")


@pytest.mark.parametrize("name", ["token:ci", "registry-webhook", "kollie"])
async def test_a_proxy_user_named_like_kollies_own_callers_is_nobody(
    start_kollie: StartKollie, name: str
) -> None:
    kollie = await start_kollie(
        KOLLIE_TRUST_PROXY_HEADERS="true", KOLLIE_OWNER_ONLY="true", KOLLIE_ADMINS="token:ci"
    )
    status, body = await kollie.call("PUT", "/api/v1/environments/ci-env", json={"apps": ["api"]})
    assert status == 201 and body["owner"] == "token:ci", body
    impostor = {"X-Auth-Request-User": name}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(kollie.url("/env/ci-env"), headers=impostor) as r:
            page = await r.text()
            assert r.status == 401, f"{name!r} from the proxy was taken for a user"
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
        form = {"csrf_token": found.group(1) if found else "", "confirm": "ci-env"}
        async with browser.post(
            kollie.url("/env/ci-env/delete"), data=form, headers=impostor, allow_redirects=False
        ) as r:
            assert r.status == 401
    record = kollie.cluster.store.get(CM, "kollie", "ci-env")
    assert record is not None and "deletionTimestamp" not in record["metadata"]
    async with kollie.http.get(
        kollie.url("/"), headers={"X-Auth-Request-User": "someone-else"}
    ) as r:
        assert r.status == 200, "other names from the proxy still sign in"
