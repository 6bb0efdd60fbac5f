"""A simulated container registry: image repositories, their tags and digests."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Push:
    image: str
    tag: str
    digest: str
    pushed_at: float


Subscriber = Callable[[Push], None]


def digest_for(image: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{image}:{tag}".encode()).hexdigest()


class Registry:
    """Tags by image name (`registry.example.com/acme/web`); pushes are announced to subscribers
    (a webhook sender, for instance) but a scan only sees them when it next lists the tags."""

    def __init__(self) -> None:
        self._images: dict[str, dict[str, Push]] = {}
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def push(self, image: str, tag: str, *, digest: str | None = None) -> Push:
        if not image or not tag:
            raise ValueError("image and tag are required")
        push = Push(image, tag, digest or digest_for(image, tag), time.time())
        self._images.setdefault(image, {})[tag] = push
        for callback in list(self._subscribers):
            callback(push)
        return push

    def create_repository(self, image: str) -> None:
        self._images.setdefault(image, {})

    def delete_tag(self, image: str, tag: str) -> bool:
        return self._images.get(image, {}).pop(tag, None) is not None

    def tags(self, image: str) -> dict[str, Push] | None:
        """The tags of an image, or None if the registry has no such repository."""
        tags = self._images.get(image)
        return dict(tags) if tags is not None else None

    def images(self) -> list[str]:
        return sorted(self._images)
