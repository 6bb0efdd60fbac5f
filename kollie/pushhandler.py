"""What an image push does (DESIGN §5): ask Flux to rescan the ImageRepository that tracks the
image now, and create or update the environment that follows the pushed branch prefix."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from kollie import labels
from kollie.catalog import AppTemplate, ObjectRef
from kollie.kube import ApiUnavailable, NotFound
from kollie.naming import environment_from_prefix, parse_tag
from kollie.operations import Actor, Operations
from kollie.pushes import Push, split_reference

log = structlog.get_logger("kollie.pushes")
WEBHOOK = Actor("registry-webhook", "webhook")
CERTAIN_WITHIN = 5.0
"""Seconds a push waits for a whole view of the cluster before it is given up as retryable."""
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


@dataclass(frozen=True)
class PushOutcome:
    rescanned: tuple[str, ...]
    environments: tuple[str, ...]
    created: str | None = None


def _same_registry(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return True
    return a == b or (a in _DOCKER_HUB and b in _DOCKER_HUB)


@dataclass
class PushHandler:
    operations: Operations
    image_cache_seconds: float = 60.0
    _images: dict[ObjectRef, tuple[float, str | None]] = field(default_factory=dict)

    async def _image_of(self, ref: ObjectRef) -> str | None:
        cached = self._images.get(ref)
        if cached and time.monotonic() - cached[0] < self.image_cache_seconds:
            return cached[1]
        try:
            obj = await self.operations.client.get(labels.IMAGE_REPOSITORY, ref.namespace, ref.name)
            image = str((obj.get("spec") or {}).get("image", "")) or None
        except NotFound:
            image = None
        self._images[ref] = (time.monotonic(), image)
        return image

    async def apps_for(self, push: Push) -> list[AppTemplate]:
        out = []
        for app in self.operations.catalog().apps.values():
            image = await self._image_of(app.image_repository)
            if image is None:
                continue
            registry, path, _, _ = split_reference(image)
            if path.removeprefix("library/") == push.repository.removeprefix(
                "library/"
            ) and _same_registry(registry, push.registry):
                out.append(app)
        return out

    async def handle(self, push: Push) -> PushOutcome:
        apps = await self.apps_for(push)
        rescanned = []
        for ref in sorted({a.image_repository for a in apps}, key=lambda r: (r.namespace, r.name)):
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            await self.operations.client.merge_patch(
                labels.IMAGE_REPOSITORY,
                ref.namespace,
                ref.name,
                {"metadata": {"annotations": {labels.REQUESTED_AT: now}}},
            )
            rescanned.append(f"{ref.namespace}/{ref.name}")
        tag = parse_tag(push.tag)
        if not apps or tag is None:
            return PushOutcome(tuple(rescanned), ())
        if not await self.operations.cache.wait_certain(CERTAIN_WITHIN):
            # Which environment follows this prefix is read from the cache; while a watch is
            # down or re-listing, an environment may be missing from it and be created twice.
            raise ApiUnavailable("Kollie's view of the cluster is re-syncing; retry the push")
        prefix = tag.prefix
        cache = self.operations.cache
        following = [
            name
            for name in cache.environment_names()
            if any(
                a.kustomization is not None and a.kustomization.prefix == prefix
                for a in cache.apps(name)
            )
            and not getattr(cache.environment(name), "deleting", True)
        ]
        for env in following:
            for app in apps:
                current = next((a for a in cache.apps(env) if a.name == app.name), None)
                if (
                    current is None
                    or current.kustomization is None
                    or current.kustomization.prefix != prefix
                ):
                    await self.operations.add_app(env, app.name, prefix, actor=WEBHOOK)
        if following:
            return PushOutcome(tuple(rescanned), tuple(sorted(set(following))))
        rule = next(
            (r for r in self.operations.catalog().auto_create if r.prefix.search(prefix)), None
        )
        if rule is None:
            return PushOutcome(tuple(rescanned), ())
        name = self._free_name(environment_from_prefix(prefix))
        await self.operations.put_environment(
            name, apps={a.name: prefix for a in apps}, bundle=rule.bundle, actor=WEBHOOK
        )
        log.info("environment_auto_created", environment=name, prefix=prefix, bundle=rule.bundle)
        return PushOutcome(tuple(rescanned), (name,), created=name)

    def _free_name(self, base: str) -> str:
        cache = self.operations.cache
        if cache.environment(base) is None:
            return base
        for n in range(2, 100):
            candidate = f"{base[:37]}-{n}"
            if cache.environment(candidate) is None:
                return candidate
        return f"{base[:34]}-{int(time.time()) % 100000}"
