from __future__ import annotations

from pathlib import Path

import pytest

from kollie.catalog import CatalogError, CatalogSource, parse_catalog
from kollie.cli import DEMO_CATALOG
from kollie.config import ConfigError, Settings, TokenFileError, parse_tokens, token_owner


def test_demo_catalog_is_valid() -> None:
    source = CatalogSource(DEMO_CATALOG)
    assert source.reload_if_changed()
    assert set(source.current.bundles) == {"storefront", "backoffice", "everything"}
    assert source.current.apps["web"].depends_on == ("api",)


def test_every_problem_is_reported_with_its_place() -> None:
    with pytest.raises(CatalogError) as exc:
        parse_catalog(
            {
                "apps": [
                    {
                        "name": "Web",
                        "path": "./a",
                        "gitRepository": {"name": "g"},
                        "imageRepository": {"name": "i"},
                    },
                    {
                        "name": "api",
                        "path": "./b",
                        "gitRepository": {"name": "g"},
                        "imageRepository": {"name": "i"},
                        "dependsOn": ["ghost"],
                        "timeout": "soon",
                    },
                    {
                        "name": "api",
                        "path": "./c",
                        "gitRepository": {"name": "g"},
                        "imageRepository": {"name": "i"},
                    },
                ],
                "bundles": [{"name": "b", "apps": ["nope"]}],
                "autoCreate": [{"prefix": "(", "bundle": "missing"}],
            }
        )
    problems = "\n".join(exc.value.problems)
    for expected in (
        "apps[0].name",
        "apps[1].timeout",
        "apps[2].name: duplicate",
        "dependsOn: unknown app 'ghost'",
        "bundles[0].apps: unknown app 'nope'",
        "autoCreate[0].bundle",
        "autoCreate[0].prefix",
    ):
        assert expected in problems


def test_invalid_reload_keeps_the_last_good_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(DEMO_CATALOG.read_text())
    source = CatalogSource(path)
    assert source.reload_if_changed()
    good = source.current
    path.write_text("apps: [ {name: 1} ]")
    assert not source.reload_if_changed()
    assert source.current is good and source.last_error is not None


def test_settings_report_every_bad_value() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(
            {
                "KOLLIE_NAMESPACE": "Bad_NS",
                "KOLLIE_ENV_TTL": "forever",
                "KOLLIE_OWNER_ONLY": "maybe",
                "KOLLIE_EXPIRY_MAX_PER_MINUTE": "0",
                "KOLLIE_LOG_FORMAT": "xml",
                "KOLLIE_OFFICE_HOURS": "Mon-Fri 07:00-19:00 Nowhere/Land",
                "KOLLIE_CSRF_SECRET": "short",
                "KOLLIE_URL_DISCOVERY": "sometimes",
            }
        )
    text = str(exc.value)
    for name in (
        "KOLLIE_NAMESPACE",
        "KOLLIE_ENV_TTL",
        "KOLLIE_OWNER_ONLY",
        "KOLLIE_EXPIRY_MAX_PER_MINUTE",
        "KOLLIE_LOG_FORMAT",
        "KOLLIE_OFFICE_HOURS",
        "KOLLIE_CSRF_SECRET",
        "KOLLIE_URL_DISCOVERY",
    ):
        assert name in text
    settings = Settings.from_env({"KOLLIE_ENV_TTL": "36h", "KOLLIE_ADMINS": "a@x, b@x"})
    assert settings.env_ttl_seconds == 36 * 3600 and settings.admins == {"a@x", "b@x"}
    assert Settings.from_env({"KOLLIE_ENV_TTL": "0"}).env_ttl_seconds == 0
    assert Settings.from_env({}).url_discovery and Settings.from_env({}).csrf_secret is None
    assert not Settings.from_env({"KOLLIE_URL_DISCOVERY": "false"}).url_discovery


def test_tokens() -> None:
    tokens = parse_tokens("# comment\n\nci:0123456789abcdef0\nbot:fedcba98765432100\n")
    assert token_owner(tokens, "0123456789abcdef0") == "ci"
    assert token_owner(tokens, "nope") is None
    with pytest.raises(TokenFileError, match="line 2"):
        parse_tokens("ci:0123456789abcdef0\nci:another-token-123456\n")
    with pytest.raises(TokenFileError, match="shorter"):
        parse_tokens("ci:short\n")


def _app(name: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "path": f"./{name}",
        "gitRepository": {"name": "g"},
        "imageRepository": {"name": name},
        **extra,
    }


def test_service_account_per_app_with_a_catalog_default() -> None:
    catalog = parse_catalog(
        {
            "serviceAccountName": "kollie-apps",
            "apps": [_app("web"), _app("api", serviceAccountName="api.deployer")],
        }
    )
    assert catalog.service_account_name == "kollie-apps"
    assert catalog.apps["web"].service_account_name == "kollie-apps"
    assert catalog.apps["api"].service_account_name == "api.deployer"
    assert parse_catalog({"apps": [_app("web")]}).apps["web"].service_account_name is None


def test_service_account_names_must_be_dns_subdomains() -> None:
    with pytest.raises(CatalogError) as exc:
        parse_catalog(
            {
                "serviceAccountName": "Kollie_Apps",
                "apps": [
                    _app("web", serviceAccountName="-x"),
                    _app("api", serviceAccountName=["a"]),
                    _app("db", serviceAccountName="a" * 254),
                ],
            }
        )
    assert exc.value.problems == [
        "serviceAccountName: the ServiceAccount name 'Kollie_Apps' must consist of lower case "
        "letters, digits, '-' and '.', and start and end with a letter or digit",
        "apps[0].serviceAccountName: the ServiceAccount name '-x' must consist of lower case "
        "letters, digits, '-' and '.', and start and end with a letter or digit",
        "apps[1].serviceAccountName: must be a string",
        f"apps[2].serviceAccountName: the ServiceAccount name {'a' * 254!r} is 254 characters "
        "long; at most 253 are allowed",
    ]


def test_the_public_url_is_an_origin() -> None:
    settings = Settings.from_env({"KOLLIE_PUBLIC_URL": "https://Kollie.Example.com:443/"})
    assert settings.public_url == "https://kollie.example.com"
    assert Settings.from_env({"KOLLIE_PUBLIC_URL": "http://127.0.0.1:8080"}).public_url == (
        "http://127.0.0.1:8080"
    )
    assert Settings.from_env({}).public_url is None
    for bad in (
        "kollie.example.com",
        "ftp://x",
        "https://x/kollie",
        "https://u:p@x",
        "https://x?a",
    ):
        with pytest.raises(ConfigError, match="KOLLIE_PUBLIC_URL"):
            Settings.from_env({"KOLLIE_PUBLIC_URL": bad})
