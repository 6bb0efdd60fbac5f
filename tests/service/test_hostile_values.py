"""Values that look valid to a loose check but are not: a name or prefix with a trailing
newline, digits that are not ASCII, numbers and times too large for Python's types. Each gets a
4xx that says why, never a 500, and nothing is written (found in the outside security review)."""

from __future__ import annotations

import asyncio

import pytest

from tests.service.conftest import Kollie, StartKollie
from tests.service.test_bad_input import _writes

JSON = {"Content-Type": "application/json"}
HUGE = "1" + "0" * 400
"""An integer JSON allows and no float can hold."""


async def _settled(kollie: Kollie, name: str) -> None:
    """Create `name` and wait until simulated Flux is done with it (it writes status)."""
    status, body = await kollie.call("PUT", f"/api/v1/environments/{name}", json={"apps": ["api"]})
    assert status == 201, body
    status, body = await kollie.call("GET", f"/api/v1/environments/{name}?wait=ready&timeout=10")
    assert status == 200, body


async def test_a_trailing_newline_is_not_part_of_a_valid_name_or_prefix(kollie: Kollie) -> None:
    await _settled(kollie, "ok")
    before = _writes(kollie)
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/pr-9%0A", json={"apps": {"api": {}}}
    )
    assert (status, body["error"]) == (422, "invalid"), body
    status, body = await kollie.call(
        "POST", "/api/v1/environments/ok/apps", json={"name": "web", "prefix": "feature-x\n"}
    )
    assert (status, body["error"]) == (422, "invalid"), body
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/ok", json={"apps": {"api": {"prefix": "main\n"}}}
    )
    assert (status, body["error"]) == (422, "invalid"), body
    assert _writes(kollie) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/environments/ok/extend", '{"hours": HUGE}'),
        ("POST", "/api/v1/environments/ok/extend", '{"days": HUGE}'),
        ("PUT", "/api/v1/environments/ok/uptime", '{"hours": HUGE}'),
        ("PUT", "/api/v1/environments/new", '{"apps": ["api"], "uptime": {"days": HUGE}}'),
        ("POST", "/api/v1/environments/ok/extend", '{"until": "9999-12-31T23:59:59-08:00"}'),
        ("POST", "/api/v1/environments/ok/extend", '{"until": "0001-01-01T00:00:00+01:00"}'),
    ],
)
async def test_numbers_and_times_out_of_range_are_refused(
    kollie: Kollie, method: str, path: str, body: str
) -> None:
    await _settled(kollie, "ok")
    before = _writes(kollie)
    raw = body.replace("HUGE", HUGE).encode()
    status, answer = await kollie.call(method, path, data=raw, headers=JSON)
    assert (status, answer["error"]) == (422, "invalid"), answer
    assert "message" in answer and "Internal" not in answer["message"]
    assert _writes(kollie) == before


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 5000])
async def test_digits_that_are_not_ascii_are_no_list_limit(kollie: Kollie, value: str) -> None:
    async with kollie.http.get(
        kollie.url("/api/v1/environments"),
        params={"limit": value},
        headers={"Authorization": "Bearer ci-token-0123456789abcdef"},
    ) as r:
        answer = await r.json()
        assert (r.status, answer["error"]) == (400, "bad_request"), answer


@pytest.mark.parametrize("value", ["²", "9" * 5000])
async def test_an_event_position_that_is_not_a_number_starts_afresh(
    kollie: Kollie, value: str
) -> None:
    """`since`/`Last-Event-ID` that is not a position Kollie gave out: a snapshot, not a 500."""
    auth = {"Authorization": "Bearer ci-token-0123456789abcdef"}
    for query, headers in (({"since": value}, auth), ({}, {**auth, "Last-Event-ID": value})):
        async with kollie.http.get(kollie.url("/events"), params=query, headers=headers) as r:
            assert r.status == 200
            first = await r.content.readuntil(b"\n\n")
            while first.startswith(b"retry:") and b"event:" not in first:
                first = await r.content.readuntil(b"\n\n")
            assert b"event: snapshot" in first, first


async def _status_of_raw(kollie: Kollie, request: bytes) -> int:
    """The status Kollie answers `request`, sent as these bytes (header values that are not
    UTF-8 cannot be sent through aiohttp's client)."""
    url = kollie.server.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n")
        return int(head.split(b" ", 2)[1])
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/api/v1/environments", b"Authorization: Bearer \xff\xfe"),
        ("/webhooks/registry/harbor", b"Authorization: \xff"),
        ("/webhooks/registry/generic", b"X-Signature: sha256=\xff"),
        ("/webhooks/registry/nexus", b"X-Nexus-Webhook-Signature: \xff"),
        ("/webhooks/registry/artifactory", b"X-JFrog-Event-Auth: \xff"),
        ("/webhooks/registry/quay", b"Authorization: Bearer \xff"),
    ],
)
async def test_credentials_that_are_not_utf8_are_wrong_not_a_500(
    start_kollie: StartKollie, path: str, header: bytes
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET="webhook-secret-0123456789")
    request = (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: kollie\r\n" + header + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    if path.startswith("/api/"):
        request = request.replace(b"POST ", b"GET ", 1)
    assert await _status_of_raw(kollie, request) == 401
