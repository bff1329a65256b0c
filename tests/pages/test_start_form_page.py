"""The start form under AppTest (h4): any plan the data holds is drawn, and a positive
PHQ-9 item 9 is a check with its own acknowledgement before the dose."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.gates import ITEM9_ACKNOWLEDGEMENT
from ketadash.lifecycle import record_phq9, record_vitals, take_step
from ketadash.models import Route, SessionStatus, StatusChange, TreatmentSession
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.pages.test_today_page import _open_as_nurse, _submit
from tests.utils.factories import make_clinic, make_patient, make_session

CALM = Vitals(systolic=122, diastolic=78, heart_rate=72, spo2=98)


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    return sqlite_url


def _checked_in(url, *, route=Route.IV, dose_mg=None, item9=0, vitals=CALM):
    """A patient checked in a few minutes ago, PHQ-9 and pre-dose vitals done."""
    clinic = make_clinic(url=url)
    now = utc_now()
    patient = make_patient(url=url, mrn="E1", first="Eli", last="Novak", site_id=clinic.site_id)
    start = now - timedelta(minutes=10)
    session_id = make_session(url=url, clinic=clinic, patient_id=patient, route=route,
                              dose_mg=dose_mg, scheduled_start=start)  # fmt: skip
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN, staff_id=clinic.nurse_id,
              expected_version=1, now=now - timedelta(minutes=5))  # fmt: skip
    record_phq9(url=url, session_id=session_id, staff_id=clinic.nurse_id, total=15, item9=item9,
                now=now - timedelta(minutes=4))  # fmt: skip
    record_vitals(url=url, session_id=session_id, staff_id=clinic.nurse_id, vitals=vitals,
                  now=now - timedelta(minutes=3))  # fmt: skip
    return clinic, session_id


def test_the_start_form_draws_a_plan_of_four_esketamine_devices(clinic_url):
    clinic, session_id = _checked_in(clinic_url, route=Route.ESKETAMINE, dose_mg=112)
    at = _open_as_nurse(clinic, session_id)
    assert not at.exception, at.exception
    devices = next(s for s in at.selectbox if s.label == "Devices given (28 mg each)")
    assert devices.value == 4
    assert devices.options[-1].startswith("4 devices")


def test_a_positive_item9_needs_the_cssrs_tick_in_the_start_form(clinic_url):
    clinic, session_id = _checked_in(clinic_url, item9=2)
    at = _open_as_nurse(clinic, session_id)
    assert not at.exception, at.exception
    board = " ".join(e.value for e in at.get("html"))
    assert "PHQ-9 item 9: C-SSRS screen done before the dose" in board
    next(n for n in at.number_input if n.label == "Weight today (kg)").set_value(70.0)
    next(n for n in at.number_input if n.label == "Dose given (mg)").set_value(35.0)
    _submit(at, "Start dose")
    assert any("C-SSRS" in e.value for e in at.error)
    with read_session(clinic_url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.CHECKED_IN
    next(c for c in at.checkbox if c.label == ITEM9_ACKNOWLEDGEMENT).check()
    _submit(at, "Start dose")
    assert not at.exception, at.exception
    with read_session(clinic_url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.INFUSING
        change = db.exec(select(StatusChange).where(StatusChange.to_status == "infusing")).one()
    assert ITEM9_ACKNOWLEDGEMENT in change.reason


def test_above_the_start_ceiling_a_nurses_override_does_not_start_the_dose(clinic_url):
    severe = Vitals(systolic=228, diastolic=128, heart_rate=96, spo2=97)
    clinic, session_id = _checked_in(clinic_url, vitals=severe)
    at = _open_as_nurse(clinic, session_id)
    assert not at.exception, at.exception
    assert any("start ceiling (180/110)" in e.value for e in at.error)
    next(n for n in at.number_input if n.label == "Weight today (kg)").set_value(70.0)
    next(n for n in at.number_input if n.label == "Dose given (mg)").set_value(35.0)
    next(t for t in at.text_input if t.label == "Lead's reason to dose above the ceiling").input(
        "patient anxious"
    )
    _submit(at, "Start dose")
    assert any("clinic lead" in e.value for e in at.error)
    with read_session(clinic_url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.CHECKED_IN


def test_the_vitals_form_keeps_its_widgets_and_what_was_typed_when_the_dose_starts(clinic_url):
    """A save reshapes the panel (the PHQ-9 form goes, the vitals form moves up). Only the
    saved form is drawn afresh: the vitals form keeps its widget ids, so a submit from the
    copy still on screen while the panel is redrawn names widgets that exist
    (benchmarks/soak_saves.py lost a vitals save here when every form changed its keys at
    every save). What was typed but not yet sent stays in the browser, by widget id."""
    clinic, session_id = _checked_in(clinic_url)
    at = _open_as_nurse(clinic, session_id)
    systolic = next(n for n in at.number_input if n.label == "Systolic")
    widget = systolic.id
    next(n for n in at.number_input if n.label == "Weight today (kg)").set_value(70.0)
    next(n for n in at.number_input if n.label == "Dose given (mg)").set_value(35.0)
    _submit(at, "Start dose")
    assert not at.exception, at.exception
    with read_session(clinic_url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.INFUSING
    systolic = next(n for n in at.number_input if n.label == "Systolic")
    assert (systolic.id, systolic.form_id) == (widget, f"vitals-{session_id}-0")
    # The start form itself is gone, and a new one would be drawn afresh.
    assert not [b for b in at.button if b.label == "Start dose"]
