"""A whole emulated cluster: store, API server, garbage collector and simulated Flux,
served over HTTP on a loopback port.

Use it in-process (`async with SimCluster() as cluster:`) or run it alone with
`python -m kubesim`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import structlog
import yaml
from aiohttp import web

from kubesim import ownerrefs
from kubesim.faults import Faults
from kubesim.gc import GarbageCollector
from kubesim.objects import Clock, ObjectApi, WriteOptions
from kubesim.rbac import Authorizer
from kubesim.registry_webhooks import WebhookSender
from kubesim.resources import CRD_GR, NAMESPACE_GR, ResourceCatalog
from kubesim.server import ApiServer
from kubesim.store import Store
from kubesim.tls import serving_certificates
from kubesim.watching import ServerSettings

if TYPE_CHECKING:
    from kubesim.flux import FluxSimulation

log = structlog.get_logger("kubesim")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MAX_DOWNTIME = 3600.0
"""Longest outage `/sim/restart?downtime=` accepts, in seconds."""
PACKAGED_CRDS = Path(__file__).parent / "crds"
"""The Flux CRDs shipped with the package (copies of the upstream files, unmodified)."""


class Controller(Protocol):
    """A simulated controller plugged into the cluster."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def routes(self) -> list[web.RouteDef]: ...


def _flux_simulation(api: ObjectApi, reconcile_delay: float) -> Controller:
    """The simulated Flux controllers, a plug-in of the cluster (see kubesim.flux)."""
    import importlib

    module = importlib.import_module("kubesim.flux")
    controller: Controller = module.FluxSimulation(api, reconcile_delay=reconcile_delay)
    return controller


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SimCluster:
    """An emulated Kubernetes cluster with simulated Flux controllers."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        crd_files: Iterable[Path] = (),
        flux: bool = True,
        reconcile_delay: float = 0.0,
        bookmark_interval: float = 5.0,
        history_size: int = 200_000,
        namespaces: Sequence[str] = (),
        clock: Clock = _utcnow,
        rbac: bool = False,
        tls: bool = False,
        admission_plugins: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.store = Store(history_size=history_size)
        self.catalog = ResourceCatalog()
        self.api = ObjectApi(self.store, self.catalog, clock=clock)
        self.faults = Faults()
        self.server = ApiServer(
            self.api,
            faults=self.faults,
            settings=ServerSettings(bookmark_interval=bookmark_interval),
        )
        # kubectl and Helm send tokens only over TLS: an RBAC cluster for them serves HTTPS.
        self.certificates = serving_certificates(host) if tls else None
        if rbac:
            # Tokens and RBAC as a real API server; the kubeconfig's admin token is in
            # system:masters.
            self.server.authorizer = Authorizer(self.store)
        for plugin in admission_plugins:
            if plugin != ownerrefs.PLUGIN or self.server.authorizer is None:
                raise ValueError(
                    f"admission plugin {plugin!r}: only {ownerrefs.PLUGIN}, with rbac, is emulated"
                )
            self.api.admission_checks.append(
                ownerrefs.OwnerReferencesPermissionEnforcement(self.server.authorizer, self.catalog)
            )
        self.gc = GarbageCollector(self.api)
        self.controllers: list[Controller] = []
        self.webhooks = WebhookSender()
        if flux:
            simulation = _flux_simulation(self.api, reconcile_delay)
            self.controllers.append(simulation)
            registry = getattr(simulation, "registry", None)
            if registry is not None:
                registry.subscribe(self.webhooks.on_push)
        self._crd_files = list(crd_files)
        # A cluster with Flux has its flux-system namespace, where Flux's own sources live.
        self._namespaces = [*DEFAULT_NAMESPACES, *(["flux-system"] if flux else []), *namespaces]
        self._runner: web.AppRunner | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._seeded = False

    # ----------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        scheme = "https" if self.certificates else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def flux(self) -> FluxSimulation:
        """The simulated Flux controllers, with their git host and registry (typed, for tests)."""
        from kubesim.flux import FluxSimulation

        for controller in self.controllers:
            if isinstance(controller, FluxSimulation):
                return controller
        raise LookupError("this cluster runs without simulated Flux (flux=False)")

    async def start(self) -> None:
        if not self._seeded:
            self._seed()
            self._seeded = True
            self.gc.start()
            for controller in self.controllers:
                controller.start()
        await self._serve()
        log.info("kubesim_started", url=self.url)

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self.server.middleware], client_max_size=4 * 1024 * 1024)
        app.add_routes(self.server.routes())
        app.add_routes(self._admin_routes())
        app.add_routes(self.webhooks.routes())
        for controller in self.controllers:
            app.add_routes(controller.routes())
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.host,
            self.port,
            reuse_address=True,
            ssl_context=self.certificates.context if self.certificates else None,
        )
        await site.start()
        if self.port == 0:
            # The first start picks a free port; restarts reuse it, as a restarted apiserver would.
            self.port = int(self._runner.addresses[0][1])
        self.server.address = f"{self.host}:{self.port}"

    async def _unserve(self) -> None:
        self.server.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop(self) -> None:
        restarting = self._restart_task
        if restarting is not None and not restarting.done():
            # A restart still in its downtime must not serve again after the stop.
            restarting.cancel()
            await asyncio.gather(restarting, return_exceptions=True)
        await self._unserve()
        for controller in self.controllers:
            await controller.stop()
        await self.webhooks.stop()
        await self.gc.stop()
        log.info("kubesim_stopped")

    async def restart(self, *, downtime: float = 0.0) -> None:
        """Stop serving (dropping every connection and watch) and serve again on the same port,
        keeping the store: what a kube-apiserver restart looks like to clients."""
        await self._unserve()
        if downtime:
            await asyncio.sleep(downtime)
        await self._serve()
        log.info("kubesim_restarted", url=self.url)

    def expire_history(self) -> None:
        """Force 410 Gone: forget history and cut every watch, so clients must relist."""
        self.store.compact()
        self.server.close_watches()

    def drop_watches(self) -> None:
        self.server.close_watches()

    async def __aenter__(self) -> SimCluster:
        await self.start()
        return self

    async def __aexit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        await self.stop()

    # ----------------------------------------------------------- seeding
    def _seed(self) -> None:
        ns_type = self.catalog.get(NAMESPACE_GR)
        assert ns_type is not None
        for ns in self._namespaces:
            if self.store.get(NAMESPACE_GR, "", ns) is None:
                self.api.create(
                    ns_type,
                    "v1",
                    "",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                    WriteOptions(manager="kubesim"),
                )
        for path in self._crd_files:
            self.apply_crd_file(path)

    def apply_crd_file(self, path: Path) -> list[str]:
        """Create or replace the CRDs in a YAML file; returns their names."""
        names = []
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                self.apply_object(doc)
                names.append(doc["metadata"]["name"])
        return names

    def apply_object(self, obj: dict[str, Any], *, manager: str = "kubesim") -> dict[str, Any]:
        """Create an object, or replace it if it exists (in-process, no HTTP)."""
        api_version = obj["apiVersion"]
        group, _, version = api_version.rpartition("/")
        rt = self.catalog.by_kind(group, obj["kind"])
        if rt is None:
            raise LookupError(f"no resource type for {api_version} {obj['kind']}")
        ns = obj["metadata"].get("namespace", "default") if rt.namespaced else ""
        existing = self.store.get(rt.gr, ns, obj["metadata"]["name"])
        opts = WriteOptions(manager=manager)
        if existing is None:
            return self.api.create(rt, version, ns, obj, opts)
        body = {
            **obj,
            "metadata": {
                **obj["metadata"],
                "resourceVersion": existing["metadata"]["resourceVersion"],
            },
        }
        return self.api.update(rt, version, ns, obj["metadata"]["name"], body, opts)

    def crd_names(self) -> list[str]:
        return [o["metadata"]["name"] for o in self.store.iter(CRD_GR)]

    # ----------------------------------------------------------- kubeconfig
    def kubeconfig(
        self, *, namespace: str = "default", token: str = "kubesim-admin"
    ) -> dict[str, Any]:
        server: dict[str, Any] = {"server": self.url}
        if self.certificates:
            server["certificate-authority-data"] = base64.b64encode(
                self.certificates.ca_pem
            ).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": server}],
            "users": [{"name": "kubesim-admin", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "kubesim",
                    "context": {
                        "cluster": "kubesim",
                        "user": "kubesim-admin",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "kubesim",
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path, **kwargs: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(**kwargs), sort_keys=False))
        return path

    # ----------------------------------------------------------- admin API
    def _admin_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/sim/faults", self._get_faults),
            web.put("/sim/faults", self._put_faults),
            web.delete("/sim/faults", self._reset_faults),
            web.post("/sim/expire", self._expire),
            web.post("/sim/drop-watches", self._drop_watches),
            web.post("/sim/restart", self._restart),
            web.get("/sim/stats", self._stats),
            web.post("/sim/load", self._load),
        ]

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.as_dict())

    async def _put_faults(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            self.faults.update(changes)
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response(self.faults.as_dict())

    async def _reset_faults(self, request: web.Request) -> web.Response:
        self.faults.reset()
        return web.json_response(self.faults.as_dict())

    async def _expire(self, request: web.Request) -> web.Response:
        self.expire_history()
        return web.json_response({"compactedResourceVersion": str(self.store.compacted_rv)})

    async def _drop_watches(self, request: web.Request) -> web.Response:
        count = len(self.server.watches)
        self.drop_watches()
        return web.json_response({"dropped": count})

    async def _restart(self, request: web.Request) -> web.Response:
        try:
            downtime = float(request.query.get("downtime", "0.2"))
        except ValueError:
            downtime = -1.0
        if not 0 <= downtime <= MAX_DOWNTIME:
            return web.json_response(
                {"error": f"downtime must be a number of seconds between 0 and {MAX_DOWNTIME:g}"},
                status=400,
            )
        task = asyncio.get_running_loop().create_task(
            self._restart_later(downtime), name="kubesim-restart"
        )
        self._restart_task = task
        return web.json_response({"restarting": True, "downtime": downtime}, status=202)

    async def _restart_later(self, downtime: float) -> None:
        await asyncio.sleep(0.05)  # let the 202 reach the caller before its connection drops
        try:
            await self.restart(downtime=downtime)
        except Exception:
            # Not serving again is what the caller would see; the log says why.
            log.exception("kubesim_restart_failed", url=self.url)

    async def _load(self, request: web.Request) -> web.Response:
        """Create many objects from one template in-process: a load generator for benchmarks
        that must not be limited by HTTP clients (`{"object": {...}, "count": N}`). Each `{i}`
        in the template becomes the object's number; without one, names get `-<number>`."""
        try:
            body = await request.json()
            template = body["object"]
            count = int(body.get("count", 1))
            if not isinstance(template, dict) or not 1 <= count <= 1_000_000:
                raise ValueError("object must be an object and count between 1 and 1000000")
        except (ValueError, KeyError, TypeError) as e:
            return web.json_response({"error": f"bad load request: {e}"}, status=400)
        prefix = template["metadata"].get("name", "load")
        text = json.dumps(template)
        numbered = "{i}" in text
        started = asyncio.get_running_loop().time()
        for i in range(count):
            if numbered:
                obj = json.loads(text.replace("{i}", str(i)))
            else:
                obj = {**template, "metadata": {**template["metadata"], "name": f"{prefix}-{i}"}}
            self.apply_object(obj, manager="kubesim-load")
            if i % 500 == 499:
                await asyncio.sleep(0)  # let watch streams drain while we generate
        elapsed = asyncio.get_running_loop().time() - started
        return web.json_response({"created": count, "seconds": round(elapsed, 3)})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "resourceVersion": str(self.store.resource_version),
                "compactedResourceVersion": str(self.store.compacted_rv),
                "watches": len(self.server.watches),
                "objects": {
                    f"{g}/{r}" if g else r: self.store.count((g, r)) for g, r in self.store.types()
                },
            }
        )
