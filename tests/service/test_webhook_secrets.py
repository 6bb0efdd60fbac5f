"""A webhook secret per registry source and the delivery age limit: checked at start, used by
the real endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kollie.config import ConfigError, Settings
from tests.service.conftest import Kollie, StartKollie

SHARED = "shared-webhook-secret-0123"
HARBOR = "harbor-only-secret-456789"
GENERIC = "generic-only-secret-987654"
PUSH = {
    "type": "PUSH_ARTIFACT",
    "occur_at": 1,
    "event_data": {
        "resources": [{"tag": "v1", "resource_url": "harbor.example.com/other/thing:v1"}],
        "repository": {"repo_full_name": "other/thing"},
    },
}


def _signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _post(kollie: Kollie, source: str, body: bytes, headers: dict[str, str]) -> int:
    async with kollie.http.post(
        kollie.url(f"/webhooks/registry/{source}"),
        data=body,
        headers={"Content-Type": "application/json", **headers},
    ) as r:
        return r.status


async def test_each_source_takes_its_own_secret_and_the_rest_the_shared_one(
    start_kollie: StartKollie, tmp_path: Path
) -> None:
    secrets = tmp_path / "webhook-secrets"
    secrets.write_text(f"# per registry\nharbor:{HARBOR}\n\ngeneric: {GENERIC}\n")
    kollie = await start_kollie(
        KOLLIE_WEBHOOK_SECRET=SHARED, KOLLIE_WEBHOOK_SECRETS_FILE=str(secrets)
    )
    harbor = json.dumps(PUSH).encode()
    assert await _post(kollie, "harbor", harbor, {"Authorization": HARBOR}) == 202
    assert await _post(kollie, "harbor", harbor, {"Authorization": SHARED}) == 401, (
        "the shared secret no longer opens a source that has its own"
    )
    generic = json.dumps({"repository": "other/thing", "tag": "v1"}).encode()
    assert (
        await _post(kollie, "generic", generic, {"X-Signature": _signature(GENERIC, generic)})
        == 202
    )
    assert (
        await _post(kollie, "generic", generic, {"X-Signature": _signature(SHARED, generic)}) == 401
    )
    assert (
        await _post(kollie, "generic", generic, {"X-Signature": _signature(HARBOR, generic)}) == 401
    ), "one source's secret does not sign another's deliveries"
    quay = json.dumps({"repository": "other/thing", "updated_tags": ["v1"]}).encode()
    assert await _post(kollie, "quay", quay, {"Authorization": f"Bearer {SHARED}"}) == 202
    assert await _post(kollie, "quay", quay, {"Authorization": f"Bearer {HARBOR}"}) == 401


async def test_without_the_shared_secret_only_sources_with_their_own_are_open(
    start_kollie: StartKollie, tmp_path: Path
) -> None:
    secrets = tmp_path / "webhook-secrets"
    secrets.write_text(f"harbor:{HARBOR}\n")
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRETS_FILE=str(secrets))
    harbor = json.dumps(PUSH).encode()
    assert await _post(kollie, "harbor", harbor, {"Authorization": HARBOR}) == 202
    async with kollie.http.post(
        kollie.url("/webhooks/registry/quay"),
        data=b"{}",
        headers={"Authorization": f"Bearer {HARBOR}"},
    ) as r:
        answer = await r.json()
        assert r.status == 503 and answer["error"] == "webhooks_disabled"
        assert "quay" in answer["message"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("harbor\n", "line 1: expected source:secret"),
        (f"dockrhub:{HARBOR}\n", "line 1: unknown source 'dockrhub'"),
        ("# x\nharbor:short\n", "line 2: the secret of 'harbor' is shorter than 16"),
        (f"harbor:{HARBOR}\nharbor:{GENERIC}\n", "line 2: a second secret for 'harbor'"),
    ],
)
def test_a_bad_secrets_file_is_refused_naming_the_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    secrets = tmp_path / "webhook-secrets"
    secrets.write_text(content)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"KOLLIE_WEBHOOK_SECRETS_FILE": str(secrets)})
    (problem,) = raised.value.problems
    assert problem.startswith("KOLLIE_WEBHOOK_SECRETS_FILE=") and expected in problem
    assert HARBOR not in problem and GENERIC not in problem, "secrets never appear in messages"


def test_kollie_serve_stops_at_start_on_a_missing_secrets_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kollie.cli", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "KOLLIE_WEBHOOK_SECRETS_FILE": str(tmp_path / "missing"),
        },
    )
    assert result.returncode == 2
    assert "KOLLIE_WEBHOOK_SECRETS_FILE" in result.stderr and "cannot read" in result.stderr


def test_settings_never_show_webhook_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "webhook-secrets"
    secrets.write_text(f"harbor:{HARBOR}\n")
    settings = Settings.from_env(
        {"KOLLIE_WEBHOOK_SECRET": SHARED, "KOLLIE_WEBHOOK_SECRETS_FILE": str(secrets)}
    )
    assert settings.webhook_secrets == {"harbor": HARBOR}
    assert HARBOR not in repr(settings) and SHARED not in repr(settings)


def test_the_delivery_age_limit_is_a_duration() -> None:
    assert Settings.from_env({}).webhook_max_age_seconds == 3600
    assert Settings.from_env({"KOLLIE_WEBHOOK_MAX_AGE": "24h"}).webhook_max_age_seconds == 86400
    assert Settings.from_env({"KOLLIE_WEBHOOK_MAX_AGE": "0"}).webhook_max_age_seconds == 0
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"KOLLIE_WEBHOOK_MAX_AGE": "an hour", "KOLLIE_ENV_TTL": "forever"})
    assert raised.value.problems == [
        "KOLLIE_ENV_TTL='forever': expected a duration like 7d, 36h or 0 (never)",
        "KOLLIE_WEBHOOK_MAX_AGE='an hour': expected a duration like 1h, 30m or 0 (no limit)",
    ]
