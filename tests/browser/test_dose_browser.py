"""Issue 6 item 1 in Chromium: an esketamine plan is given in whole devices, checked against it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ketadash.clock import utc_now
from ketadash.db import get_engine, migrate, read_session
from ketadash.lifecycle import record_phq9, record_vitals, take_step
from ketadash.models import Route, TreatmentSession
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.browser.conftest import assert_no_page_errors, screenshot, wait_for_app_idle
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = pytest.mark.browser


@pytest.fixture
def esketamine_clinic(tmp_path):
    """A clinic whose one patient is checked in for 84 mg of esketamine, checks done."""
    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    migrate(url)
    clinic = make_clinic(url=url)
    mark_as_demo(url)  # signed in as the demo's nurse, Dana Reyes
    patient = make_patient(url=url, first="Robin", last="Vale", site_id=clinic.site_id)
    now = utc_now()
    session_id = make_session(url=url, clinic=clinic, patient_id=patient,
                              scheduled_start=now - timedelta(minutes=10),
                              route=Route.ESKETAMINE, dose_mg=84)  # fmt: skip
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN, staff_id=clinic.nurse_id,
              expected_version=1, now=now - timedelta(minutes=8))  # fmt: skip
    record_phq9(url=url, session_id=session_id, staff_id=clinic.nurse_id, total=12, item9=0,
                now=now - timedelta(minutes=6))  # fmt: skip
    record_vitals(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                  vitals=Vitals(systolic=124, diastolic=78, heart_rate=70, spo2=98),
                  now=now - timedelta(minutes=5))  # fmt: skip
    get_engine(url).dispose()
    return url, session_id


def _pick(page, combobox, option: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # A selectbox inside a form opens from the keyboard (a click may only focus it); the
    # board's refresh can close an open list, so try again until the option shows.
    choice = page.get_by_role("option", name=option)
    for _ in range(5):
        combobox.focus()
        page.keyboard.press("ArrowDown")
        try:
            choice.wait_for(state="visible", timeout=2_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    choice.click()
    wait_for_app_idle(page)


def test_esketamine_is_given_in_devices_and_checked_against_the_plan(
    fresh_server, page, esketamine_clinic
):
    from playwright.sync_api import expect

    url, session_id = esketamine_clinic
    server = fresh_server(url)
    page.goto(f"{server.base_url}/today")
    wait_for_app_idle(page)
    for label, option in (("Patient", "Robin Vale"),):
        page.get_by_test_id("stSelectbox").filter(has_text=label).click()
        page.get_by_role("option", name=re.compile(option) if isinstance(option, str) else option
                         ).first.click()  # fmt: skip
        wait_for_app_idle(page)

    # Devices, not free milligrams: there is no mg box to type 500 into.
    expect(page.get_by_label("Dose given (mg)")).to_have_count(0)
    devices = page.get_by_role("combobox", name="Devices given (28 mg each)")
    expect(devices).to_have_value("3 devices = 84 mg")

    _pick(page, devices, "1 device = 28 mg")
    page.get_by_role("button", name="Start dose").click()
    refused = page.get_by_test_id("stAlert").filter(has_text=re.compile(r"Check the dose.*28 mg"))
    expect(refused).to_be_visible()
    screenshot(page, "today-esketamine-dose-refused")

    _pick(page, devices, "3 devices = 84 mg")
    page.get_by_role("button", name="Start dose").click()
    card = page.locator('.kd-lane[data-lane="infusing"] .kd-card', has_text="Robin Vale")
    expect(card).to_contain_text("84 mg given")
    expect(card).to_contain_text("Devices 0 / 10 min")
    expect(card).to_contain_text("Observation 0 / 120 min")
    expect(page.get_by_text("End now, at 0 of the planned 10 minutes")).to_be_visible()
    wait_for_app_idle(page)
    assert_no_page_errors(page)
    screenshot(page, "today-esketamine-started")
    with read_session(url) as db:
        row = db.get(TreatmentSession, session_id)
        assert (row.dose_mg, row.given_dose_mg) == (84, 84)
