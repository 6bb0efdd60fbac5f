"""What the container image installs: the wheel builds, installs alone into a clean virtualenv,
and its `kollie` entrypoint serves the dashboard (templates and static files included).

Docker cannot run here; the Dockerfile's steps are `pip wheel .` and `pip install` of the wheels,
which this test repeats (dependencies come from the test environment instead of PyPI)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT, Standalone
from tests.helpers import free_port


def _docker_context() -> list[str]:
    """The files the Dockerfile copies (its COPY lines), which .dockerignore must let through."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = [
        part
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    ]
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(copied) <= allowed, f".dockerignore excludes {set(copied) - allowed}"
    return copied


DOCKER_CONTEXT = _docker_context()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the built wheel in it; returns its `kollie` script."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"  # what the Dockerfile copies into its build stage, nothing else
    source.mkdir()
    for name in DOCKER_CONTEXT:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("kollie-*.whl")
    venv.EnvBuilder(with_pip=True).create(work / "venv")
    pip = work / "venv" / "bin" / "pip"
    subprocess.run(
        [str(pip), "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300
    )
    return work / "venv" / "bin" / "kollie"


def _env_without_sources() -> dict[str, str]:
    """Dependencies from this environment's site-packages only: a PYTHONPATH entry does not run the
    editable install's .pth hook, so the checkout itself is not importable."""
    return {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"], "PYTHONSAFEPATH": "1"}


def test_the_wheel_carries_code_templates_static_files_and_crds(installed: Path) -> None:
    site = next((installed.parent.parent / "lib").glob("python3*/site-packages"))
    for relative in (
        "web/templates/index.html",
        "web/static/app.css",
        "web/static/app.js",
        "kollie/demo/catalog.yaml",
        "kubesim/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    ):
        assert (site / relative).is_file(), relative
    assert not (site / "tests").exists(), "tests are not shipped"


def test_the_entrypoint_serves(installed: Path, standalone: Standalone, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text((ROOT / "kollie" / "demo" / "catalog.yaml").read_text())
    port = free_port()
    env = {
        **_env_without_sources(),
        "KUBECONFIG": str(standalone.kubeconfig),
        "KOLLIE_CATALOG": str(catalog),
        "KOLLIE_NAMESPACE": "default",
        "KOLLIE_TRUST_PROXY_HEADERS": "true",
    }
    process = subprocess.Popen(
        [str(installed), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "kollie serve did not become ready"
            time.sleep(0.2)
        dashboard = urllib.request.Request(
            f"{base}/", headers={"X-Auth-Request-Email": "dev@example.com"}
        )
        with urllib.request.urlopen(dashboard, timeout=5) as r:
            page = r.read().decode()
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page)
        assert stylesheet, "the dashboard links its stylesheet"
        with urllib.request.urlopen(base + stylesheet.group(1), timeout=5) as r:
            assert r.status == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    assert process.returncode == 0, output


def test_the_installed_code_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    python = installed.parent / "python"
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import kollie, web, watchers, kubesim;"
            "print(*(m.__file__ for m in (kollie, web, watchers, kubesim)))",
        ],
        cwd=tmp_path,
        env=_env_without_sources(),
        capture_output=True,
        text=True,
        check=True,
    )
    for path in where.stdout.split():
        assert Path(path).is_relative_to(installed.parent.parent), path
