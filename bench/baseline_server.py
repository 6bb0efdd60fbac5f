"""A do-nothing HTTP server answering every request with a fixed small Kubernetes object.

Benchmarks measure the emulator against it: the same client, the same HTTP stack, no work
on the server. The ratio says how much of a request's cost is the emulator's own.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

BODY = json.dumps(
    {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": "x",
            "namespace": "bench",
            "resourceVersion": "1",
            "uid": "u",
            "generation": 1,
        },
        "spec": {
            "interval": "5m",
            "path": "./apps",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "p"},
        },
    }
).encode()


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(
        body=BODY, content_type="application/json", status=201 if request.method == "POST" else 200
    )


def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
