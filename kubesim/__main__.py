"""`python -m kubesim`: run the emulated cluster alone, for kubectl or any other client."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import structlog

from kubesim.cluster import PACKAGED_CRDS, SimCluster
from kubesim.demo import seed_demo


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubesim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=6443,
        help="port to listen on; 0 picks a free one (default: 6443)",
    )
    p.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for this server to FILE")
    p.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        help="apply the CRD YAML files in DIR (or a single file) at start; repeatable",
    )
    p.add_argument(
        "--flux-crds", action="store_true", help="apply the Flux CRDs bundled with kubesim"
    )
    p.add_argument(
        "--no-flux", action="store_true", help="do not run the simulated Flux controllers"
    )
    p.add_argument(
        "--reconcile-delay",
        type=float,
        default=2.0,
        help="seconds the simulated Flux controllers take per reconcile (default: 2)",
    )
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="create this namespace at start; repeatable",
    )
    p.add_argument(
        "--rbac",
        action="store_true",
        help="authenticate bearer tokens (the kubeconfig's admin token, ServiceAccount tokens from "
        "TokenRequest) and authorise requests with RBAC, as a real API server",
    )
    p.add_argument(
        "--enable-admission-plugins",
        default="",
        metavar="NAMES",
        help=(
            "comma-separated admission plugins to enforce (with --rbac): "
            "OwnerReferencesPermissionEnforcement"
        ),
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help=(
            "serve HTTPS with a generated CA (in the kubeconfig); kubectl sends tokens only "
            "over TLS"
        ),
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help=(
            "load demo content: Flux CRDs, a platform GitRepository, six ImageRepositories "
            "and images"
        ),
    )
    return p


def _crd_files(paths: list[Path], bundled: bool) -> list[Path]:
    files: list[Path] = sorted(PACKAGED_CRDS.glob("*.yaml")) if bundled else []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"kubesim: --crds {path}: no such file or directory")
    return files


async def _run(args: argparse.Namespace) -> None:
    cluster = SimCluster(
        host=args.host,
        port=args.port,
        crd_files=_crd_files(args.crds, args.flux_crds or args.demo),
        flux=not args.no_flux,
        reconcile_delay=args.reconcile_delay,
        namespaces=args.namespace,
        rbac=args.rbac,
        tls=args.tls,
        admission_plugins=[p for p in args.enable_admission_plugins.split(",") if p],
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await cluster.start()
    summary = seed_demo(cluster) if args.demo else {}
    if args.kubeconfig:
        cluster.write_kubeconfig(args.kubeconfig)
    print(f"kubesim serving on {cluster.url}", flush=True)
    if args.demo:
        print(
            f"demo: {len(summary['apps'])} apps ({', '.join(summary['apps'])}), "
            f"{summary['tags']} image tags "
            f"in the simulated registry {summary['registry']}",
            flush=True,
        )
    if args.kubeconfig:
        kubectl = Path(sys.executable).parent / "kubectl"
        print(
            f"try: {kubectl if kubectl.exists() else 'kubectl'} --kubeconfig {args.kubeconfig} "
            "get gitrepositories,imagerepositories -A",
            flush=True,
        )
        print(
            f"push an image: curl -X POST {cluster.url}/sim/registry/push -H 'Content-Type: "
            "application/json' "
            '-d \'{"image": "registry.example.com/acme/web", '
            '"tag": "feature-x-0123abc-1900000000"}\'',
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        await cluster.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(20))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
