"""The watch verb over HTTP: a chunked stream of JSON watch events, bookmarks on idle watches
that asked for them, the 410 `ERROR` event for a resume from compacted history, and the
fault injection that cuts streams after a number of events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

from aiohttp import web

from kubesim import errors
from kubesim.errors import ApiError
from kubesim.faults import Faults
from kubesim.objects import ObjectApi
from kubesim.requests import flag
from kubesim.resources import ResourceType
from kubesim.selectors import parse_field_selector, parse_label_selector
from kubesim.watch import Watch

DEFAULT_WATCH_TIMEOUT = 1800
INITIAL_EVENTS_FORBIDDEN = (
    "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan"
)


@dataclass
class ServerSettings:
    bookmark_interval: float = 5.0
    """Seconds between BOOKMARK events on idle watches that asked for them (real: ~1 minute)."""


class WatchStreams:
    """Every open watch stream of a server, so they can all be cut at once."""

    def __init__(self, api: ObjectApi, faults: Faults, settings: ServerSettings) -> None:
        self.api = api
        self.faults = faults
        self.settings = settings
        self.watches: set[Watch] = set()

    def close_all(self) -> None:
        for w in list(self.watches):
            w.close()

    async def serve(
        self,
        request: web.Request,
        rt: ResourceType,
        version: str,
        namespace: str | None,
        name: str | None,
    ) -> web.StreamResponse:
        q = request.query
        field_text = q.get("fieldSelector", "")
        if name is not None:
            field_text = ",".join(filter(None, [field_text, f"metadata.name={name}"]))
        labels = parse_label_selector(q.get("labelSelector", ""))
        fields = parse_field_selector(field_text, rt.gr, rt.kind, rt.api_version(version))
        send_initial = flag(request, "sendInitialEvents")
        bookmarks = flag(request, "allowWatchBookmarks")
        if send_initial and q.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    {
                        "reason": "FieldValueForbidden",
                        "field": "sendInitialEvents",
                        "message": f"Forbidden: {INITIAL_EVENTS_FORBIDDEN}",
                    }
                ],
                [f"sendInitialEvents: Forbidden: {INITIAL_EVENTS_FORBIDDEN}"],
            )
        try:
            timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {q.get('timeoutSeconds')}") from None
        watch = Watch(
            self.api.store,
            rt,
            version,
            namespace if rt.namespaced else None,
            labels,
            fields,
            on_close=self.watches.discard,
        )
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watch.start(
                resource_version=q.get("resourceVersion", ""),
                send_initial_events=send_initial,
                bookmarks=bookmarks,
            )
        except ApiError as e:
            if e.code != 410:
                raise
            await response.prepare(request)
            await response.write(
                (json.dumps({"type": "ERROR", "object": e.status()}) + "\n").encode()
            )
            await response.write_eof()
            return response
        self.watches.add(watch)
        await response.prepare(request)
        await self._stream(watch, response, duration=timeout, bookmarks=bookmarks)
        return response

    async def _stream(
        self, watch: Watch, response: web.StreamResponse, *, duration: float, bookmarks: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        sent = 0
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                wait = min(remaining, self.settings.bookmark_interval) if bookmarks else remaining
                try:
                    item = await asyncio.wait_for(watch.queue.get(), timeout=wait)
                except TimeoutError:
                    if bookmarks and deadline - loop.time() > 0:
                        watch.bookmark()
                    continue
                if item is None:
                    break
                batch = [item]
                limit = self.faults.watch_event_limit
                ended = False
                while not watch.queue.empty() and (not limit or sent + len(batch) < limit):
                    nxt = watch.queue.get_nowait()
                    if nxt is None:
                        ended = True
                        break
                    batch.append(nxt)
                await response.write(b"".join(batch))
                sent += len(batch)
                if ended or (limit and sent >= limit):
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            watch.close()
            raise
        finally:
            watch.close()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
