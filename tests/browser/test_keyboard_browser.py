"""Issue 21 in Chromium: a nurse works Today by keyboard alone, and sees where she is.

Only keyboard events reach the page (Tab, Enter, Space, typing; no click, no focus()
call): she checks a patient in, scores the PHQ-9, records vitals and starts the dose.
Every control she lands on on the way shows a focus ring (an outline of 2 px or more).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ketadash.clock import utc_now
from ketadash.db import get_engine, migrate, read_session
from ketadash.models import Route, SessionStatus, TreatmentSession
from tests.browser.conftest import assert_no_page_errors, screenshot, wait_for_app_idle
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = pytest.mark.browser

MAX_TABS = 150

# The focused control: its name as a person hears it, and whether its ring shows (on the
# control, or on the field around an input, which is where Streamlit draws a box).
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const label = el.labels && el.labels[0] ? el.labels[0].innerText : '';
  const name = (el.getAttribute('aria-label') || label || el.innerText || '').trim();
  const ring = e => {
    const s = getComputedStyle(e);
    return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
  };
  const field = el.closest('[data-baseweb="input"], [data-baseweb="textarea"]')
    || el.closest('[data-baseweb="select"]')?.firstElementChild;
  return {name, tag: el.tagName, ring: ring(el) || (!!field && ring(field))};
}"""


@pytest.fixture
def checked_out_clinic(tmp_path):
    """One patient expected now for 84 mg of esketamine (a fixed dose: no weight)."""
    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    migrate(url)
    clinic = make_clinic(url=url)
    mark_as_demo(url)  # signed in as the demo's nurse, Dana Reyes
    patient = make_patient(url=url, first="Robin", last="Vale", site_id=clinic.site_id)
    session_id = make_session(url=url, clinic=clinic, patient_id=patient,
                              scheduled_start=utc_now() + timedelta(minutes=5),
                              route=Route.ESKETAMINE, dose_mg=84)  # fmt: skip
    get_engine(url).dispose()
    return url, session_id


def tab_to(page, name: str | re.Pattern, *, seen: list[dict]) -> None:
    """Press Tab until the focused control is called ``name``; each stop is kept in ``seen``."""
    wanted = re.compile(rf"^{re.escape(name)}$") if isinstance(name, str) else name
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue
        seen.append(focused)
        if wanted.search(focused["name"]):
            return
    pytest.fail(f"{name!r} not reached in {MAX_TABS} presses of Tab; stops: {seen[-30:]}")


def type_into(page, name: str, text: str, *, seen: list[dict]) -> None:
    tab_to(page, name, seen=seen)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_a_nurse_checks_in_records_vitals_and_starts_a_dose_by_keyboard(
    fresh_server, page, checked_out_clinic
):
    from playwright.sync_api import expect

    url, session_id = checked_out_clinic
    server = fresh_server(url)
    page.goto(f"{server.base_url}/today")
    wait_for_app_idle(page)
    seen: list[dict] = []

    def lane(name: str):
        return page.locator(f'.kd-lane[data-lane="{name}"]')

    # The patient, by typing part of the name and Enter.
    tab_to(page, "Patient", seen=seen)
    page.keyboard.type("Robin")
    page.keyboard.press("Enter")
    check_in = page.get_by_role("button", name="Check in")
    expect(check_in).to_be_visible()
    wait_for_app_idle(page)

    tab_to(page, "Check in", seen=seen)
    page.keyboard.press("Enter")
    expect(lane("checked_in")).to_contain_text("Robin Vale")
    wait_for_app_idle(page)

    type_into(page, "Total (0–27)", "12", seen=seen)
    type_into(page, "Item 9 (0–3)", "0", seen=seen)
    tab_to(page, "Save PHQ-9", seen=seen)
    page.keyboard.press("Space")
    expect(page.get_by_test_id("stAlert").filter(has_text="PHQ-9 saved: 12")).to_be_visible()
    wait_for_app_idle(page)

    for field, value in (("Systolic", "124"), ("Diastolic", "78"), ("Heart rate", "70")):
        type_into(page, field, value, seen=seen)
    type_into(page, "SpO2", "98", seen=seen)
    tab_to(page, "Save vitals", seen=seen)
    page.keyboard.press("Enter")
    expect(
        page.get_by_test_id("stAlert").filter(has_text="Vitals saved: BP 124/78")
    ).to_be_visible()
    wait_for_app_idle(page)

    tab_to(page, "Start dose", seen=seen)
    screenshot(page, "today-keyboard-focus-on-start")
    page.keyboard.press("Enter")
    expect(lane("infusing")).to_contain_text("Robin Vale")
    wait_for_app_idle(page)
    assert_no_page_errors(page)

    with read_session(url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.INFUSING
    # Every control landed on showed where the keyboard was.
    unseen = [stop for stop in seen if not stop["ring"]]
    assert not unseen, f"{len(unseen)} of {len(seen)} focus stops had no visible ring: {unseen}"
