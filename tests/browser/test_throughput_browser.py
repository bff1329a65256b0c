"""The throughput page in Chromium: the charts draw, and every visit downloads as CSV."""

from __future__ import annotations

import csv
import io
import time

import pytest

from tests.browser.conftest import (
    assert_no_page_errors,
    demo_sign_in_as,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

CHART = '[data-testid="stVegaLiteChart"]'
# Infusions per day, occupancy, the parts by week and their spread, no-shows by weekday,
# by lead time and by hour, and what became of the boosters that fell due.
CHARTS = 8


def _scroll_to(page, heading: str) -> None:
    """Bring a section's heading to the top of the screen."""
    page.locator("h3", has_text=heading).first.evaluate("h => h.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)


def test_lead_sees_the_charts_and_downloads_the_visits(app_server, page, demo_database_url):
    from playwright.sync_api import expect

    page.goto(f"{app_server.base_url}/throughput")
    wait_for_app_idle(page)
    demo_sign_in_as(page, "Clinic lead")
    assert_no_page_errors(page)
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    charts = page.locator(CHART)
    expect(charts).to_have_count(CHARTS)
    # Vega draws each chart as SVG or canvas once it has its data.
    for index in range(CHARTS):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        expect(chart.locator("canvas, svg").first).to_be_visible()
    page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    screenshot(page, "throughput-top")
    _scroll_to(page, "Infusions and chairs")
    screenshot(page, "throughput-chairs")
    _scroll_to(page, "Where the time goes")
    screenshot(page, "throughput-time")
    _scroll_to(page, "No-shows")
    screenshot(page, "throughput-no-shows")
    _scroll_to(page, "Outcomes")
    screenshot(page, "throughput-outcomes")
    expect(page.get_by_text("No-shows by how far ahead the visit was booked")).to_have_count(1)
    expect(
        page.get_by_test_id("stMetric").filter(has_text="Boosters booked in time")
    ).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("button", name="Download every visit with its phase times (CSV)").click()
    text = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, "the CSV has no visits"
    assert {"booked at", "waiting min", "recovery min", "ride wait min"} <= set(rows[0])
    assert any(row["status"] == "Gone home" and row["cycle time min"] for row in rows)

    # The download is in the access log, under the demo's lead.
    from sqlmodel import select

    from ketadash.db import read_session
    from ketadash.models import AccessLog, Staff

    name = download.value.suggested_filename
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with read_session(demo_database_url) as db:
            logged = db.exec(
                select(Staff.role).join(AccessLog, AccessLog.staff_id == Staff.id)
                .where(AccessLog.action == "export", AccessLog.detail == name)
            ).all()  # fmt: skip
        if logged:
            break
        time.sleep(0.2)
    assert logged == ["lead"]


def test_a_year_shows_weekly_bars(app_server, page):
    from playwright.sync_api import expect

    page.goto(f"{app_server.base_url}/throughput")
    wait_for_app_idle(page)
    demo_sign_in_as(page, "Clinic lead")
    page.get_by_test_id("stSelectbox").filter(has_text="Period").click()
    page.get_by_role("option", name="Last 52 weeks").click()
    expect(page.get_by_text("364 days up to today")).to_be_visible()
    wait_for_app_idle(page)
    expect(page.locator(CHART)).to_have_count(CHARTS)
    title = "Completed infusions per week, by kind and route"
    expect(page.locator(CHART).first).to_contain_text(title)
    page.locator(CHART).first.locator("canvas, svg").first.wait_for()
    page.wait_for_timeout(500)
    screenshot(page, "throughput-year-top")
    _scroll_to(page, "Where the time goes")
    screenshot(page, "throughput-year-time")
    _scroll_to(page, "No-shows")
    screenshot(page, "throughput-year-no-shows")
    _scroll_to(page, "Outcomes")
    screenshot(page, "throughput-year-outcomes")
