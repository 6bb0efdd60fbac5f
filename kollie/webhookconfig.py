"""Registry webhook settings read at start: one secret per source, and the delivery age limit.

`KOLLIE_WEBHOOK_SECRETS_FILE` names a file of `source:secret` lines (like the API tokens file),
so a secret that leaks through one registry's webhook URL or header cannot forge deliveries of
another. A source without a line there falls back to `KOLLIE_WEBHOOK_SECRET`.
"""

from __future__ import annotations

from collections.abc import Mapping

from kollie.pushes import SOURCES

MIN_SECRET = 16
"""Characters a per-source secret needs at least (the API tokens' rule)."""
DEFAULT_MAX_AGE = 3600
"""Seconds a delivery's own timestamp may lie in the past before it is ignored as stale."""
MAX_CLOCK_SKEW = 300
"""Seconds a delivery's timestamp may lie in the future (the sender's clock runs ahead)."""


class WebhookSecretsError(ValueError):
    """The per-source secrets file is invalid; `problems` names each line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_webhook_secrets(text: str) -> dict[str, str]:
    """`source:secret` per line (blank lines and `#` comments ignored) into source → secret.

    The secret is everything after the first `:`, so it may contain colons itself.
    """
    secrets: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        source, sep, secret = line.partition(":")
        source, secret = source.strip(), secret.strip()
        if not sep or not source or not secret:
            problems.append(f"line {number}: expected source:secret")
        elif source not in SOURCES:
            problems.append(
                f"line {number}: unknown source {source!r}; known: {', '.join(SOURCES)}"
            )
        elif len(secret) < MIN_SECRET:
            problems.append(
                f"line {number}: the secret of {source!r} is shorter than {MIN_SECRET} characters"
            )
        elif source in secrets:
            problems.append(f"line {number}: a second secret for {source!r}")
        else:
            secrets[source] = secret
    if problems:
        raise WebhookSecretsError(problems)
    return secrets


def secret_for(source: str, per_source: Mapping[str, str], fallback: str | None) -> str | None:
    """The secret deliveries of `source` must carry: its own, else the shared one."""
    return per_source.get(source, fallback)
