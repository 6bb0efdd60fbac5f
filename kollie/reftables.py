"""The cache's tables of objects outside any one environment, and its clock of renderings
that hold only until a given time."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")
Key = tuple[str, str]
"""(namespace, name) of an object."""


@dataclass(frozen=True, slots=True)
class Lookup(Generic[V]):
    """What the cache knows of one object: `view` (None: it does not exist) when `known`;
    otherwise `note` says why Kollie cannot tell (not watched, not listed yet, unreadable)."""

    view: V | None
    known: bool
    note: str = ""


class RefTable(Generic[V]):
    """Projections of one kind by object key, outside the environment index: objects that any
    number of environments use (catalog sources), or that belong to one through another object
    (HelmReleases, through the Kustomization that applied them)."""

    def __init__(self, project: Callable[[Mapping[str, Any]], V | None], unwatched: str) -> None:
        self.project = project
        self.rows: dict[Key, V] = {}
        self.watched = False
        self.unwatched = unwatched
        """Why Kollie cannot tell, while the kind is not watched at all."""
        self.everything_listed = False
        """A watch of the whole kind has listed: a key it did not list does not exist."""
        self.listed: set[Key] = set()
        """Keys whose own watch (by name) has listed."""
        self.errors: dict[Key, str] = {}

    def put(self, key: Key, view: V | None) -> tuple[V | None, bool]:
        """Store `view` (None: remove); the previous view, and whether anything changed."""
        old = self.rows.get(key)
        if view == old:
            return old, False
        if view is None:
            del self.rows[key]
        else:
            self.rows[key] = view
        return old, True

    def lookup(self, key: Key) -> Lookup[V]:
        if key in self.errors:
            return Lookup(None, False, f"Kollie cannot read it: {self.errors[key]}")
        view = self.rows.get(key)
        if view is not None:
            return Lookup(view, True)
        if not self.watched:
            return Lookup(None, False, self.unwatched)
        if self.everything_listed or key in self.listed:
            return Lookup(None, True)
        return Lookup(None, False, "Kollie has not read it yet")


class Rechecks:
    """Environments whose rendering holds only until a time (an environment falls asleep or
    wakes then), earliest first; one pending time per environment."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._pending: dict[str, float] = {}
        self.sooner = asyncio.Event()
        """Set when a time earlier than every other pending one is added."""

    def add(self, env: str, when: float) -> None:
        """`env`'s rendering holds until `when` (POSIX seconds); replaces its pending time."""
        if self._pending.get(env) == when:
            return
        self._pending[env] = when
        if not self._heap or when < self._heap[0][0]:
            self.sooner.set()
        heapq.heappush(self._heap, (when, env))

    def due(self, now: float) -> tuple[set[str], float | None]:
        """The environments due by `now` (removed), and when the next one is due."""
        due: set[str] = set()
        while self._heap and self._heap[0][0] <= now:
            when, env = heapq.heappop(self._heap)
            if self._pending.get(env) == when:
                del self._pending[env]
                due.add(env)
        return due, self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._pending)
