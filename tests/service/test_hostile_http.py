"""Hostile HTTP at the socket: slow bodies, deeply nested JSON, invalid UTF-8, too many or too
large headers. Each gets a clear 4xx (or, for a body that never arrives, 408), nothing is
written, and the replica goes on serving."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest

from tests.helpers import eventually
from tests.service.conftest import TOKEN, Kollie, StartKollie
from web.bodies import BODY_SECONDS

CM = ("", "configmaps")
USER = {"X-Auth-Request-Email": "dev@example.com"}


async def _raw(kollie: Kollie, head: bytes, *body_parts: bytes, pause: float = 0.0) -> bytes:
    """Send a request over a bare socket, the body in parts with `pause` between them; the
    whole answer (the server closes or says how long it is)."""
    url = kollie.server.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(head)
        for part in body_parts:
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
            writer.write(part)
        await writer.drain()
        return await _response(reader)
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        None,
    )
    rest = await reader.readexactly(length) if length is not None else await reader.read()
    return head + rest


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _head(method: str, path: str, length: int, *extra: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: kollie",
        f"Authorization: Bearer {TOKEN}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _still_serving(kollie: Kollie) -> None:
    status, body = await kollie.call("GET", "/api/v1/environments")
    assert status == 200, body


async def test_a_body_that_trickles_in_is_read_whole(kollie: Kollie) -> None:
    body = json.dumps({"apps": {"api": {}}}).encode()
    parts = [body[i : i + 3] for i in range(0, len(body), 3)]
    answer = await _raw(
        kollie,
        _head("PUT", "/api/v1/environments/trickle", len(body)),
        *parts,
        pause=0.05,
    )
    assert _status(answer) == 201, answer


@pytest.mark.slow
async def test_a_body_that_never_arrives_is_answered_408_and_changes_nothing(
    kollie: Kollie,
) -> None:
    answer = await _raw(kollie, _head("PUT", "/api/v1/environments/stalled", 40), b'{"apps"')
    assert _status(answer) == 408, answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "timeout"
    assert f"{BODY_SECONDS:g}" in answer.decode()
    assert kollie.cluster.store.get(CM, "kollie", "stalled") is None
    await _still_serving(kollie)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"apps": ' + b'{"a": ' * 50_000 + b"{}" + b"}" * 50_000 + b"}",
        b'{"apps": {"api": {"prefix": "feature-\xff\xfe"}}}',
        b'{"apps": {"\xc3\x28": {}}}',
        b"\xef\xbb\xbf\xff",
    ],
    ids=["nested-arrays", "nested-objects", "invalid-utf8-value", "invalid-utf8-key", "bom"],
)
async def test_hostile_json_is_refused_with_400_and_changes_nothing(
    kollie: Kollie, body: bytes
) -> None:
    status, answer = await kollie.call(
        "PUT",
        "/api/v1/environments/hostile",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400, answer
    assert answer["error"] == "bad_request" and answer["message"]
    assert kollie.cluster.store.get(CM, "kollie", "hostile") is None
    await _still_serving(kollie)


async def test_invalid_utf8_in_paths_forms_and_headers(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, answer = await kollie.call("GET", "/api/v1/environments/%FF%FE")
    assert status == 404 and answer["error"] == "not_found", answer
    status, answer = await kollie.call("DELETE", "/api/v1/environments/%C3%28")
    assert 400 <= status < 500 and answer["error"], answer

    # A form with bytes that are not UTF-8, from a browser with a cookie and a token.
    async with kollie.http.get(kollie.url("/"), headers=USER) as r:
        page = await r.text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = b"csrf_token=" + token.encode() + b"&name=bad%FF%FEname&app_api=on"
    async with kollie.http.post(
        kollie.url("/env"),
        data=form,
        headers={**USER, "Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    ) as r:
        assert 400 <= r.status < 500, await r.text()

    # An identity header that is not UTF-8 (raw bytes on the wire).
    answer_bytes = await _raw(
        kollie,
        b"GET / HTTP/1.1\r\nHost: kollie\r\nX-Auth-Request-Email: dev\xff\xfe@example.com\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert _status(answer_bytes) < 500, answer_bytes[:300]
    assert [
        e for e in kollie.cluster.store.iter(CM, "kollie") if "bad" in e["metadata"]["name"]
    ] == []
    await _still_serving(kollie)


async def test_too_many_or_too_large_headers_are_refused(kollie: Kollie) -> None:
    many = "".join(f"X-Pad-{i}: {i}\r\n" for i in range(500))
    answer = await _raw(
        kollie, f"GET /api/v1/environments HTTP/1.1\r\nHost: k\r\n{many}\r\n".encode()
    )
    assert 400 <= _status(answer) < 500, answer[:300]
    large = "X-Large: " + "a" * 100_000 + "\r\n"
    answer = await _raw(
        kollie, f"GET /api/v1/environments HTTP/1.1\r\nHost: k\r\n{large}\r\n".encode()
    )
    assert 400 <= _status(answer) < 500, answer[:300]
    await _still_serving(kollie)


async def test_a_stalled_client_does_not_hold_up_the_others(kollie: Kollie) -> None:
    url = kollie.server.make_url("/")
    stalled = []
    for _ in range(20):
        _, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(_head("PUT", "/api/v1/environments/stalled", 1000) + b"{")
        await writer.drain()
        stalled.append(writer)
    try:
        await eventually(lambda: _ok(kollie), within=10, message="others are served meanwhile")
    finally:
        for writer in stalled:
            writer.close()


async def _ok(kollie: Kollie) -> bool:
    status, _ = await kollie.call("PUT", "/api/v1/environments/other", json={"apps": {"api": {}}})
    return status in (200, 201)


async def test_a_deeply_nested_webhook_delivery_is_refused_with_400(
    start_kollie: StartKollie,
) -> None:
    secret = "webhook-secret-0123456789"
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=secret)
    body = b'{"repository": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"),
        data=body,
        headers={"Content-Type": "application/json", "X-Signature": f"sha256={signature}"},
    ) as r:
        answer = await r.json()
        assert r.status == 400 and answer["error"] == "bad_request", answer
    await _still_serving(kollie)
