"""kubernetes-asyncio's generated API and models stay unimported until something asks for them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kollie_does_not_import_the_generated_client() -> None:
    out = _run(
        """
        import sys
        import web.app
        from kollie.kube import KubeClient
        generated = [m for m in sys.modules
                     if m.startswith(("kubernetes_asyncio.client.api.",
                                      "kubernetes_asyncio.client.models."))]
        print(len(generated), KubeClient.from_config is not None)
        """
    )
    assert out.split() == ["0", "True"]


def test_the_generated_client_still_works_for_whoever_asks() -> None:
    out = _run(
        """
        import kollie.kube.client
        from kubernetes_asyncio import client, config, watch
        from kubernetes_asyncio.client.models import V1ObjectMeta
        meta = client.V1ObjectMeta(name="x")
        print(client.CoreV1Api.__name__, watch.Watch.__name__, meta.name,
              V1ObjectMeta is client.V1ObjectMeta, config.ConfigException.__name__)
        """
    )
    assert out.split() == ["CoreV1Api", "Watch", "x", "True", "ConfigException"]
