"""Simulated Flux controllers (source, image-reflector, kustomize, helm), a simulated git host,
a simulated container registry and a simulated Helm chart host, plugged into the emulated cluster.

They watch the store as the real controllers watch the API server (same triggers: a new
generation, `reconcile.fluxcd.io/requestedAt`, a source's new revision, a new image scan) and
write status as Flux v2.7 does, so Kollie's tests and demo see the conditions, reasons and
messages of a real cluster.  Differences from reality are in timing only: a git push is seen
at once (as with a notification-controller Receiver), dependants are re-queued as soon as a
dependency becomes Ready or its artifact changes, and `reconcile_delay` stands for the time real
work (a clone, a Helm install) takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from kubesim.flux import conditions as cond
from kubesim.flux.admin import admin_routes
from kubesim.flux.charts import Chart, ChartHost, oci_image
from kubesim.flux.controller import REQUESTED_AT, Controller, Settings, annotation, object_key
from kubesim.flux.githost import GitHost
from kubesim.flux.helmactions import Helm
from kubesim.flux.helmrelease import HelmReleaseController
from kubesim.flux.helmsource import (
    HelmChartController,
    HelmRepositoryController,
    OCIRepositoryController,
)
from kubesim.flux.image import ImageRepositoryController, TagDatabase
from kubesim.flux.imagepolicy import ImagePolicyController
from kubesim.flux.kustomize import KustomizationController
from kubesim.flux.registry import InvalidReference, Push, Registry, canonical_name
from kubesim.flux.source import ArtifactStorage, GitRepositoryController
from kubesim.flux.switches import switch_routes
from kubesim.objects import ObjectApi
from kubesim.store import Event

__all__ = [
    "Chart",
    "ChartHost",
    "FluxSimulation",
    "GitHost",
    "Helm",
    "Push",
    "Registry",
    "Settings",
]


def _asks_for_reconcile(event: Event) -> bool:
    """What the real controllers' predicates let through: creation, a new generation (which
    deletion also bumps), or a new `requestedAt` token."""
    old, new = event.old, event.obj
    if old is None:
        return True
    return (
        old["metadata"].get("generation") != new["metadata"].get("generation")
        or annotation(old, REQUESTED_AT) != annotation(new, REQUESTED_AT)
        or bool(old["metadata"].get("deletionTimestamp"))
        != bool(new["metadata"].get("deletionTimestamp"))
    )


def _status(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("status") or {}


def _artifact_changed(event: Event) -> bool:
    """SourceRevisionChangePredicate: a new or different artifact revision."""
    new = None if event.type == "DELETED" else (_status(event.obj).get("artifact") or {})
    old = _status(event.old).get("artifact") or {}
    return (new or {}).get("revision") != old.get("revision")


def _readiness_changed(event: Event) -> bool:
    return cond.status_of(event.old) != cond.status_of(event.obj) or cond.status_of(
        event.old, cond.STALLED
    ) != cond.status_of(event.obj, cond.STALLED)


class FluxSimulation:
    """The Flux controllers of the emulated cluster, with the git host and registry they read."""

    def __init__(
        self,
        api: ObjectApi,
        *,
        reconcile_delay: float = 0.0,
        min_interval: float = 1.0,
        dependency_requeue: float = 30.0,
        strict_substitutions: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api = api
        self.settings = Settings(
            reconcile_delay=reconcile_delay,
            min_interval=min_interval,
            dependency_requeue=dependency_requeue,
        )
        if clock is not None:
            self.settings.clock = clock
        self.git = GitHost()
        self.registry = Registry()
        self.storage = ArtifactStorage()
        self.database = TagDatabase()
        self.sources = GitRepositoryController(
            api, self.settings, git=self.git, storage=self.storage
        )
        self.image_repositories = ImageRepositoryController(
            api, self.settings, registry=self.registry, database=self.database
        )
        self.image_policies = ImagePolicyController(
            api, self.settings, registry=self.registry, database=self.database
        )
        self.kustomizations = KustomizationController(
            api, self.settings, storage=self.storage, strict_substitutions=strict_substitutions
        )
        self.charts = ChartHost(self.registry)
        self.helm = Helm(api, clock=self.settings.clock)
        self.helm_repositories = HelmRepositoryController(
            api, self.settings, storage=self.storage, charts=self.charts
        )
        self.helm_charts = HelmChartController(api, self.settings, storage=self.storage)
        self.oci_repositories = OCIRepositoryController(
            api, self.settings, storage=self.storage, registry=self.registry, charts=self.charts
        )
        self.helm_releases = HelmReleaseController(
            api, self.settings, storage=self.storage, helm=self.helm
        )
        self.controllers: list[Controller] = [
            self.sources,
            self.image_repositories,
            self.image_policies,
            self.kustomizations,
            self.helm_repositories,
            self.helm_charts,
            self.oci_repositories,
            self.helm_releases,
        ]
        self._by_gr = {c.gr: c for c in self.controllers}
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def reconcile_delay(self) -> float:
        return self.settings.reconcile_delay

    @reconcile_delay.setter
    def reconcile_delay(self, seconds: float) -> None:
        self.settings.reconcile_delay = max(0.0, float(seconds))

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for controller in self.controllers:
            controller.start()
        self._unsubscribe = [
            self.api.store.subscribe(self._on_event),
            self.git.subscribe(self.sources.on_git_change),
            self.charts.subscribe(self.helm_repositories.on_chart_push),
            self.registry.subscribe(lambda push: self.oci_repositories.on_push(push.image)),
        ]
        for controller in self.controllers:
            for obj in self.api.store.iter(controller.gr):
                controller.trigger(object_key(obj))
        for obj in self.api.store.iter(self.kustomizations.gr):
            self.kustomizations.track_dependencies(obj)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for controller in self.controllers:
            await controller.stop()

    def routes(self) -> list[web.RouteDef]:
        return [*admin_routes(self), *switch_routes(self)]

    # ------------------------------------------------------------ test and demo handles
    def fail(self, namespace: str, name: str, message: str | None) -> None:
        """Make a Kustomization's health check fail with `message` (None: recover), now."""
        key = (namespace, name)
        if message:
            self.kustomizations.failures[key] = message
        else:
            self.kustomizations.failures.pop(key, None)
        self.kustomizations.trigger(key)

    def refuse_credentials(self, image: str, *, refused: bool = True) -> None:
        """Make the registry refuse (or accept again) the credentials of every client of
        `image`. ImageRepositories and OCIRepositories of it look again now; they see the
        change at their next scan or pull, as they would a revoked (or renewed) token."""
        canonical = self.registry.refuse(image, refused)

        def uses(obj: dict[str, Any]) -> bool:
            spec = obj.get("spec") or {}
            try:
                return (
                    canonical_name(
                        oci_image(str(spec["url"])) if "url" in spec else str(spec.get("image", ""))
                    )
                    == canonical
                )
            except (ValueError, KeyError, InvalidReference):
                return False

        self.image_repositories.trigger_where(uses)
        self.oci_repositories.trigger_where(uses)

    # ------------------------------------------------------------ events
    def _on_event(self, event: Event) -> None:
        """Route a store change; never writes (the controllers' workers do, later)."""
        controller = self._by_gr.get(event.gr)
        if controller is None:
            return
        key = object_key(event.obj)
        if event.type == "DELETED":
            controller.forget(key)
        elif _asks_for_reconcile(event):
            controller.trigger(key)
        if controller is self.sources:
            self._source_changed(event)
        elif controller is self.image_repositories:
            self._scan_changed(event)
        elif controller is self.kustomizations:
            self.kustomizations.track_dependencies(event.obj, deleted=event.type == "DELETED")
            self._kustomization_changed(event)
        elif controller is self.helm_repositories and _artifact_changed(event):
            self.helm_charts.trigger_where(self.helm_charts.using_repository(event.obj))
        elif controller in (self.helm_charts, self.oci_repositories) and (
            _artifact_changed(event) or _readiness_changed(event)
        ):
            self.helm_releases.trigger_where(self.helm_releases.using_source(event.obj))
        if controller in (self.helm_releases, self.kustomizations) and event.type != "DELETED":
            for key in self.kustomizations.health.waiting_for(event.obj):
                self.kustomizations.schedule(key)

    def _source_changed(self, event: Event) -> None:
        """SourceRevisionChangePredicate: a new or different artifact revision."""
        new = (
            None
            if event.type == "DELETED"
            else (_status(event.obj).get("artifact") or {}).get("revision")
        )
        old = (_status(event.old).get("artifact") or {}).get("revision")
        if new != old:
            self.kustomizations.trigger_where(
                self.kustomizations.using_source("GitRepository", event.obj)
            )

    def _scan_changed(self, event: Event) -> None:
        """The ImagePolicy watch: an ImageRepository created or deleted, or a scan with a new
        tag set."""
        new = (_status(event.obj).get("lastScanResult") or {}).get("revision")
        old = (_status(event.old).get("lastScanResult") or {}).get("revision")
        if event.type in ("ADDED", "DELETED") or (new is not None and new != old):
            self.image_policies.trigger_where(self.image_policies.refers_to(event.obj))

    def _kustomization_changed(self, event: Event) -> None:
        """Dependants look again as soon as a dependency's readiness or revision changes."""

        def state(obj: Mapping[str, Any] | None) -> tuple[bool, Any]:
            return cond.is_ready(obj), _status(obj).get("lastAppliedRevision")

        if event.type == "DELETED" or state(event.old) != state(event.obj):
            for key in self.kustomizations.dependents_of(event.obj):
                self.kustomizations.trigger(key)

    def describe(self) -> dict[str, Any]:
        return {
            "reconcileDelay": self.settings.reconcile_delay,
            "minInterval": self.settings.min_interval,
            "dependencyRequeue": self.settings.dependency_requeue,
            "strictSubstitutions": self.kustomizations.strict_substitutions,
            "failures": [
                {"namespace": ns, "name": n, "message": m}
                for (ns, n), m in sorted(self.kustomizations.failures.items())
            ],
        }
