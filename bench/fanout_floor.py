"""The floor of live updates: `python -m bench.fanout_floor PORT`.

An aiohttp server whose `/events` streams get each event encoded once and written straight to
every socket, with no cache, no rendering and no cluster behind it. `POST /emit` with a JSON
body sends that body as one event. The SSE benchmark measures Kollie against this floor with
the same clients in the same run.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

TRANSPORTS: web.AppKey[set[asyncio.Transport]] = web.AppKey("transports")


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    transport = request.transport
    assert transport is not None
    transports = request.app[TRANSPORTS]
    transports.add(transport)
    try:
        while not transport.is_closing():  # noqa: ASYNC110 - transports offer no close callback
            await asyncio.sleep(1)
    finally:
        transports.discard(transport)
    return response


async def emit(request: web.Request) -> web.Response:
    body = await request.read()
    event = b"event: environment\ndata: " + json.dumps(json.loads(body)).encode() + b"\n\n"
    # The response is chunked (HTTP/1.1 without a length): frame the chunk once, for everyone.
    frame = b"%x\r\n%s\r\n" % (len(event), event)
    transports: set[asyncio.Transport] = request.app[TRANSPORTS]
    for transport in list(transports):
        if transport.get_write_buffer_size() > 1 << 20:
            transport.close()
        else:
            transport.write(frame)
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app[TRANSPORTS] = set()
    app.router.add_get("/events", events)
    app.router.add_post("/emit", emit)
    app.router.add_get("/healthz", lambda r: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
