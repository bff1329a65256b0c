"""The today board in Chromium: a nurse clicks a patient from check-in to recovery.

Checks that the board changes after each step, that it refreshes on its own
without eating what is being typed, and that the timers run.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import (
    another_station_writes,
    assert_no_page_errors,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

REFRESH_WAIT_MS = 20_000
# The board redraws each minute of the clock (and on every change), so a minute timer
# started just after one redraw shows "1" up to two minutes later, plus a redraw.
TIMER_TICK_WAIT_MS = 140_000


def _lane(page, lane: str):
    """One lane of the board: expected, checked_in, infusing, recovery, ready, discharged."""
    return page.locator(f'.kd-lane[data-lane="{lane}"]')


def _choose(page, label: str, option: str | re.Pattern) -> str:
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.click()
    choice = page.get_by_role("option", name=option).first
    chosen = choice.inner_text()
    choice.click()
    wait_for_app_idle(page)
    return chosen


def _said(page, text: str):
    """A message box of the panel (a toast repeats it, which is not what is tested here)."""
    return page.get_by_test_id("stAlert").filter(has_text=text)


def _board_screenshot(page, name: str) -> None:
    """A screenshot of the board as a nurse sees it on arrival: scrolled to the top."""
    page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
    screenshot(page, name)


def _updated_text(page) -> str:
    return page.locator(".kd-updated").inner_text()


def _ready_for_check_in(url: str) -> tuple[str, str]:
    """The first patient expected today at the board's site whose chair is free (check-in
    needs it), and the start form's dose field for their route. The demo decides who that
    is (its relief and bookings are drawn), so the test asks rather than assumes IV."""
    from sqlmodel import select

    from ketadash.clock import local_today, utc_now
    from ketadash.db import read_session
    from ketadash.models import Route, Site
    from ketadash.models import SessionStatus as S
    from ketadash.visits import load_site_day

    now = utc_now()
    with read_session(url) as db:
        site = db.exec(select(Site).order_by(Site.id)).first()
        today = local_today(site.time_zone, now=now)
        day = load_site_day(db=db, site_id=site.id, day=today, now=now)
    seated = (S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY)
    in_use = {v.chair_id for v in day.visits if v.status in seated}
    expected = sorted(
        (v for v in day.visits if v.status == S.SCHEDULED and v.chair_id not in in_use),
        key=lambda v: v.scheduled_start,
    )
    assert expected, "the demo's day has nobody expected in a free chair"
    visit = expected[0]
    field = "Devices given (28 mg each)" if visit.route == Route.ESKETAMINE else "Dose given (mg)"
    return visit.patient_name, field


def test_nurse_moves_a_patient_from_check_in_to_recovery(app_server, page, demo_database_url):
    from playwright.sync_api import expect

    page.goto(f"{app_server.base_url}/today")
    wait_for_app_idle(page)
    assert_no_page_errors(page)
    expect(page.locator(".kd-lane-head").first).to_be_visible()
    screenshot(page, "today-board")

    name, dose_field = _ready_for_check_in(demo_database_url)
    _choose(page, "Patient", re.compile(rf" · {re.escape(name)} — Expected$"))

    page.get_by_role("button", name="Check in").click()
    expect(_lane(page, "checked_in")).to_contain_text(name)
    expect(_said(page, f"{name}: checked in.")).to_be_visible()

    # The board redraws by itself (another station wrote) while a nurse is typing:
    # nothing typed is lost.
    page.get_by_label("Systolic").fill("126")
    before = _updated_text(page)
    page.wait_for_timeout(1100)  # "Updated" shows seconds: the redraw's must differ
    another_station_writes(demo_database_url)
    expect(page.locator(".kd-updated")).not_to_have_text(before, timeout=REFRESH_WAIT_MS)
    expect(page.get_by_label("Systolic")).to_have_value("126")

    page.get_by_label("Total (0–27)").fill("14")
    page.get_by_label("Item 9 (0–3)").fill("0")
    page.get_by_role("button", name="Save PHQ-9").click()
    expect(_said(page, "PHQ-9 saved: 14 (item 9: 0).")).to_be_visible()
    wait_for_app_idle(page)

    # An impossible reading is refused in words a nurse understands.
    page.get_by_label("Systolic").fill("1200")
    page.get_by_label("Diastolic").fill("80")
    page.get_by_label("Heart rate").fill("72")
    page.get_by_label("SpO2").fill("98")
    page.get_by_role("button", name="Save vitals").click()
    expect(_said(page, "Systolic 1200 mmHg is not possible")).to_be_visible()
    page.get_by_label("Systolic").fill("126")
    page.get_by_role("button", name="Save vitals").click()
    expect(_said(page, "Vitals saved: BP 126/80, HR 72.")).to_be_visible()
    wait_for_app_idle(page)
    _board_screenshot(page, "today-checked-in")

    # The demo's plan and weight fill the dose in; a nurse confirms it.
    expect(page.get_by_label(dose_field)).not_to_have_value("")
    page.get_by_role("button", name="Start dose").click()
    running = _lane(page, "infusing")
    expect(running).to_contain_text(name)
    card = running.locator(".kd-card", has_text=name)
    expect(card).to_contain_text(re.compile(r"(Dose|Devices) 0 / \d+ min"))
    _board_screenshot(page, "today-dose-running")

    # The timer runs on its own: no click, the fragment redraws it.
    expect(card).to_contain_text(
        re.compile(r"(Dose|Devices) 1 / \d+ min"), timeout=TIMER_TICK_WAIT_MS
    )

    end = page.get_by_role("button", name="End dose → recovery")
    expect(end).to_be_disabled()
    page.get_by_text("End now, at").click()
    expect(end).to_be_enabled()
    end.click()
    recovery = _lane(page, "recovery")
    expect(recovery).to_contain_text(name)
    expect(recovery.locator(".kd-card", has_text=name)).to_contain_text(
        re.compile(r"Recovery 0 / \d+ min|Observation \d+ / \d+ min")
    )
    wait_for_app_idle(page)
    assert_no_page_errors(page)
    _board_screenshot(page, "today-in-recovery")


def test_two_stations_on_the_same_patient(app_server, browser, demo_database_url):
    """Station A checks a patient in; station B, looking at the same patient, is told."""
    from playwright.sync_api import expect
    from sqlmodel import func, select

    from ketadash.clock import utc_now
    from ketadash.db import read_session
    from ketadash.models import Patient, StatusChange, TreatmentSession
    from tests.browser.conftest import SCREEN

    started = utc_now()
    stations = []
    for person in ("Nurse", "Clinic lead"):
        context = browser.new_context(viewport=SCREEN)
        station = context.new_page()
        station.set_default_timeout(20_000)
        station.goto(f"{app_server.base_url}/today")
        wait_for_app_idle(station)
        # Two people: the demo's nurse at one station, its lead at the other.
        station.get_by_role("radio", name=person, exact=True).click()
        wait_for_app_idle(station)
        stations.append((context, station))
    (context_a, a), (context_b, b) = stations
    try:
        name, _ = _ready_for_check_in(demo_database_url)
        chosen = _choose(a, "Patient", re.compile(rf" · {re.escape(name)} — Expected$"))
        b.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
        b.get_by_role("option", name=chosen).click()
        wait_for_app_idle(b)

        a.get_by_role("button", name="Check in").click()
        expect(_said(a, f"{name}: checked in.")).to_be_visible()

        # B's board notices by itself; B's panel still offers the old step.
        expect(b.get_by_text("was changed at another station")).to_be_visible(
            timeout=REFRESH_WAIT_MS
        )
        _board_screenshot(b, "today-second-station")
        b.get_by_role("button", name="Check in").click()
        expect(b.get_by_text("Changed at another station while you were looking")).to_be_visible()
        panel_header = re.compile(rf"^{re.escape(name)} · Chair \d+ · Checked in$")
        expect(b.get_by_text(panel_header)).to_be_visible()
        assert_no_page_errors(b)
    finally:
        context_a.close()
        context_b.close()

    first, last = name.split(" ", 1)
    with read_session(demo_database_url) as db:
        check_ins = db.exec(
            select(func.count(StatusChange.id))
            .join(TreatmentSession, TreatmentSession.id == StatusChange.session_id)
            .join(Patient, Patient.id == TreatmentSession.patient_id)
            .where(
                Patient.first_name == first,
                Patient.last_name == last,
                StatusChange.to_status == "checked_in",
                StatusChange.changed_at >= started,
            )
        ).one()
    assert check_ins == 1
