"""An unexpected error's traceback never writes secrets into the log (outside security review:
the console format printed every local variable of the failing handler, among them the API
tokens, the webhook secret and the CSRF key)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SECRET = "s3cret-webhook-key-0123456789"
TOKEN = "ci-token-abcdef0123456789"

# Runs in its own interpreter: configure_logging changes the process's logging for good.
PROGRAM = textwrap.dedent(
    f"""
    import sys
    import structlog
    from kollie.config import Settings
    from kollie.logs import configure_logging

    configure_logging(fmt=sys.argv[1])
    log = structlog.get_logger("kollie.web")

    def handler(webhook_secret, tokens):
        settings = Settings(
            webhook_secret=webhook_secret, webhook_secrets={{"harbor": webhook_secret}},
            csrf_secret=webhook_secret,
        )
        raise RuntimeError("unexpected")

    try:
        handler({SECRET!r}, {{{TOKEN!r}: "ci"}})
    except RuntimeError:
        log.exception("request_failed", path="/api/v1/environments")
    """
)


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_traceback_in_the_log_shows_no_local_variables(fmt: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, fmt], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    log = done.stdout + done.stderr
    assert "request_failed" in log and "RuntimeError" in log, log
    assert SECRET not in log and TOKEN not in log, log


def test_settings_never_show_their_secrets() -> None:
    from kollie.config import Settings

    shown = repr(
        Settings(webhook_secret=SECRET, webhook_secrets={"ghcr": SECRET}, csrf_secret=SECRET)
    )
    assert SECRET not in shown
