"""Who a caller is follows the route Kollie matched, and paths a proxy in front could read
differently (`/env/..%2Fapi` is `/api` to a proxy that decodes and resolves it, where no login is
asked and identity headers are whatever the caller sends) are refused before any routing."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from tests.service.conftest import AUTH, StartKollie

USER = {"X-Auth-Request-Email": "mallory@example.com"}
AMBIGUOUS = [
    "/env/..%2Fapi",
    "/env/..%2fapi%2Fv1%2Fenvironments",
    "/env/%2E%2E%2Fapi",
    "/env/..%5Capi",
    "/env/x/..%2F..%2Fapi/delete",
    "/api/v1/environments/..%2F..%2Fenv",
    "/webhooks/registry/%2E%2E",
    "/static/..%2F..%2Fapp.py",
]


@pytest.mark.parametrize("path", AMBIGUOUS)
async def test_ambiguous_paths_are_refused_before_anyone_is_identified(
    start_kollie: StartKollie, path: str
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    url = URL(kollie.url("/"), encoded=True).with_path(path, encoded=True)
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={**USER, **AUTH}) as r,
    ):
        body = await r.text()
        assert r.status == 400, (path, r.status, body[:200])
        assert "mallory" not in body and "Set-Cookie" not in r.headers, path


async def test_proxy_identity_only_on_routes_of_the_dashboard(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    async with aiohttp.ClientSession() as http:
        async with http.get(kollie.url("/"), headers=USER) as r:
            assert r.status == 200 and "mallory@example.com" in await r.text()
        async with http.get(kollie.url("/events"), headers=USER) as r:
            assert r.status == 200, "the dashboard's stream is part of the dashboard"
        for path in ("/api/v1/environments", "/api/v1/apps"):
            async with http.get(kollie.url(path), headers=USER) as r:
                assert r.status == 401, path
