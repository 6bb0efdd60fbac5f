"""Server-sent events: each change of an environment is encoded once and the same bytes are
queued to every connected stream.

A stream whose bounded buffer fills (a slow or stalled browser) is closed rather than allowed
to grow without end; the browser reconnects with `Last-Event-ID` and either replays what it
missed from the recent history or, if that is gone, receives a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from kollie.cache import Cache
from kollie.views import EnvironmentRenderer

log = structlog.get_logger("kollie.sse")

KEEPALIVE = 15.0
"""Seconds between comment lines on an idle stream, so proxies keep it open."""


@dataclass(eq=False)
class Stream:
    env: str | None
    queue: asyncio.Queue[bytes | None]
    dropped: bool = False


@dataclass
class EventHub:
    cache: Cache
    renderer: EnvironmentRenderer
    buffer: int = 256
    history: int = 1024
    streams: set[Stream] = field(default_factory=set)
    sequence: int = 0
    recent: deque[tuple[int, str, bytes]] = field(default_factory=deque)
    _pending: set[str] = field(default_factory=set)
    _scheduled: bool = False
    _unsubscribe: Callable[[], None] | None = None
    _connected: bool = True

    def start(self) -> None:
        self._unsubscribe = self.cache.subscribe(self._changed)

    def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        for stream in list(self.streams):
            self._close(stream)

    def _changed(self, env: str) -> None:
        """Coalesce: every environment that changed during this loop iteration is sent once."""
        self._pending.update(self.cache.environment_names() if env == "" else [env])
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, set()
        for env in sorted(pending):
            body = self.renderer.one(env)
            self.publish(
                env, "environment" if body is not None else "deleted", body or {"name": env}
            )

    def health(self, connected: bool) -> None:
        """Tell every page whether the cluster view is live (informers connected) or may be stale."""
        if connected == self._connected:
            return
        self._connected = connected
        frame = encode(self.sequence, "health", {"connected": connected})
        for stream in list(self.streams):
            self._put(stream, frame)

    def publish(self, env: str, event: str, body: dict[str, Any]) -> None:
        self.sequence += 1
        frame = encode(self.sequence, event, body)
        self.recent.append((self.sequence, env, frame))
        while len(self.recent) > self.history:
            self.recent.popleft()
        for stream in list(self.streams):
            if stream.env is None or stream.env == env:
                self._put(stream, frame)

    def _put(self, stream: Stream, frame: bytes) -> None:
        try:
            stream.queue.put_nowait(frame)
        except asyncio.QueueFull:
            stream.dropped = True
            log.info("sse_client_too_slow", env=stream.env)
            self._close(stream)

    def _close(self, stream: Stream) -> None:
        self.streams.discard(stream)
        with contextlib.suppress(asyncio.QueueFull):
            stream.queue.put_nowait(None)

    def open(self, env: str | None, last_event_id: str | None) -> tuple[Stream, list[bytes]]:
        """A new stream and what it must be sent first: missed events, or a snapshot."""
        stream = Stream(env, asyncio.Queue(self.buffer + 1))
        first: list[bytes] = []
        replay = self._replay(env, last_event_id)
        if replay is not None:
            first = replay
        else:
            names = [env] if env else self.cache.environment_names()
            items = [b for b in (self.renderer.one(n) for n in names) if b is not None]
            first = [
                encode(self.sequence, "snapshot", {"items": items, "synced": self.cache.certain()})
            ]
        self.streams.add(stream)
        return stream, first

    def _replay(self, env: str | None, last_event_id: str | None) -> list[bytes] | None:
        if not last_event_id or not last_event_id.isdigit():
            return None
        last = int(last_event_id)
        if (
            last > self.sequence
            or (self.recent and last < self.recent[0][0] - 1)
            or (not self.recent and last != self.sequence)
        ):
            return None
        return [
            frame for seq, name, frame in self.recent if seq > last and (env is None or name == env)
        ]


def encode(sequence: int, event: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"))
    return f"id: {sequence}\nevent: {event}\ndata: {data}\n\n".encode()


async def serve(hub: EventHub, request: web.Request, env: str | None) -> web.StreamResponse:
    stream, first = hub.open(env, request.headers.get("Last-Event-ID"))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n" + b"".join(first))
        while True:
            try:
                frame = await asyncio.wait_for(stream.queue.get(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if frame is None:
                break
            frames = [frame]
            while not stream.queue.empty():
                more = stream.queue.get_nowait()
                if more is None:
                    break
                frames.append(more)
            await response.write(b"".join(frames))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.streams.discard(stream)
    return response
