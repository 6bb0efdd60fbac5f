"""List+watch informers: the only way cluster state enters Kollie.

One informer per resource type lists (paged), hands the whole set to its sink, then watches
from the list's resourceVersion with bookmarks, resuming from the last seen version after a
dropped stream and relisting after 410 Gone. kubernetes-asyncio's own `Watch` retries a 410
only once and has no notion of "synced", hence this loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from kollie.kube import ApiUnavailable, Gone, KubeClient, KubeError, RetryPolicy
from kollie.kube.client import Resource
from kollie.kube.errors import from_status

Key = tuple[str, str]
"""(namespace, name) of an object."""

log = structlog.get_logger("kollie.watchers")


class Sink(Protocol):
    """Where an informer delivers objects (the cache)."""

    def project(self, kind: str, obj: Mapping[str, Any]) -> tuple[Key, Any]: ...

    def replace(self, kind: str, rows: Mapping[Key, Any]) -> None: ...

    def upsert(self, kind: str, obj: dict[str, Any]) -> None: ...

    def delete(self, kind: str, obj: dict[str, Any]) -> None: ...

    def mark_uncertain(self, kind: str) -> None: ...

    def mark_certain(self, kind: str) -> None: ...


@dataclass
class InformerStats:
    """Counters exported as metrics and used by the safety checks of destructive loops."""

    lists: int = 0
    watches: int = 0
    events: int = 0
    restarts: int = 0
    expired: int = 0
    errors: int = 0
    last_error: str = ""
    last_error_at: float = 0.0
    last_list_at: float = 0.0
    connected: bool = False


@dataclass
class Informer:
    """Keeps one resource type (optionally label-selected) mirrored into a sink."""

    client: KubeClient
    resource: Resource
    kind: str
    sink: Sink
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""
    """`metadata.name=<name>` watches one object (RBAC `resourceNames` allow no wider list)."""
    watch_timeout: int = 300
    """Seconds the server keeps one watch open before we re-watch from the last version."""
    inactivity_timeout: float = 90.0
    backoff: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(attempts=1, base_delay=0.5, max_delay=5.0)
    )
    """Between failed lists or watches. Capped low: a few replicas x six informers are no load
    for an API server, and the cache is back within seconds of the API server's return."""
    on_change: Callable[[], None] | None = None
    stats: InformerStats = field(default_factory=InformerStats)
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    def healthy_since(self) -> float | None:
        """Monotonic time since which the informer has been connected without errors, if it is."""
        if not self.synced.is_set() or not self.stats.connected:
            return None
        return max(self.stats.last_error_at, self.stats.last_list_at)

    async def run(self) -> None:
        """Mirror until cancelled; never returns otherwise, never raises on API trouble."""
        resource_version: str | None = None
        failures = 0
        self.sink.mark_uncertain(self.kind)
        with structlog.contextvars.bound_contextvars(informer=self.kind):
            while True:
                try:
                    if resource_version is None:
                        resource_version = await self._relist()
                    resource_version = await self._watch(resource_version)
                    failures = 0
                except Gone:
                    # Changes since the last version are lost until the relist: not connected.
                    self.stats.expired += 1
                    self._disconnected()
                    log.info("watch_expired_relisting")
                    resource_version = None
                except KubeError as e:
                    failures += 1
                    self.stats.errors += 1
                    self._disconnected()
                    self.stats.last_error = e.message
                    self.stats.last_error_at = time.monotonic()
                    delay = self.backoff.delay(min(failures, 8))
                    log.warning(
                        "watch_failed", error=e.message, status=e.status, retry_in=round(delay, 2)
                    )
                    self._notify()
                    await asyncio.sleep(delay)

    async def _relist(self) -> str:
        # Each page is projected as it arrives: a large cluster's raw objects are never all in
        # memory at once, only their small projections.
        rows: dict[Key, Any] = {}
        resource_version = ""
        async for page in self.client.list_pages(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        ):
            for obj in page.items:
                key, view = self.sink.project(self.kind, obj)
                if view is not None:
                    rows[key] = view
            resource_version = page.resource_version
        self.sink.replace(self.kind, rows)
        self.stats.lists += 1
        self.stats.last_list_at = time.monotonic()
        first = not self.synced.is_set()
        self.synced.set()
        log.info(
            "informer_synced" if first else "informer_relisted",
            objects=len(rows),
            resource_version=resource_version,
        )
        self._notify()
        return resource_version

    def _watching(self) -> None:
        # Connected means changes flow: a list alone is a snapshot that may already be stale.
        if not self.stats.connected:
            self.stats.connected = True
            self.sink.mark_certain(self.kind)
            self._notify()

    def _disconnected(self) -> None:
        self.stats.connected = False
        self.sink.mark_uncertain(self.kind)

    async def _watch(self, resource_version: str) -> str:
        """Follow one watch stream; returns the version to resume from when it ends cleanly."""
        self.stats.watches += 1
        if self.stats.watches > 1:
            self.stats.restarts += 1
        stream = self.client.watch(
            self.resource,
            self.namespace,
            resource_version=resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
            inactivity_timeout=self.inactivity_timeout,
            on_open=self._watching,
        )
        async for event in stream:
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 0)
                raise from_status(code or 500, obj)
            version = (obj.get("metadata") or {}).get("resourceVersion")
            self._watching()
            if kind == "BOOKMARK":
                resource_version = version or resource_version
                continue
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                raise ApiUnavailable(f"unexpected watch event type {kind!r}")
            self.stats.events += 1
            if kind == "DELETED":
                self.sink.delete(self.kind, obj)
            else:
                self.sink.upsert(self.kind, obj)
            resource_version = version or resource_version
        return resource_version

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()
