"""Everything Kollie runs in the background: one informer per kind, leader election, and the
leader's loops. Built complete in one constructor; run by a `Supervisor` from its `tasks()`;
read by `web` only through `kollie.health.HealthSource`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from kollie import labels
from kollie.cache import HELM_RELEASES, Cache
from kollie.health import Health, WatchHealth
from kollie.kube import KubeClient
from kollie.operations import Operations
from watchers.catalogsources import CatalogSources
from watchers.expiry import Expiry
from watchers.imagefollow import ImageFollower
from watchers.informer import Informer
from watchers.leader import LeaderElector
from watchers.supervisor import TaskFactory

MANAGED = f"{labels.MANAGED_SELECTOR},{labels.ENVIRONMENT}"
RECHECK_MAX_WAIT = 60.0
"""Seconds between two looks for environments falling asleep, at most (a test's clock may
jump; the wall clock may too)."""


@dataclass(frozen=True)
class Timing:
    """How long the background work waits for what; tests shorten these, production does not."""

    watch_timeout: int = 300
    """Seconds the server keeps one watch open before it is re-opened from the last version."""
    lease_duration: float = 15.0
    """Seconds the leader Lease holds without renewal; renewal is due within 2/3 of it."""
    expiry_settle: float = 60.0
    """Seconds every informer must have been healthy before expiry may delete."""
    expiry_interval: float = 30.0
    """Seconds between two expiry passes."""

    @property
    def renew_deadline(self) -> float:
        return self.lease_duration * 2 / 3

    @property
    def retry_period(self) -> float:
        return max(self.lease_duration / 7, 0.2)


def _ignore(connected: bool) -> None:
    """The default health listener: nobody to tell."""


class Background:
    """The informers that fill the cache, the leader election, and the leader's image follow
    and expiry. `on_health(connected)` is called whenever an informer's state changes."""

    def __init__(
        self,
        client: KubeClient,
        cache: Cache,
        operations: Operations,
        *,
        identity: str,
        on_health: Callable[[bool], None] = _ignore,
        timing: Timing = Timing(),
    ) -> None:
        settings = operations.settings
        self._on_health = on_health
        self.cache = cache
        self.clock = operations.clock
        kinds: list[tuple[labels.Resource, str, str | None, str]] = [
            (labels.CONFIG_MAP, "environments", settings.namespace, MANAGED),
            (labels.KUSTOMIZATION, "kustomizations", settings.namespace, MANAGED),
            (labels.IMAGE_POLICY, "imagepolicies", settings.namespace, MANAGED),
            (labels.GIT_REPOSITORY, "gitrepositories", settings.namespace, MANAGED),
            (labels.EVENT, "events", settings.namespace, MANAGED),
        ]
        if settings.url_discovery:
            kinds.append((labels.INGRESS, "ingresses", None, f"{labels.ENVIRONMENT},{labels.APP}"))
        if settings.diagnosis_helm_releases:
            # kustomize-controller labels what a Kustomization applies with its namespace.
            owned = f"{labels.FLUX_OWNER_NAMESPACE}={settings.namespace}"
            kinds.append((labels.HELM_RELEASE, HELM_RELEASES, None, owned))
            cache.watch_refs(HELM_RELEASES)
        self.informers = [
            Informer(
                client,
                resource,
                kind,
                cache,
                namespace=namespace,
                label_selector=selector,
                watch_timeout=timing.watch_timeout,
                on_change=self._changed,
            )
            for resource, kind, namespace, selector in kinds
        ]
        self.elector = LeaderElector(
            client,
            settings.namespace,
            identity,
            lease_duration=timing.lease_duration,
            renew_deadline=timing.renew_deadline,
            retry_period=timing.retry_period,
        )
        self.sources = (
            CatalogSources(
                client,
                cache,
                operations.catalog,
                watch_timeout=timing.watch_timeout,
            )
            if settings.diagnosis_sources
            else None
        )
        """The catalog's sources, for the diagnosis (never counted for readiness)."""
        self.follower = ImageFollower(cache, operations)
        self.expiry = Expiry(
            cache,
            operations,
            self.informers,
            settings.env_ttl_seconds,
            max_per_minute=settings.expiry_max_per_minute,
            dry_run=settings.expiry_dry_run,
            settle=timing.expiry_settle,
            interval=timing.expiry_interval,
        )

    def tasks(self) -> dict[str, TaskFactory]:
        """The long-running tasks, by name, for a Supervisor to run and restart."""
        tasks: dict[str, TaskFactory] = {f"informer-{i.kind}": i.run for i in self.informers}
        tasks["leader-election"] = lambda: self.elector.run(self._lead)
        if self.sources is not None:
            tasks["catalog-sources"] = self.sources.run
        tasks["sleep-rechecks"] = self._rechecks
        return tasks

    async def _rechecks(self) -> None:
        """Mark environments changed when they fall asleep or wake, so that renderings judging
        their sleep are made again then (see `Cache.due_rechecks`)."""
        rechecks = self.cache.rechecks
        while True:
            rechecks.sooner.clear()
            now = self.clock().timestamp()
            following = self.cache.due_rechecks(now)
            wait = RECHECK_MAX_WAIT if following is None else following - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(wait, 0.0), RECHECK_MAX_WAIT)):
                    await rechecks.sooner.wait()

    async def _lead(self) -> None:
        """The leader's work: wait for a synced cache, then follow images and expire."""
        await asyncio.gather(*(inf.synced.wait() for inf in self.informers))
        await asyncio.gather(self.follower.run(), self.expiry.run())

    def _changed(self) -> None:
        self._on_health(self.connected)

    @property
    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self.informers)

    @property
    def connected(self) -> bool:
        return all(inf.stats.connected for inf in self.informers)

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    def health(self) -> Health:
        return Health(
            watches=tuple(
                WatchHealth(
                    kind=inf.kind,
                    synced=inf.synced.is_set(),
                    connected=inf.stats.connected,
                    last_error=inf.stats.last_error or None,
                    restarts=inf.stats.restarts,
                    relists=inf.stats.lists,
                    errors=inf.stats.errors,
                )
                for inf in self.informers
            ),
            leader=self.is_leader,
        )

    async def wait_synced(self, timeout: float) -> bool:  # noqa: ASYNC109 - a plain deadline is the contract
        """Whether, within `timeout`, every informer has listed and its watch has been accepted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(
                asyncio.gather(*(inf.synced.wait() for inf in self.informers)), timeout
            )
        except TimeoutError:
            return False
        while not self.connected:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True
