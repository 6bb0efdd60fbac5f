"""Gathering an app's chain from the cache, for `kollie.diagnosis`.

A `ChainReader` serves one rendering of one environment. It records the objects outside the
environment that the rendering read (the catalog's ImageRepositories and GitRepositories) and
until when its judgement of sleep holds, so the cache can mark the environment changed when
any of them changes: `finish` hands both to the cache. Ready apps read nothing of them.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from kollie import uptime
from kollie.cache import GIT_SOURCES, HELM_RELEASES, IMAGE_REPOSITORIES, AppObjects, Cache, Ref
from kollie.diagnosis import Diagnosis, diagnose
from kollie.diagnosis_links import Chain, GitSource
from kollie.diagnosis_sleep import Sleep, sleep_state
from kollie.fluxviews import HelmReleaseView
from kollie.projections import EnvironmentRecord
from kollie.reftables import Lookup
from kollie.status import AppStatus, app_status


class ChainReader:
    def __init__(
        self, cache: Cache, record: EnvironmentRecord, *, namespace: str, now: datetime
    ) -> None:
        self.cache = cache
        self.env = record.name
        self.namespace = namespace
        self.record = record
        self.now = now
        self.reads: set[Ref] = set()
        self.diagnosed = False

    def status(self, app: AppObjects) -> AppStatus:
        """The app's state, its HelmReleases included as far as Kollie reads them."""
        k = app.kustomization
        releases: list[HelmReleaseView] = []
        for key in k.helm_releases if k else ():
            release = self.cache.helm_releases.rows.get(key)
            if release is not None:
                releases.append(release)
        return app_status(k, app.policy, releases)

    @functools.cached_property
    def _window(self) -> uptime.Uptime | None:
        # Only renderings with an app to diagnose look at the window (most are all Ready).
        return uptime.from_json(self.record.settings.get("uptime"))

    @functools.cached_property
    def sleep(self) -> Sleep | None:
        return sleep_state(self._window, self.now)

    def diagnosis(self, app: AppObjects, status: AppStatus) -> Diagnosis | None:
        if status.state == "Ready":
            return None
        self.diagnosed = True
        return diagnose(self.chain(app, status))

    def chain(self, app: AppObjects, status: AppStatus) -> Chain:
        k, policy = app.kustomization, app.policy
        repository = policy.repository if policy else None
        source: Lookup[GitSource] | None = None
        if k is not None and (k.source_kind or "GitRepository") == "GitRepository":
            source = self._source(k.source_namespace, k.source_name)
        return Chain(
            env=self.env,
            app=app.name,
            namespace=self.namespace,
            status=status,
            kustomization=k,
            policy=policy,
            image_repository=self._read(IMAGE_REPOSITORIES, repository) if repository else None,
            source=source,
            helm_releases=tuple(
                (key, self.cache.lookup(HELM_RELEASES, key))
                for key in (k.helm_releases if k else ())
            ),
            sleep=self.sleep,
            window=self._window.downscaler_value() if self._window else "",
        )

    def _source(self, namespace: str, name: str) -> Lookup[GitSource]:
        if namespace == self.namespace:
            # The environment's own copy (following a branch) is one of its objects.
            copy = self.cache.git_repository((namespace, name))
            return Lookup(copy, True)
        return self._read(GIT_SOURCES, (namespace, name))

    def _read(self, kind: str, key: tuple[str, str]) -> Lookup[Any]:
        self.reads.add((kind, key))
        return self.cache.lookup(kind, key)

    def finish(self) -> None:
        """Tell the cache what this rendering depends on beyond the environment's objects."""
        self.cache.depend(self.env, self.reads)
        if not self.diagnosed:
            return
        changes_at = self.sleep.changes_at if self.sleep else None
        if changes_at is not None:
            self.cache.rechecks.add(self.env, changes_at.timestamp())
