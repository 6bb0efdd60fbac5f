"""`kollie serve` refuses bad configuration with a clear message, before touching the cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _kollie(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kollie.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_bad_settings_exit_2_naming_the_variable() -> None:
    result = _kollie(
        "serve", "--port", "0", env={"KOLLIE_ENV_TTL": "forever", "KOLLIE_NAMESPACE": "Nope"}
    )
    assert result.returncode == 2
    assert "KOLLIE_ENV_TTL" in result.stderr and "KOLLIE_NAMESPACE" in result.stderr


def test_invalid_catalog_is_refused_at_start(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("apps: [{name: Web}]\n")
    result = _kollie(
        "serve",
        "--port",
        "0",
        "--kubeconfig",
        str(tmp_path / "none"),
        env={"KOLLIE_CATALOG": str(catalog)},
    )
    assert result.returncode == 2
    assert "apps[0].name" in result.stderr
