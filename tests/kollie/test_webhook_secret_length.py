"""The shared webhook secret needs 16 characters, as each per-source secret does (outside
security review: `KOLLIE_WEBHOOK_SECRET=abc` was accepted, an HMAC key and, for registries
that cannot sign, a password sent as is)."""

from __future__ import annotations

import pytest

from kollie.config import ConfigError, Settings


def test_a_short_shared_webhook_secret_is_refused_at_start() -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"KOLLIE_WEBHOOK_SECRET": "abc"})
    assert any(p.startswith("KOLLIE_WEBHOOK_SECRET: must be at least 16") for p in e.value.problems)
    assert Settings.from_env({"KOLLIE_WEBHOOK_SECRET": "w" * 16}).webhook_secret == "w" * 16
    assert Settings.from_env({"KOLLIE_WEBHOOK_SECRET": ""}).webhook_secret is None
