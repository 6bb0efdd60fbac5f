"""The in-memory object store: current objects, one global resourceVersion, and a bounded
event history from which watches resume.

Stored objects are never mutated after they are stored: every write stores a new dict, so an
event can hand the same object (and its encoded bytes) to any number of watchers safely.
"""

from __future__ import annotations

import bisect
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubesim.errors import gone
from kubesim.resources import GroupResource

ObjectKey = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped objects."""


@dataclass(slots=True)
class Event:
    """One change: ADDED, MODIFIED or DELETED, with the object after (or, for DELETED, at) it."""

    type: str
    gr: GroupResource
    obj: dict[str, Any]
    old: dict[str, Any] | None
    rv: int
    _line: bytes | None = field(default=None, repr=False)

    def line(self) -> bytes:
        """The watch-stream encoding of this event, computed once for every watcher."""
        if self._line is None:
            self._line = encode_event(self.type, self.obj)
        return self._line


def encode_event(event_type: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n").encode()


Listener = Callable[[Event], None]


class Store:
    """Objects by resource type, with a resumable history of their changes."""

    def __init__(self, *, history_size: int = 200_000) -> None:
        self._objects: dict[GroupResource, dict[ObjectKey, dict[str, Any]]] = {}
        self._order: dict[GroupResource, list[ObjectKey]] = {}
        """Each type's keys in order, dropped when a key comes or goes and sorted again when
        next asked for (updates keep it): lists page through it with a binary search."""
        self._history: deque[Event] = deque(maxlen=history_size)
        self._rv = 1
        self._compacted_rv = 0
        """Events at or below this resourceVersion can no longer be replayed."""
        self._listeners: list[Listener] = []

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def compacted_rv(self) -> int:
        return self._compacted_rv

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def get(self, gr: GroupResource, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(gr, {}).get((namespace, name))

    def keys(self, gr: GroupResource) -> list[ObjectKey]:
        """Every key of a type, in order (do not modify)."""
        order = self._order.get(gr)
        if order is None:
            order = self._order[gr] = sorted(self._objects.get(gr, {}))
        return order

    def iter(
        self, gr: GroupResource, namespace: str | None = None, *, after: ObjectKey | None = None
    ) -> Iterator[dict[str, Any]]:
        """Objects of a type in key order, optionally in one namespace, optionally only those
        whose key sorts after `after`."""
        objects = self._objects.get(gr, {})
        keys = self.keys(gr)
        lowest = (namespace, "") if namespace is not None else ("", "")
        if after is not None and after > lowest:
            start = bisect.bisect_right(keys, after)
        else:
            start = bisect.bisect_left(keys, lowest)
        # The list is never changed in place (a new one replaces it), so walking it is safe
        # even while objects come and go.
        for i in range(start, len(keys)):
            key = keys[i]
            if namespace is not None and key[0] != namespace:
                break
            obj = objects.get(key)
            if obj is not None:
                yield obj

    def count_after(self, gr: GroupResource, namespace: str | None, after: ObjectKey) -> int:
        """How many objects of a type (in `namespace`, if given) sort after `after`."""
        keys = self.keys(gr)
        start = bisect.bisect_right(keys, after)
        if namespace is None:
            return len(keys) - start
        return bisect.bisect_left(keys, (namespace + "\x00", "")) - start

    def count(self, gr: GroupResource) -> int:
        return len(self._objects.get(gr, {}))

    def types(self) -> list[GroupResource]:
        return list(self._objects)

    def put(self, gr: GroupResource, obj: dict[str, Any], *, rv: int) -> Event:
        """Store `obj` (whose metadata.resourceVersion is already `rv`) and publish the change."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        objects = self._objects.setdefault(gr, {})
        old = objects.get(key)
        objects[key] = obj
        if old is None:
            self._order.pop(gr, None)
        return self._publish(Event("MODIFIED" if old is not None else "ADDED", gr, obj, old, rv))

    def remove(
        self, gr: GroupResource, namespace: str, name: str, final: dict[str, Any], *, rv: int
    ) -> Event:
        """Remove an object; `final` is its last state with the deletion's resourceVersion."""
        old = self._objects.get(gr, {}).pop((namespace, name), None)
        self._order.pop(gr, None)
        return self._publish(Event("DELETED", gr, final, old, rv))

    def drop_type(self, gr: GroupResource) -> None:
        """Forget every object of a type (its CRD was deleted), publishing their deletion."""
        for obj in list(self.iter(gr)):
            meta = obj["metadata"]
            rv = self.next_rv()
            final = {**obj, "metadata": {**meta, "resourceVersion": str(rv)}}
            self.remove(gr, meta.get("namespace", ""), meta["name"], final, rv=rv)
        self._objects.pop(gr, None)
        self._order.pop(gr, None)

    def _publish(self, event: Event) -> Event:
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def events_since(self, rv: int, gr: GroupResource) -> list[Event]:
        """Events of a type after `rv`, or 410 Gone when history no longer reaches back to it."""
        if rv < self._compacted_rv:
            raise gone(f"too old resource version: {rv} ({self._compacted_rv + 1})")
        out: list[Event] = []
        # History is ordered by rv: walk back from the newest until we pass `rv`.
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.gr == gr:
                out.append(event)
        out.reverse()
        return out

    def compact(self) -> None:
        """Forget all history, so every resume from an older resourceVersion gets 410."""
        self._history.clear()
        self._compacted_rv = self._rv
