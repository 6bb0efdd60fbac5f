"""How much of Kollie one identity (an API token, a dashboard user) may hold at once.

Live streams and `?wait=ready` requests each hold memory and a connection for as long as they
last; environments hold cluster resources until they expire. Without limits one token could
take a replica's memory with thousands of streams or fill the cluster with environments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-identity limits, each set by its own variable. Streams and waits are counted per
    replica."""

    event_streams: int = 20
    """Concurrent `/events` streams (`KOLLIE_LIMIT_EVENT_STREAMS`)."""
    waits: int = 10
    """Concurrent `GET /api/v1/environments/<env>?wait=ready` requests (`KOLLIE_LIMIT_WAITS`)."""
    wait_seconds: int = 3600
    """The longest `timeout` a wait may ask for (`KOLLIE_LIMIT_WAIT_SECONDS`)."""
    environments: int = 0
    """Environments one identity may own (`KOLLIE_LIMIT_ENVIRONMENTS`; 0: no limit). Admins
    and environments registry pushes create are not counted against anyone."""

    @classmethod
    def from_env(cls, get: Callable[[str], str | None], problems: list[str]) -> Limits:
        """Read the limits from their variables, adding a message per bad value to `problems`."""

        def number(name: str, default: int, low: int, high: int) -> int:
            raw = get(name)
            if raw is None or not raw.strip():
                return default
            value = raw.strip()
            if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
                problems.append(f"{name}={raw!r}: expected a whole number from {low} to {high}")
                return default
            return int(value)

        return cls(
            event_streams=number("KOLLIE_LIMIT_EVENT_STREAMS", cls.event_streams, 1, 100_000),
            waits=number("KOLLIE_LIMIT_WAITS", cls.waits, 1, 100_000),
            wait_seconds=number("KOLLIE_LIMIT_WAIT_SECONDS", cls.wait_seconds, 1, 86_400),
            environments=number("KOLLIE_LIMIT_ENVIRONMENTS", cls.environments, 0, 100_000),
        )
