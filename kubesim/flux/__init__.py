"""Simulated Flux controllers (source, image reflector, kustomize), a simulated git host and
a simulated container registry, plugged into the emulated cluster.

They watch the store like the real controllers watch the API server and write status the way
the real ones do, so Kollie's tests and demo see the same conditions and reasons as in a real
cluster. Reconciles take `reconcile_delay` seconds (0 in tests, a few seconds in the demo).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from kubesim.flux.admin import admin_routes
from kubesim.flux.common import Key, Reconciler, ready_status, triggers
from kubesim.flux.githost import GitHost
from kubesim.flux.image import ImagePolicyReconciler, ImageRepositoryReconciler
from kubesim.flux.kustomize import KustomizationReconciler
from kubesim.flux.registry import Registry
from kubesim.flux.source import GitRepositoryReconciler
from kubesim.objects import ObjectApi
from kubesim.store import Event

__all__ = ["FluxSimulation", "GitHost", "Registry"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _key(obj: Mapping[str, Any]) -> Key:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def _status_changed(event: Event) -> bool:
    if event.old is None or event.type == "DELETED":
        return True
    return (event.old.get("status") or {}) != (event.obj.get("status") or {}) and (
        ready_status(event.old) != ready_status(event.obj)
        or (event.old.get("status") or {}).get("artifact") != (event.obj.get("status") or {}).get("artifact")
        or (event.old.get("status") or {}).get("lastScanResult", {}).get("latestTags")
        != (event.obj.get("status") or {}).get("lastScanResult", {}).get("latestTags")
        or (event.old.get("status") or {}).get("observedGeneration")
        != (event.obj.get("status") or {}).get("observedGeneration")
    )


class FluxSimulation:
    """The Flux controllers of the emulated cluster."""

    def __init__(self, api: ObjectApi, *, reconcile_delay: float = 0.0,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.api = api
        self.reconcile_delay = reconcile_delay
        self.git = GitHost()
        self.registry = Registry()
        self.failures: dict[Key, str] = {}
        scans: dict[Key, dict[str, str]] = {}
        common: dict[str, Any] = {"delay": lambda: self.reconcile_delay, "clock": clock}
        self.sources = GitRepositoryReconciler(api, git=self.git, **common)
        self.repositories = ImageRepositoryReconciler(api, registry=self.registry, scans=scans, **common)
        self.policies = ImagePolicyReconciler(api, registry=self.registry, scans=scans, **common)
        self.kustomizations = KustomizationReconciler(api, git=self.git, failures=self.failures, **common)
        self._reconcilers: dict[tuple[str, str], Reconciler] = {
            r.gr: r for r in (self.sources, self.repositories, self.policies, self.kustomizations)
        }
        self._unsubscribe: Callable[[], None] | None = None
        self.git.subscribe(self.sources.on_push)

    def start(self) -> None:
        for reconciler in self._reconcilers.values():
            reconciler.start()
        self._unsubscribe = self.api.store.subscribe(self._on_event)
        for gr, reconciler in self._reconcilers.items():
            for obj in self.api.store.iter(gr):
                reconciler.trigger(_key(obj))

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        for reconciler in self._reconcilers.values():
            await reconciler.stop()

    def routes(self) -> list[web.RouteDef]:
        return admin_routes(self)

    def fail(self, namespace: str, name: str, message: str | None) -> None:
        """Make a Kustomization's health check fail with `message` (None: recover)."""
        key = (namespace, name)
        if message:
            self.failures[key] = message
        else:
            self.failures.pop(key, None)
        self.kustomizations.trigger(key)

    def _on_event(self, event: Event) -> None:
        reconciler = self._reconcilers.get(event.gr)
        if reconciler is None:
            return
        key = _key(event.obj)
        if event.type != "DELETED" and triggers(event.old, event.obj):
            reconciler.trigger(key)
        if not _status_changed(event):
            return
        if reconciler is self.sources:
            self.kustomizations.on_source(event.obj)
        elif reconciler is self.repositories:
            self.policies.on_repository(event.obj)
        elif reconciler is self.kustomizations:
            self.kustomizations.on_kustomization(event.obj)
