"""Server-sent events: each change is encoded once and the same bytes are written straight to
every open stream's socket.

No task or queue per client: a change (coalesced with the others of the same event-loop turn)
becomes one frame, framed once as an HTTP chunk, and is handed to each stream's transport. A
stream whose unsent bytes exceed `max_buffer` (a stalled or very slow browser) is aborted rather
than allowed to grow without end; the browser reconnects with `Last-Event-ID` and gets what it
missed from the recent history or, if that is gone, a snapshot (`environments` view) or a
`resync` event (the dashboard's `rows` view reloads).

Two views of the same changes: `environments` sends the API's JSON of each environment (the
contract of `GET /events`), `rows` sends the dashboard's rendered row of each environment and
the counts over all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import orjson
import structlog
from aiohttp import web
from aiohttp.http import HttpVersion11

from kollie.cache import Cache
from kollie.views import EnvironmentRenderer

log = structlog.get_logger("kollie.sse")

View = Literal["environments", "rows"]
KEEPALIVE = 15.0
"""Seconds between comment lines on an idle stream, so proxies keep it open."""
RETRY = b"retry: 2000\n\n"
RECONNECT = b'retry: 1000\nevent: reconnect\ndata: {"reason":"shutting down"}\n\n'
"""The last frame of a stream whose replica is going away: reconnect (to another) in 1 s."""


@dataclass(frozen=True, slots=True)
class Change:
    """One published change, as each view sends it."""

    sequence: int
    env: str | None
    """The environment it concerns; None for events about everything (health, counts)."""
    environments: bytes | None
    rows: bytes | None
    """A view's frame is None when no stream of that view was open: rendering is most of the
    cost of a change, so it is skipped, and a stream that would replay it gets a snapshot or a
    resync instead."""


@dataclass(eq=False, slots=True)
class Stream:
    transport: asyncio.Transport
    env: str | None
    view: View
    chunked: bool
    closed: asyncio.Future[None]
    backlog: list[bytes] | None = field(default_factory=list)
    """Frames published before the stream's first bytes were sent; None once it is live."""
    first: int = 0
    """Size of the first bytes (replay or snapshot) while they are being sent: they may be
    large and are allowed on top of the bound."""


def frame(sequence: int, event: str, data: bytes) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (sequence, event.encode(), data)


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk, exactly as aiohttp's chunked writer would send it."""
    return b"%x\r\n%s\r\n" % (len(data), data)


RowsEvent = Callable[[str], bytes | None]
"""The `rows` view's event data for an environment (None: it no longer exists)."""
CountsEvent = Callable[[], bytes]
"""The `rows` view's counts over every environment."""


@dataclass
class EventHub:
    cache: Cache
    renderer: EnvironmentRenderer
    rows_event: RowsEvent
    counts_event: CountsEvent
    history: int = 1024
    max_buffer: int = 128 * 1024
    """Unsent bytes after which a stream is dropped (it reconnects and catches up)."""
    streams: set[Stream] = field(default_factory=set)
    sequence: int = field(default_factory=time.time_ns)
    """The last event id. Ids start at the process's start time in nanoseconds, so an id from
    another process (a restarted or other replica) is never mistaken for one of ours: it gets
    a snapshot, not someone else's history."""
    recent: deque[Change] = field(default_factory=deque)
    dropped: int = 0
    _pending: set[str] = field(default_factory=set)
    _scheduled: bool = False
    _quiet_until: float = 0.0
    """Loop time before which no flush starts: after a fan-out that took T seconds, the hub
    waits T before the next, so writing to streams never takes more than half the loop and a
    burst of changes is coalesced into fewer, larger writes."""
    _unsubscribe: Callable[[], None] | None = None
    _connected: bool = True
    _counts: bytes = b""
    _keepalive: asyncio.Task[None] | None = None
    closing: bool = False
    """Set when the replica drains: every stream is told to reconnect elsewhere."""

    def start(self) -> None:
        self._unsubscribe = self.cache.subscribe(self._changed)
        self._keepalive = asyncio.create_task(self._keep_alive(), name="sse-keepalive")

    def stop(self) -> None:
        """Close every stream (browsers reconnect, to another replica if this one is going)."""
        if self._unsubscribe:
            self._unsubscribe()
        if self._keepalive is not None:
            self._keepalive.cancel()
        for stream in list(self.streams):
            self.close(stream)

    # ------------------------------------------------------------------ publishing
    def _changed(self, env: str) -> None:
        """Coalesce: every environment that changed during this loop iteration is sent once."""
        self._pending.add(env)
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            delay = self._quiet_until - loop.time()
            if delay > 0:
                loop.call_later(delay, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._scheduled = False
        pending, self._pending = self._pending, set()
        views = {stream.view for stream in self.streams}
        dashboards = "rows" in views
        changes = [
            self._change(env, environments="environments" in views, rows=dashboards)
            for env in sorted(pending)
        ]
        counts = self.counts_event() if dashboards else self._counts
        if counts != self._counts:
            self._counts = counts
            changes.append(self._record(None, lambda seq: (b"", frame(seq, "counts", counts))))
        self._fan_out(changes)
        finished = loop.time()
        self._quiet_until = finished + (finished - started)

    def _change(self, env: str, *, environments: bool, rows: bool) -> Change:
        """A changed environment's frames, for the views that have streams open."""
        rendering = self.renderer.rendering(env) if environments or rows else None
        if rendering is None and self.cache.environment(env) is None:
            gone = orjson.dumps({"name": env})
            return self._record(
                env, lambda seq: (frame(seq, "deleted", gone), frame(seq, "deleted", gone))
            )
        json = rendering.json if environments and rendering is not None else None
        row = self.rows_event(env) if rows else None
        return self._record(
            env,
            lambda seq: (
                frame(seq, "environment", json) if json is not None else None,
                frame(seq, "row", row) if row is not None else None,
            ),
        )

    def _record(
        self, env: str | None, frames: Callable[[int], tuple[bytes | None, bytes | None]]
    ) -> Change:
        """Number a change and keep it for streams that reconnect; `frames` builds each view's
        frame for that number."""
        self.sequence += 1
        change = Change(self.sequence, env, *frames(self.sequence))
        self.recent.append(change)
        while len(self.recent) > self.history:
            self.recent.popleft()
        return change

    def health(self, connected: bool) -> None:
        """Tell every page whether the cluster view is live (informers connected) or stale."""
        if connected == self._connected:
            return
        self._connected = connected
        data = frame(self.sequence, "health", orjson.dumps({"connected": connected}))
        self._fan_out([Change(self.sequence, None, data, data)])

    def _fan_out(self, changes: list[Change]) -> None:
        everything = {
            "environments": b"".join(c.environments or b"" for c in changes),
            "rows": b"".join(c.rows or b"" for c in changes),
        }
        framed: dict[tuple[str, bool], bytes] = {}
        for stream in list(self.streams):
            if stream.env is None:
                key = (stream.view, stream.chunked)
                data = framed.get(key)
                if data is None:
                    data = framed[key] = self._encoded(everything[stream.view], stream.chunked)
            else:
                data = self._encoded(self._for(stream, changes), stream.chunked)
            if data:
                self._write(stream, data)

    @staticmethod
    def _for(stream: Stream, changes: list[Change]) -> bytes:
        return b"".join(
            (c.environments if stream.view == "environments" else c.rows) or b""
            for c in changes
            if c.env is None or c.env == stream.env
        )

    @staticmethod
    def _encoded(data: bytes, chunked: bool) -> bytes:
        return chunk(data) if data and chunked else data

    def _write(self, stream: Stream, data: bytes) -> None:
        transport = stream.transport
        if transport.is_closing():
            self.close(stream)
        elif self._unsent(stream) > self.max_buffer:
            self.dropped += 1
            log.info("sse_client_too_slow", env=stream.env, view=stream.view)
            transport.abort()
            self.close(stream)
        elif stream.backlog is not None:
            stream.backlog.append(data)
        else:
            transport.write(data)

    @staticmethod
    def _unsent(stream: Stream) -> int:
        backlog = sum(map(len, stream.backlog)) if stream.backlog else 0
        return stream.transport.get_write_buffer_size() + backlog - stream.first

    def reconnect_all(self) -> None:
        """Tell every open stream, and every one opened from now on, to reconnect: the replica
        is going away, and the browser resumes on another one (`Last-Event-ID` makes that
        one replay what it missed)."""
        self.closing = True
        for stream in list(self.streams):
            self._write(stream, self._encoded(RECONNECT, stream.chunked))
            self.close(stream)

    def close(self, stream: Stream) -> None:
        self.streams.discard(stream)
        if not stream.closed.done():
            stream.closed.set_result(None)

    async def _keep_alive(self) -> None:
        comment = b": keepalive\n\n"
        while True:
            await asyncio.sleep(KEEPALIVE)
            for stream in list(self.streams):
                self._write(stream, self._encoded(comment, stream.chunked))

    # ------------------------------------------------------------------ streams
    def open(
        self,
        transport: asyncio.Transport,
        env: str | None,
        view: View,
        *,
        chunked: bool,
        since: str | None,
    ) -> tuple[Stream, bytes]:
        """A new stream and what it must be sent first: what it missed since `since` (an
        event id), or a snapshot (`environments`) or a resync (`rows`) when that is unknown."""
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stream = Stream(transport, env, view, chunked, closed)
        first = self._replay(stream, since)
        if first is None:
            first = self._snapshot(stream)
        stream.first = len(first)
        self.streams.add(stream)
        return stream, first

    def live(self, stream: Stream) -> None:
        """The stream's first bytes are sent: write what was published meanwhile, go direct."""
        backlog, stream.backlog = stream.backlog or [], None
        stream.first = 0
        for data in backlog:
            self._write(stream, data)

    def _replay(self, stream: Stream, since: str | None) -> bytes | None:
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not since or not since.isascii() or not since.isdigit() or len(since) > 20:
            return None
        last = int(since)
        if last > self.sequence:
            return None
        oldest = self.recent[0].sequence if self.recent else self.sequence + 1
        if last < oldest - 1:
            return None
        missed = [
            c
            for c in self.recent
            if c.sequence > last and (stream.env is None or c.env in (None, stream.env))
        ]
        # A change nobody of this view was listening to was not rendered then: send the
        # environment as it is now instead (once, at its last change: it subsumes the others).
        frames: list[bytes] = []
        rendered_now: set[str | None] = set()
        for change in reversed(missed):
            data = change.environments if stream.view == "environments" else change.rows
            if data is None:
                if change.env in rendered_now:
                    continue
                rendered_now.add(change.env)
                data = self._now(change, stream.view)
            frames.append(data)
        return b"".join(reversed(frames))

    def _now(self, change: Change, view: View) -> bytes:
        """A change's frame for `view`, from the current state of what it concerns."""
        if change.env is None:
            return frame(change.sequence, "counts", self.counts_event()) if view == "rows" else b""
        rendering = self.renderer.rendering(change.env)
        if rendering is None:
            return frame(change.sequence, "deleted", orjson.dumps({"name": change.env}))
        if view == "environments":
            return frame(change.sequence, "environment", rendering.json)
        row = self.rows_event(change.env)
        return frame(change.sequence, "row", row) if row is not None else b""

    def _snapshot(self, stream: Stream) -> bytes:
        if stream.view == "rows":
            # A dashboard page that missed changes renders again rather than patching rows.
            return frame(self.sequence, "resync", b"{}")
        names = [stream.env] if stream.env else self.cache.environment_names()
        items = b",".join(r.json for r in self.renderer.renderings(names))
        synced = b"true" if self.cache.certain() else b"false"
        data = b'{"items":[%s],"synced":%s}' % (items, synced)
        return frame(self.sequence, "snapshot", data)


STREAM_SEND_BUFFER = 64 * 1024


def _bound_kernel_buffer(transport: asyncio.Transport) -> None:
    """A stream's socket holds at most this much in the kernel (Linux grows it to megabytes
    on its own): what a frozen tab does not take waits in the transport, where `max_buffer`
    sees it, and a hundred frozen tabs cannot put the host's TCP memory under pressure."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)


async def serve(
    hub: EventHub, request: web.Request, env: str | None, view: View
) -> web.StreamResponse:
    """Stream changes until the browser goes away or the hub closes the stream."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    since = request.headers.get("Last-Event-ID") or request.query.get("since")
    chunked = request.version >= HttpVersion11
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    if hub.closing:
        await response.prepare(request)
        await response.write(RECONNECT)
        return response
    _bound_kernel_buffer(transport)
    stream, first = hub.open(transport, env, view, chunked=chunked, since=since)
    if chunked:
        response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        await response.write(RETRY + first)
        hub.live(stream)
        await stream.closed
    except ConnectionResetError:
        pass  # the browser went away while its first bytes were written
    finally:
        hub.close(stream)
    return response
