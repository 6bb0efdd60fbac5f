"""Every response carries the security headers: pages, API answers, redirects, refusals, errors
from the router, static files and the event stream."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.service.conftest import AUTH, Kollie, StartKollie

USER = {"X-Auth-Request-Email": "dev@example.com"}


def assert_secure(headers: Any, what: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, (what, csp)
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, (what, csp)
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "same-origin", what
    assert headers.get("X-Frame-Options") == "DENY", what


async def _responses(kollie: Kollie) -> list[tuple[str, int, Any]]:
    """(what, status, headers) of one request of every kind."""
    seen: list[tuple[str, int, Any]] = []

    async def hit(
        http: aiohttp.ClientSession, what: str, method: str, path: str, **kwargs: Any
    ) -> str:
        async with http.request(method, kollie.url(path), allow_redirects=False, **kwargs) as r:
            seen.append((what, r.status, r.headers))
            return await r.text() if r.content_type != "text/event-stream" else ""

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await hit(http, "index", "GET", "/", headers=USER)
        token = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', page)[0]
        await hit(http, "sign-in needed", "GET", "/")
        await hit(
            http,
            "form redirect",
            "POST",
            "/env",
            data={"csrf_token": token, "name": "hdr", "app_api": "on"},
            headers=USER,
        )
        await hit(http, "CSRF refusal", "POST", "/env", data={"name": "x"}, headers=USER)
        await hit(http, "missing environment", "GET", "/env/nope", headers=USER)
        await hit(http, "no route", "GET", "/nowhere", headers=USER)
        await hit(http, "wrong method", "DELETE", "/", headers=USER)
        await hit(http, "API without token", "GET", "/api/v1/environments")
        await hit(
            http, "API refusal", "PUT", "/api/v1/environments/Bad_Name", json={}, headers=AUTH
        )
        await hit(http, "API answer", "GET", "/api/v1/environments", headers=AUTH)
        await hit(http, "webhook refusal", "POST", "/webhooks/registry/generic", data=b"{}")
        await hit(http, "static file", "GET", "/static/app.css")
        await hit(http, "health", "GET", "/healthz")
        await hit(http, "readiness", "GET", "/readyz")
        await hit(http, "metrics", "GET", "/metrics")
        async with http.get(kollie.url("/events"), headers=AUTH) as r:
            seen.append(("event stream", r.status, r.headers))
    return seen


async def test_every_response_carries_the_security_headers(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    seen = await _responses(kollie)
    statuses = {what: status for what, status, _ in seen}
    assert statuses["sign-in needed"] == 401 and statuses["form redirect"] == 303
    assert statuses["CSRF refusal"] == 403 and statuses["no route"] == 404
    assert statuses["wrong method"] == 405 and statuses["webhook refusal"] == 503
    assert statuses["event stream"] == 200
    for what, _, headers in seen:
        assert_secure(headers, what)
        assert "Strict-Transport-Security" not in headers, "not over plain HTTP"


async def test_over_https_they_include_hsts(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(
        KOLLIE_TRUST_PROXY_HEADERS="true", KOLLIE_PUBLIC_URL="https://kollie.example.com"
    )
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/healthz", "/nowhere"):
            async with http.get(kollie.url(path)) as r:
                assert_secure(r.headers, path)
                assert r.headers["Strict-Transport-Security"] == "max-age=31536000", path
