"""Orderings and counts over every environment, kept current change by change.

A dashboard over 10,000 environments must not look at all of them per request: the index
keeps the names in order, who owns which, which are failing and how many apps are in each
state, and updates them only for the environments the cache says changed (lazily, on the
next read).
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable

from kollie.cache import Cache
from kollie.views import STATE_ORDER, EnvironmentRenderer, Rendering, Summary


class EnvironmentIndex:
    def __init__(self, cache: Cache, renderer: EnvironmentRenderer) -> None:
        self.cache = cache
        self.renderer = renderer
        self._dirty: set[str] = set(cache.environment_names())
        self._summaries: dict[str, Summary] = {}
        self._names: list[str] = []
        self._owned: defaultdict[str, set[str]] = defaultdict(set)
        self._failing: set[str] = set()
        self._app_states: Counter[str] = Counter()
        self._sorted_failing: list[str] | None = []
        self._woken = asyncio.Event()
        self.unsubscribe = cache.subscribe(self._changed)

    def _changed(self, name: str) -> None:
        self._dirty.add(name)
        self._woken.set()

    async def keep_warm(self, *, batch: int = 200) -> None:
        """Render changed environments in the background, a batch at a time, so that no page
        view waits for thousands of renderings (after a start or a relist). Never returns."""
        while True:
            await self._woken.wait()
            self._woken.clear()
            while self._dirty:
                self._refresh(limit=batch)
                await asyncio.sleep(0)

    def _refresh(self, limit: int | None = None) -> None:
        done = 0
        while self._dirty and (limit is None or done < limit):
            done += 1
            name = self._dirty.pop()
            old = self._summaries.pop(name, None)
            if old is not None:
                self._forget(old)
            rendering = self.renderer.rendering(name)
            if rendering is not None:
                self._remember(rendering.summary)

    def _forget(self, summary: Summary) -> None:
        del self._names[bisect.bisect_left(self._names, summary.name)]
        owned = self._owned[summary.owner]
        owned.discard(summary.name)
        if not owned:
            del self._owned[summary.owner]
        if summary.failing:
            self._failing.discard(summary.name)
            self._sorted_failing = None
        self._app_states.subtract(summary.states)

    def _remember(self, summary: Summary) -> None:
        self._summaries[summary.name] = summary
        bisect.insort(self._names, summary.name)
        self._owned[summary.owner].add(summary.name)
        if summary.failing:
            self._failing.add(summary.name)
            self._sorted_failing = None
        self._app_states.update(summary.states)

    # ----------------------------------------------------------------- reads
    def __len__(self) -> int:
        self._refresh()
        return len(self._names)

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Environment names in order, `[start:stop]`."""
        self._refresh()
        return self._names[start:stop]

    def after(self, name: str, limit: int) -> list[str]:
        """Up to `limit` names that sort after `name` ("" = from the first)."""
        self._refresh()
        at = bisect.bisect_right(self._names, name) if name else 0
        return self._names[at : at + limit]

    def summary(self, name: str) -> Summary:
        """The summary of a listed environment (a name the index gave out)."""
        self._refresh()
        return self._summaries[name]

    def owned_by(self, owner: str) -> list[str]:
        self._refresh()
        return sorted(self._owned.get(owner, ()))

    def failing(self) -> list[str]:
        self._refresh()
        if self._sorted_failing is None:
            self._sorted_failing = sorted(self._failing)
        return self._sorted_failing

    def app_states(self) -> dict[str, int]:
        """How many apps are in each state, over every environment."""
        self._refresh()
        return {state: self._app_states[state] for state in STATE_ORDER}

    def search(self, *, text: str = "", state: str = "", owner: str | None = None) -> Iterable[str]:
        """Names, in order, of the environments matching every given filter."""
        self._refresh()
        text = text.lower()
        for name in self._names:
            summary = self._summaries[name]
            if text and text not in summary.search:
                continue
            if state and state not in summary.states:
                continue
            if owner is not None and summary.owner != owner:
                continue
            yield name

    def renderings(self, names: Iterable[str]) -> list[Rendering]:
        return self.renderer.renderings(names)
