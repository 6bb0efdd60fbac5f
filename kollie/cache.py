"""The in-memory view of Kollie's objects, fed by the informers, read by the API and the UI.

Reads never call the API server. Each change is projected (see :mod:`kollie.projections`);
when a projection actually changes, subscribers are told which environment it concerns.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kollie import projections as proj

KINDS = (
    "environments",
    "kustomizations",
    "imagepolicies",
    "gitrepositories",
    "ingresses",
    "events",
)

Listener = Callable[[str], None]
"""Called with the name of an environment whose view changed ("" = everything may have)."""

V = TypeVar("V")


class _Table(Generic[V]):
    """Projections of one kind by object key, with an index by environment."""

    def __init__(
        self, project: Callable[[Mapping[str, Any]], V | None], env_of: Callable[[V], str]
    ) -> None:
        self.project = project
        self.env_of = env_of
        self.rows: dict[tuple[str, str], V] = {}
        self.by_env: defaultdict[str, dict[tuple[str, str], V]] = defaultdict(dict)

    def put(self, key: tuple[str, str], view: V | None) -> set[str]:
        old = self.rows.get(key)
        if view == old:
            return set()
        changed: set[str] = set()
        if old is not None:
            env = self.env_of(old)
            self.by_env[env].pop(key, None)
            if not self.by_env[env]:
                del self.by_env[env]
            changed.add(env)
            del self.rows[key]
        if view is not None:
            env = self.env_of(view)
            self.rows[key] = view
            self.by_env[env][key] = view
            changed.add(env)
        return changed


Key = tuple[str, str]
"""(namespace, name) of an object."""


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


@dataclass(frozen=True)
class AppObjects:
    """Everything the cache knows about one app of one environment."""

    name: str
    kustomization: proj.KustomizationView | None
    policy: proj.ImagePolicyView | None
    urls: tuple[str, ...]


class Cache:
    """Projections of every kind Kollie watches, and change notification."""

    def __init__(self) -> None:
        self.environments: _Table[proj.EnvironmentRecord] = _Table(
            proj.environment, lambda v: v.name
        )
        self.kustomizations: _Table[proj.KustomizationView] = _Table(
            proj.kustomization, lambda v: v.env
        )
        self.policies: _Table[proj.ImagePolicyView] = _Table(proj.image_policy, lambda v: v.env)
        self.git_repositories: _Table[proj.GitRepositoryView] = _Table(
            proj.git_repository, lambda v: v.env
        )
        self.ingresses: _Table[proj.IngressView] = _Table(proj.ingress, lambda v: v.env)
        self.events: _Table[proj.AuditEntry] = _Table(proj.audit_entry, lambda v: v.env)
        self._tables: dict[str, _Table[Any]] = {
            "environments": self.environments,
            "kustomizations": self.kustomizations,
            "imagepolicies": self.policies,
            "gitrepositories": self.git_repositories,
            "ingresses": self.ingresses,
            "events": self.events,
        }
        self._listeners: list[Listener] = []
        self._versions: defaultdict[str, int] = defaultdict(int)
        self._counter = itertools.count(1)
        self.generation = 0
        """The version of the last change to any environment."""
        self.synced: set[str] = set()
        self.watched: set[str] = set()
        self.uncertain: set[str] = set()
        """Kinds whose watch is not running right now (starting, failed, or re-listing after a
        410): what the cache holds of them may be stale."""
        self._certain = asyncio.Event()

    # ----------------------------------------------------------- certainty (informers)
    def mark_uncertain(self, kind: str) -> None:
        """An informer of `kind` starts, or its watch failed: until it watches again, changes
        to `kind` may be missing from the cache."""
        self.watched.add(kind)
        self.uncertain.add(kind)
        self._certain.clear()

    def mark_certain(self, kind: str) -> None:
        """The informer of `kind` watches again from a listed or resumed version."""
        self.uncertain.discard(kind)
        if self.certain():
            self._certain.set()

    def certain(self) -> bool:
        """Whether every watched kind is listed and watched now: the only view on which Kollie
        decides on its own (follows an image, acts on a push, expires an environment)."""
        return bool(self.watched) and not self.uncertain and self.watched <= self.synced

    async def wait_certain(self, within: float) -> bool:
        """Wait up to `within` seconds for a certain view; whether there is one."""
        if self.certain():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._certain.wait()
        return self.certain()

    # ----------------------------------------------------------- sink (informers)
    def project(self, kind: str, obj: Mapping[str, Any]) -> tuple[Key, Any]:
        """An object's key and projection (None: not one of Kollie's), for `replace`."""
        return _key(obj), self._tables[kind].project(obj)

    def replace(self, kind: str, rows: Mapping[Key, Any]) -> None:
        """Make the table of `kind` hold exactly these projections (after a full list)."""
        table = self._tables[kind]
        changed: set[str] = set()
        for key in [k for k in table.rows if k not in rows]:
            changed |= table.put(key, None)
        for key, view in rows.items():
            changed |= table.put(key, view)
        self.synced.add(kind)
        self._changed(changed)

    def upsert(self, kind: str, obj: dict[str, Any]) -> None:
        table = self._tables[kind]
        self._changed(table.put(_key(obj), table.project(obj)))

    def delete(self, kind: str, obj: dict[str, Any]) -> None:
        self._changed(self._tables[kind].put(_key(obj), None))

    # ----------------------------------------------------------- notification
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _changed(self, envs: Iterable[str]) -> None:
        for env in envs:
            self._versions[env] = self.generation = next(self._counter)
            for listener in list(self._listeners):
                listener(env)

    def version(self, env: str) -> int:
        """Increases whenever anything about `env` changes (for memoised renderings)."""
        return self._versions.get(env, 0)

    # ----------------------------------------------------------- reads
    def is_synced(self, kinds: Iterable[str] = KINDS) -> bool:
        return all(k in self.synced for k in kinds)

    def environment_names(self) -> list[str]:
        return sorted(v.name for v in self.environments.rows.values())

    def environment(self, name: str) -> proj.EnvironmentRecord | None:
        rows = self.environments.by_env.get(name)
        return next(iter(rows.values())) if rows else None

    def apps(self, env: str) -> list[AppObjects]:
        """The apps of an environment: those with a Kustomization or an ImagePolicy."""
        ks = {v.app: v for v in self.kustomizations.by_env.get(env, {}).values()}
        ps = {v.app: v for v in self.policies.by_env.get(env, {}).values()}
        urls: defaultdict[str, set[str]] = defaultdict(set)
        for ing in self.ingresses.by_env.get(env, {}).values():
            urls[ing.app].update(ing.urls)
        return [
            AppObjects(app, ks.get(app), ps.get(app), tuple(sorted(urls.get(app, ()))))
            for app in sorted(set(ks) | set(ps))
        ]

    def git_repositories_of(self, env: str) -> list[proj.GitRepositoryView]:
        return sorted(self.git_repositories.by_env.get(env, {}).values(), key=lambda v: v.name)

    def history(self, env: str, limit: int = 50) -> list[proj.AuditEntry]:
        """The newest audit entries of an environment, newest first."""
        entries = sorted(
            self.events.by_env.get(env, {}).values(), key=lambda e: (e.time, e.name), reverse=True
        )
        return entries[:limit]

    def counts(self) -> dict[str, int]:
        return {kind: len(table.rows) for kind, table in self._tables.items()}
