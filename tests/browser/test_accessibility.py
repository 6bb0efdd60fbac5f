"""Every page, light and dark, at a phone's width and a wide screen's: axe-core finds nothing,
the list never scrolls sideways on a phone, app chips stay one line, a row's quick actions never
touch, and an app without a diagnosis shows no trace of a "Why?" panel; screenshots of each are
written to tests/artifacts/ for people to look at."""

from __future__ import annotations

from typing import Any

from tests.browser import showroom
from tests.browser.conftest import (
    PHONE,
    USER,
    WIDE,
    axe_violations,
    describe,
    nothing_sticks_out,
    screenshot,
)
from tests.service.conftest import StartKollie

PAGES = {
    "index": "/",
    "environment": "/env/checkout-redesign",
    "failing": f"/env/{showroom.FAILING}",
    "missing": "/env/no-such-environment",
    "confirm-delete": "/env/search-v2/delete",
}


async def _no_sideways_scroll(page: Any) -> None:
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


async def _chips_on_one_line(page: Any) -> None:
    heights = await page.eval_on_selector_all(
        ".chip",
        """chips => chips.map(c => [c.textContent.trim(), c.getBoundingClientRect().height,
                                   parseFloat(getComputedStyle(c).lineHeight)])""",
    )
    assert heights, "the list shows app chips"
    for text, height, line in heights:
        assert height < 2 * line, f"the chip {text!r} wraps ({height}px tall)"


async def _actions_apart(page: Any) -> None:
    """A row's quick actions (extend, delete) never touch or overlap: a tap meant for one must
    not land on the other."""
    gaps = await page.eval_on_selector_all(
        "td.actions",
        """cells => cells.map(cell => {
             const boxes = Array.from(cell.children).map(c => c.getBoundingClientRect());
             return boxes.slice(1).map((b, i) => {
               const a = boxes[i];
               return Math.max(b.left - a.right, a.left - b.right, b.top - a.bottom,
                               a.top - b.bottom);
             });
           }).flat()""",
    )
    assert gaps, "the list shows rows with more than one quick action"
    assert min(gaps) >= 4, f"quick actions {min(gaps)}px apart on {page.url}"


async def _no_empty_panel(page: Any) -> None:
    """Ready apps have no diagnosis: their (empty) panel takes no room and draws nothing."""
    sizes = await page.eval_on_selector_all(
        ".app-card.state-ready [data-why]",
        "slots => slots.map(s => [s.offsetWidth, s.offsetHeight])",
    )
    assert sizes, "the page shows a Ready app"
    assert all(size == [0, 0] for size in sizes), f"empty Why panels drawn: {sizes}"


async def test_every_page_light_and_dark_at_both_widths(
    start_kollie: StartKollie, browser: Any
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    await showroom.build(kollie)
    found: dict[str, str] = {}
    for scheme in ("light", "dark"):
        for width, viewport in (("390", PHONE), ("1400", WIDE)):
            context = await browser.new_context(
                extra_http_headers=USER,
                color_scheme=scheme,
                viewport=viewport,
                locale="en-GB",
                timezone_id="Europe/Paris",
            )
            page = await context.new_page()
            for name, path in PAGES.items():
                response = await page.goto(kollie.url(path))
                assert response.status == (404 if name == "missing" else 200), path
                if name != "missing" and name != "confirm-delete":
                    await page.wait_for_selector("#live.on", timeout=5000)
                if name == "index":
                    await _chips_on_one_line(page)
                    await _actions_apart(page)
                if name in ("environment", "failing"):
                    await _no_empty_panel(page)
                    await nothing_sticks_out(page)
                await _no_sideways_scroll(page)
                label = f"{name}-{width}-{scheme}"
                if violations := await axe_violations(page):
                    found[label] = describe(violations)
                await screenshot(page, label)
            # The delete confirmation the list opens as a dialog.
            await page.goto(kollie.url("/"))
            await page.click("tr[data-env=search-v2] a[data-delete]")
            await page.wait_for_selector("#confirm-delete[open]")
            label = f"index-dialog-{width}-{scheme}"
            if violations := await axe_violations(page):
                found[label] = describe(violations)
            await screenshot(page, label)
            await context.close()
    assert not found, "\n".join(f"{label}:\n{text}" for label, text in found.items())
