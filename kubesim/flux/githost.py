"""A simulated git host: repositories with branches (commit shas) and the manifests at each path."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifests = list[dict[str, Any]] | str
"""The objects at one path: dicts, or YAML text (which may hold `${var}` substitutions)."""

_counter = itertools.count(1)


def _sha(seed: str) -> str:
    return hashlib.sha1(f"{seed}:{next(_counter)}".encode()).hexdigest()


@dataclass
class Repository:
    url: str
    branches: dict[str, str] = field(default_factory=dict)
    """branch -> commit sha (40 hex)."""
    paths: dict[str, dict[str, Manifests]] = field(default_factory=dict)
    """branch -> normalised path -> manifests."""


def normalise_path(path: str) -> str:
    parts = [p for p in path.strip().split("/") if p not in ("", ".")]
    return "/".join(parts)


class GitHost:
    """Repositories by URL; a push gives a branch a new commit and tells subscribers."""

    def __init__(self) -> None:
        self.repositories: dict[str, Repository] = {}
        self._subscribers: list[Callable[[str, str], None]] = []

    def subscribe(self, callback: Callable[[str, str], None]) -> None:
        """`callback(url, branch)` after every push."""
        self._subscribers.append(callback)

    def add_repository(self, url: str, *, branches: list[str] | None = None,
                       paths: Mapping[str, Manifests] | None = None) -> Repository:
        repo = Repository(url)
        for branch in branches or ["main"]:
            repo.branches[branch] = _sha(f"{url}@{branch}")
            repo.paths[branch] = {normalise_path(p): m for p, m in (paths or {}).items()}
        self.repositories[url] = repo
        for branch in repo.branches:
            self._notify(url, branch)
        return repo

    def push(self, url: str, branch: str, *, paths: Mapping[str, Manifests] | None = None,
             from_branch: str | None = None) -> str:
        """Commit to `branch` (creating it from `from_branch` or the first branch); returns the sha."""
        repo = self.repositories.get(url)
        if repo is None:
            raise KeyError(f"no repository {url}")
        if branch not in repo.paths:
            base = from_branch or next(iter(repo.paths), None)
            repo.paths[branch] = dict(repo.paths.get(base, {})) if base else {}
        if paths:
            repo.paths[branch].update({normalise_path(p): m for p, m in paths.items()})
        repo.branches[branch] = _sha(f"{url}@{branch}")
        self._notify(url, branch)
        return repo.branches[branch]

    def _notify(self, url: str, branch: str) -> None:
        for callback in list(self._subscribers):
            callback(url, branch)
