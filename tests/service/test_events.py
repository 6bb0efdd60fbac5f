"""The live stream: a snapshot on connect, then each change, resume or resync."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from kollie.cache import Cache
from kollie.views import EnvironmentRenderer
from tests.helpers import eventually
from tests.service.conftest import AUTH, Kollie, StartKollie
from web import sse

MERGE = "application/merge-patch+json"
READY = {
    "type": "Ready",
    "status": "True",
    "reason": "ReconciliationSucceeded",
    "observedGeneration": 1,
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


async def _read_events(
    response: aiohttp.ClientResponse, count: int, within: float = 5.0
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(within):
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if "event" in current:
                    events.append(current)
                    if len(events) >= count:
                        return events
                current = {}
            elif line.startswith(("id:", "event:", "data:")):
                key, _, value = line.partition(": ")
                current[key] = json.loads(value) if key == "data" else value
    return events


async def test_snapshot_then_changes(kollie: Kollie) -> None:
    await kollie.call("PUT", "/api/v1/environments/live", json={"apps": {"api": {}}})
    async with kollie.http.get(kollie.url("/events"), headers=AUTH) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        (snapshot,) = await _read_events(r, 1)
        assert snapshot["event"] == "snapshot"
        assert [e["name"] for e in snapshot["data"]["items"]] == ["live"]
        await kollie.call("POST", "/api/v1/environments/live/extend", json={"hours": 1})
        events = await _read_events(r, 1)
        assert events[0]["event"] == "environment" and events[0]["data"]["name"] == "live"
        last_id = events[0]["id"]
    await kollie.call("POST", "/api/v1/environments/live/apps", json={"name": "search"})
    async with kollie.http.get(
        kollie.url("/events?env=live"), headers={**AUTH, "Last-Event-ID": last_id}
    ) as r:
        missed = await _read_events(r, 1)
        assert missed[0]["event"] == "environment", (
            "a reconnecting client gets what it missed, not a snapshot"
        )
        assert int(missed[0]["id"]) > int(last_id)
    async with kollie.http.get(
        kollie.url("/events"), headers={**AUTH, "Last-Event-ID": "999999"}
    ) as r:
        (resync,) = await _read_events(r, 1)
        assert resync["event"] == "snapshot", "an unknown position gets a fresh snapshot"


async def test_events_need_identity_and_a_known_environment(kollie: Kollie) -> None:
    async with kollie.http.get(kollie.url("/events")) as r:
        assert r.status == 401
    async with kollie.http.get(kollie.url("/events?env=ghost"), headers=AUTH) as r:
        assert r.status == 404


async def test_a_stalled_client_is_dropped_and_nobody_else_waits(kollie: Kollie) -> None:
    """A browser that stops reading is cut off once its unsent bytes pass the bound (it will
    reconnect and catch up); a reading client keeps getting every change meanwhile."""
    await kollie.call("PUT", "/api/v1/environments/busy", json={"apps": {"api": {}}})
    kollie.services.hub.max_buffer = 16 * 1024
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stalled, (kollie.server.host, kollie.server.port))
    request = (
        f"GET /events HTTP/1.1\r\nHost: kollie\r\nAuthorization: {AUTH['Authorization']}\r\n\r\n"
    )
    await loop.sock_sendall(stalled, request.encode())
    status_url = (
        f"{kollie.cluster.url}/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie"
        "/kustomizations/busy-api/status"
    )
    try:
        async with kollie.http.get(kollie.url("/events"), headers=AUTH) as reader:
            await _read_events(reader, 1)  # the snapshot
            await eventually(lambda: len(kollie.services.hub.streams) == 2, message="2 streams")
            for round in range(5000):
                message = f"round {round} " + "x" * 2000
                patch = {"status": {"conditions": [{**READY, "message": message}]}}
                async with kollie.http.patch(
                    status_url, json=patch, headers={"Content-Type": MERGE}
                ) as r:
                    assert r.status == 200, await r.text()
                (event,) = await _read_events(reader, 1)
                assert event["data"]["name"] == "busy"
                if kollie.services.hub.dropped:
                    break
            assert kollie.services.hub.dropped == 1, "the stalled stream was dropped"
            assert len(kollie.services.hub.streams) == 1, "the reading client still streams"
    finally:
        stalled.close()


async def test_pages_are_told_when_the_cluster_view_may_be_stale(kollie: Kollie) -> None:
    async with kollie.http.get(kollie.url("/events"), headers=AUTH) as r:
        await _read_events(r, 1)  # the snapshot
        await kollie.cluster._unserve()
        try:
            (health,) = await _read_events(r, 1, within=15)
            assert health["event"] == "health" and health["data"] == {"connected": False}
        finally:
            await kollie.cluster._serve()
        (back,) = await _read_events(r, 1, within=15)
        assert back["event"] == "health" and back["data"] == {"connected": True}


async def test_a_stream_whose_client_leaves_ends_cancelled() -> None:
    """aiohttp cancels the handler of a client that went away: the stream must let that
    cancellation through (so shutdown and task groups see it), not finish as if it had ended."""
    cache = Cache()
    hub = sse.EventHub(
        cache, EnvironmentRenderer(cache), rows_event=lambda env: None, counts_event=lambda: b"{}"
    )
    ended: list[str] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        try:
            response = await sse.serve(hub, request, None, "environments")
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        ended.append("returned")
        return response

    app = web.Application()
    app.router.add_get("/events", stream)
    hub.start()
    try:
        async with TestServer(app) as server, aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/events")) as r:
                assert (await r.content.readline()).startswith(b"retry:")
                assert len(hub.streams) == 1
            await eventually(lambda: ended, message="the handler to end")
    finally:
        hub.stop()
    assert ended == ["cancelled"]
    assert not hub.streams


async def test_a_dashboard_gets_the_rows_that_changed_while_it_was_loading(
    start_kollie: StartKollie,
) -> None:
    """A change that happens between a page's rendering and its stream's connection (after
    every form's redirect) reaches the page as its row, not as a resync."""
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    user = {"X-Auth-Request-Email": "dev@example.com"}
    async with kollie.http.get(kollie.url("/"), headers=user) as r:
        page = await r.text()
    since = re.search(r"since=(\d+)", page)
    assert since is not None, "the page says where its stream starts"
    status, _ = await kollie.call("PUT", "/api/v1/environments/late", json={"apps": {"api": {}}})
    assert status == 201
    url = kollie.url(f"/events?view=rows&since={since[1]}")
    async with kollie.http.get(url, headers=user) as r:
        events = await _read_events(r, 1)
    assert events[0]["event"] == "row" and events[0]["data"]["name"] == "late", events
