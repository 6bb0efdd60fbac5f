"""A simulated container registry: image repositories, their tags, digests and push times.

Images are keyed by their canonical name (`registry.example.com/acme/web`; a Docker Hub short
name such as `nginx` becomes `index.docker.io/library/nginx`, as go-containerregistry names
it).  A push is announced to subscribers (a webhook sender, say), but an ImageRepository only
sees it at its next scan, as with a real registry.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("kubesim.flux")

DOCKER_HUB = "index.docker.io"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class InvalidReference(ValueError):
    """An image name or tag a registry would refuse."""


@dataclass(frozen=True)
class Push:
    image: str
    """Canonical image name."""
    tag: str
    digest: str
    pushed_at: float
    """Unix time of the push."""


Subscriber = Callable[[Push], None]


def canonical_name(image: str) -> str:
    """go-containerregistry's `name.Repository.String()`: host made explicit, Docker Hub
    library images expanded; raises InvalidReference for a name a registry would refuse."""
    if not image or image != image.strip() or "://" in image:
        raise InvalidReference(f"could not parse reference: {image}")
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, image
    if host in ("docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _HOST.match(host) or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise InvalidReference(f"could not parse reference: {image}")
    return f"{host}/{path}"


def check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise InvalidReference(
            f"invalid tag {tag!r}: tags are 1-128 of [A-Za-z0-9_.-], not starting with . or -"
        )
    return tag


def check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise InvalidReference(
            f"invalid digest {digest!r}: expected sha256: and 64 lowercase hex digits"
        )
    return digest


class Registry:
    """Tags by image; a repository exists once something was pushed to it (or it was created)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._images: dict[str, dict[str, Push]] = {}
        self._pushes: dict[tuple[str, str], int] = {}
        self._subscribers: list[Subscriber] = []
        self._clock = clock
        self._refused: set[str] = set()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """`callback(push)` after every push; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def push(self, image: str, tag: str, *, digest: str | None = None) -> Push:
        """Store `image:tag`; without a digest, each push of a tag gets a new deterministic one."""
        name = canonical_name(image)
        check_tag(tag)
        count = self._pushes.get((name, tag), 0) + 1
        self._pushes[(name, tag)] = count
        if digest is None:
            digest = "sha256:" + hashlib.sha256(f"{name}:{tag}:{count}".encode()).hexdigest()
        push = Push(name, tag, check_digest(digest), self._clock())
        self._images.setdefault(name, {})[tag] = push
        for callback in list(self._subscribers):
            try:
                callback(push)
            except Exception:
                log.exception("registry_subscriber_failed", image=name, tag=tag)
        return push

    def create_repository(self, image: str) -> None:
        self._images.setdefault(canonical_name(image), {})

    def delete_repository(self, image: str) -> bool:
        return self._images.pop(canonical_name(image), None) is not None

    def delete_tag(self, image: str, tag: str) -> bool:
        return self._images.get(canonical_name(image), {}).pop(tag, None) is not None

    def tags(self, image: str) -> dict[str, Push] | None:
        """The tags of an image, or None when the registry has no such repository."""
        found = self._images.get(canonical_name(image))
        return dict(found) if found is not None else None

    def digest(self, image: str, tag: str) -> str | None:
        push = self._images.get(canonical_name(image), {}).get(tag)
        return push.digest if push else None

    def images(self) -> list[str]:
        return sorted(self._images)

    def refuse(self, image: str, refused: bool = True) -> str:
        """Refuse (or accept again) the credentials of every client of `image`; returns its
        canonical name."""
        name = canonical_name(image)
        if refused:
            self._refused.add(name)
        else:
            self._refused.discard(name)
        return name

    def refuses(self, image: str) -> bool:
        return canonical_name(image) in self._refused

    def refused(self) -> list[str]:
        return sorted(self._refused)


def refused_error(image: str, method: str, resource: str) -> str:
    """What go-containerregistry reports when a registry (Docker distribution with basic or
    token auth) answers 401 to `method` on `/v2/<path>/<resource>` (pkg/v1/remote/transport
    error.go: `<METHOD> <url>: UNAUTHORIZED: authentication required; <detail>`); a HEAD
    answer has no body to quote."""
    host, _, path = canonical_name(image).partition("/")
    query = "?n=1000" if resource == "tags/list" else ""
    url = f"https://{host}/v2/{path}/{resource}{query}"
    if method == "HEAD":
        return (
            f"HEAD {url}: unexpected status code 401 Unauthorized "
            "(HEAD responses have no body, use GET for details)"
        )
    return (
        f"{method} {url}: UNAUTHORIZED: authentication required; "
        f"[map[Action:pull Class: Name:{path} Type:repository]]"
    )
