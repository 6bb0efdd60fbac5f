"""Real Chromium (Debian's package) driven by Playwright against a Kollie served over HTTP, with
axe-core (shipped by the axe-playwright-python package) for accessibility checks."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import start_kollie  # noqa: F401 - Kollie over HTTP, as the service tests

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = os.environ.get("KOLLIE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWER = "dev@example.com"
USER = {"X-Auth-Request-Email": VIEWER}
PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1400, "height": 900}

playwright_api = pytest.importorskip("playwright.async_api")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is not installed: `make test` installs it when run as root, "
            "otherwise run `sudo apt-get install chromium`"
        )
    return CHROMIUM


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (every rule axe runs by default: WCAG A
    and AA, and its best practices)."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and element, to read in a failed assertion."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {node['target']} {node['failureSummary']!r}"
        for v in violations
        for node in v["nodes"]
    )


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def nothing_sticks_out(page: Any, container: str = ".app-card") -> None:
    """No text or control reaches past the right edge of the card it is in (a long word or URL
    that cannot wrap would), at the page's current width."""
    out = await page.eval_on_selector_all(
        container,
        """cards => cards.flatMap(card => {
             const edge = card.getBoundingClientRect().right;
             const out = n => n.getClientRects().length
               && n.getBoundingClientRect().right > edge + 0.5;
             return Array.from(card.querySelectorAll("*")).filter(out)
               .map(n => n.tagName.toLowerCase() + ": " + (n.textContent || "").trim());
           })""",
    )
    assert not out, f"sticking out of their {container} on {page.url}: {out}"
