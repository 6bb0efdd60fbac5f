"""Per-identity limits on long requests (live streams, waits), answered 429 with Retry-After.

Counted per replica: each replica protects its own memory and connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from kollie.limits import Limits
from web.errors import ApiError

RETRY_AFTER_SECONDS = 10
"""What a refused client is told to wait: long requests end or are closed within that."""


@dataclass
class PerIdentity:
    """At most `limit` concurrent requests of one kind per identity."""

    limit: int
    what: str
    """What is counted, in words ("open event streams")."""
    setting: str
    """The variable that sets `limit`, named in the refusal for operators."""
    _held: dict[str, int] = field(default_factory=dict)

    def held(self, identity: str) -> int:
        return self._held.get(identity, 0)

    @contextmanager
    def hold(self, identity: str) -> Iterator[None]:
        """One more for `identity` while the block runs; 429 when it already has `limit`."""
        held = self.held(identity)
        if held >= self.limit:
            raise ApiError(
                429,
                "too_many_requests",
                f"{identity} already has {held} {self.what} on this Kollie replica, the most "
                f"allowed ({self.setting}); close one or retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._held[identity] = held + 1
        try:
            yield
        finally:
            remaining = self._held[identity] - 1
            if remaining:
                self._held[identity] = remaining
            else:
                del self._held[identity]


@dataclass
class LongRequests:
    """The per-identity counters of one replica."""

    streams: PerIdentity
    waits: PerIdentity

    @classmethod
    def from_limits(cls, limits: Limits) -> LongRequests:
        return cls(
            streams=PerIdentity(
                limits.event_streams, "open event streams", "KOLLIE_LIMIT_EVENT_STREAMS"
            ),
            waits=PerIdentity(limits.waits, "waits for readiness", "KOLLIE_LIMIT_WAITS"),
        )


LONG_REQUESTS = web.AppKey("long_requests", LongRequests)
