"""Everything Kollie runs in the background: one informer per kind, leader election, and the
leader's loops. `web` reads its state for /readyz and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from kollie import labels
from kollie.cache import Cache
from kollie.kube import KubeClient
from kollie.operations import Operations
from watchers.expiry import Expiry
from watchers.imagefollow import ImageFollower
from watchers.informer import Informer
from watchers.leader import LeaderElector
from watchers.supervisor import Supervisor

log = structlog.get_logger("kollie.runtime")

MANAGED = f"{labels.MANAGED_SELECTOR},{labels.ENVIRONMENT}"


@dataclass
class Background:
    client: KubeClient
    cache: Cache
    operations: Operations
    namespace: str
    identity: str
    watch_timeout: int = 300
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    on_change: Callable[[], None] | None = None
    supervisor: Supervisor = field(default_factory=Supervisor)
    informers: list[Informer] = field(default_factory=list)
    elector: LeaderElector | None = None
    follower: ImageFollower | None = None
    expiry: Expiry | None = None
    expiry_settle: float = 60.0
    expiry_interval: float = 30.0
    url_discovery: bool = True

    def __post_init__(self) -> None:
        def informer(
            resource: labels.Resource, kind: str, namespace: str | None, selector: str
        ) -> Informer:
            return Informer(
                self.client,
                resource,
                kind,
                self.cache,
                namespace=namespace,
                label_selector=selector,
                watch_timeout=self.watch_timeout,
                on_change=self.on_change,
            )

        self.informers = [
            informer(labels.CONFIG_MAP, "environments", self.namespace, MANAGED),
            informer(labels.KUSTOMIZATION, "kustomizations", self.namespace, MANAGED),
            informer(labels.IMAGE_POLICY, "imagepolicies", self.namespace, MANAGED),
            informer(labels.GIT_REPOSITORY, "gitrepositories", self.namespace, MANAGED),
            informer(labels.EVENT, "events", self.namespace, MANAGED),
        ]
        if self.url_discovery:
            self.informers.append(
                informer(labels.INGRESS, "ingresses", None, f"{labels.ENVIRONMENT},{labels.APP}")
            )
        self.elector = LeaderElector(
            self.client,
            self.namespace,
            self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
        )
        self.follower = ImageFollower(self.cache, self.operations)
        settings = self.operations.settings
        self.expiry = Expiry(
            self.cache,
            self.operations,
            self.informers,
            settings.env_ttl_seconds,
            max_per_minute=settings.expiry_max_per_minute,
            dry_run=settings.expiry_dry_run,
            settle=self.expiry_settle,
            interval=self.expiry_interval,
        )

    def start(self) -> None:
        for inf in self.informers:
            self.supervisor.start(f"informer-{inf.kind}", inf.run)
        assert self.elector is not None
        elector = self.elector
        self.supervisor.start("leader-election", lambda: elector.run(self._lead))

    async def _lead(self) -> None:
        """The leader's work: wait for a synced cache, then follow images and expire."""
        await asyncio.gather(*(inf.synced.wait() for inf in self.informers))
        assert self.follower is not None and self.expiry is not None
        await asyncio.gather(self.follower.run(), self.expiry.run())

    async def stop(self, grace: float = 5.0) -> None:
        await self.supervisor.stop(grace)

    @property
    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self.informers)

    @property
    def connected(self) -> bool:
        return all(inf.stats.connected for inf in self.informers)

    @property
    def is_leader(self) -> bool:
        return bool(self.elector and self.elector.is_leader)

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
