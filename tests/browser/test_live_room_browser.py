"""Issue 18 in Chromium: a change made at one station shows on the others by itself.

On a fresh server: station A checks a patient in from Today; station B's Today shows the
patient checked in, and the wall redraws, without anyone touching B or the wall. The
bound is generous (a loaded 2-core machine); how fast it is, is measured by
benchmarks/bench_live_room.py, not here.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.browser.conftest import SCREEN, wait_for_app_idle

pytestmark = pytest.mark.browser

SHOWS_WAIT_MS = 20_000


def _station(browser, url: str, person: str | None):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    wait_for_app_idle(page)
    if person is not None:
        page.get_by_role("radio", name=person, exact=True).click()
        wait_for_app_idle(page)
    return context, page


def test_a_step_at_one_station_shows_on_another_today_and_the_wall(
    fresh_server, browser, demo_database_url, tmp_path
):
    from playwright.sync_api import expect

    from ketadash.public import first_site_code

    # A copy: the check-in below must not change the demo the other browser tests share.
    copy = tmp_path / "live-room.sqlite"
    shutil.copy(demo_database_url.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    server = fresh_server(url)
    code = first_site_code(url=url)
    context_a, a = _station(browser, f"{server.base_url}/today", "Nurse")
    context_b, b = _station(browser, f"{server.base_url}/today", "Clinic lead")
    context_w, wall = _station(browser, f"{server.base_url}/wall?site={code}&embed=true", None)
    # What B's change watch asks the server: the long poll (a route of our own, answered
    # when the version moves), not the static file once a second.
    asked: list[tuple[str, int]] = []
    context_b.on("response", lambda r: asked.append((r.url, r.status)))
    try:
        # The change watch is on each live screen: nothing refreshes on a timer.
        for page in (a, b, wall):
            expect(page.locator('iframe[src*="kd_change_watch"]')).to_have_count(1)
        wall_before = wall.locator(".kdw-updated").inner_text()
        box = a.get_by_test_id("stSelectbox").filter(has_text="Patient")
        box.click()
        choice = a.get_by_role("option", name=re.compile(r"— Expected$")).first
        name = choice.inner_text().split(" · ")[2].split(" — ")[0]
        choice.click()
        wait_for_app_idle(a)
        a.get_by_role("button", name="Check in").click()
        expect(a.locator('.kd-lane[data-lane="checked_in"]')).to_contain_text(name)

        expect(b.locator('.kd-lane[data-lane="checked_in"]')).to_contain_text(
            name, timeout=SHOWS_WAIT_MS
        )
        wall.wait_for_function(
            "t => document.querySelector('.kdw-updated')?.innerText !== t",
            arg=wall_before,
            timeout=SHOWS_WAIT_MS,
        )
        waits = [status for address, status in asked if "/_kd/live/wait?" in address]
        assert waits and set(waits) == {200}
        assert not [address for address, _ in asked if "/app/static/live/" in address]
    finally:
        for context in (context_a, context_b, context_w):
            context.close()
