"""The Boosters page in Chromium: the worklist and a patient's timeline render, and a
booster booked from the worklist appears on Today for its day."""

from __future__ import annotations

import re

import pytest

from ketadash.clock import utc_now
from ketadash.db import get_engine
from tests.browser.conftest import assert_no_page_errors, screenshot, wait_for_app_idle
from tests.utils.factories import mark_as_demo
from tests.utils.relief import make_open_clinic, make_relief_patient

pytestmark = pytest.mark.browser


@pytest.fixture
def boosters_clinic(sqlite_url) -> str:
    """A site open all day with ``now`` near its midday, two patients to call, one later."""
    now = utc_now()
    clinic = make_open_clinic(url=sqlite_url, now=now, chairs=4)
    make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn="KD-000101", relief=20, episodes=5,
        days_since_last=24, first="Rita", last="Quinn",
    )  # fmt: skip
    make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn="KD-000102", relief=14, episodes=2,
        days_since_last=12, first="Omar", last="Haddad",
    )  # fmt: skip
    make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn="KD-000103", relief=40, episodes=3,
        days_since_last=3, first="Lena", last="Berg",
    )  # fmt: skip
    mark_as_demo(sqlite_url)  # signed in as the demo's nurse
    get_engine(sqlite_url).dispose()
    return sqlite_url


def test_worklist_and_timeline_render_and_a_booking_shows_on_today(
    boosters_clinic, fresh_server, page
):
    from playwright.sync_api import expect

    server = fresh_server(boosters_clinic)
    page.goto(f"{server.base_url}/boosters")
    wait_for_app_idle(page)
    assert_no_page_errors(page)
    expect(page.get_by_role("heading", name=re.compile("Boosters"))).to_be_visible()
    grid = page.get_by_test_id("stDataFrame")
    expect(grid.get_by_role("gridcell", name="KD-000101", include_hidden=True)).to_have_count(
        1, timeout=20_000
    )
    expect(grid.get_by_role("gridcell", name="KD-000103", include_hidden=True)).to_have_count(0)
    chart = page.get_by_test_id("stVegaLiteChart")
    expect(chart.locator("canvas, svg").first).to_be_visible()
    screenshot(page, "boosters-worklist")

    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    screenshot(page, "boosters-patient")

    page.get_by_role("button", name="Book booster").click()
    booked = page.get_by_test_id("stAlert").filter(has_text="Booster booked for KD-000101")
    expect(booked).to_be_visible()
    booked_for = re.compile(r"Booked for \w{3} \d")
    expect(page.get_by_test_id("stAlert").filter(has_text=booked_for)).to_be_visible()
    wait_for_app_idle(page)
    screenshot(page, "boosters-booked")

    page.goto(f"{server.base_url}/today")
    wait_for_app_idle(page)
    expect(page.locator('.kd-lane[data-lane="expected"]')).to_contain_text("Rita Quinn")
    page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
    screenshot(page, "today-with-booked-booster")
