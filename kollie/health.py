"""What the web application may know of the background work: facts, not handles.

The watchers implement `HealthSource`; `web/` reads it for /readyz, /metrics and the pages'
live indicator. Neither package imports the other: the composition root hands the one to the
other as this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WatchHealth:
    """One informer (one resource type mirrored into the cache) at one moment."""

    kind: str
    synced: bool
    """It has listed at least once, so the cache holds a complete set of this kind."""
    connected: bool
    """Its watch is open: changes flow, so the cache is not a stale snapshot."""
    last_error: str | None
    restarts: int
    """Watch streams re-opened after the first."""
    relists: int
    """Full lists (the first, and each after a 410 Gone)."""
    errors: int
    """Failed list or watch calls."""


@dataclass(frozen=True)
class Health:
    """The background work at one moment: every informer, and whether this replica leads."""

    watches: tuple[WatchHealth, ...]
    leader: bool
    """This replica holds the leader Lease (it runs image follow and expiry)."""

    @property
    def synced(self) -> bool:
        return all(w.synced for w in self.watches)

    @property
    def connected(self) -> bool:
        return all(w.connected for w in self.watches)

    @property
    def ready(self) -> bool:
        """Every cache complete and live: what /readyz answers 200 for."""
        return self.synced and self.connected


class HealthSource(Protocol):
    """Something that can say how the background work is doing right now."""

    def health(self) -> Health: ...
