"""Bodies as senders really send them (chunked, slowly, too big) and floods from one source:
read to the end or refused with the right status, and no source starves another."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from tests.helpers import eventually
from tests.service.conftest import AUTH, Kollie, StartKollie
from tests.service.webhook_fixtures import SECRET, sign, signed

IMAGE = "registry.example.com/acme/web"


async def _chunks(*parts: bytes, pause: float = 0.05) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if i:
            await asyncio.sleep(pause)  # the second chunk arrives after the first was read
        yield part


async def test_a_signed_delivery_in_two_chunks_is_read_whole(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    raw, headers = signed("generic", {"repository": IMAGE, "tag": "feature-c-abc1234-1900000000"})
    half = len(raw) // 2
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"),
        data=_chunks(raw[:half], raw[half:]),
        headers=headers,
    ) as r:
        assert r.request_info.headers.get("Transfer-Encoding") == "chunked"
        answer = await r.json()
        assert r.status == 202, answer
        assert answer["pushes"][0]["created"] == "feature-c"


async def test_a_chunked_body_over_the_limit_is_413(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    big = b'{"repository": "' + b"a" * (1100 * 1024) + b'", "tag": "v1"}'
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"),
        data=_chunks(big[: 512 * 1024], big[512 * 1024 :]),
        headers=sign("generic", big),
    ) as r:
        assert r.status == 413 and (await r.json())["error"] == "too_large"


async def test_the_api_reads_chunked_json_whole(kollie: Kollie) -> None:
    body = json.dumps({"apps": {"web": {"prefix": "feature-chunked"}}}).encode()
    async with kollie.http.put(
        kollie.url("/api/v1/environments/chunked"),
        data=_chunks(body[:10], body[10:]),
        headers={**AUTH, "Content-Type": "application/json"},
    ) as r:
        assert r.status == 201, await r.text()
    big = b'{"apps": {"web": {"prefix": "' + b"x" * (1100 * 1024) + b'"}}}'
    async with kollie.http.put(
        kollie.url("/api/v1/environments/too-big"),
        data=_chunks(big[: 512 * 1024], big[512 * 1024 :]),
        headers={**AUTH, "Content-Type": "application/json"},
    ) as r:
        assert r.status == 413, await r.text()


async def _hold_open(
    kollie: Kollie, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A sender that announces a body and sends only its first byte."""
    host, port = kollie.server.host, kollie.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST /webhooks/registry/{source} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    await writer.drain()
    return reader, writer


async def _status(reader: asyncio.StreamReader) -> tuple[int, str]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    retry_after = next(
        (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("retry-after")),
        "",
    )
    return int(lines[0].split()[1]), retry_after


async def test_a_body_that_never_arrives_is_answered_408(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    kollie.webhooks.body_seconds = 0.3
    reader, writer = await _hold_open(kollie, "generic")
    try:
        status, _ = await asyncio.wait_for(_status(reader), 10)
        assert status == 408
    finally:
        writer.close()


async def test_a_flood_from_one_source_does_not_starve_the_others(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    receiver = kollie.webhooks
    limits = receiver.limits
    held = [await _hold_open(kollie, "generic") for _ in range(limits.slots + limits.queue)]
    try:
        await eventually(
            lambda: limits.in_use("generic") == limits.slots, message="the flood holds every slot"
        )
        # One more from the flooding source is refused at once, with Retry-After.
        reader, writer = await _hold_open(kollie, "generic")
        held.append((reader, writer))
        status, retry_after = await asyncio.wait_for(_status(reader), 5)
        assert (status, retry_after) == (429, "1")
        # Another source is served meanwhile.
        raw, _ = signed("harbor", {"type": "PUSH_ARTIFACT", "event_data": {"repository": {}}})
        async with kollie.http.post(
            kollie.url("/webhooks/registry/harbor"), data=raw, headers=sign("harbor", raw)
        ) as r:
            assert r.status == 202, await r.text()
        assert limits.in_use("generic") == limits.slots, "the flood still holds its own slots"
    finally:
        for _, writer in held:
            writer.close()
    # The flood ends: its slots are free again and its source is served.
    await eventually(lambda: limits.in_use("generic") == 0, message="the flood's slots freed")
    raw, headers = signed("generic", {"repository": IMAGE, "tag": "v1"})
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"), data=raw, headers=headers
    ) as r:
        assert r.status == 202


async def test_deliveries_that_wait_too_long_for_a_slot_are_told_to_retry(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    limits = kollie.webhooks.limits
    limits.wait_seconds = 0.2
    held = [await _hold_open(kollie, "quay") for _ in range(limits.slots)]
    try:
        await eventually(lambda: limits.in_use("quay") == limits.slots, message="slots taken")
        async with kollie.http.post(
            kollie.url(f"/webhooks/registry/quay?token={SECRET}"), data=b"{}"
        ) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
            assert (await r.json())["error"] == "too_many_deliveries"
    finally:
        for _, writer in held:
            writer.close()
