"""Kollie's settings, read from `KOLLIE_*` environment variables once at start (DESIGN §3a).

Every bad value is reported at once, each with a message naming the variable.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kollie.limits import Limits
from kollie.naming import label_problem
from kollie.webhookconfig import (
    DEFAULT_MAX_AGE,
    MIN_SECRET,
    WebhookSecretsError,
    parse_webhook_secrets,
)


class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_OFFICE_HOURS = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)-(Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d) (\S+)$"
)


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a Kollie process."""

    namespace: str = "kollie"
    """Where Kollie's objects live (`KOLLIE_NAMESPACE`)."""
    catalog_path: Path = Path("/etc/kollie/catalog.yaml")
    """The catalog file (`KOLLIE_CATALOG`), reloaded when it changes."""
    api_tokens_file: Path | None = None
    """`name:token` lines for API clients (`KOLLIE_API_TOKENS_FILE`); unset: no API tokens."""
    webhook_secret: str | None = field(default=None, repr=False)
    """Shared secret of registry webhooks (`KOLLIE_WEBHOOK_SECRET`): the fallback for every
    source without its own secret."""
    webhook_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """One secret per registry source, read at start from the `source:secret` lines of
    `KOLLIE_WEBHOOK_SECRETS_FILE` (kollie.webhookconfig)."""
    webhook_max_age_seconds: int = DEFAULT_MAX_AGE
    """Ignore pushes whose delivery says it is older than this (`KOLLIE_WEBHOOK_MAX_AGE`;
    0 = any age)."""
    trust_proxy_headers: bool = False
    """Trust oauth2-proxy identity headers (`KOLLIE_TRUST_PROXY_HEADERS`)."""
    admins: frozenset[str] = field(default_factory=frozenset)
    """Users who may change any environment (`KOLLIE_ADMINS`, comma-separated)."""
    owner_only: bool = False
    """Only owners and admins may change an environment (`KOLLIE_OWNER_ONLY`)."""
    lease_exclusion_list: frozenset[str] = field(default_factory=frozenset)
    """Environments that follow office hours instead of an end time
    (`KOLLIE_LEASE_EXCLUSION_LIST`)."""
    office_hours: str = "Mon-Fri 07:00-19:00 Europe/London"
    """Their uptime schedule (`KOLLIE_OFFICE_HOURS`), in GoKubeDownscaler's weekly format."""
    env_ttl_seconds: int = 7 * 86400
    """Delete environments this long after their window ended (`KOLLIE_ENV_TTL`; 0 = never)."""
    expiry_max_per_minute: int = 10
    """At most this many expiry deletions per minute (`KOLLIE_EXPIRY_MAX_PER_MINUTE`)."""
    expiry_dry_run: bool = False
    """Log what expiry would delete instead of deleting (`KOLLIE_EXPIRY_DRY_RUN`)."""
    url_discovery: bool = True
    """Show app URLs from Ingresses labelled with the environment and app (`KOLLIE_URL_DISCOVERY`);
    needs cluster-wide list/watch on Ingresses."""
    diagnosis_sources: bool = True
    """Watch the GitRepositories and ImageRepositories the catalog names, each by name, so the
    diagnosis can say why a branch's image or manifests are not found
    (`KOLLIE_DIAGNOSIS_SOURCES`); needs list/watch on them by name."""
    diagnosis_helm_releases: bool = False
    """Watch the HelmReleases Kollie's Kustomizations apply, so an app is Ready only when they
    are and the diagnosis names helm-controller's failures (`KOLLIE_DIAGNOSIS_HELM_RELEASES`);
    needs cluster-wide list/watch on HelmReleases. On in `kollie demo`."""
    csrf_secret: str | None = field(default=None, repr=False)
    """Key of the dashboard's CSRF tokens (`KOLLIE_CSRF_SECRET`); replicas behind one Service
    must share it. Unset: a random key per process."""
    public_url: str | None = None
    """The dashboard's origin as browsers see it (`KOLLIE_PUBLIC_URL`, e.g.
    `https://kollie.example.com`): form posts must come from it, and when it is https the CSRF
    cookie is `Secure` with the `__Host-` prefix. Unset: a form post's Origin must name the host
    the request was sent to, and the cookie is not `Secure`."""
    limits: Limits = field(default_factory=Limits)
    """What one identity may hold at once (kollie.limits)."""
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"
    shutdown_delay: float = 5.0
    """Seconds, after SIGTERM, that /readyz fails while requests are still served, so load
    balancers stop routing here before the listener closes (`KOLLIE_SHUTDOWN_DELAY`)."""
    shutdown_timeout: float = 25.0
    """Seconds from SIGTERM to exit at most (`KOLLIE_SHUTDOWN_TIMEOUT`); keep it below the
    pod's terminationGracePeriodSeconds (the chart's default is 30)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, demo: bool = False) -> Settings:
        problems: list[str] = []
        get = environ.get

        def flag(name: str, default: bool) -> bool:
            raw = get(name)
            if raw is None:
                return default
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            problems.append(f"{name}={raw!r}: expected true or false")
            return default

        def names(name: str) -> frozenset[str]:
            return frozenset(n.strip() for n in (get(name) or "").split(",") if n.strip())

        namespace = get("KOLLIE_NAMESPACE", "kollie")
        problem = label_problem(namespace, what="namespace", max_length=63)
        if problem:
            problems.append(f"KOLLIE_NAMESPACE: {problem}")
        tokens_file = get("KOLLIE_API_TOKENS_FILE") or None
        if tokens_file and not Path(tokens_file).is_file():
            problems.append(f"KOLLIE_API_TOKENS_FILE={tokens_file!r}: no such file")
        office = get("KOLLIE_OFFICE_HOURS", "Mon-Fri 07:00-19:00 Europe/London")
        m = _OFFICE_HOURS.match(office)
        if not m:
            problems.append(
                f"KOLLIE_OFFICE_HOURS={office!r}: "
                "expected a schedule like 'Mon-Fri 07:00-19:00 Europe/London'"
            )
        else:
            try:
                ZoneInfo(m.group(7))
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(f"KOLLIE_OFFICE_HOURS={office!r}: unknown time zone {m.group(7)!r}")

        def duration(name: str, default: str, *, like: str, zero: str) -> int:
            """Seconds of a duration like `7d` or `36h`; `0` is 0 (meaning `zero`)."""
            raw = get(name, default).strip()
            if raw == "0":
                return 0
            d = _DURATION.match(raw)
            if not d:
                problems.append(f"{name}={raw!r}: expected a duration like {like} or 0 ({zero})")
                return 0
            return int(d.group(1)) * _UNIT_SECONDS[d.group(2)]

        ttl = duration("KOLLIE_ENV_TTL", "7d", like="7d, 36h", zero="never")
        rate_raw = get("KOLLIE_EXPIRY_MAX_PER_MINUTE", "10")
        rate = 10
        if not (rate_raw.isascii() and rate_raw.isdigit()) or not 1 <= int(rate_raw) <= 1000:
            problems.append(
                f"KOLLIE_EXPIRY_MAX_PER_MINUTE={rate_raw!r}: expected a whole number from 1 to 1000"
            )
        else:
            rate = int(rate_raw)
        log_format = get("KOLLIE_LOG_FORMAT", "console" if demo else "json")
        if log_format not in ("json", "console"):
            problems.append(f"KOLLIE_LOG_FORMAT={log_format!r}: expected json or console")
            log_format = "json"
        log_level = get("KOLLIE_LOG_LEVEL", "info").lower()
        if log_level not in ("debug", "info", "warning", "error", "critical"):
            problems.append(
                f"KOLLIE_LOG_LEVEL={log_level!r}: expected debug, info, warning, error or critical"
            )
        secret = get("KOLLIE_WEBHOOK_SECRET") or None
        if secret is not None and len(secret) < MIN_SECRET:
            # It is an HMAC key and, for the registries that cannot sign, a password sent as is.
            problems.append(
                f"KOLLIE_WEBHOOK_SECRET: must be at least {MIN_SECRET} characters "
                "(e.g. `openssl rand -hex 32`), as each secret of KOLLIE_WEBHOOK_SECRETS_FILE"
            )
        webhook_secrets = _webhook_secrets(get("KOLLIE_WEBHOOK_SECRETS_FILE") or None, problems)
        max_age = duration("KOLLIE_WEBHOOK_MAX_AGE", "1h", like="1h, 30m", zero="no limit")
        csrf_secret = get("KOLLIE_CSRF_SECRET") or None
        if csrf_secret is not None and len(csrf_secret) < 32:
            problems.append(
                "KOLLIE_CSRF_SECRET: must be at least 32 characters (e.g. `openssl rand -hex 32`)"
            )
        public_url = _origin(get("KOLLIE_PUBLIC_URL") or None, problems)
        delay = _seconds("KOLLIE_SHUTDOWN_DELAY", get("KOLLIE_SHUTDOWN_DELAY"), 5.0, problems)
        timeout = _seconds(
            "KOLLIE_SHUTDOWN_TIMEOUT", get("KOLLIE_SHUTDOWN_TIMEOUT"), 25.0, problems
        )
        if delay >= timeout:
            problems.append(
                f"KOLLIE_SHUTDOWN_DELAY={delay:g} must be shorter than "
                f"KOLLIE_SHUTDOWN_TIMEOUT={timeout:g}"
            )
        settings = cls(
            namespace=namespace,
            catalog_path=Path(get("KOLLIE_CATALOG", "/etc/kollie/catalog.yaml")),
            api_tokens_file=Path(tokens_file) if tokens_file else None,
            webhook_secret=secret,
            webhook_secrets=webhook_secrets,
            webhook_max_age_seconds=max_age,
            trust_proxy_headers=flag("KOLLIE_TRUST_PROXY_HEADERS", False),
            admins=names("KOLLIE_ADMINS"),
            owner_only=flag("KOLLIE_OWNER_ONLY", False),
            lease_exclusion_list=names("KOLLIE_LEASE_EXCLUSION_LIST"),
            office_hours=office,
            env_ttl_seconds=ttl,
            expiry_max_per_minute=rate,
            expiry_dry_run=flag("KOLLIE_EXPIRY_DRY_RUN", False),
            url_discovery=flag("KOLLIE_URL_DISCOVERY", True),
            diagnosis_sources=flag("KOLLIE_DIAGNOSIS_SOURCES", True),
            diagnosis_helm_releases=flag("KOLLIE_DIAGNOSIS_HELM_RELEASES", demo),
            csrf_secret=csrf_secret,
            public_url=public_url,
            limits=Limits.from_env(get, problems),
            log_format="console" if log_format == "console" else "json",
            log_level=log_level,
            shutdown_delay=delay,
            shutdown_timeout=timeout,
        )
        if problems:
            raise ConfigError(problems)
        return settings


def _origin(url: str | None, problems: list[str]) -> str | None:
    """`scheme://host[:port]` of KOLLIE_PUBLIC_URL, lower-cased, without a default port."""
    if url is None:
        return None
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == -1
    ):
        problems.append(
            f"KOLLIE_PUBLIC_URL={url!r}: expected the dashboard's address as browsers see it, "
            "like https://kollie.example.com (no path)"
        )
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _seconds(name: str, raw: str | None, default: float, problems: list[str]) -> float:
    """A number of seconds from 0 to 600, written `5` or `5s`."""
    if raw is None or not raw.strip():
        return default
    text = raw.strip().removesuffix("s")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 600:
        problems.append(f"{name}={raw!r}: expected seconds from 0 to 600, like 5 or 5s")
        return default
    return value


def _webhook_secrets(path: str | None, problems: list[str]) -> dict[str, str]:
    if path is None:
        return {}
    try:
        return parse_webhook_secrets(Path(path).read_text())
    except OSError as e:
        problems.append(f"KOLLIE_WEBHOOK_SECRETS_FILE={path!r}: cannot read: {e.strerror or e}")
    except WebhookSecretsError as e:
        problems += [f"KOLLIE_WEBHOOK_SECRETS_FILE={path!r}: {p}" for p in e.problems]
    return {}


class TokenFileError(ValueError):
    pass


def parse_tokens(text: str) -> dict[str, str]:
    """`name:token` per line (blank lines and `#` comments ignored) into token -> name."""
    tokens: dict[str, str] = {}
    names: set[str] = set()
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            problems.append(f"line {number}: expected name:token")
        elif len(token) < 16:
            problems.append(f"line {number}: the token of {name!r} is shorter than 16 characters")
        elif name in names:
            problems.append(f"line {number}: duplicate name {name!r}")
        elif token in tokens:
            problems.append(
                f"line {number}: token of {name!r} is already used by {tokens[token]!r}"
            )
        else:
            tokens[token] = name
            names.add(name)
    if problems:
        raise TokenFileError("; ".join(problems))
    return tokens


def token_owner(tokens: Mapping[str, str], presented: str) -> str | None:
    """The name a bearer token belongs to, compared in constant time against every token."""
    found = None
    # Header bytes that are not UTF-8 arrive as lone surrogates: encoded as they came, they
    # are a wrong token, not an exception (a 500).
    offered = presented.encode("utf-8", "surrogatepass")
    for token, name in tokens.items():
        if hmac.compare_digest(token.encode(), offered):
            found = name
    return found
