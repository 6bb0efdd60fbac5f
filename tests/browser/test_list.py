"""What people read and do on the list and an environment's page: times in their own zone
(kept current without a reload), their environments marked, short revisions they can copy,
quick actions on the rows (with JavaScript and without), extending until a time of their
choosing."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kollie import uptime
from kollie.refusals import Actor
from tests.browser import showroom
from tests.browser.conftest import PHONE, USER, VIEWER
from tests.helpers import eventually
from tests.service.conftest import Kollie, StartKollie

PARIS = ZoneInfo("Europe/Paris")


async def _context(browser: Any, **options: Any) -> Any:
    return await browser.new_context(
        extra_http_headers=USER, locale="en-GB", timezone_id="Europe/Paris", **options
    )


async def _env(kollie: Kollie, name: str) -> dict[str, Any]:
    status, body = await kollie.call("GET", f"/api/v1/environments/{name}")
    assert status == 200, body
    return dict(body)


async def _gone(kollie: Kollie, name: str) -> bool:
    status, body = await kollie.call("GET", f"/api/v1/environments/{name}")
    return status == 404 or bool(body["deleting"])


def _paris(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(PARIS)


async def test_times_yours_and_revisions(start_kollie: StartKollie, browser: Any) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    await showroom.build(kollie)
    context = await _context(browser, viewport=PHONE)
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    await page.goto(kollie.url("/"))

    # The viewer's own environments are marked, in their own section at the top.
    mine = page.locator("[data-section=mine] tr[data-env]")
    assert await mine.count() == 2
    assert await page.locator("[data-section]").first.get_attribute("data-section") == "mine"
    yours = page.locator("[data-section=all] tr[data-env] .yours")
    assert await yours.count() == 2
    for row in await page.locator("[data-section=all] tr[data-env]").all():
        marked = await row.locator(".yours").count() == 1
        assert marked == (await row.get_attribute("data-owner") == VIEWER)

    # Times in the viewer's zone (Paris), worded, with the exact time on hover.
    until = _paris((await _env(kollie, "checkout-redesign"))["uptime"]["until"])
    uptime = page.locator("[data-section=all] tr[data-env=checkout-redesign] time[data-until]")
    assert re.fullmatch(
        rf"sleeps in \d+ (h|min), (tomorrow )?at {until:%H:%M}", await uptime.inner_text()
    ), await uptime.inner_text()
    assert str(until.year) in (await uptime.get_attribute("title") or "")
    asleep = await page.inner_text("[data-section=all] tr[data-env=nightly-qa] [data-uptime]")
    assert re.fullmatch(r"asleep since \d\d:\d\d, expires in 7 days", asleep), asleep
    created = await page.inner_text("[data-section=all] tr[data-env=checkout-redesign] td.who")
    assert "created just now" in created or re.search(r"created \d+ min ago", created)
    # When a new environment goes to sleep, said where it is created.
    sleeps = datetime.now(UTC).replace(hour=19, minute=0).astimezone(PARIS)
    hint = await page.inner_text("#new .hint")
    assert hint.startswith(f"It runs until {sleeps:%H:%M} your time (the next day"), hint
    assert "left asleep for 7 days, it expires (Kollie deletes it) unless kept." in hint

    # An environment's page: when it changed, its short revision, copied whole.
    await page.goto(kollie.url("/env/checkout-redesign"))
    card = page.locator("[data-app=web]")
    changed = card.locator("[data-field=changed] time")
    assert re.fullmatch(r"just now|\d+ min ago", await changed.inner_text())
    full = (await _env(kollie, "checkout-redesign"))["apps"][1]["revision"]
    assert re.fullmatch(r"main@sha1:[0-9a-f]{40}", full), full
    revision = card.locator("code.rev")
    assert await revision.inner_text() == full[: len("main@sha1:") + 8]
    assert await revision.get_attribute("title") == full
    lines = await revision.evaluate(
        "n => n.getBoundingClientRect().height / parseFloat(getComputedStyle(n).lineHeight)"
    )
    assert lines < 2, "a revision never wraps"
    await card.locator("button.copy").click()
    assert await page.evaluate("navigator.clipboard.readText()") == full
    assert await card.locator("button.copy").text_content() == "Copied the full revision"
    await context.close()


async def test_quick_actions_on_the_list(start_kollie: StartKollie, browser: Any) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    await showroom.build(kollie)
    context = await _context(browser)
    page = await context.new_page()
    await page.goto(kollie.url("/?sort=newest"))
    # Rows are shared by every viewer: no viewer's form token is in them.
    token = await page.get_attribute("#row-actions input[name=csrf_token]", "value")
    assert token and token not in await page.inner_html("tbody")

    before = datetime.fromisoformat((await _env(kollie, "checkout-redesign"))["uptime"]["until"])
    async with page.expect_navigation(url=kollie.url("/?sort=newest")):
        await page.click("tr[data-env=checkout-redesign] button[formaction$='/extend']")
    assert "Extended by 3 hours" in await page.inner_text(".flash")
    after = datetime.fromisoformat((await _env(kollie, "checkout-redesign"))["uptime"]["until"])
    assert after - before == timedelta(hours=3)

    # Delete asks first, in a dialog; cancelling changes nothing and gives the focus back.
    link = page.locator("tr[data-env=search-v2] a[data-delete]")
    await link.click()
    dialog = page.locator("#confirm-delete")
    assert await dialog.get_attribute("open") is not None
    assert "Delete search-v2?" in await dialog.inner_text()
    await dialog.locator("[data-close]").click()
    assert await dialog.get_attribute("open") is None
    assert await link.evaluate("n => n === document.activeElement")
    assert (await _env(kollie, "search-v2"))["deleting"] is False
    await link.click()
    async with page.expect_navigation(url=kollie.url("/?sort=newest")):
        await dialog.locator("button.danger").click()
    assert "search-v2 is being deleted" in await page.inner_text(".flash")
    await eventually(lambda: _gone(kollie, "search-v2"), within=5, message="search-v2 deleted")
    await context.close()

    # Without JavaScript: the same buttons submit the page's form, Delete opens a page.
    context = await _context(browser, java_script_enabled=False)
    page = await context.new_page()
    await page.goto(kollie.url("/"))
    async with page.expect_navigation(url=kollie.url("/")):
        await page.click("[data-section=all] tr[data-env=nightly-qa] button[formaction$='/extend']")
    assert "Extended by 3 hours" in await page.inner_text(".flash")
    nightly = await _env(kollie, "nightly-qa")
    assert _paris(nightly["uptime"]["until"]) > datetime.now(PARIS), "woken up by the extension"
    async with page.expect_navigation(url="**/env/nightly-qa/delete"):
        await page.click("[data-section=all] tr[data-env=nightly-qa] a[data-delete]")
    assert "Delete nightly-qa?" in await page.inner_text("h1")
    async with page.expect_navigation(url=kollie.url("/")):
        await page.click("form.confirm button.danger")
    assert "nightly-qa is being deleted" in await page.inner_text(".flash")
    await eventually(lambda: _gone(kollie, "nightly-qa"), within=5, message="nightly-qa deleted")
    # Nothing that needs JavaScript is offered without it.
    await page.goto(kollie.url("/env/checkout-redesign"))
    assert await page.locator("button.copy").count() == 3
    assert await page.locator("button.copy:visible").count() == 0
    assert await page.inner_text("#live") == ""
    await context.close()


async def test_extend_until_a_time_in_the_viewers_zone(
    start_kollie: StartKollie, browser: Any
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, _ = await kollie.call("PUT", "/api/v1/environments/late", json={"apps": {"api": {}}})
    assert status == 201
    wanted = (datetime.now(PARIS) + timedelta(days=2)).replace(
        hour=18, minute=30, second=0, microsecond=0
    )
    for javascript, zone in ((True, PARIS), (False, ZoneInfo("UTC"))):
        context = await _context(browser, java_script_enabled=javascript)
        page = await context.new_page()
        await page.goto(kollie.url("/env/late"))
        if javascript:
            assert "Europe/Paris" in await page.inner_text("[data-zone-name]")
            prefilled = await page.input_value("input[name=until]")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00", prefilled), prefilled
        else:
            assert await page.inner_text("[data-zone-name]") == "UTC"
        await page.fill("input[name=until]", f"{wanted:%Y-%m-%dT%H:%M}")
        async with page.expect_navigation(url="**/env/late"):
            await page.click("form:has(input[name=until]) button[type=submit]")
        until = datetime.fromisoformat((await _env(kollie, "late"))["uptime"]["until"])
        assert until == wanted.replace(tzinfo=zone), (javascript, until)
        await context.close()
    # A time in the past is refused beside the form, and changes nothing.
    context = await _context(browser)
    page = await context.new_page()
    await page.goto(kollie.url("/env/late"))
    await page.fill("input[name=until]", "2020-01-01T10:00")
    await page.evaluate("document.querySelector('input[name=until]').min = ''")
    async with page.expect_navigation():
        await page.click("form:has(input[name=until]) button[type=submit]")
    assert "in the past" in await page.inner_text("[role=alert]")
    until = datetime.fromisoformat((await _env(kollie, "late"))["uptime"]["until"])
    assert until == wanted.replace(tzinfo=ZoneInfo("UTC"))
    await context.close()


async def test_a_resync_refreshes_the_lists_in_place(
    start_kollie: StartKollie, browser: Any
) -> None:
    """When the stream cannot replay what the page missed it says `resync`: the page fetches
    its lists again and swaps them in, keeping its message and the keyboard user's place."""
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, _ = await kollie.call("PUT", "/api/v1/environments/steady", json={"apps": {"api": {}}})
    assert status == 201
    context = await _context(browser)
    page = await context.new_page()
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))

    # A position the stream cannot know makes it answer `resync` at once.
    async def unknown_position(route: Any) -> None:
        url = re.sub(r"since=\d+", "since=" + "9" * 20, route.request.url)
        await route.continue_(url=url)

    # The page's own fetch of its lists waits until the test has marked the old row.
    marked = asyncio.Event()

    async def held(route: Any) -> None:
        if route.request.resource_type == "fetch":
            await marked.wait()
        await route.continue_()

    await page.goto(kollie.url("/"))
    await page.wait_for_selector("#live.on")
    await page.route("**/events?*", unknown_position)
    await page.route(kollie.url("/"), held)
    async with page.expect_navigation(url=kollie.url("/")):
        await page.click("tr[data-env=steady] button[formaction$='/extend']")
    await page.evaluate("document.querySelector('tr[data-env=steady]').dataset.old = 'yes'")
    await page.focus("tr[data-env=steady] button[formaction$='/extend']")
    marked.set()
    await page.wait_for_selector("tr[data-env=steady]:not([data-old])", timeout=10000)
    assert "Extended by 3 hours" in await page.inner_text(".flash"), "the message stays"
    assert len(loads) == 2, f"no reload: {loads}"
    focused = await page.evaluate("document.activeElement.getAttribute('formaction')")
    assert focused == "/env/steady/extend", "the focus is where it was"
    await context.close()


def _at(moment: datetime, now: datetime) -> str:
    """How the list words a moment to come as seen from `now`, in Paris (today or tomorrow)."""
    local, today = moment.astimezone(PARIS), now.astimezone(PARIS).date()
    return f"{'' if local.date() == today else 'tomorrow '}at {local:%H:%M}"


async def test_times_stay_current_without_a_reload(start_kollie: StartKollie, browser: Any) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    now = datetime.now(UTC).replace(microsecond=0)
    until = now + timedelta(hours=3)
    # Noon in Paris tomorrow: whatever the time of day the test runs at.
    noon = datetime.combine(now.astimezone(PARIS).date() + timedelta(days=1), time(12), PARIS)
    for name, end in (("ticking", until), ("noon", noon)):
        await kollie.services.operations.put_environment(
            name,
            apps={"api": None},
            bundle=None,
            actor=Actor(VIEWER, "ui"),
            window=uptime.Uptime("until", since=now, until=end.astimezone(UTC)),
        )
    context = await _context(browser)
    page = await context.new_page()
    await page.clock.install(time=now)
    await page.goto(kollie.url("/"))
    row = page.locator("[data-section=all] tr[data-env=ticking]")
    words = await row.locator("time[data-until]").inner_text()
    assert words == f"sleeps in 3 h, {_at(until, now)}", words
    noon_words = await page.inner_text("[data-section=all] tr[data-env=noon] time[data-until]")
    assert re.fullmatch(r"sleeps in \d+ h, tomorrow at 12:00", noon_words), noon_words
    assert "created just now" in await row.locator("td.who").inner_text()
    reloads: list[str] = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))

    await page.clock.fast_forward("02:00:00")
    words = await row.locator("time[data-until]").inner_text()
    later = now + timedelta(hours=2)
    assert re.fullmatch(rf"sleeps in (59|60) min, {_at(until, later)}", words), words
    assert "created 2 h ago" in await row.locator("td.who").inner_text()
    await page.clock.fast_forward("01:00:30")
    words = await row.locator("time[data-until]").inner_text()
    assert re.fullmatch(
        rf"asleep since (\w{{3}} \d\d? \w{{3}} )?{until.astimezone(PARIS):%H:%M}", words
    ), words
    assert reloads == []
    await context.close()
