"""Environment operations: every change Kollie makes to the cluster goes through here.

Each operation builds the complete desired objects (kollie.manifests) from the catalog, the
environment record and what the cache knows, and applies them with server-side apply, so a
retried request or a second replica doing the same work changes nothing. Reads come from the
cache; an operation never deletes anything because a read failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from kollie import adoption, audit, labels, manifests, projections, tombstones, uptime
from kollie.cache import Cache
from kollie.catalog import AppTemplate, Catalog, ObjectRef
from kollie.config import Settings
from kollie.kube import ApiUnavailable, KubeClient, KubeError, NotFound
from kollie.namespaces import namespace_problem
from kollie.naming import (
    InvalidName,
    branch_problem,
    check_app,
    check_environment,
    check_prefix,
    kube_name,
    tag_has_prefix,
)
from kollie.projections import EnvironmentRecord
from kollie.refusals import (
    Actor,
    AlreadyExists,
    AppNotFound,
    EnvironmentDeleting,
    EnvironmentNotFound,
    InvalidRequest,
    NameTaken,
    NotAllowed,
    OperationError,
    QuotaExceeded,
    UnknownApp,
    UnknownBundle,
    Via,
)

log = structlog.get_logger("kollie.operations")

__all__ = [
    "Actor",
    "AlreadyExists",
    "AppNotFound",
    "EnvironmentChange",
    "EnvironmentDeleting",
    "EnvironmentNotFound",
    "InvalidRequest",
    "NameTaken",
    "NotAllowed",
    "OperationError",
    "Operations",
    "UnknownApp",
    "UnknownBundle",
    "Via",
]


@dataclass(frozen=True)
class EnvironmentChange:
    """What a create-or-update did."""

    name: str
    created: bool
    apps: tuple[str, ...]
    removed: tuple[str, ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _valid(check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except InvalidName as e:
        raise InvalidRequest(str(e)) from e


CERTAIN_WITHIN = 3.0
"""Seconds a write waits for a whole view of the cluster before it is answered retryable."""


class Operations:
    def __init__(
        self,
        client: KubeClient,
        cache: Cache,
        catalog: Callable[[], Catalog],
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        instance: str = "kollie",
    ) -> None:
        self.client = client
        self.cache = cache
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.instance = instance
        """This replica's name, reported on the audit Events it writes."""

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    async def _audit(
        self,
        record: EnvironmentRecord,
        reason: str,
        message: str,
        actor: Actor,
        *,
        app: str | None = None,
    ) -> None:
        """Record a change as an Event on the environment and a log line; losing the Event
        (the API refused it) must not undo or fail the change itself."""
        log.info(
            "audit",
            environment=record.name,
            reason=reason,
            message=message,
            actor=actor.name,
            via=actor.via,
        )
        body = audit.event(
            environment=record.name,
            namespace=self.namespace,
            uid=record.uid,
            reason=reason,
            message=message,
            actor=actor.name,
            via=actor.via,
            now=self.clock(),
            instance=self.instance,
            app=app,
        )
        try:
            await self.client.create(labels.EVENT, self.namespace, body)
        except KubeError as e:
            log.warning(
                "audit_event_failed", environment=record.name, reason=reason, error=e.message
            )

    # ------------------------------------------------------------------ checks
    def resolve_apps(self, apps: Mapping[str, str | None], bundle: str | None) -> dict[str, str]:
        """Requested apps (bundle members, then listed apps) with their prefixes, validated."""
        catalog = self.catalog()
        wanted: dict[str, str | None] = {}
        if bundle is not None:
            found = catalog.bundles.get(bundle)
            if found is None:
                known = ", ".join(sorted(catalog.bundles)) or "none"
                raise UnknownBundle(f"unknown bundle {bundle!r}; known bundles: {known}")
            wanted.update(dict.fromkeys(found.apps))
        wanted.update(apps)
        if not wanted:
            raise InvalidRequest("an environment needs at least one app: give apps or a bundle")
        resolved: dict[str, str] = {}
        for name, prefix in wanted.items():
            _valid(check_app, name)
            template = catalog.app(name)
            if template is None:
                raise UnknownApp(
                    f"unknown app {name!r}; known apps: {', '.join(sorted(catalog.apps)) or 'none'}"
                )
            resolved[name] = _valid(check_prefix, prefix) if prefix else template.default_prefix
        return resolved

    async def _whole_view(self) -> None:
        """Wait (briefly) until every watch runs: what a write decides (create or update,
        which apps to remove, whose environment it is) is read from the cache, and right after
        a failed list, a relist or the API server's return it may be missing changes."""
        if not await self.cache.wait_certain(CERTAIN_WITHIN):
            raise ApiUnavailable(
                "Kollie's view of the cluster is catching up (a watch is down or re-listing)"
            )

    def _record(self, name: str) -> EnvironmentRecord:
        record = self.cache.environment(name)
        if record is None:
            raise EnvironmentNotFound(f"environment {name!r} not found")
        if record.deleting:
            raise EnvironmentDeleting(f"environment {name!r} is being deleted")
        return record

    def check_owner_or_admin(self, record: EnvironmentRecord, actor: Actor, doing: str) -> None:
        """The one ownership rule: only the environment's owner or an admin may `doing`."""
        if actor.name == record.owner or actor.name in self.settings.admins:
            return
        raise NotAllowed(f"only {record.owner or 'its owner'} or an admin may {doing}")

    def check_may_modify(self, record: EnvironmentRecord, actor: Actor) -> None:
        """With KOLLIE_OWNER_ONLY, changes are for the owner or an admin; Kollie's own loops act
        for everyone. Registry webhooks do not: they change only environments they created."""
        if not self.settings.owner_only or actor.via in ("expiry", "image-follow"):
            return
        self.check_owner_or_admin(record, actor, f"change environment {record.name!r}")

    # ------------------------------------------------------------------ environment
    async def put_environment(
        self,
        name: str,
        *,
        apps: Mapping[str, str | None],
        bundle: str | None,
        actor: Actor,
        window: uptime.Uptime | None = None,
        new: bool = False,
    ) -> EnvironmentChange:
        """Create an environment or make an existing one have exactly these apps; with `new`,
        only create (AlreadyExists when it exists: the dashboard's "New environment" form must
        not replace the apps of an environment that has its name)."""
        _valid(check_environment, name)
        if name == self.namespace:
            raise InvalidRequest(
                f"environment name {name!r} is reserved: it is Kollie's own namespace"
            )
        desired = self.resolve_apps(apps, bundle)
        await self._whole_view()
        existing = self.cache.environment(name)
        if existing is not None:
            if existing.deleting:
                raise EnvironmentDeleting(
                    f"environment {name!r} is being deleted; try again when it is gone"
                )
            if new:
                raise AlreadyExists(
                    f"environment {name!r} already exists; open it to add, switch or remove "
                    "apps, or choose another name"
                )
            self.check_may_modify(existing, actor)
        else:
            self._check_quota(actor)
            await self._check_namespace_free(name)
        present = {a.name for a in self.cache.apps(name)}
        await self._check_names_free(
            name,
            record=existing is None,
            apps=[a for a in desired if a not in present],
        )
        now = self.clock()
        settings: dict[str, Any] = dict(existing.settings) if existing else {}
        if window is not None:
            settings["uptime"] = window.as_json()
        elif "uptime" not in settings:
            settings["uptime"] = self._initial_uptime(name, now).as_json()
        changed = (
            existing is None
            or window is not None
            or any(self._prefix_of(name, a) != p for a, p in desired.items())
        )
        record = await self._apply_record(
            name,
            owner=existing.owner if existing else actor.name,
            created_at=existing.created_at if existing else uptime.stamp(now),
            settings=settings,
        )
        for app, prefix in desired.items():
            await self._apply_app(record, app, prefix, set(desired))
        current = {a.name for a in self.cache.apps(name)}
        removed = tuple(sorted(current - set(desired)))
        for app in removed:
            await self._delete_app_objects(name, app)
        summary = ", ".join(f"{a}={p}" for a, p in sorted(desired.items()))
        if existing is None:
            await self._audit(record, "EnvironmentCreated", f"created with {summary}", actor)
        elif removed or changed:
            text = f"apps set to {summary}" + (f"; removed {', '.join(removed)}" if removed else "")
            await self._audit(record, "EnvironmentUpdated", text, actor)
        return EnvironmentChange(name, existing is None, tuple(sorted(desired)), removed)

    def _check_quota(self, actor: Actor) -> None:
        """A new environment is refused when its owner-to-be owns the most allowed
        (admins, and registry pushes that auto-create, are not limited)."""
        limit = self.settings.limits.environments
        if not limit or actor.via == "webhook" or actor.name in self.settings.admins:
            return
        owned = sum(
            1
            for name in self.cache.environment_names()
            if (record := self.cache.environment(name)) is not None
            and record.owner == actor.name
            and not record.deleting
        )
        if owned >= limit:
            raise QuotaExceeded(
                f"{actor.name} owns {owned} environments, the most allowed "
                f"(KOLLIE_LIMIT_ENVIRONMENTS={limit}); delete one first"
            )

    async def _check_names_free(
        self,
        name: str,
        *,
        record: bool = False,
        apps: Iterable[str] = (),
        copies: Iterable[str] = (),
    ) -> None:
        """NameTaken when an object Kollie is about to write for the first time for environment
        `name` exists in its namespace and is not that environment's (kollie.adoption): its
        record, the Kustomization and ImagePolicy of `apps`, the GitRepository `copies`."""
        wanted = [(labels.CONFIG_MAP, name)] if record else []
        for app in apps:
            wanted += [(labels.KUSTOMIZATION, kube_name(name, app))]
            wanted += [(labels.IMAGE_POLICY, kube_name(name, app))]
        wanted += [(labels.GIT_REPOSITORY, copy) for copy in copies]
        taken = await adoption.taken_name(self.client, self.namespace, name, wanted)
        if taken:
            raise NameTaken(
                f"environment name {name!r} is taken: {taken} exists in Kollie's namespace and "
                "is not this environment's; choose another name"
            )

    async def _check_namespace_free(self, name: str) -> None:
        problem = await namespace_problem(
            self.client, name, kollie_namespace=self.namespace, apps=self.catalog().apps
        )
        if problem:
            raise NameTaken(problem)

    def _prefix_of(self, name: str, app: str) -> str | None:
        return next(
            (
                a.kustomization.prefix
                for a in self.cache.apps(name)
                if a.name == app and a.kustomization is not None
            ),
            None,
        )

    def _initial_uptime(self, name: str, now: datetime) -> uptime.Uptime:
        if name in self.settings.lease_exclusion_list:
            return uptime.office_hours(self.settings.office_hours)
        return uptime.initial(now)

    async def _apply_record(
        self, name: str, *, owner: str, created_at: str, settings: Mapping[str, Any]
    ) -> EnvironmentRecord:
        body = manifests.environment_record(
            name, namespace=self.namespace, owner=owner, created_at=created_at, settings=settings
        )
        applied = await self.client.apply(labels.CONFIG_MAP, body)
        record = projections.environment(applied)
        if record is None:
            # Only an admission webhook stripping labels could cause this: say so, go no further.
            raise KubeError(
                f"the API server answered the apply of environment {name!r} "
                f"without its {labels.ENVIRONMENT} label"
            )
        return record

    async def _update_settings(
        self, record: EnvironmentRecord, **changes: Any
    ) -> EnvironmentRecord:
        """Apply the record again with these settings changed (owner and creation kept)."""
        return await self._apply_record(
            record.name,
            owner=record.owner,
            created_at=record.created_at,
            settings={**record.settings, **changes},
        )

    async def delete_environment(self, name: str, *, actor: Actor) -> None:
        """Delete the record; Kubernetes garbage collection removes everything it owns."""
        await self._whole_view()
        record = self.cache.environment(name)
        if record is None:
            raise EnvironmentNotFound(f"environment {name!r} not found")
        self.check_may_modify(record, actor)
        await self._remember_deletion(name)
        with contextlib.suppress(NotFound):
            await self.client.delete(
                labels.CONFIG_MAP, self.namespace, name, propagation="Background", uid=record.uid
            )
        log.info("environment_deleted", environment=name, actor=actor.name, via=actor.via)

    async def expire(
        self, name: str, *, actor: Actor, due: Callable[[EnvironmentRecord], bool]
    ) -> bool:
        """Delete an environment whose window ended long ago (the expiry loop's only write);
        False when it is no longer `due` (extended or kept since the sweep listed it).

        The delete is conditional on the record being the one judged due (its uid and
        resourceVersion): an extension or keep that lands meanwhile, on any replica, makes the
        API server refuse it (Conflict), so an answered change is never followed by a deletion.
        """
        record = self._record(name)
        if not due(record):
            return False
        await self._remember_deletion(name)
        with contextlib.suppress(NotFound):
            await self.client.delete(
                labels.CONFIG_MAP,
                self.namespace,
                name,
                propagation="Background",
                uid=record.uid,
                resource_version=record.resource_version,
            )
        await self._audit(
            record,
            "EnvironmentExpired",
            "deleted: its uptime window ended more than "
            f"{self.settings.env_ttl_seconds // 3600}h ago",
            actor,
        )
        return True

    async def _remember_deletion(self, name: str) -> None:
        """Record the deletion time before deleting (kollie.tombstones): a replayed registry
        webhook must not auto-create the environment again from an image built before it."""
        await tombstones.record(self.client, self.namespace, name, self.clock())

    async def set_keep(self, name: str, keep: bool, *, actor: Actor) -> None:
        """Pin an environment so expiry never deletes it (owner or admin only)."""
        await self._whole_view()
        record = self._record(name)
        # Stricter than check_may_modify: pinning is the owner's or an admin's even without
        # KOLLIE_OWNER_ONLY, since it takes an environment out of expiry for good.
        self.check_owner_or_admin(record, actor, f"pin or unpin {name!r}")
        updated = await self._update_settings(record, keep=keep)
        await self._audit(
            updated, "KeepChanged", "kept: will not expire" if keep else "no longer kept", actor
        )

    async def set_uptime(self, name: str, window: uptime.Uptime, *, actor: Actor) -> None:
        """Switch between an end time and a weekly schedule, rewriting every app."""
        await self._whole_view()
        record = self._record(name)
        self.check_may_modify(record, actor)
        updated = await self._update_settings(record, uptime=window.as_json())
        await self._reapply_apps(updated)
        await self._audit(
            updated, "UptimeChanged", f"uptime set to {window.downscaler_value()}", actor
        )

    # ------------------------------------------------------------------ apps
    async def add_app(self, name: str, app: str, prefix: str | None, *, actor: Actor) -> None:
        """Add an app, or switch an app already there to another prefix."""
        await self._whole_view()
        record = self._record(name)
        self.check_may_modify(record, actor)
        resolved = self.resolve_apps({app: prefix}, None)
        present = {a.name for a in self.cache.apps(name)}
        if app not in present:
            await self._check_names_free(name, apps=[app])
        apps = present | set(resolved)
        previous = self._prefix_of(name, app)
        await self._apply_app(record, app, resolved[app], apps)
        if previous != resolved[app]:
            text = (
                f"added {app} on {resolved[app]}"
                if previous is None
                else f"{app} switched from {previous} to {resolved[app]}"
            )
            await self._audit(record, "AppAdded", text, actor, app=app)

    async def remove_app(self, name: str, app: str, *, actor: Actor) -> None:
        await self._whole_view()
        record = self._record(name)
        self.check_may_modify(record, actor)
        if app not in {a.name for a in self.cache.apps(name)}:
            raise AppNotFound(f"environment {name!r} has no app {app!r}")
        await self._delete_app_objects(name, app)
        await self._audit(record, "AppRemoved", f"removed {app}", actor, app=app)

    async def _delete_app_objects(self, name: str, app: str) -> None:
        for res in (labels.KUSTOMIZATION, labels.IMAGE_POLICY):
            with contextlib.suppress(NotFound):
                await self.client.delete(res, self.namespace, kube_name(name, app))

    def _template(self, app: str) -> AppTemplate:
        template = self.catalog().app(app)
        if template is None:
            raise UnknownApp(f"app {app!r} is no longer in the catalog")
        return template

    def _source(self, record: EnvironmentRecord, template: AppTemplate) -> ObjectRef:
        if record.settings.get("fluxBranch"):
            return ObjectRef(
                manifests.git_repository_name(template.git_repository, record.name), self.namespace
            )
        return template.git_repository

    def _known_tag(self, name: str, app: str, prefix: str) -> str | None:
        """The image tag already resolved for this app and prefix, if any."""
        for objects in self.cache.apps(name):
            if objects.name != app:
                continue
            k, p = objects.kustomization, objects.policy
            if k is not None and k.prefix == prefix and k.image_tag:
                return k.image_tag
            if p is not None and p.latest_tag and tag_has_prefix(p.latest_tag, prefix):
                return p.latest_tag
        return None

    async def _apply_app(
        self,
        record: EnvironmentRecord,
        app: str,
        prefix: str,
        apps: set[str],
        *,
        image_tag: str | None = None,
    ) -> None:
        template = self._template(app)
        window = uptime.from_json(record.settings.get("uptime")) or uptime.initial(self.clock())
        policy = manifests.image_policy(
            template,
            environment=record.name,
            namespace=self.namespace,
            prefix=prefix,
            owner_uid=record.uid,
        )
        await self.client.apply(labels.IMAGE_POLICY, policy)
        kustomization = manifests.kustomization(
            self.catalog(),
            template,
            environment=record.name,
            namespace=self.namespace,
            prefix=prefix,
            uptime=window.downscaler_value(),
            image_tag=image_tag or self._known_tag(record.name, app, prefix),
            owner_uid=record.uid,
            source=self._source(record, template),
            apps_in_environment=apps,
        )
        await self.client.apply(labels.KUSTOMIZATION, kustomization)

    async def _reapply_apps(self, record: EnvironmentRecord) -> None:
        """Apply every app of an environment again, after its record (uptime, branch) changed."""
        current = self.cache.apps(record.name)
        names = {a.name for a in current}
        for objects in current:
            if objects.kustomization is not None:
                await self._apply_app(record, objects.name, objects.kustomization.prefix, names)

    # ------------------------------------------------------------------ image follow
    async def follow_image(self, name: str, app: str, tag: str) -> bool:
        """Point an app at a newly resolved tag; False if it no longer applies.

        A merge patch, not an apply: it never creates, so it cannot bring back an app that
        was removed while its new tag was being resolved.
        """
        objects = next((a for a in self.cache.apps(name) if a.name == app), None)
        if objects is None or objects.kustomization is None:
            return False
        k = objects.kustomization
        if k.image_tag == tag or not tag_has_prefix(tag, k.prefix) or k.deleting:
            return False
        patch = {
            "spec": {"postBuild": {"substitute": {labels.SUB_IMAGE_TAG: tag}}, "suspend": False}
        }
        try:
            await self.client.merge_patch(labels.KUSTOMIZATION, self.namespace, k.name, patch)
        except NotFound:
            return False
        record = self.cache.environment(name)
        if record is not None:
            await self._audit(
                record,
                "ImageFollowed",
                f"{app} now runs {tag}",
                Actor("kollie", "image-follow"),
                app=app,
            )
        return True

    # ------------------------------------------------------------------ flux repository branch
    async def follow_branch(self, name: str, branch: str | None, *, actor: Actor) -> None:
        """Make every app of an environment build from `branch` of its Flux repository (None:
        back to the repositories' own branches). Copies of the catalog's GitRepositories are
        read from the cluster, so nothing about them is hard-coded here."""
        await self._whole_view()
        record = self._record(name)
        self.check_may_modify(record, actor)
        if branch is not None:
            branch = branch.strip()
            problem = branch_problem(branch)
            if problem:
                raise InvalidRequest(problem)
        catalog = self.catalog()
        current = self.cache.apps(name)
        templates = {catalog.apps[a.name].git_repository for a in current if a.name in catalog.apps}
        if branch is not None:
            copies = {manifests.git_repository_name(ref, name) for ref in templates}
            await self._check_names_free(name, copies=sorted(copies))
            for ref in sorted(templates, key=lambda r: (r.namespace, r.name)):
                try:
                    template = await self.client.get(labels.GIT_REPOSITORY, ref.namespace, ref.name)
                except NotFound as e:
                    raise InvalidRequest(
                        f"GitRepository {ref.namespace}/{ref.name} of the catalog does not exist"
                    ) from e
                copy = manifests.git_repository_copy(
                    template,
                    environment=name,
                    namespace=self.namespace,
                    branch=branch,
                    owner_uid=record.uid,
                )
                await self.client.apply(labels.GIT_REPOSITORY, copy)
        updated = await self._update_settings(record, fluxBranch=branch)
        await self._reapply_apps(updated)
        if branch is None:
            for view in self.cache.git_repositories_of(name):
                with contextlib.suppress(NotFound):
                    await self.client.delete(labels.GIT_REPOSITORY, view.namespace, view.name)
        await self._audit(
            updated,
            "FluxBranchChanged",
            f"apps build from branch {branch}"
            if branch
            else "apps build from their default branches",
            actor,
        )

    # ------------------------------------------------------------------ uptime
    def follows_schedule(self, name: str) -> bool:
        """Whether the environment is up on a weekly schedule (rather than until a moment)."""
        record = self.cache.environment(name)
        current = uptime.from_json(record.settings.get("uptime")) if record else None
        return current is not None and current.mode == "schedule"

    async def end_uptime(
        self,
        name: str,
        *,
        hours: float | None = None,
        until: datetime | None = None,
        actor: Actor,
    ) -> uptime.Uptime:
        """Give the environment a window that ends: at `until`, or `hours` after its current
        end. On a schedule, hours count from now: asking for hours leaves the schedule (an
        extension, `extend`, refuses to). The window is checked before who asks."""
        await self._whole_view()
        record = self.cache.environment(name)
        current = uptime.from_json(record.settings.get("uptime")) if record else None
        if current is not None and current.mode == "schedule" and hours is not None:
            current = None
        now = self.clock()
        try:
            window = uptime.extend(current or uptime.initial(now), now, hours=hours, until=until)
        except uptime.InvalidUptime as e:
            raise InvalidRequest(str(e)) from e
        await self.set_uptime(name, window, actor=actor)
        return window

    async def extend(
        self, name: str, *, hours: float | None, until: datetime | None, actor: Actor
    ) -> uptime.Uptime:
        await self._whole_view()
        record = self._record(name)
        self.check_may_modify(record, actor)
        current = uptime.from_json(record.settings.get("uptime")) or uptime.initial(self.clock())
        try:
            window = uptime.extend(current, self.clock(), hours=hours, until=until)
        except uptime.InvalidUptime as e:
            raise InvalidRequest(str(e)) from e
        updated = await self._update_settings(record, uptime=window.as_json())
        await self._reapply_apps(updated)
        await self._audit(
            updated, "UptimeChanged", f"up until {window.as_json().get('until')}", actor
        )
        return window
