"""The Recovery & rides page under AppTest: the list, rides recorded at every step, discharge."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import update
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from ketadash.clock import utc_now
from ketadash.db import read_session, write_session
from ketadash.models import (
    EscortException,
    RideChange,
    RideState,
    Staff,
    StaffRole,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.rides import arrange_ride, load_rides
from tests.pages.conftest import sign_in
from tests.utils.factories import (
    FRONT_DESK_EMAIL,
    NURSE_EMAIL,
    make_clinic,
    make_patient,
    make_session,
)

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    st.cache_data.clear()
    return sqlite_url


@pytest.fixture
def day(clinic_url):
    """Alex resting, Bea ready with a ride arranged, Cy ready with no ride, Dee expected."""
    clinic = make_clinic(url=clinic_url)
    now = utc_now()
    ids = {}
    for index, (key, first, status) in enumerate(
        [
            ("alex", "Alex", S.RECOVERY),
            ("bea", "Bea", S.READY),
            ("cy", "Cy", S.READY),
            ("dee", "Dee", S.SCHEDULED),
        ]
    ):
        patient = make_patient(url=clinic_url, mrn=f"M{index}", first=first, last="Tester")
        session_id = make_session(
            url=clinic_url,
            clinic=clinic,
            patient_id=patient,
            scheduled_start=now - timedelta(minutes=100 if status != S.SCHEDULED else -60),
            chair_index=index,
        )
        if status != S.SCHEDULED:
            with write_session(clinic_url) as db:
                db.execute(
                    update(TreatmentSession)
                    .where(TreatmentSession.id == session_id)
                    .values(
                        status=status,
                        checked_in_at=now - timedelta(minutes=95),
                        infusion_started_at=now - timedelta(minutes=85),
                        infusion_ended_at=now - timedelta(minutes=45 - index),
                        ready_at=now - timedelta(minutes=5) if status == S.READY else None,
                    )
                )
                db.add(
                    VitalsReading(
                        session_id=session_id,
                        taken_at=now - timedelta(minutes=3),
                        phase=VitalsPhase.AFTER,
                        systolic=120,
                        diastolic=78,
                        heart_rate=70,
                        spo2=98,
                    )
                )
        ids[key] = session_id
    arrange_ride(url=clinic_url, session_id=ids["bea"], staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo Driver",
                 expected_pickup_at=now + timedelta(minutes=20))  # fmt: skip
    with write_session(clinic_url) as db:
        desk = Staff(name="Rita Desk", role=StaffRole.FRONT_DESK, site_id=clinic.site_id,
                     email=FRONT_DESK_EMAIL)  # fmt: skip
        db.add(desk)
        db.flush()
        ids["desk"] = desk.id
    return clinic, ids


def _open(email: str, session_id: int | None = None) -> AppTest:
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), email)
    at.run()
    at.switch_page("pages/recovery.py")
    at.run()
    assert not at.exception, at.exception
    if session_id is not None:
        next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    assert not at.exception, at.exception
    return at


def _list_text(at: AppTest) -> str:
    return " ".join(str(element.value) for element in at.get("html"))


def _said(at: AppTest) -> str:
    return " ".join(str(e.value) for e in (*at.success, *at.error, *at.warning))


def test_the_list_shows_recovery_and_ready_with_checklist_ride_and_alerts(day):
    _clinic, _ids = day
    at = _open(NURSE_EMAIL)
    text = _list_text(at)
    for name in ("Alex Tester", "Bea Tester", "Cy Tester"):
        assert name in text
    assert text.index("Alex Tester") < text.index("Cy Tester"), "longest in recovery first"
    assert "Recovery of at least 30 min" in text and "Side effects settled" in text
    assert "Jo Driver" in text and "Ride arranged" in text
    assert "Ready to go, but no ride home is arranged" in text
    # Dee is expected later: her ride can be arranged ahead, in its own section.
    assert "Dee Tester" in text


def test_front_desk_arranges_a_ride_before_the_patient_arrives(day):
    _clinic, ids = day
    at = _open(FRONT_DESK_EMAIL, ids["dee"])
    next(t for t in at.text_input if t.label == "Driver's name").input("Kim Carrier")
    next(t for t in at.text_input if t.label == "Phone").input("555-0177")
    next(b for b in at.button if b.label == "Save ride").click().run()
    assert not at.exception, at.exception
    assert "Ride saved." in _said(at)
    ride = load_rides(url=_url(), session_ids=[ids["dee"]])[ids["dee"]]
    assert (ride.driver_name, ride.state) == ("Kim Carrier", RideState.ARRANGED)
    with read_session(_url()) as db:
        change = db.exec(select(RideChange).where(RideChange.session_id == ids["dee"])).one()
        assert change.staff_id == ids["desk"]


def _url() -> str:
    import os

    return os.environ["KETADASH_DATABASE_URL"]


def test_a_nurse_marks_the_ride_arrived_then_discharges(day):
    _clinic, ids = day
    at = _open(NURSE_EMAIL, ids["bea"])
    assert next(b for b in at.button if b.label == "Discharge").disabled
    next(b for b in at.button if b.label == "Ride has arrived").click().run()
    assert "Jo Driver is here." in _said(at)
    discharge = next(b for b in at.button if b.label == "Discharge")
    assert not discharge.disabled
    discharge.click().run()
    assert not at.exception, at.exception
    with read_session(_url()) as db:
        assert db.get(TreatmentSession, ids["bea"]).status == S.DISCHARGED


def test_an_arrival_ticked_by_mistake_is_taken_back_with_a_reason(day):
    _clinic, ids = day
    at = _open(NURSE_EMAIL, ids["bea"])
    next(b for b in at.button if b.label == "Ride has arrived").click().run()
    take_back = next(b for b in at.button if b.label == "Take back the arrival")
    take_back.click().run()
    assert "needs a reason in words" in _said(at)
    next(t for t in at.text_input if t.label == "Why").input("wrong patient's driver")
    next(b for b in at.button if b.label == "Take back the arrival").click().run()
    assert "Arrival taken back." in _said(at)
    ride = load_rides(url=_url(), session_ids=[ids["bea"]])[ids["bea"]]
    assert ride.state is RideState.ARRANGED
    assert next(b for b in at.button if b.label == "Discharge").disabled


def test_discharge_with_an_escort_exception_is_listed_for_the_lead(day):
    _clinic, ids = day
    at = _open(NURSE_EMAIL, ids["cy"])
    at.radio[0].set_value(EscortException.PERSON_COMING_LATER)
    next(t for t in at.text_input if t.label == "Reason").input("")
    next(b for b in at.button if b.label == "Discharge with this exception").click().run()
    assert "Say in words who is taking the patient home" in _said(at)
    with read_session(_url()) as db:
        assert db.get(TreatmentSession, ids["cy"]).status == S.READY
    at.radio[0].set_value(EscortException.PERSON_COMING_LATER)
    next(t for t in at.text_input if t.label == "Reason").input("Her son Tom, at the café, 15:00")
    next(b for b in at.button if b.label == "Discharge with this exception").click().run()
    assert not at.exception, at.exception
    with read_session(_url()) as db:
        row = db.get(TreatmentSession, ids["cy"])
        assert (row.status, row.escort_exception) == (S.DISCHARGED, "person_coming_later")
    text = _list_text(at)
    assert "Went home without an arrived escort" in " ".join(s.value for s in at.subheader)
    assert "Her son Tom, at the café, 15:00" in text
    assert "A named person is coming later" in text


def test_the_list_shows_each_patients_last_vitals_and_when_the_next_are_due(day):
    _clinic, _ids = day
    text = _list_text(_open(NURSE_EMAIL))
    # Alex, Bea and Cy each had a set 3 minutes ago; recovery vitals are due every 15 min.
    assert text.count("BP 120/78 · HR 70 · SpO2 98%") == 3
    assert re.search(r"Vitals due in 1[12] min", text)


def test_a_leads_approval_is_discharged_only_with_the_lead_named(day):
    clinic, ids = day
    at = _open(NURSE_EMAIL, ids["cy"])
    at.radio[0].set_value(EscortException.LEAD_APPROVED)
    next(t for t in at.text_input if t.label == "Reason").input(
        "a taxi with her carer, who stays with her tonight"
    )
    next(b for b in at.button if b.label == "Discharge with this exception").click().run()
    assert "Name the clinic lead who approved" in _said(at)
    with read_session(_url()) as db:
        assert db.get(TreatmentSession, ids["cy"]).status == S.READY
    lead = next(s for s in at.selectbox if s.label == "Approving lead")
    assert lead.options == ["Lee Park"]
    at.radio[0].set_value(EscortException.LEAD_APPROVED)
    lead.set_value(clinic.lead_id)
    next(t for t in at.text_input if t.label == "Reason").input(
        "a taxi with her carer, who stays with her tonight"
    )
    next(b for b in at.button if b.label == "Discharge with this exception").click().run()
    assert not at.exception, at.exception
    with read_session(_url()) as db:
        row = db.get(TreatmentSession, ids["cy"])
        assert row.status == S.DISCHARGED
        assert row.escort_exception_reason.startswith("Approved by Lee Park:")


def test_discharge_waits_for_what_was_recorded_after_ready_and_says_why(day):
    """Bea is ready and her driver is here; then her vitals turn bad and nausea is severe.
    The screen where discharge is offered shows why not, and offers no escort exception."""
    from ketadash.lifecycle import record_side_effects, record_vitals
    from ketadash.models import Severity, SideEffect
    from ketadash.vitals import Vitals

    clinic, ids = day
    now = utc_now()
    arrange_ride(url=_url(), session_id=ids["bea"], staff_id=clinic.nurse_id,
                 expected_ride_version=1, driver_name="Jo Driver", arrived=True)  # fmt: skip
    record_vitals(url=_url(), session_id=ids["bea"], staff_id=clinic.nurse_id,
                  vitals=Vitals(systolic=200, diastolic=120, heart_rate=130, spo2=85),
                  now=now - timedelta(minutes=1))  # fmt: skip
    record_side_effects(url=_url(), session_id=ids["bea"], staff_id=clinic.nurse_id,
                        effects={SideEffect.NAUSEA: Severity.SEVERE},
                        now=now - timedelta(minutes=1))  # fmt: skip
    at = _open(NURSE_EMAIL, ids["bea"])
    assert next(b for b in at.button if b.label == "Discharge").disabled
    shown = " ".join(str(t.value) for t in at.text)
    assert "BP 200/120" in shown and "nausea (severe)" in shown
    assert not [e for e in at.expander if "escort" in e.label]
