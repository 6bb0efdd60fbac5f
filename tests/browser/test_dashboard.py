"""The dashboard in a real browser: create through the form, watch it come up live, see
cluster-side changes without reloading, delete after confirming, nothing injected runs."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import ARTIFACTS, USER
from tests.service.conftest import StartKollie


async def test_create_watch_live_and_delete(start_kollie: StartKollie, browser: Any) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    flux = kollie.cluster.flux
    flux.reconcile_delay = 0.3
    ARTIFACTS.mkdir(exist_ok=True)
    context = await browser.new_context(extra_http_headers=USER)
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(kollie.url("/"))
    await page.fill("input[name=name]", "browser-env")
    await page.check("input[name=app_api]")
    await page.check("input[name=app_web]")
    await page.fill("input[name=prefix_web]", "feature-checkout")
    await page.click("form.create button[type=submit]")
    await page.wait_for_url("**/env/browser-env**")
    await page.wait_for_selector("#live.on", timeout=5000)
    # Apps go from Progressing to Ready without a reload.
    await page.wait_for_selector("[data-app=web].state-ready", timeout=15000)
    await page.wait_for_selector("[data-app=api].state-ready", timeout=15000)
    await page.wait_for_selector(
        "[data-app=web] a[href='http://web.browser-env.test.example.com/']", timeout=5000
    )
    await page.wait_for_selector("[data-app=web] code.digest", timeout=5000)  # the short digest
    await page.screenshot(path=str(ARTIFACTS / "environment.png"), full_page=True)

    # A change made in the cluster shows within a second, still without a reload.
    flux.reconcile_delay = 0
    flux.fail(
        "kollie", "browser-env-web", "Health check failed after 1s: <b>deployment not ready</b>"
    )
    await page.wait_for_selector("[data-app=web].state-failed", timeout=1000)
    assert "<b>deployment not ready</b>" in await page.inner_text("[data-app=web] .message")
    flux.fail("kollie", "browser-env-web", None)
    await page.wait_for_selector("[data-app=web].state-ready", timeout=5000)

    # Add an app, switch an app's branch in its card, extend the uptime: each through its form.
    await page.select_option("form.add-app select[name=app]", "worker")
    await page.click("form.add-app button[type=submit]")
    await page.wait_for_selector("[data-app=worker].state-ready", timeout=15000)
    await page.fill("[data-app=api] form.switch input[name=prefix]", "feature-checkout")
    await page.click("[data-app=api] form.switch button[type=submit]")
    await page.wait_for_selector("[data-app=api].state-ready", timeout=15000)
    assert "feature-checkout" in await page.inner_text("[data-app=api] [data-field=prefix]")
    await page.fill("input[name=hours]", "5")
    assert re.fullmatch(
        # Past 19:00 UTC the window ends tomorrow, and 5 h more is the day after: then the
        # preview names the day ("until Tue, Dec 8 12:00 AM (29 h from now)").
        r"until (tomorrow |[A-Z][a-z]{2}, [A-Z][a-z]{2} \d\d? )?\d\d?:\d\d( [AP]M)? "
        r"\(\d+ h from now\)",
        await page.inner_text("[data-extend-preview]"),
    ), "the resulting time, before submit"
    async with page.expect_navigation(url="**/env/browser-env"):
        await page.click("form[action$='/extend'] button[type=submit]")
    assert "Extended by 5 hours" in await page.inner_text(".flash")

    await page.goto(kollie.url("/"))
    uptime = await page.inner_text("tr[data-env=browser-env] [data-uptime]")
    assert uptime.startswith("sleeps in "), uptime
    await page.screenshot(path=str(ARTIFACTS / "environments.png"), full_page=True)
    await page.goto(kollie.url("/env/browser-env"))
    await page.fill("input[name=confirm]", "browser-env")
    await page.click("form.danger button[type=submit]")
    await page.wait_for_url(kollie.url("/"))
    assert "being deleted" in await page.inner_text(".flash")
    assert dialogs == []
    await context.close()


async def test_injected_markup_is_shown_as_text(start_kollie: StartKollie, browser: Any) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    evil = "<img src=x onerror=alert(1)>"
    # Branch names reach Kollie's cluster objects from webhooks and other writers: write one
    # directly, as a hostile writer could, and check the page shows it as text.
    status, _ = await kollie.call("PUT", "/api/v1/environments/xss", json={"apps": {"api": {}}})
    assert status == 201
    ks = kollie.cluster.store.get(
        ("kustomize.toolkit.fluxcd.io", "kustomizations"), "kollie", "xss-api"
    )
    assert ks is not None
    annotations = {**ks["metadata"]["annotations"], "kollie.io/image-tag-prefix": evil}
    kollie.cluster.apply_object({**ks, "metadata": {**ks["metadata"], "annotations": annotations}})
    context = await browser.new_context(extra_http_headers=USER)
    page = await context.new_page()
    alerts: list[str] = []
    page.on("dialog", lambda d: alerts.append(d.message))
    await page.goto(kollie.url("/"))
    await page.wait_for_selector("#live.on", timeout=5000)
    text = await page.inner_text("tr[data-env=xss]")
    assert evil in text
    assert await page.locator("tr[data-env=xss] img").count() == 0
    assert alerts == []
    await context.close()


async def test_pages_raise_no_browser_errors(start_kollie: StartKollie, browser: Any) -> None:
    """No console error (a missing resource, a pattern Chromium cannot compile) on the pages,
    and the name field's pattern really checks names before the form is sent."""
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, _ = await kollie.call("PUT", "/api/v1/environments/quiet", json={"apps": {"api": {}}})
    assert status == 201
    context = await browser.new_context(extra_http_headers=USER)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    await page.goto(kollie.url("/"))
    mismatch = "document.querySelector('input[name=name]').validity.patternMismatch"
    await page.fill("input[name=name]", "Bad Name!")
    assert await page.evaluate(mismatch) is True
    await page.fill("input[name=name]", "good-name-2")
    assert await page.evaluate(mismatch) is False
    await page.goto(kollie.url("/env/quiet"))
    await page.wait_for_selector("#live.on", timeout=5000)
    assert errors == []
    await context.close()
