"""`kollie serve` and `kollie demo` (DESIGN §3a)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import structlog
from aiohttp import web

from kollie import envcli
from kollie.catalog import CatalogError
from kollie.config import ConfigError, Settings, TokenFileError
from kollie.kube import KubeError
from kollie.logs import configure_logging

log = structlog.get_logger("kollie")
DEMO_CATALOG = Path(__file__).parent / "demo" / "catalog.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kollie", description="Ephemeral test environments on Kubernetes with Flux."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run Kollie against a cluster")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    serve.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then in-cluster configuration)"
    )
    demo = sub.add_parser("demo", help="run Kollie on an emulated cluster with simulated Flux")
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1 only)"
    )
    demo.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    demo.add_argument(
        "--catalog",
        type=Path,
        default=DEMO_CATALOG,
        help="catalog file (default: the demo catalog)",
    )
    demo.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(".kollie/kubeconfig"),
        help="where to write the emulated cluster's kubeconfig (default: .kollie/kubeconfig)",
    )
    demo.add_argument(
        "--reconcile-delay",
        type=float,
        default=2.0,
        help="seconds each simulated Flux reconcile takes (default: 2)",
    )
    envcli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "env":
        sys.exit(envcli.run(args))
    environ = dict(os.environ)
    if args.command == "demo":
        environ.setdefault("KOLLIE_CATALOG", str(args.catalog))
    try:
        settings = Settings.from_env(environ, demo=args.command == "demo")
    except ConfigError as e:
        print(f"kollie: {e}", file=sys.stderr)
        sys.exit(2)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        if args.command == "serve":
            _serve(settings, args)
        else:
            asyncio.run(_demo(settings, args))
    except (CatalogError, TokenFileError, KubeError) as e:
        print(f"kollie: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    from kollie.composition import create_app
    from kollie.serving import serve

    app = create_app(settings, kubeconfig=args.kubeconfig)
    asyncio.run(serve(app, host=args.host, port=args.port, settings=settings))


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from kollie.composition import RUNTIME, create_app, create_demo_environments
    from kubesim import PACKAGED_CRDS, SimCluster
    from kubesim.demo import seed_demo

    cluster = SimCluster(
        crd_files=sorted(PACKAGED_CRDS.glob("*.yaml")), reconcile_delay=args.reconcile_delay
    )
    await cluster.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    try:
        seed_demo(cluster)
        cluster.apply_object(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": settings.namespace}}
        )
        kubeconfig = cluster.write_kubeconfig(args.kubeconfig.resolve())
        app = create_app(settings, kubeconfig=str(kubeconfig), demo=True)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=5.0
        )
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        url = f"http://{args.host}:{args.port}"
        from kubesim.registry_webhooks import Target

        # The simulated registry tells Kollie about pushes, as a real one would with a webhook.
        cluster.webhooks.targets = [
            Target(f"{url}/webhooks/registry/generic", "generic", settings.webhook_secret)
        ]
        await create_demo_environments(app[RUNTIME])
        print(
            f"\nKollie demo is running: {url}\n"
            f"  API:        curl {url}/api/v1/environments\n"
            f"  kubectl:    kubectl --kubeconfig {args.kubeconfig} "
            f"get kustomizations,imagepolicies -n {settings.namespace}\n"
            f"  emulator:   {cluster.url}  (push images: POST {cluster.url}/sim/registry/push)\n"
            f"  try:        curl -X POST {cluster.url}/sim/registry/push "
            "-H 'Content-Type: application/json' "
            '-d \'{"image": "registry.example.com/acme/web", '
            '"tag": "feature-new-0123abc-1900000000"}\'\n'
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        with contextlib.suppress(Exception):
            await cluster.stop()


if __name__ == "__main__":
    main()
