"""Saves made while the board is refreshing: each is in the database once, or the screen
says it is not saved. Pressed as a nurse would: when the screen says nothing and what
she typed is still there, she presses again, and the form's key makes that safe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import func, select

from ketadash.clock import utc_now
from ketadash.db import get_engine, migrate, read_session
from ketadash.lifecycle import Step, take_step
from ketadash.models import OutcomeScore, VitalsReading
from tests.browser.conftest import wait_for_app_idle
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = pytest.mark.browser

ANSWER_MS = 20_000
PRESSES = 3
# Clicks the button named ``label`` at the moment a script run (the board's refresh, as
# a rule) is under way: the moment a submit used to meet a fragment's rerun.
CLICK_DURING_A_RUN = """
async (label) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const running = () => app.getAttribute('data-test-script-state') === 'running';
  await new Promise((resolve) => {
    if (running()) return resolve();
    const watch = new MutationObserver(() => {
      if (running()) { watch.disconnect(); resolve(); }
    });
    watch.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
    setTimeout(() => { watch.disconnect(); resolve(); }, 15000);
  });
  [...document.querySelectorAll('button')].find((b) => b.innerText.trim() === label).click();
}
"""


@pytest.fixture
def clinic_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'saves.sqlite'}"
    migrate(url)
    clinic = make_clinic(url=url)
    mark_as_demo(url)
    patient = make_patient(url=url, first="Robin", last="Save", site_id=clinic.site_id)
    session_id = make_session(url=url, clinic=clinic, patient_id=patient,
                              scheduled_start=utc_now() - timedelta(minutes=2))  # fmt: skip
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN, staff_id=clinic.nurse_id,
              expected_version=1)  # fmt: skip
    get_engine(url).dispose()
    return url


def _count(url: str, query) -> int:
    with read_session(url) as db:
        return db.exec(query).one()


def _press(page, label: str, confirmation: str, typed) -> list[str]:
    """Press during a refresh until the screen answers (at most PRESSES times)."""
    answers = []
    for _ in range(PRESSES):
        page.evaluate(CLICK_DURING_A_RUN, label)
        answer = "none"
        for _ in range(ANSWER_MS // 100):
            alerts = page.get_by_test_id("stAlert")
            if alerts.filter(has_text=confirmation).count():
                answer = "saved"
            elif alerts.filter(has_text="Already saved").count():
                answer = "already"
            elif alerts.filter(has_text="Not saved").count():
                answer = "not saved"
            if answer != "none":
                break
            page.wait_for_timeout(100)
        answers.append(answer)
        wait_for_app_idle(page)
        if answer in ("saved", "already") or not typed():
            break
    return answers


def test_saves_during_refreshes_are_saved_once_or_shown_not_saved(fresh_server, browser,
                                                                  clinic_url):  # fmt: skip
    url = clinic_url
    server = fresh_server(url)
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{server.base_url}/today")
        wait_for_app_idle(page)
        page.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
        page.get_by_role("option", name=re.compile("Robin Save")).click()
        page.get_by_text(re.compile(r"^Robin Save · ")).wait_for()
        wait_for_app_idle(page)

        page.get_by_label("Total (0–27)").fill("11")
        page.get_by_label("Item 9 (0–3)").fill("0")
        page.get_by_label("Item 9 (0–3)").press("Tab")
        total = page.get_by_label("Total (0–27)")
        answers = _press(page, "Save PHQ-9", "PHQ-9 saved: 11 (item 9: 0).",
                         lambda: total.input_value() == "11")  # fmt: skip
        saved = _count(url, select(func.count(OutcomeScore.id)))
        assert saved == 1 or (saved == 0 and answers[-1] == "not saved"), answers

        for systolic in (112, 114, 116):
            for label, value in (("Systolic", systolic), ("Diastolic", 78), ("Heart rate", 70),
                                 ("SpO2", 98)):  # fmt: skip
                page.get_by_label(label, exact=True).fill(str(value))
            page.get_by_label("SpO2", exact=True).press("Tab")
            answers = _press(
                page, "Save vitals", f"Vitals saved: BP {systolic}/78, HR 70.",
                lambda s=systolic: page.get_by_label("Systolic", exact=True).input_value()
                == str(s),
            )  # fmt: skip
            saved = _count(
                url,
                select(func.count(VitalsReading.id)).where(VitalsReading.systolic == systolic),
            )
            assert saved == 1 or (saved == 0 and answers[-1] == "not saved"), (systolic, answers)
    finally:
        context.close()
