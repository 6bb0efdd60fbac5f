"""A simulated git host: repositories by URL, with branches and tags pointing at commits, and
each commit holding the manifests at its paths.

A path is a directory of the repository; its manifests are YAML text (which may contain Flux
`${var}` substitutions) or a list of objects.  A directory also contains everything below it,
so a Kustomization with `path: ./apps` builds `./apps/web` and `./apps/api` together, as
kustomize-controller does for a directory without a `kustomization.yaml`.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
import yaml

log = structlog.get_logger("kubesim.flux")

Manifests = str | list[dict[str, Any]] | dict[str, Any]
"""The objects at one path: YAML text, a list of objects, or a single object."""

_SHA = re.compile(r"^[0-9a-f]{40}$")
_counter = itertools.count(1)


class GitError(Exception):
    """A failed clone or checkout, with the message go-git would give."""


@dataclass(frozen=True)
class Commit:
    sha: str
    files: Mapping[str, str]
    """Normalised directory path -> YAML text of the manifests directly in it."""


@dataclass
class Repository:
    url: str
    branches: dict[str, str] = field(default_factory=dict)
    """Branch -> commit sha."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tag -> commit sha."""
    commits: dict[str, Commit] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    commit: Commit
    revision: str
    """The artifact revision Flux writes: `main@sha1:<sha>`, `v1.0.0@sha1:<sha>`, `sha1:<sha>`."""


def normalise_path(path: str) -> str:
    """`./apps/web/` -> `apps/web`; the root is ``."""
    return "/".join(p for p in path.strip().split("/") if p not in ("", "."))


class _Dumper(yaml.SafeDumper):
    """Quotes strings holding `${...}`, so a substituted value stays a string, as it does in a
    hand-written manifest that quotes it."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style='"' if "${" in value else None
    )


_Dumper.add_representer(str, _represent_str)


def to_yaml(manifests: Manifests) -> str:
    if isinstance(manifests, str):
        return manifests
    docs = [manifests] if isinstance(manifests, dict) else list(manifests)
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False) if docs else ""


def new_sha(seed: str) -> str:
    return hashlib.sha1(f"{seed}:{next(_counter)}".encode()).hexdigest()


class GitHost:
    """Repositories by URL; a push or new repository is announced to subscribers."""

    def __init__(self) -> None:
        self.repositories: dict[str, Repository] = {}
        self._subscribers: list[Callable[[str], None]] = []
        self._deleted: dict[tuple[str, str], str] = {}

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """`callback(url)` after every change to a repository; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def add_repository(
        self,
        url: str,
        *,
        branches: Mapping[str, str | None] | Iterable[str] | None = None,
        paths: Mapping[str, Manifests] | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> Repository:
        """Create (or replace) a repository whose branches all start at one commit of `paths`.

        `branches` maps a branch to a commit sha (or None for a new one), or lists branch names;
        `tags` maps tag names to a sha or None (the first branch's commit)."""
        if not url:
            raise ValueError("a repository needs a URL")
        files = {normalise_path(p): to_yaml(m) for p, m in (paths or {}).items()}
        wanted = (
            dict(branches) if isinstance(branches, Mapping) else dict.fromkeys(branches or ["main"])
        )
        if not wanted:
            raise ValueError("a repository needs at least one branch")
        repo = Repository(url)
        for branch, sha in wanted.items():
            commit = Commit(_checked_sha(sha) if sha else new_sha(f"{url}@{branch}"), files)
            repo.commits[commit.sha] = commit
            repo.branches[branch] = commit.sha
        first = next(iter(repo.branches.values()))
        for tag, sha in (tags or {}).items():
            repo.tags[tag] = _checked_sha(sha) if sha else first
            repo.commits.setdefault(repo.tags[tag], Commit(repo.tags[tag], files))
        self.repositories[url] = repo
        self._notify(url)
        return repo

    def remove_repository(self, url: str) -> bool:
        found = self.repositories.pop(url, None) is not None
        if found:
            self._notify(url)
        return found

    def push(
        self,
        url: str,
        branch: str,
        *,
        paths: Mapping[str, Manifests | None] | None = None,
        from_branch: str | None = None,
    ) -> str:
        """Commit to `branch` (created from `from_branch`, or the first branch, if new) and return
        the new sha.  `paths` adds or replaces directories; a None value deletes one."""
        repo = self._repo(url)
        if not branch:
            raise ValueError("a push needs a branch")
        base_sha = (
            repo.branches.get(branch)
            or repo.branches.get(from_branch or "")
            or next(iter(repo.branches.values()), None)
        )
        files = dict(repo.commits[base_sha].files) if base_sha else {}
        for path, manifests in (paths or {}).items():
            if manifests is None:
                files.pop(normalise_path(path), None)
            else:
                files[normalise_path(path)] = to_yaml(manifests)
        commit = Commit(new_sha(f"{url}@{branch}"), files)
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        self._notify(url)
        return commit.sha

    def tag(self, url: str, tag: str, *, ref: str = "main") -> str:
        """Point `tag` at a branch's head (or at a commit sha)."""
        repo = self._repo(url)
        sha = repo.branches.get(ref) or (ref if ref in repo.commits else None)
        if sha is None:
            raise KeyError(f"no branch or commit {ref!r} in {url}")
        repo.tags[tag] = sha
        self._notify(url)
        return sha

    def delete_branch(self, url: str, branch: str) -> bool:
        """Delete a branch (remembering its head for `restore_branch`); False if it is absent."""
        sha = self._repo(url).branches.pop(branch, None)
        if sha is not None:
            self._deleted[(url, branch)] = sha
            self._notify(url)
        return sha is not None

    def restore_branch(self, url: str, branch: str) -> bool:
        """Push a deleted branch back at the commit it had; False if it was not deleted here."""
        sha = self._deleted.pop((url, branch), None)
        if sha is None:
            return False
        self._repo(url).branches[branch] = sha
        self._notify(url)
        return True

    def checkout(
        self,
        url: str,
        ref: Mapping[str, Any] | None,
        *,
        semver: Callable[[list[str], str], str | None],
    ) -> Checkout:
        """Resolve a GitRepository `spec.ref` the way source-controller does (commit, then name,
        semver, tag, branch; default branch `master`), or raise GitError."""
        repo = self.repositories.get(url)
        if repo is None:
            raise GitError(f"unable to clone '{url}': repository not found")
        ref = ref or {}
        branch = str(ref.get("branch") or "")
        if ref.get("commit"):
            sha = str(ref["commit"])
            if sha not in repo.commits:
                raise GitError(f"unable to resolve commit object for '{sha}': object not found")
            return Checkout(repo.commits[sha], f"{branch}@sha1:{sha}" if branch else f"sha1:{sha}")
        if ref.get("name"):
            name = str(ref["name"])
            table = repo.branches if name.startswith("refs/heads/") else repo.tags
            sha_or_none = (
                table.get(name.split("/", 2)[-1])
                if name.startswith(("refs/heads/", "refs/tags/"))
                else None
            )
            if sha_or_none is None:
                raise GitError(f"unable to clone '{url}': couldn't find remote ref \"{name}\"")
            return Checkout(repo.commits[sha_or_none], f"{name}@sha1:{sha_or_none}")
        if ref.get("semver"):
            chosen = semver(list(repo.tags), str(ref["semver"]))
            if chosen is None:
                raise GitError(f"no match found for semver: {ref['semver']}")
            return Checkout(repo.commits[repo.tags[chosen]], f"{chosen}@sha1:{repo.tags[chosen]}")
        if ref.get("tag"):
            tag = str(ref["tag"])
            if tag not in repo.tags:
                raise GitError(
                    f"unable to clone '{url}': couldn't find remote ref \"refs/tags/{tag}\""
                )
            return Checkout(repo.commits[repo.tags[tag]], f"{tag}@sha1:{repo.tags[tag]}")
        branch = branch or "master"
        if branch not in repo.branches:
            raise GitError(
                f"unable to clone '{url}': couldn't find remote ref \"refs/heads/{branch}\""
            )
        sha = repo.branches[branch]
        return Checkout(repo.commits[sha], f"{branch}@sha1:{sha}")

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "url": r.url,
                "branches": dict(r.branches),
                "tags": dict(r.tags),
                "paths": sorted(p or "." for p in r.commits[next(iter(r.branches.values()))].files)
                if r.branches
                else [],
            }
            for r in self.repositories.values()
        ]

    def _repo(self, url: str) -> Repository:
        repo = self.repositories.get(url)
        if repo is None:
            raise KeyError(f"no repository {url}")
        return repo

    def _notify(self, url: str) -> None:
        for callback in list(self._subscribers):
            try:
                callback(url)
            except Exception:
                log.exception("githost_subscriber_failed", url=url)


def files_under(files: Mapping[str, str], path: str) -> list[str] | None:
    """The YAML texts of a directory and everything below it, in path order; None if the
    directory does not exist in the commit."""
    base = normalise_path(path)
    found = [
        text
        for p, text in sorted(files.items())
        if not base or p == base or p.startswith(base + "/")
    ]
    exists = not base or any(p == base or p.startswith(base + "/") for p in files)
    return found if exists else None


def _checked_sha(sha: str) -> str:
    if not _SHA.match(sha):
        raise ValueError(f"not a commit sha (40 lowercase hex digits): {sha!r}")
    return sha
