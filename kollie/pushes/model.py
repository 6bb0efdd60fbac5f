"""What a registry delivery is turned into: pushes, each a registry, repository, tag and digest,
and the items ignored with a reason.

A push names something that can exist in a registry, or it is no push: repositories follow the
OCI distribution name grammar (lower-case path components of `[a-z0-9]` joined by `.`, `_`,
`__` or dashes, at most 255 characters with the registry), tags `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
Anything else (non-ASCII names, a tag with a `/`) is ignored with the reason, never acted on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class PayloadError(ValueError):
    """A delivery that is not valid for its source (the endpoint answers 400)."""


_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
_DOMAIN_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_REGISTRY = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9A-Fa-f:]+\])(?::[0-9]{{1,5}})?", re.ASCII
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", re.ASCII)
_NAME_MAX = 255
"""The distribution reference grammar's limit for registry and repository together."""
_SIGNATURE_SUFFIXES = (".sig", ".att", ".sbom")
# Documentation examples shorten digests ("sha256:6ec128e26cd5..."); such values are not digests.
_DIGEST = re.compile(r"sha256:[0-9a-f]+", re.ASCII)


def repository_problem(registry: str | None, repository: str) -> str | None:
    """Why `registry/repository` cannot name a repository in a registry, or None."""
    if registry is not None and not _REGISTRY.fullmatch(registry):
        return "not a registry host name"
    if not _REPOSITORY.fullmatch(repository):
        return "not a repository name (OCI distribution grammar: lower-case [a-z0-9._-/])"
    if len(repository) + (len(registry) + 1 if registry else 0) > _NAME_MAX:
        return f"repository name longer than {_NAME_MAX} characters"
    return None


def tag_problem(tag: str) -> str | None:
    """Why `tag` cannot be an image tag, or None."""
    if not _TAG.fullmatch(tag):
        return "not an image tag ([A-Za-z0-9_][A-Za-z0-9._-], at most 128 characters)"
    return None


@dataclass(frozen=True)
class Push:
    """One tag pushed to one repository. Equal pushes (the same four fields) are one push:
    `pushed_at`, the delivery's own time, is not part of its identity."""

    registry: str | None
    repository: str
    tag: str
    digest: str | None
    pushed_at: float | None = field(default=None, compare=False)
    """When the sender says the push (or the delivery) happened, as a unix time, if it says."""

    def as_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
        }


@dataclass
class Parsed:
    pushes: list[Push] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    """Fields the sender expects in the answer (a subscription handshake's validation code)."""

    def ignore(self, reason: str, **details: Any) -> Parsed:
        self.ignored.append({"reason": reason, **details})
        return self

    def push(
        self,
        registry: str | None,
        repository: str,
        tag: str | None,
        digest: str | None,
        *,
        at: float | None = None,
    ) -> Parsed:
        repository = repository.strip("/")
        registry = registry or None
        if not repository:
            return self.ignore("no repository")
        if not tag:
            return self.ignore("untagged push", repository=repository, digest=digest)
        if tag.endswith(_SIGNATURE_SUFFIXES):
            return self.ignore("signature or attestation", repository=repository, tag=tag)
        problem = repository_problem(registry, repository) or tag_problem(tag)
        if problem:
            return self.ignore(problem, registry=registry, repository=repository, tag=tag)
        if digest is not None and not _DIGEST.fullmatch(digest):
            digest = None
        self.pushes.append(Push(registry, repository, tag, digest, at))
        return self


def obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what} must be a JSON object")
    return value


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_UNIX_MIN, _UNIX_MAX = 946684800, 4102444800
"""2000-01-01 and 2100-01-01: numbers outside are not times a registry sends."""


def instant(value: Any) -> float | None:
    """A sender's timestamp as a unix time: RFC 3339 / ISO 8601 text (no zone: UTC) or unix
    seconds (milliseconds when too large for seconds); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
        if seconds > _UNIX_MAX:
            seconds /= 1000
        return seconds if _UNIX_MIN <= seconds <= _UNIX_MAX else None
    if isinstance(value, str) and value:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return None


def split_reference(ref: str) -> tuple[str | None, str, str | None, str | None]:
    """`host/path:tag` or `host/path@digest` → (registry, repository, tag, digest)."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag, digest
    return None, ref, tag, digest
