"""Kollie with the keyboard alone: create an environment, extend it, delete it, and at every
step the focused control shows that it has the focus."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import USER
from tests.helpers import eventually
from tests.service.conftest import StartKollie

FOCUS = """() => {
  const node = document.activeElement;
  if (!node || node === document.body) { return null; }
  const style = getComputedStyle(node);
  const box = node.getBoundingClientRect();
  const visible = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const onScreen = box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
    && box.top < innerHeight && box.left < innerWidth;
  return {
    tag: node.tagName.toLowerCase(), name: node.getAttribute("name"), type: node.type || "",
    text: (node.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60),
    href: node.getAttribute("href"), formaction: node.getAttribute("formaction"),
    visible: visible && onScreen,
  };
}"""


async def _tab_to(page: Any, wanted: Any, *, backwards: bool = False, limit: int = 120) -> dict:
    """Press Tab (or Shift+Tab) until the focused control is `wanted`; every control passed on
    the way must show its focus."""
    for _ in range(limit):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = await page.evaluate(FOCUS)
        if focused is None:
            continue
        assert focused["visible"], f"no visible focus on {focused}"
        if wanted(focused):
            return dict(focused)
    raise AssertionError("never reached the control by keyboard")


async def test_create_extend_and_delete_with_the_keyboard(
    start_kollie: StartKollie, browser: Any
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    context = await browser.new_context(extra_http_headers=USER)
    page = await context.new_page()
    await page.goto(kollie.url("/"))
    keys = page.keyboard

    # The first Tab offers to skip to the content.
    first = await _tab_to(page, lambda f: True)
    assert first["text"] == "Skip to content"

    await _tab_to(page, lambda f: f["name"] == "name")
    await keys.type("by-keyboard")
    await _tab_to(page, lambda f: f["name"] == "app_api")
    await keys.press("Space")
    await _tab_to(page, lambda f: f["name"] == "prefix_api")
    await keys.type("feature-checkout")
    await _tab_to(page, lambda f: f["text"] == "Create")
    async with page.expect_navigation(url="**/env/by-keyboard"):
        await keys.press("Enter")
    assert "being created" in await page.inner_text(".flash")

    # Extend by four hours from the environment's page.
    await _tab_to(page, lambda f: f["name"] == "hours")
    await keys.press("Control+A")
    await keys.type("4")
    await _tab_to(page, lambda f: f["text"] == "Extend")
    async with page.expect_navigation(url="**/env/by-keyboard"):
        await keys.press("Enter")
    assert "Extended by 4 hours" in await page.inner_text(".flash")

    # Back to the list, extend from the row, then delete from the row through its dialog.
    await _tab_to(page, lambda f: f["href"] == "/")
    async with page.expect_navigation(url=kollie.url("/")):
        await keys.press("Enter")
    _, before = await kollie.call("GET", "/api/v1/environments/by-keyboard")
    await _tab_to(page, lambda f: f["formaction"] == "/env/by-keyboard/extend")
    async with page.expect_navigation(url=kollie.url("/")):
        await keys.press("Enter")
    assert "Extended by 3 hours" in await page.inner_text(".flash")
    _, after = await kollie.call("GET", "/api/v1/environments/by-keyboard")
    assert after["uptime"]["until"] > before["uptime"]["until"]

    await _tab_to(page, lambda f: f["href"] == "/env/by-keyboard/delete")
    await keys.press("Enter")
    await page.wait_for_selector("#confirm-delete[open]")
    focused = await page.evaluate(FOCUS)
    assert focused["text"] == "Cancel" and focused["visible"], "the safe choice has the focus"
    await _tab_to(page, lambda f: f["text"] == "Delete by-keyboard", backwards=True, limit=5)
    async with page.expect_navigation(url=kollie.url("/")):
        await keys.press("Enter")
    assert "by-keyboard is being deleted" in await page.inner_text(".flash")

    async def gone() -> bool:
        status, body = await kollie.call("GET", "/api/v1/environments/by-keyboard")
        return status == 404 or bool(body["deleting"])

    await eventually(gone, within=5, message="the environment deleted")
    await context.close()
