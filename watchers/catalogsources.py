"""The catalog's GitRepositories and ImageRepositories, each watched alone, by name.

The chart grants Kollie these objects by name (`resourceNames`), which allows a list or watch
of one object with `fieldSelector=metadata.name=<name>` and nothing wider; there are as many
of them as the catalog has distinct sources (a handful). The set follows the catalog as it is
reloaded. These watches never hold Kollie back: they count neither for readiness nor for the
certainty its own decisions need, and a diagnosis says when one of them cannot read its object.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from kollie import labels
from kollie.cache import GIT_SOURCES, IMAGE_REPOSITORIES, Cache, Key
from kollie.catalog import Catalog
from kollie.kube import KubeClient, RetryPolicy
from watchers.informer import Informer

log = structlog.get_logger("kollie.watchers")

Ref = tuple[str, Key]
RESOURCES = {GIT_SOURCES: labels.GIT_REPOSITORY, IMAGE_REPOSITORIES: labels.IMAGE_REPOSITORY}
BACKOFF = RetryPolicy(attempts=1, base_delay=1.0, max_delay=60.0)
"""Between failed lists or watches: slower than the informers Kollie needs, since a missing
grant (403) stays missing until someone changes the chart's values."""


class OneObject:
    """An informer's sink that holds one object of the cache's catalog sources."""

    def __init__(self, cache: Cache, kind: str, key: Key) -> None:
        self.cache = cache
        self.kind = kind
        self.key = key
        self.watching_since = 0.0
        """Monotonic time the watch last started flowing (errors before it are over)."""

    def project(self, kind: str, obj: Mapping[str, Any]) -> tuple[Key, Any]:
        return self.cache.project(self.kind, obj)

    def replace(self, kind: str, rows: Mapping[Key, Any]) -> None:
        self.cache.replace_one(self.kind, self.key, rows.get(self.key))

    def upsert(self, kind: str, obj: dict[str, Any]) -> None:
        self.cache.upsert(self.kind, obj)

    def delete(self, kind: str, obj: dict[str, Any]) -> None:
        self.cache.delete(self.kind, obj)

    def mark_uncertain(self, kind: str) -> None:
        """Not one of the kinds Kollie's own decisions wait for."""

    def mark_certain(self, kind: str) -> None:
        self.watching_since = time.monotonic()
        self.cache.ref_error(self.kind, self.key, None)


def wanted(catalog: Catalog) -> set[Ref]:
    """The sources the catalog names."""
    refs: set[Ref] = set()
    for app in catalog.apps.values():
        refs.add((GIT_SOURCES, (app.git_repository.namespace, app.git_repository.name)))
        refs.add((IMAGE_REPOSITORIES, (app.image_repository.namespace, app.image_repository.name)))
    return refs


class CatalogSources:
    """Keeps one informer running per source the current catalog names."""

    def __init__(
        self,
        client: KubeClient,
        cache: Cache,
        catalog: Callable[[], Catalog],
        *,
        watch_timeout: int = 300,
        interval: float = 5.0,
    ) -> None:
        self.client = client
        self.cache = cache
        self.catalog = catalog
        self.watch_timeout = watch_timeout
        self.interval = interval
        """Seconds between two looks at the catalog (it is reloaded as often)."""
        self.tasks: dict[Ref, asyncio.Task[None]] = {}
        for kind in RESOURCES:
            cache.watch_refs(kind)

    async def run(self) -> None:
        """Follow the catalog until cancelled; a crashed informer is raised to the supervisor."""
        try:
            while True:
                await self._plan(wanted(self.catalog()))
                for task in self.tasks.values():
                    error = task.exception() if task.done() and not task.cancelled() else None
                    if error is not None:
                        raise error
                await asyncio.sleep(self.interval)
        finally:
            await self._stop(set(self.tasks))

    async def _plan(self, refs: set[Ref]) -> None:
        for ref in refs - set(self.tasks):
            kind, (namespace, name) = ref
            sink = OneObject(self.cache, kind, (namespace, name))
            informer = Informer(
                self.client,
                RESOURCES[kind],
                f"{kind}/{namespace}/{name}",
                sink,
                namespace=namespace,
                field_selector=f"metadata.name={name}",
                watch_timeout=self.watch_timeout,
                backoff=BACKOFF,
            )
            informer.on_change = self._reporter(ref, informer, sink)
            self.tasks[ref] = asyncio.create_task(informer.run(), name=f"source-{kind}-{name}")
        await self._stop(set(self.tasks) - refs)

    def _reporter(self, ref: Ref, informer: Informer, sink: OneObject) -> Callable[[], None]:
        kind, key = ref

        def report() -> None:
            # A watch failing since it last flowed (403 on list or watch, an unknown type)
            # makes the object unknown: the diagnosis says why rather than trust a stale view.
            stats = informer.stats
            if (
                not stats.connected
                and stats.last_error
                and stats.last_error_at >= sink.watching_since
            ):
                self.cache.ref_error(kind, key, stats.last_error)

        return report

    async def _stop(self, refs: set[Ref]) -> None:
        tasks = [self.tasks.pop(ref) for ref in refs if ref in self.tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for kind, key in refs:
            self.cache.forget_ref(kind, key)
        if tasks:
            log.info("catalog_sources_stopped", count=len(tasks))
