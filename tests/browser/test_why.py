"""The "Why?" panel in a real browser: it appears on an app that stops being Ready, says why
in the words of the API's diagnosis, goes when the app is Ready again, and the dashboard row
names the broken link meanwhile (all live, without a reload); axe-core finds nothing wrong with
it, light and dark."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from kollie import uptime
from kollie.refusals import Actor
from kubesim.demo import REGISTRY
from tests.browser.conftest import (
    PHONE,
    USER,
    VIEWER,
    axe_violations,
    describe,
    nothing_sticks_out,
    screenshot,
)
from tests.helpers import eventually
from tests.service.conftest import StartKollie

IMAGES = ("image.toolkit.fluxcd.io", "imagerepositories")
TIMED_OUT = (
    "Health check failed after 30s: timeout waiting for: [Deployment/night/api status: "
    "'InProgress']"
)


async def test_the_panel_comes_and_goes_live(start_kollie: StartKollie, browser: Any) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    status, _ = await kollie.call("PUT", "/api/v1/environments/why", json={"apps": {"api": {}}})
    assert status == 201
    context = await browser.new_context(extra_http_headers=USER, color_scheme="dark")
    page = await context.new_page()
    await page.goto(kollie.url("/env/why"))
    await page.wait_for_selector("#live.on", timeout=5000)
    await page.wait_for_selector("[data-app=api].state-ready", timeout=15000)
    dashboard = await context.new_page()
    await dashboard.goto(kollie.url("/"))
    await dashboard.wait_for_selector("#live.on", timeout=5000)
    row_link = dashboard.locator("[data-section=all] tr[data-env=why] .why-link")
    assert await row_link.count() == 0
    reloads: list[str] = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))
    dashboard.on("framenavigated", lambda frame: reloads.append(frame.url))
    assert await page.locator("[data-app=api] .why-title").count() == 0

    # The app switches to a branch nobody pushed an image of.
    status, _ = await kollie.call(
        "POST", "/api/v1/environments/why/apps", json={"name": "api", "prefix": "feature-late"}
    )
    assert status == 200
    title = page.locator("[data-app=api] .why-title")
    await title.wait_for(timeout=15000)
    assert await title.inner_text() == "Why is api not ready?"
    # Flux evaluates the new prefix: the panel follows until the registry's tags say it all.
    await page.wait_for_function(
        """() => (document.querySelector("[data-app=api] .why-summary")?.textContent || "")
                 .startsWith("No tag of registry.example.com/acme/api starts with")""",
        timeout=15000,
    )
    summary = page.locator("[data-app=api] .why-summary")
    assert (await summary.inner_text()).startswith(
        f"No tag of {REGISTRY}/api starts with feature-late-: CI has not pushed"
    )
    assert (await summary.locator("code").all_text_contents())[0] == "feature-late-"
    steps = await page.locator("[data-app=api] .why-step").all_text_contents()
    assert steps[0].startswith("✔ fine: ImageRepository flux-system/api scanned")
    assert steps[-1].startswith("✖ broken: ImagePolicy kollie/why-api Failure")
    assert await page.locator("[data-app=api] .why-cause").count() == 0, (
        "the broken step quotes Flux already"
    )
    await page.click("[data-app=api] .why-commands summary")
    commands = await page.inner_text("[data-app=api] .why-commands pre")
    assert "flux get image policy why-api -n kollie" in commands.splitlines()
    violations = await axe_violations(page)
    assert not violations, describe(violations)
    await screenshot(page, "why-panel-1400-dark")
    await row_link.wait_for(timeout=15000)
    assert " ".join((await row_link.inner_text()).split()) == "broken link: api ✖ ImagePolicy"

    # CI pushes the image: the app comes up and the panel goes.
    kollie.cluster.flux.registry.push(f"{REGISTRY}/api", "feature-late-abc1234-1900000000")
    repo = copy.deepcopy(kollie.cluster.store.get(IMAGES, "flux-system", "api"))
    assert repo is not None
    repo["metadata"].setdefault("annotations", {})["reconcile.fluxcd.io/requestedAt"] = (
        datetime.now(UTC).isoformat()
    )
    kollie.cluster.apply_object(repo)
    await page.wait_for_selector("[data-app=api].state-ready", timeout=15000)

    async def gone() -> bool:
        return bool(await page.locator("[data-app=api] .why-title").count() == 0)

    await eventually(gone, message="the panel goes once api is Ready")
    await row_link.wait_for(state="detached", timeout=15000)
    assert reloads == [], "all of it live, without a reload"
    await context.close()


async def test_an_app_asleep_offers_the_button_that_wakes_it(
    start_kollie: StartKollie, browser: Any
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    now = datetime.now(UTC).replace(microsecond=0)
    ended = uptime.Uptime("until", since=now - timedelta(hours=9), until=now - timedelta(hours=2))
    await kollie.services.operations.put_environment(
        "night", apps={"api": None}, bundle=None, actor=Actor(VIEWER, "ui"), window=ended
    )
    # Its workloads scaled to zero, the health check times out: sleep explains it.
    kollie.cluster.flux.fail("kollie", "night-api", TIMED_OUT)

    async def cause() -> str | None:
        _, env = await kollie.call("GET", "/api/v1/environments/night")
        found = env["apps"][0]["diagnosis"]
        return found["cause"]["kind"] if found else None

    await eventually(lambda: _is(cause, "Environment"), message="api diagnosed asleep")
    # Without JavaScript too: the page as served has the button, for the page's wake form.
    async with kollie.http.get(kollie.url("/env/night"), headers=USER) as response:
        html = await response.text()
    button = '<button type="submit" form="wake" name="hours" value="3" class="small">'
    assert f"{button}Extend by 3 hours</button>" in html
    assert '<form id="wake" method="post" action="/env/night/extend" hidden>' in html

    context = await browser.new_context(extra_http_headers=USER, viewport=PHONE)
    page = await context.new_page()
    await page.goto(kollie.url("/env/night"))
    await page.wait_for_selector("#live.on", timeout=5000)
    wake = page.locator("[data-app=api] .why-wake button")
    assert await wake.inner_text() == "Extend by 3 hours"
    said = await page.inner_text("[data-app=api] .why-cause")
    assert said.startswith("Kollie sees Asleep: outside its uptime window"), said
    violations = await axe_violations(page)
    assert not violations, describe(violations)
    await nothing_sticks_out(page)
    await screenshot(page, "why-asleep-390-light")
    async with page.expect_navigation(url="**/env/night"):
        await wake.click()
    assert "Extended by 3 hours" in await page.inner_text(".flash")
    _, env = await kollie.call("GET", "/api/v1/environments/night")
    assert env["uptime"]["until"] > (now + timedelta(hours=2, minutes=59)).isoformat()
    # Awake, the health check is what is left to explain, on the page as it stands.
    await page.wait_for_function(
        """() => (document.querySelector("[data-app=api] .why-step:last-child strong")
                  ?.textContent) === "Kustomization" """,
        timeout=15000,
    )
    assert await wake.count() == 0
    await context.close()


async def _is(read: Any, wanted: str) -> bool:
    return bool(await read() == wanted)
