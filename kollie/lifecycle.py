"""Whether this replica is going away: the one fact a graceful stop shares with the handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Shutdown:
    """Set once, when the process is told to stop (SIGTERM). From then on /readyz fails, so
    load balancers stop sending new requests; requests still arriving are served, over
    connections that are closed after their answer; live pages are told to reconnect; long
    waits end early with a retryable answer."""

    started: asyncio.Event = field(default_factory=asyncio.Event)

    def begin(self) -> None:
        self.started.set()

    @property
    def draining(self) -> bool:
        return self.started.is_set()
