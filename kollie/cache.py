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

from kollie import fluxviews
from kollie import projections as proj
from kollie.reftables import Lookup, Rechecks, RefTable

KINDS = (
    "environments",
    "kustomizations",
    "imagepolicies",
    "gitrepositories",
    "ingresses",
    "events",
)
IMAGE_REPOSITORIES = "imagerepositories"
"""The catalog's ImageRepositories (each watched by name)."""
GIT_SOURCES = "gitsources"
"""The catalog's GitRepositories (each watched by name)."""
HELM_RELEASES = "helmreleases"
"""HelmReleases that Kollie's Kustomizations applied (one cluster-wide watch, by label)."""

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
Ref = tuple[str, Key]
"""(kind, key) of an object outside any one environment."""


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
        self.image_repositories: RefTable[fluxviews.ImageRepositoryView] = RefTable(
            fluxviews.image_repository,
            "Kollie does not watch the catalog's ImageRepositories (KOLLIE_DIAGNOSIS_SOURCES)",
        )
        self.git_sources: RefTable[fluxviews.SourceView] = RefTable(
            fluxviews.git_source,
            "Kollie does not watch the catalog's GitRepositories (KOLLIE_DIAGNOSIS_SOURCES)",
        )
        self.helm_releases: RefTable[fluxviews.HelmReleaseView] = RefTable(
            fluxviews.helm_release,
            "Kollie does not read HelmReleases (KOLLIE_DIAGNOSIS_HELM_RELEASES)",
        )
        self._refs: dict[str, RefTable[Any]] = {
            IMAGE_REPOSITORIES: self.image_repositories,
            GIT_SOURCES: self.git_sources,
            HELM_RELEASES: self.helm_releases,
        }
        self._dependents: dict[Ref, set[str]] = {}
        self._depends: dict[str, frozenset[Ref]] = {}
        self.rechecks = Rechecks()
        """When renderings that depend on the time stop holding (an environment sleeps)."""
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
        table = self._refs.get(kind) or self._tables[kind]
        return _key(obj), table.project(obj)

    def replace(self, kind: str, rows: Mapping[Key, Any]) -> None:
        """Make the table of `kind` hold exactly these projections (after a full list)."""
        if kind in self._refs:
            refs = self._refs[kind]
            for key in [k for k in refs.rows if k not in rows]:
                self._put_ref(kind, key, None)
            for key, view in rows.items():
                self._put_ref(kind, key, view)
            if not refs.everything_listed and kind == HELM_RELEASES:
                # What Kollie "has not read yet" is now known missing, for every app that
                # lists HelmReleases (once, at the first sync).
                self._changed({k.env for k in self.kustomizations.rows.values() if k.helm_releases})
            refs.everything_listed = True
            self.synced.add(kind)
            return
        table = self._tables[kind]
        changed: set[str] = set()
        for key in [k for k in table.rows if k not in rows]:
            changed |= table.put(key, None)
        for key, view in rows.items():
            changed |= table.put(key, view)
        self.synced.add(kind)
        self._changed(changed)

    def replace_one(self, kind: str, key: Key, view: Any) -> None:
        """After a list of the one object `key` of `kind` (a watch by name): it is `view`."""
        refs = self._refs[kind]
        first = key not in refs.listed
        refs.listed.add(key)
        if not self._put_ref(kind, key, view) and first:
            self._changed(tuple(self._dependents.get((kind, key), ())))

    def upsert(self, kind: str, obj: dict[str, Any]) -> None:
        if kind in self._refs:
            self._put_ref(kind, _key(obj), self._refs[kind].project(obj))
            return
        table = self._tables[kind]
        self._changed(table.put(_key(obj), table.project(obj)))

    def delete(self, kind: str, obj: dict[str, Any]) -> None:
        if kind in self._refs:
            self._put_ref(kind, _key(obj), None)
            return
        self._changed(self._tables[kind].put(_key(obj), None))

    # ----------------------------------------------------------- objects outside environments
    def watch_refs(self, kind: str) -> None:
        """Kollie watches objects of `kind` (settings allow it): a lookup may say "missing"."""
        self._refs[kind].watched = True

    def ref_error(self, kind: str, key: Key, error: str | None) -> None:
        """The watch of `key` fails with `error`, or (None) works again."""
        refs = self._refs[kind]
        if refs.errors.get(key) == error:
            return
        if error is None:
            refs.errors.pop(key, None)
        else:
            refs.errors[key] = error
        self._changed(tuple(self._dependents.get((kind, key), ())))

    def forget_ref(self, kind: str, key: Key) -> None:
        """`key` is no longer watched (the catalog dropped it)."""
        refs = self._refs[kind]
        known = key in refs.listed or key in refs.errors
        refs.listed.discard(key)
        refs.errors.pop(key, None)
        if not self._put_ref(kind, key, None) and known:
            self._changed(tuple(self._dependents.get((kind, key), ())))

    def lookup(self, kind: str, key: Key) -> Lookup[Any]:
        return self._refs[kind].lookup(key)

    def _put_ref(self, kind: str, key: Key, view: Any) -> bool:
        """Store a projection and tell whom it concerns; whether it changed."""
        old, changed = self._refs[kind].put(key, view)
        if not changed:
            return False
        if kind == HELM_RELEASES:
            # Every app's state includes its HelmReleases: tell the environment of the
            # Kustomization that applied it (found through that Kustomization).
            owners = {v.owner for v in (old, view) if v is not None}
            self._changed(
                k.env for k in (self.kustomizations.rows.get(o) for o in owners) if k is not None
            )
        else:
            self._changed(tuple(self._dependents.get((kind, key), ())))
        return True

    def depend(self, env: str, refs: Iterable[Ref]) -> None:
        """`env`'s current rendering read these objects: a change of any marks it changed.
        Only renderings that read them register (a Ready app reads none), so a rescan of an
        ImageRepository that 10,000 environments use re-renders only those it explains."""
        new = frozenset(refs)
        old = self._depends.pop(env, frozenset())
        for ref in old - new:
            envs = self._dependents.get(ref)
            if envs is not None:
                envs.discard(env)
                if not envs:
                    del self._dependents[ref]
        for ref in new - old:
            self._dependents.setdefault(ref, set()).add(env)
        if new:
            self._depends[env] = new

    def due_rechecks(self, now: float) -> float | None:
        """Mark changed every environment whose rendering stopped holding by `now`; when the
        next one stops (POSIX seconds), if any."""
        due, following = self.rechecks.due(now)
        self._changed(due)
        return following

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

    def git_repository(self, key: Key) -> proj.GitRepositoryView | None:
        """One of the environments' own GitRepositories (copies following a branch)."""
        return self.git_repositories.rows.get(key)

    def git_repositories_of(self, env: str) -> list[proj.GitRepositoryView]:
        return sorted(self.git_repositories.by_env.get(env, {}).values(), key=lambda v: v.name)

    def history(self, env: str, limit: int = 50) -> list[proj.AuditEntry]:
        """The newest audit entries of an environment, newest first."""
        entries = sorted(
            self.events.by_env.get(env, {}).values(), key=lambda e: (e.time, e.name), reverse=True
        )
        return entries[:limit]

    def counts(self) -> dict[str, int]:
        counts = {kind: len(table.rows) for kind, table in self._tables.items()}
        return counts | {kind: len(refs.rows) for kind, refs in self._refs.items()}
