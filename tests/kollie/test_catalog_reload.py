"""A catalog file changed under a running Kollie: a good one takes effect, a broken one is
reported with its reason and the last good catalog stays in effect."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from kollie.catalog import CatalogError, CatalogSource, load_catalog, parse_catalog
from kollie.cli import DEMO_CATALOG
from tests.helpers import eventually


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO_CATALOG.read_text())
    return data


async def test_poll_reloads_and_keeps_the_last_good_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(_demo()))
    source = CatalogSource(path)
    assert source.reload_if_changed()
    good = source.current
    with capture_logs() as logs:
        poll = asyncio.create_task(source.poll(0.01))
        try:
            path.write_bytes(b"apps: [\xff\xfe]\n")
            await eventually(
                lambda: any(e["event"] == "catalog_invalid" for e in logs),
                message="the broken catalog reported",
            )
            assert source.current is good, "the last good catalog stays in effect"
            assert "not UTF-8 text" in str(source.last_error)
            smaller = _demo()
            smaller["bundles"] = [b for b in smaller["bundles"] if b["name"] != "everything"]
            path.write_text(yaml.safe_dump(smaller))
            await eventually(
                lambda: any(e["event"] == "catalog_reloaded" for e in logs),
                message="the fixed catalog taken",
            )
        finally:
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll
    assert source.last_error is None
    assert set(source.current.bundles) == {"storefront", "backoffice"}
    assert not [e for e in logs if e["event"] == "catalog_reload_failed"]


def test_a_file_that_is_not_utf8_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"apps: []\n\xff")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert exc.value.problems == [f"{path}: not UTF-8 text (invalid start byte at byte 9)"]


def test_a_bundle_member_that_is_not_a_name_is_reported() -> None:
    catalog = _demo()
    catalog["bundles"].append({"name": "odd", "apps": [["web"], "api"]})
    with pytest.raises(CatalogError) as exc:
        parse_catalog(catalog)
    where = len(catalog["bundles"]) - 1
    assert exc.value.problems == [f"bundles[{where}].apps: ['web'] is not an app name"]
