"""What an image push does (DESIGN §5), done before the delivery is answered.

1. Ask Flux to rescan the ImageRepository that tracks the image (`requestedAt`), so every
   environment running the app on the pushed prefix moves to the new image (image follow).
2. Environments already following the prefix take in the pushed app only where that was asked
   for: a matching `autoCreate` rule with `addPushedApps`, never on an app's default prefix, and
   with owner-only on never in an environment someone else owns.
3. When nothing follows the prefix and an `autoCreate` rule matches, create the environment,
   unless it was deleted after the image was built (kollie.tombstones): a replayed or late
   delivery never brings back an environment someone deleted.

Every step is idempotent, and an error propagates, so the endpoint answers with a retryable
status instead of acknowledging a push whose effect it did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from kollie import labels, tombstones
from kollie.catalog import AppTemplate, AutoCreateRule, ObjectRef
from kollie.kube import ApiUnavailable, KubeError, NotFound
from kollie.kube.client import collection_path
from kollie.naming import ImageTag, environment_from_prefix, parse_tag
from kollie.operations import Actor, OperationError, Operations
from kollie.pushes import Push, split_reference
from kollie.singleflight import SingleFlight

log = structlog.get_logger("kollie.pushes")
WEBHOOK = Actor("registry-webhook", "webhook")
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
CERTAIN_WITHIN = 5.0
"""Seconds a push waits for a whole view of the cluster before it is given up as retryable."""
SETTLE_SECONDS = 2.0
"""How long a push waits for this replica's cache to show what it (or another replica) wrote,
so the next push of the same prefix decides from a view that includes it."""


class UncertainView(KubeError):
    """The cluster holds an environment this replica's cache does not show yet: decide nothing
    (the endpoint answers 503 and the sender retries)."""


@dataclass(frozen=True)
class PushOutcome:
    """What one push did, for the answer and the log."""

    rescanned: tuple[str, ...] = ()
    following: tuple[str, ...] = ()
    """Environments running the pushed app on its prefix: image follow moves them."""
    joined: tuple[str, ...] = ()
    """Environments the pushed app was added to or switched in."""
    created: str | None = None
    skipped: tuple[dict[str, str], ...] = ()
    """What was not done and why (`{"reason", "environment"?}`)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "rescanned": list(self.rescanned),
            "following": list(self.following),
            "joined": list(self.joined),
            "created": self.created,
            "skipped": list(self.skipped),
        }


UNTRACKED = PushOutcome(skipped=({"reason": "no catalog app tracks this image"},))


def _same_registry(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return True
    return a == b or (a in _DOCKER_HUB and b in _DOCKER_HUB)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class PushHandler:
    operations: Operations
    image_cache_seconds: float = 60.0
    _images: dict[ObjectRef, tuple[float, tuple[str | None, str] | None]] = field(
        default_factory=dict
    )
    """ImageRepository → (when read, its image as (registry, repository), None if missing)."""
    _rescans: SingleFlight[ObjectRef] = field(default_factory=SingleFlight)
    _prefixes: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def close(self) -> None:
        await self._rescans.close()

    # ------------------------------------------------------------------ which apps
    async def _image_of(self, ref: ObjectRef) -> tuple[str | None, str] | None:
        cached = self._images.get(ref)
        if cached and time.monotonic() - cached[0] < self.image_cache_seconds:
            return cached[1]
        try:
            obj = await self.operations.client.get(labels.IMAGE_REPOSITORY, ref.namespace, ref.name)
            spec = str((obj.get("spec") or {}).get("image", ""))
            registry, path, _, _ = split_reference(spec)
            image = (registry, path.removeprefix("library/")) if spec else None
        except NotFound:
            image = None
        self._images[ref] = (time.monotonic(), image)
        return image

    def known_untracked(self, push: Push) -> bool:
        """True when the cached images (no request) show that no catalog app tracks the pushed
        repository: most registries announce every repository, and those pushes need nothing."""
        now = time.monotonic()
        for app in self.operations.catalog().apps.values():
            cached = self._images.get(app.image_repository)
            if cached is None or now - cached[0] >= self.image_cache_seconds:
                return False
            if cached[1] is not None and self._matches(cached[1], push):
                return False
        return True

    @staticmethod
    def _matches(image: tuple[str | None, str], push: Push) -> bool:
        registry, path = image
        return path == push.repository.removeprefix("library/") and _same_registry(
            registry, push.registry
        )

    async def apps_for(self, push: Push) -> list[AppTemplate]:
        """The catalog apps whose ImageRepository tracks the pushed repository."""
        out = []
        for app in self.operations.catalog().apps.values():
            image = await self._image_of(app.image_repository)
            if image is not None and self._matches(image, push):
                out.append(app)
        return out

    # ------------------------------------------------------------------ the push
    async def handle(self, push: Push) -> PushOutcome:
        apps = await self.apps_for(push)
        if not apps:
            return UNTRACKED
        refs = sorted({a.image_repository for a in apps}, key=lambda r: (r.namespace, r.name))
        for ref in refs:
            await self._rescans.run(ref, lambda r=ref: self._rescan(r))  # type: ignore[misc]
        rescanned = tuple(f"{r.namespace}/{r.name}" for r in refs)
        tag = parse_tag(push.tag)
        if tag is None:
            reason = "the tag is not <prefix>-<sha>-<unix time>: no environment follows it"
            return PushOutcome(rescanned, skipped=({"reason": reason},))
        if not await self.operations.cache.wait_certain(CERTAIN_WITHIN):
            # Which environment follows this prefix is read from the cache; while a watch is
            # down or re-listing, an environment may be missing from it and be created twice.
            raise ApiUnavailable("Kollie's view of the cluster is re-syncing; retry the push")
        async with self._prefix_lock(tag.prefix):
            return await self._environments(push, tag, apps, rescanned)

    async def _rescan(self, ref: ObjectRef) -> None:
        await self.operations.client.merge_patch(
            labels.IMAGE_REPOSITORY,
            ref.namespace,
            ref.name,
            {"metadata": {"annotations": {labels.REQUESTED_AT: _now()}}},
        )

    @contextlib.asynccontextmanager
    async def _prefix_lock(self, prefix: str) -> AsyncIterator[None]:
        """Pushes of one prefix decide one after another (two apps pushed at once must not both
        create the environment of their branch); the lock is dropped when nobody holds it."""
        lock = self._prefixes.setdefault(prefix, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._prefixes.get(prefix) is lock:
                del self._prefixes[prefix]

    async def _environments(
        self, push: Push, tag: ImageTag, apps: list[AppTemplate], rescanned: tuple[str, ...]
    ) -> PushOutcome:
        prefix = tag.prefix
        defaults = {a.default_prefix for a in self.operations.catalog().apps.values()}
        following = self._following(prefix)
        if prefix in defaults:
            skipped: tuple[dict[str, str], ...] = ()
            if any(self._missing(env, apps, prefix) for env in following):
                reason = f"{prefix!r} is a default prefix: pushes never add apps on it"
                skipped = ({"reason": reason},)
            return PushOutcome(rescanned, tuple(following), skipped=skipped)
        if following:
            return await self._join(following, apps, prefix, rescanned)
        rule = self._rule(prefix)
        if rule is None:
            return PushOutcome(rescanned)
        return await self._auto_create(push, tag, apps, rule, rescanned)

    def _following(self, prefix: str) -> list[str]:
        cache = self.operations.cache
        return [
            name
            for name in cache.environment_names()
            if any(
                a.kustomization is not None and a.kustomization.prefix == prefix
                for a in cache.apps(name)
            )
            and not getattr(cache.environment(name), "deleting", True)
        ]

    def _missing(self, env: str, apps: list[AppTemplate], prefix: str) -> list[str]:
        """The pushed apps `env` does not run on `prefix`."""
        running = self._running(env, prefix)
        return [a.name for a in apps if a.name not in running]

    def _running(self, env: str, prefix: str) -> set[str]:
        return {
            a.name
            for a in self.operations.cache.apps(env)
            if a.kustomization is not None and a.kustomization.prefix == prefix
        }

    def _rule(self, prefix: str) -> AutoCreateRule | None:
        return next(
            (r for r in self.operations.catalog().auto_create if r.prefix.search(prefix)), None
        )

    def _refusal(self, env: str, prefix: str) -> str | None:
        """Why a push must not add apps to `env`, or None."""
        if not any(
            r.add_pushed_apps and r.prefix.search(prefix)
            for r in self.operations.catalog().auto_create
        ):
            return f"no autoCreate rule with addPushedApps matches {prefix!r}"
        record = self.operations.cache.environment(env)
        owner = record.owner if record else ""
        if self.operations.settings.owner_only and owner != WEBHOOK.name:
            return f"owner-only: {env!r} belongs to {owner or 'someone else'}"
        return None

    async def _join(
        self, following: list[str], apps: list[AppTemplate], prefix: str, rescanned: tuple[str, ...]
    ) -> PushOutcome:
        joined: list[str] = []
        skipped: list[dict[str, str]] = []
        for env in following:
            missing = self._missing(env, apps, prefix)
            if not missing:
                continue
            refusal = self._refusal(env, prefix)
            if refusal is not None:
                skipped.append({"environment": env, "reason": refusal})
                continue
            try:
                for app in missing:
                    await self.operations.add_app(env, app, prefix, actor=WEBHOOK)
            except OperationError as e:  # refused for good (deleting, not allowed): say why
                skipped.append({"environment": env, "reason": e.message})
                continue
            await self._settled(env, set(missing), prefix)
            joined.append(env)
        return PushOutcome(rescanned, tuple(following), tuple(joined), skipped=tuple(skipped))

    # ------------------------------------------------------------------ auto-create
    async def _auto_create(
        self,
        push: Push,
        tag: ImageTag,
        apps: list[AppTemplate],
        rule: AutoCreateRule,
        rescanned: tuple[str, ...],
    ) -> PushOutcome:
        base = environment_from_prefix(tag.prefix)
        cache = self.operations.cache
        if cache.environment(base) is not None or await self._exists_in_cluster(base):
            # Created a moment ago, by another replica or by a push whose replica died half
            # way: decide from everything the cluster holds of it.
            await self._catch_up(base)
            following = self._following(tag.prefix)
            if following:
                return await self._join(following, apps, tag.prefix, rescanned)
            record = cache.environment(base)
            if record is not None and record.owner == WEBHOOK.name and not record.deleting:
                return await self._complete(base, apps, rule, tag.prefix, rescanned)
        name = self._free_name(base)
        deleted = await tombstones.read(self.operations.client, self.operations.namespace)
        last = max(deleted.get(base, 0.0), deleted.get(name, 0.0))
        if tag.timestamp <= last:
            when = datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            reason = f"{name!r} was deleted at {when}, after this image was built"
            log.warning("auto_create_refused", environment=name, tag=push.tag, reason=reason)
            return PushOutcome(rescanned, skipped=({"environment": name, "reason": reason},))
        try:
            await self.operations.put_environment(
                name, apps={a.name: tag.prefix for a in apps}, bundle=rule.bundle, actor=WEBHOOK
            )
        except OperationError as e:  # refused for good (a namespace of that name): say why
            log.warning("auto_create_refused", environment=name, tag=push.tag, reason=e.message)
            return PushOutcome(rescanned, skipped=({"environment": name, "reason": e.message},))
        await self._settled(name, {a.name for a in apps}, tag.prefix)
        log.info(
            "environment_auto_created", environment=name, prefix=tag.prefix, bundle=rule.bundle
        )
        return PushOutcome(rescanned, (name,), created=name)

    async def _complete(
        self,
        env: str,
        apps: list[AppTemplate],
        rule: AutoCreateRule,
        prefix: str,
        rescanned: tuple[str, ...],
    ) -> PushOutcome:
        """Finish creating the environment of `prefix` that a push began (its replica stopped
        before every app was written): add what is missing, change nothing that is there."""
        present = {a.name for a in self.operations.cache.apps(env)}
        bundle = self.operations.catalog().bundles.get(rule.bundle)
        pushed = {a.name for a in apps}
        try:
            for app in bundle.apps if bundle else ():
                if app not in present and app not in pushed:
                    await self.operations.add_app(env, app, None, actor=WEBHOOK)
            for app in sorted(pushed):
                await self.operations.add_app(env, app, prefix, actor=WEBHOOK)
        except OperationError as e:
            return PushOutcome(rescanned, skipped=({"environment": env, "reason": e.message},))
        await self._settled(env, pushed, prefix)
        log.info("environment_auto_created", environment=env, prefix=prefix, completed=True)
        return PushOutcome(rescanned, (env,), created=env)

    async def _catch_up(self, env: str) -> None:
        """Wait (at most SETTLE_SECONDS) until the cache shows `env` and every app the API
        server holds for it."""
        answer = await self.operations.client.request(
            "GET",
            collection_path(labels.KUSTOMIZATION, self.operations.namespace),
            query={"labelSelector": f"{labels.MANAGED_SELECTOR},{labels.ENVIRONMENT}={env}"},
        )
        names = {
            str(((k.get("metadata") or {}).get("labels") or {}).get(labels.APP, ""))
            for k in answer.get("items") or []
        }
        await self._settled(env, None, "", names=frozenset(names - {""}))

    async def _exists_in_cluster(self, name: str) -> bool:
        """Whether the API server (not this replica's cache) holds environment `name`."""
        answer = await self.operations.client.request(
            "GET",
            collection_path(labels.CONFIG_MAP, self.operations.namespace),
            query={"labelSelector": f"{labels.MANAGED_SELECTOR},{labels.ENVIRONMENT}={name}"},
        )
        return bool(answer.get("items"))

    async def _settled(
        self, env: str, apps: set[str] | None, prefix: str, *, names: frozenset[str] = frozenset()
    ) -> None:
        """Wait until the cache shows `env` with `apps` on `prefix` and apps called `names` on
        any prefix, at most SETTLE_SECONDS; UncertainView when the environment does not show."""
        cache = self.operations.cache
        changed = asyncio.Event()

        def seen() -> bool:
            if cache.environment(env) is None:
                return False
            if not names <= {a.name for a in cache.apps(env)}:
                return False
            return apps is None or apps <= self._running(env, prefix)

        unsubscribe = cache.subscribe(lambda name: changed.set() if name in (env, "") else None)
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                while not seen():
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            if cache.environment(env) is None:
                raise UncertainView(
                    f"environment {env!r} exists in the cluster but not yet in this replica's view"
                ) from None
        finally:
            unsubscribe()

    def _free_name(self, base: str) -> str:
        cache = self.operations.cache
        if cache.environment(base) is None:
            return base
        for n in range(2, 100):
            candidate = f"{base[:37]}-{n}"
            if cache.environment(candidate) is None:
                return candidate
        return f"{base[:34]}-{int(time.time()) % 100000}"
