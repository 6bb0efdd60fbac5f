"""Watch streams: one bounded queue of encoded events per watcher, fed by the store.

Each change is encoded once (:meth:`Event.line`) and the same bytes are queued to every watcher
that sees it unchanged; only selector transitions (an object entering or leaving a label
selector) and version conversion need per-watcher encoding.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from kubesim.resources import ResourceType
from kubesim.selectors import FieldRequirement, Requirement, fields_match, labels_match
from kubesim.store import Event, Store, encode_event

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class Watch:
    """The server side of one watch request."""

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        version: str,
        namespace: str | None,
        labels: tuple[Requirement, ...],
        fields: tuple[FieldRequirement, ...],
        *,
        max_queue: int = 50_000,
        on_close: Callable[[Watch], None] | None = None,
    ) -> None:
        self.store = store
        self.rt = rt
        self.api_version = rt.api_version(version)
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.max_queue = max_queue
        self.closed = False
        self.overflowed = False
        self._unsubscribe: Callable[[], None] | None = None
        self._on_close = on_close

    def _matches(self, obj: dict[str, Any]) -> bool:
        if self.namespace is not None and obj["metadata"].get("namespace", "") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def _line(self, event_type: str, obj: dict[str, Any], shared: Event | None) -> bytes:
        if obj.get("apiVersion") != self.api_version:
            return encode_event(event_type, {**obj, "apiVersion": self.api_version})
        if shared is not None:
            return shared.line()
        return encode_event(event_type, obj)

    def translate(self, event: Event) -> bytes | None:
        """The line this watcher sees for a change, or None if the change is invisible to it."""
        if event.gr != self.rt.gr:
            return None
        if event.type == "DELETED":
            return self._line("DELETED", event.obj, event) if self._matches(event.obj) else None
        now = self._matches(event.obj)
        before = event.old is not None and self._matches(event.old)
        if now and (before or event.old is None):
            return self._line(event.type, event.obj, event)
        if now:
            return self._line("ADDED", event.obj, None)
        if before and event.old is not None:
            gone = {
                **event.old,
                "metadata": {**event.old["metadata"], "resourceVersion": str(event.rv)},
            }
            return self._line("DELETED", gone, None)
        return None

    def start(self, *, resource_version: str, send_initial_events: bool, bookmarks: bool) -> None:
        """Queue the initial state or the replayed history, then follow live changes.

        Raises ApiError(410) when `resource_version` is older than the retained history.
        """
        if resource_version in ("", "0") or send_initial_events:
            for obj in self.store.iter(self.rt.gr, self.namespace):
                if self._matches(obj):
                    self._put(self._line("ADDED", obj, None))
            if send_initial_events and bookmarks:
                self.bookmark(initial_events_end=True)
        else:
            try:
                since = int(resource_version)
            except ValueError:
                from kubesim.errors import bad_request

                raise bad_request(f"invalid resource version: {resource_version}") from None
            for event in self.store.events_since(since, self.rt.gr):
                line = self.translate(event)
                if line is not None:
                    self._put(line)
        self._unsubscribe = self.store.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        line = self.translate(event)
        if line is not None:
            self._put(line)

    def _put(self, line: bytes | None) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= self.max_queue:
            # A watcher that cannot keep up is cut off, as kube-apiserver does; it relists.
            self.overflowed = True
            self.close()
            return
        self.queue.put_nowait(line)

    def bookmark(self, *, initial_events_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.rt.kind, "apiVersion": self.api_version, "metadata": meta}
        self._put(encode_event("BOOKMARK", obj))

    def error(self, status: dict[str, Any]) -> None:
        self._put((json.dumps({"type": "ERROR", "object": status}) + "\n").encode())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._unsubscribe:
            self._unsubscribe()
        self.queue.put_nowait(None)
        if self._on_close:
            self._on_close(self)
