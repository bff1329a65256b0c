"""Issue 20 in Chromium: a nurse starts an esketamine session's REMS form from Recovery,
completes and submits it on the REMS page, and the one-page PDF shows the fields."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ketadash.clock import to_local, utc_now
from ketadash.db import get_engine, migrate, read_session
from ketadash.lifecycle import Step, record_phq9, record_vitals, take_step
from ketadash.models import RemsRecord, Route
from ketadash.rides import arrange_ride
from ketadash.vitals import Vitals
from tests.browser.conftest import (
    SCREENSHOT_DIR,
    assert_no_page_errors,
    screenshot,
    wait_for_app_idle,
)
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = pytest.mark.browser

CALM = Vitals(systolic=124, diastolic=78, heart_rate=70, spo2=98)
PEAK = Vitals(systolic=146, diastolic=90, heart_rate=80, spo2=97)


@pytest.fixture
def ready_esketamine_patient(tmp_path):
    """Robin Vale: 84 mg of esketamine, first device 140 min ago, BP 146/90 at 40 min,
    ready to go 3 min ago, the ride here; no REMS form yet."""
    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    migrate(url)
    clinic = make_clinic(url=url)
    mark_as_demo(url)  # signed in as the demo's nurse, Dana Reyes
    patient = make_patient(url=url, first="Robin", last="Vale", site_id=clinic.site_id)
    now = utc_now()

    def ago(minutes: int):
        return now - timedelta(minutes=minutes)

    session_id = make_session(url=url, clinic=clinic, patient_id=patient,
                              scheduled_start=ago(155), route=Route.ESKETAMINE,
                              dose_mg=84)  # fmt: skip
    nurse = clinic.nurse_id

    def step(step, minutes, version, **extra):
        take_step(url=url, session_id=session_id, step=step, staff_id=nurse,
                  expected_version=version, now=ago(minutes), **extra)  # fmt: skip

    def vitals(minutes, reading):
        record_vitals(url=url, session_id=session_id, staff_id=nurse, vitals=reading,
                      now=ago(minutes))  # fmt: skip

    step(Step.CHECK_IN, 152, 1)
    record_phq9(url=url, session_id=session_id, staff_id=nurse, total=12, item9=0,
                now=ago(150))  # fmt: skip
    vitals(148, CALM)
    step(Step.START_INFUSION, 140, 2, dose_mg=84)
    step(Step.END_INFUSION, 130, 3)
    vitals(100, PEAK)
    vitals(5, CALM)
    step(Step.MARK_READY, 3, 4, steady_on_feet=True)
    arrange_ride(url=url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo Vale", arrived=True, now=ago(2))  # fmt: skip
    get_engine(url).dispose()
    ready_clock = to_local(ago(30), clinic.time_zone)
    ready_clock -= timedelta(minutes=ready_clock.minute % 5)
    return url, session_id, ready_clock.strftime("%H:%M")


def _choose(page, label: str, option: str | re.Pattern) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option).first.click()
    wait_for_app_idle(page)


def test_a_nurse_completes_and_submits_the_rems_form_and_prints_it(
    fresh_server, page, ready_esketamine_patient
):
    from playwright.sync_api import expect

    url, session_id, ready_clock = ready_esketamine_patient
    server = fresh_server(url)

    # Recovery: the discharge waits for the form; the nurse starts it there.
    page.goto(f"{server.base_url}/recovery")
    wait_for_app_idle(page)
    _choose(page, "Patient", re.compile("Robin Vale"))
    card = page.locator(".kr-card", has_text="Robin Vale")
    expect(card).to_contain_text("✗ REMS monitoring form started")
    expect(page.get_by_role("button", name="Discharge")).to_be_disabled()
    screenshot(page, "rems-recovery-form-needed")
    page.get_by_role("button", name="Start the REMS form").click()
    expect(
        page.get_by_text("REMS form started: complete it on the REMS page.").first
    ).to_be_visible()
    expect(page.get_by_role("button", name="Discharge")).to_be_enabled()
    wait_for_app_idle(page)

    # The REMS page: the lead's list with the days left, then the form.
    page.goto(f"{server.base_url}/rems")
    wait_for_app_idle(page)
    expect(page.get_by_role("gridcell", name="Robin Vale", include_hidden=True)).to_have_count(1)
    expect(
        page.get_by_role("gridcell", name="Started, not submitted", include_hidden=True)
    ).to_have_count(1)
    _choose(page, "Form", re.compile("Robin Vale"))
    table = page.get_by_test_id("stTable")
    expect(table).to_contain_text("84 mg")
    expect(table).to_contain_text("146/90 mmHg")
    expect(table).to_contain_text("40 min after the first device")
    expect(table).to_contain_text("137 min")

    # An incomplete form is refused, in words, and nothing is lost.
    page.get_by_role("button", name="Save and mark submitted").click()
    expect(
        page.get_by_test_id("stAlert").filter(has_text="type the lot number printed")
    ).to_be_visible()
    wait_for_app_idle(page)

    page.get_by_label("Device lot number").fill("LX41207")
    for question in (
        "Benzodiazepines",
        "Non-benzodiazepine sedative hypnotics",
        "Psychostimulants",
        "Monoamine oxidase inhibitors (MAOIs)",
    ):
        page.get_by_role("radiogroup", name=question).get_by_text("No", exact=True).click()
    # Streamlit's time box is two spin buttons (hour, minute): typed digits fill them in turn.
    page.get_by_role("spinbutton", name=re.compile("^hour")).click()
    page.keyboard.type(ready_clock.replace(":", ""))
    page.keyboard.press("Tab")
    _choose(page, "Monitoring healthcare provider", "Dana Reyes")
    screenshot(page, "rems-form-filled")
    page.get_by_role("button", name="Save and mark submitted").click()
    expect(page.get_by_text("Marked submitted: the clinic's copy is kept")).to_be_visible()
    expect(page.get_by_text(re.compile("Marked submitted by Dana Reyes at"))).to_be_visible()
    wait_for_app_idle(page)
    assert_no_page_errors(page)
    screenshot(page, "rems-form-submitted")
    with read_session(url) as db:
        record = db.query(RemsRecord).filter_by(session_id=session_id).one()
        assert record.submitted_at is not None and record.device_lot == "LX41207"

    # The PDF: one page, the fields written in it.
    with page.expect_download() as started:
        page.get_by_role("button", name="Download the one-page PDF").click()
    download = started.value
    assert download.failure() is None, download.failure()
    body = download.path().read_bytes()
    assert body.startswith(b"%PDF-1.4") and body.count(b"/Type /Page ") == 1
    for field in (
        b"Esketamine REMS Patient Monitoring Form",
        b"(Robin Vale \\(MRN",
        b"(LX41207)",
        b"(84 mg)",
        b"146/90 mmHg",
        f"({ready_clock})".encode(),
        b"(Dana Reyes)",
        b"Marked submitted by Dana Reyes",
    ):
        assert field in body, field
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    (SCREENSHOT_DIR / "rems-form.pdf").write_bytes(body)
