"""Image follow: when an app's ImagePolicy resolves a new tag, point its Kustomization at it.

Runs on the leader only. It reacts to cache changes, so it does no polling; a failed write
is retried on the next change or after a short delay, never by guessing. It acts only on a
certain view (every informer listed and watching): after a failed list, during a relist or a
410 storm it writes nothing.
"""

from __future__ import annotations

import asyncio

import structlog

from kollie.cache import Cache
from kollie.kube import KubeError
from kollie.operations import OperationError, Operations

log = structlog.get_logger("kollie.imagefollow")


class ImageFollower:
    def __init__(self, cache: Cache, operations: Operations, *, retry_delay: float = 2.0) -> None:
        self.cache = cache
        self.operations = operations
        self.retry_delay = retry_delay
        self.followed = 0
        self.deferred = 0
        """Times it found work but waited for a whole view of the cluster."""

    def pending(self, env: str) -> list[tuple[str, str]]:
        """(app, tag) pairs of an environment whose Kustomization lags its ImagePolicy."""
        out = []
        for app in self.cache.apps(env):
            k, p = app.kustomization, app.policy
            if k is None or p is None or not p.latest_tag or k.deleting:
                continue
            if p.observed_generation < p.generation or p.latest_tag == k.image_tag:
                continue
            out.append((app.name, p.latest_tag))
        return out

    async def run(self) -> None:
        dirty: set[str] = set(self.cache.environment_names())
        wake = asyncio.Event()
        wake.set()

        def changed(env: str) -> None:
            if env:
                dirty.add(env)
            else:
                dirty.update(self.cache.environment_names())
            wake.set()

        unsubscribe = self.cache.subscribe(changed)
        try:
            while True:
                await wake.wait()
                wake.clear()
                if not self.cache.certain():
                    self.deferred += 1
                if not await self.cache.wait_certain(self.retry_delay):
                    # A watch is down or re-listing: a tag seen now may be older than the one
                    # already applied. Keep what is dirty and look again once the view is whole.
                    wake.set()
                    continue
                batch, dirty_now = sorted(dirty), dirty
                dirty_now.clear()
                retry = False
                for env in batch:
                    for app, tag in self.pending(env):
                        try:
                            if await self.operations.follow_image(env, app, tag):
                                self.followed += 1
                        except (KubeError, OperationError) as e:
                            log.warning(
                                "image_follow_failed",
                                environment=env,
                                app=app,
                                tag=tag,
                                error=str(e),
                            )
                            dirty.add(env)
                            retry = True
                if retry:
                    await asyncio.sleep(self.retry_delay)
                    wake.set()
        finally:
            unsubscribe()
