"""The today page under AppTest: a nurse takes a patient from check-in to recovery."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.lifecycle import history_agrees
from ketadash.models import SessionStatus, StatusChange, TreatmentSession
from ketadash.ui.text import literal
from tests.utils.factories import NURSE_EMAIL, make_clinic, make_patient, make_session

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    return sqlite_url


@pytest.fixture
def today(clinic_url):
    clinic = make_clinic(url=clinic_url)
    now = utc_now()
    alex = make_patient(
        url=clinic_url,
        mrn="A1",
        first="Alex",
        last="Morgan",
        site_id=clinic.site_id,
        care_flags="hypertension",
    )
    bea = make_patient(url=clinic_url, mrn="B2", first="Bea", last="Lund", site_id=clinic.site_id)
    alex_session = make_session(
        url=clinic_url,
        clinic=clinic,
        patient_id=alex,
        scheduled_start=now - timedelta(minutes=5),
        chair_index=0,
    )
    make_session(
        url=clinic_url,
        clinic=clinic,
        patient_id=bea,
        scheduled_start=now - timedelta(minutes=40),
        chair_index=1,
    )
    return clinic, alex_session


def _open_today() -> AppTest:
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.run()
    at.switch_page("pages/today.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _open_as_nurse(clinic, session_id) -> AppTest:
    """Today, signed in as the first nurse, with the patient's session chosen."""
    at = _open_today()
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    return at


def _board_text(at: AppTest) -> str:
    return " ".join(element.value for element in at.get("html"))


def _lane(at: AppTest, label: str) -> str:
    """The HTML of one lane of the board, from its heading to the next."""
    text = _board_text(at)
    match = re.search(
        rf'kd-lane-head [a-z_]+">{re.escape(label)} \(\d+\)</div>(.*?)(?=kd-lane-head|$)',
        text,
        re.S,
    )
    assert match, f"no lane {label}"
    return match.group(1)


def test_board_shows_todays_patients_in_their_lanes(today):
    at = _open_today()
    assert "Alex Morgan" in _lane(at, "Expected")
    assert "Hypertension" in _lane(at, "Expected")
    text = _board_text(at)
    assert "Not arrived, 40 min late" in text or "Not arrived, 39 min late" in text
    assert "Chairs free" in text


def test_nurse_takes_a_patient_from_check_in_to_recovery(today, clinic_url):
    _clinic, session_id = today
    at = _open_today()
    patient = next(s for s in at.selectbox if s.label == "Patient")
    patient.set_value(session_id).run()
    assert not at.exception

    at.button(key=f"step-check_in-{session_id}").click().run()
    assert "Alex Morgan" in _lane(at, "Checked in")
    assert any("Alex Morgan: checked in." in s.value for s in at.success)

    # Before the checks the start checklist says what is missing (the start gate's words).
    assert "Record a PHQ-9 and pre-infusion vitals" in _board_text(at)

    _number(at, "Total (0–27)").set_value(13)
    _number(at, "Item 9 (0–3)").set_value(0)
    _submit(at, "Save PHQ-9")
    assert any("PHQ-9 saved: 13" in s.value for s in at.success)

    # An impossible reading is refused, and the typed values stay in the form.
    _type_vitals(at, 1200, 80, 72, 98)
    _submit(at, "Save vitals")
    assert any(literal("Systolic 1200 mmHg is not possible") in e.value for e in at.error)
    assert _number(at, "Systolic").value == 1200

    _type_vitals(at, 124, 80, 72, 98)
    _submit(at, "Save vitals")
    assert any("Vitals saved: BP 124/80" in s.value for s in at.success)

    # The dose is checked against the plan: 0.5 mg/kg at 70 kg is 35 mg, not 350.
    _number(at, "Weight today (kg)").set_value(70.0)
    _number(at, "Dose given (mg)").set_value(350.0)
    _submit(at, "Start dose")
    assert any(literal("Check the dose: 350 mg is 5.00 mg/kg") in e.value for e in at.error)
    assert _number(at, "Dose given (mg)").value == 350.0
    _number(at, "Dose given (mg)").set_value(35.0)
    _submit(at, "Start dose")
    assert not at.exception
    assert "Alex Morgan" in _lane(at, "Dose running")
    assert "Dose 0 / 40 min" in _lane(at, "Dose running")

    # Ending a dose early takes a deliberate tick first.
    end = at.button(key=f"step-end_infusion-{session_id}")
    assert end.disabled
    next(c for c in at.checkbox if c.label.startswith("End now, at 0 of the planned 40")).check()
    at.run()
    at.button(key=f"step-end_infusion-{session_id}").click().run()
    recovery = _lane(at, "In recovery")
    assert "Alex Morgan" in recovery
    assert "Recovery 0 / 30 min" in recovery
    # The nurse's confirmation stands unticked until the nurse ticks it, as on Recovery.
    assert "✓ <bdi>Steady on feet" not in _board_text(at)
    assert "○ <bdi>Steady on feet and oriented (nurse confirms)</bdi>" in _board_text(at)

    with read_session(clinic_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert row.status == SessionStatus.RECOVERY
        assert row.given_dose_mg == 35
        assert history_agrees(db=db, session_id=session_id)
        steps = db.exec(select(StatusChange.to_status).where(StatusChange.session_id == session_id))
        assert list(steps) == ["checked_in", "infusing", "recovery"]


def test_every_change_records_the_signed_in_nurse(today, clinic_url):
    clinic, session_id = today
    at = _open_as_nurse(clinic, session_id)
    at.button(key=f"step-check_in-{session_id}").click().run()
    with read_session(clinic_url) as db:
        (staff_id,) = db.exec(
            select(StatusChange.staff_id).where(StatusChange.session_id == session_id)
        ).all()
    assert staff_id == clinic.nurse_id
    # No "Acting as" list: who acts is who signed in.
    assert not [s for s in at.selectbox if s.label == "Acting as"]


def _type_vitals(at: AppTest, systolic, diastolic, heart_rate, spo2) -> None:
    _number(at, "Systolic").set_value(systolic)
    _number(at, "Diastolic").set_value(diastolic)
    _number(at, "Heart rate").set_value(heart_rate)
    _number(at, "SpO2").set_value(spo2)


def _submit(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()


def _number(at: AppTest, label: str):
    return next(n for n in at.number_input if n.label == label)


def test_a_station_acting_on_a_stale_screen_is_told_and_nothing_is_lost(today, clinic_url):
    from ketadash.lifecycle import take_step
    from ketadash.vocabulary import Step

    clinic, session_id = today
    at = _open_as_nurse(clinic, session_id)

    # Another station checks the patient in; this screen still shows "Expected".
    take_step(url=clinic_url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.other_nurse_id, expected_version=1)  # fmt: skip
    at.button(key=f"step-check_in-{session_id}").click().run()

    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "Sam Okafor changed this session while you were working" in warning
    assert "now checked in" in warning
    assert "Alex Morgan" in _lane(at, "Checked in")
    with read_session(clinic_url) as db:
        history = db.exec(select(StatusChange).where(StatusChange.session_id == session_id)).all()
        assert [(h.to_status, h.staff_id) for h in history] == [
            ("checked_in", clinic.other_nurse_id)
        ]


def test_a_change_from_another_station_is_pointed_out(today, clinic_url):
    from ketadash.lifecycle import take_step
    from ketadash.vocabulary import Step

    clinic, session_id = today
    at = _open_as_nurse(clinic, session_id)
    take_step(url=clinic_url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.other_nurse_id, expected_version=1)  # fmt: skip
    from ketadash.ui.actions import after_write

    after_write()  # as the other station's server would, once its TTL passes
    at.run()
    assert any("Changed at another station" in i.value for i in at.info)


def test_a_new_site_without_sessions_says_so(clinic_url):
    from ketadash.auth import set_staff_email
    from ketadash.roster import ensure_chairs, ensure_site, ensure_staff

    site_id = ensure_site(url=clinic_url, code="new", name="New Site", time_zone="UTC")
    ensure_chairs(url=clinic_url, site_id=site_id, count=4)
    nurse = ensure_staff(url=clinic_url, name="Dana Reyes", role="nurse", site_code="new")
    set_staff_email(url=clinic_url, staff_id=nurse, email=NURSE_EMAIL)
    at = _open_today()
    assert any("No sessions booked at this site today" in i.value for i in at.info)


def test_the_board_stays_up_when_the_database_goes_down(today, monkeypatch):
    import streamlit as st

    from ketadash.db import DatabaseUnavailable
    from ketadash.ui import board as board_ui

    at = _open_today()
    assert "Alex Morgan" in _lane(at, "Expected")

    def database_down(**_where):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(board_ui, "load_board", database_down)
    st.cache_data.clear()
    at.run()
    assert not at.exception
    assert "Alex Morgan" in _lane(at, "Expected")
    warnings = " ".join(w.value for w in at.warning)
    assert "Not updated since" in warnings
    assert "this catches up by itself" in warnings
    errors = " ".join(e.value for e in at.error)
    assert "cannot be reached right now" in errors  # the panel says it too


def test_after_midnight_the_board_keeps_the_patient_still_in_the_chair(clinic_url, clinic_clock):
    """At 00:03 a patient whose dose started at 23:40 is still watched on the new day's
    board, clocks running; yesterday's patient who never came stays in view with a call to
    close the record (a no-show, most likely), not a "late" alert."""
    from tests.utils.clock import local_moment

    clinic = make_clinic(url=clinic_url)
    cara = make_patient(url=clinic_url, mrn="C3", first="Cara", last="Diaz", site_id=clinic.site_id)
    dev = make_patient(url=clinic_url, mrn="D4", first="Dev", last="Shah", site_id=clinic.site_id)
    evening = local_moment("2026-12-07 23:20")
    make_session(
        url=clinic_url,
        clinic=clinic,
        patient_id=cara,
        scheduled_start=evening,
        status=SessionStatus.INFUSING,
        checked_in_at=evening + timedelta(minutes=5),
        infusion_started_at=evening + timedelta(minutes=20),
    )
    make_session(url=clinic_url, clinic=clinic, patient_id=dev, chair_index=1,
                 scheduled_start=evening + timedelta(minutes=15))  # fmt: skip
    clinic_clock.set(local_moment("2026-12-08 00:03"))
    at = _open_today()
    running = _lane(at, "Dose running")
    assert "Cara Diaz" in running
    assert "Dose 23 / 40 min" in running
    assert "Not arrived" not in _board_text(at)
    assert re.search(
        r"Dev Shah</bdi></b> — Left open from Mon 07 Dec \(expected\)", _board_text(at)
    )


def test_check_in_into_an_occupied_chair_waits_and_says_why(today, clinic_url):
    """Cy is booked into Alex's chair; Alex is checked in there: the panel says so and the
    check-in button waits."""
    from ketadash.lifecycle import take_step
    from ketadash.vocabulary import Step

    clinic, alex_session = today
    now = utc_now()
    take_step(url=clinic_url, session_id=alex_session, step=Step.CHECK_IN,
              staff_id=clinic.nurse_id, expected_version=1, now=now)  # fmt: skip
    cy = make_patient(url=clinic_url, mrn="C3", first="Cy", last="Park", site_id=clinic.site_id)
    cy_session = make_session(
        url=clinic_url, clinic=clinic, patient_id=cy, scheduled_start=now + timedelta(minutes=5)
    )
    at = _open_as_nurse(clinic, cy_session)
    assert not at.exception, at.exception
    assert next(b for b in at.button if b.label == "Check in").disabled
    assert "Chair 1 is occupied: another patient is checked in there" in _board_text(at)


def test_taking_back_a_cancel_into_an_occupied_chair_waits_and_says_why(today, clinic_url):
    """Alex was checked in to Chair 1 and cancelled; Cy is checked in there now: Alex's
    correction form says the chair is taken and its button waits."""
    from ketadash.lifecycle import take_step
    from ketadash.vocabulary import Step

    clinic, alex_session = today
    now = utc_now()
    take_step(url=clinic_url, session_id=alex_session, step=Step.CHECK_IN,
              staff_id=clinic.nurse_id, expected_version=1, now=now)  # fmt: skip
    take_step(url=clinic_url, session_id=alex_session, step=Step.CANCEL, reason="Felt unwell",
              staff_id=clinic.nurse_id, expected_version=2, now=now)  # fmt: skip
    cy = make_patient(url=clinic_url, mrn="C3", first="Cy", last="Park", site_id=clinic.site_id)
    cy_session = make_session(
        url=clinic_url, clinic=clinic, patient_id=cy, scheduled_start=now + timedelta(minutes=5)
    )
    take_step(url=clinic_url, session_id=cy_session, step=Step.CHECK_IN,
              staff_id=clinic.nurse_id, expected_version=1, now=now)  # fmt: skip
    at = _open_as_nurse(clinic, alex_session)
    assert not at.exception, at.exception
    assert next(b for b in at.button if b.label.startswith("Take back")).disabled
    assert "Chair 1 is occupied: another patient is checked in there" in _board_text(at)


def test_discharge_on_today_waits_for_danger_recorded_after_ready_and_says_why(today, clinic_url):
    from sqlalchemy import update

    from ketadash.db import write_session
    from ketadash.lifecycle import record_vitals
    from ketadash.rides import arrange_ride
    from ketadash.vitals import Vitals

    clinic, alex_session = today
    now = utc_now()
    with write_session(clinic_url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == alex_session)
            .values(
                status=SessionStatus.READY,
                checked_in_at=now - timedelta(minutes=95),
                infusion_started_at=now - timedelta(minutes=85),
                infusion_ended_at=now - timedelta(minutes=45),
                ready_at=now - timedelta(minutes=5),
            )
        )
    arrange_ride(url=clinic_url, session_id=alex_session, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo Driver", arrived=True)  # fmt: skip
    record_vitals(url=clinic_url, session_id=alex_session, staff_id=clinic.nurse_id,
                  vitals=Vitals(systolic=200, diastolic=120, heart_rate=130, spo2=85),
                  now=now - timedelta(minutes=1))  # fmt: skip
    at = _open_as_nurse(clinic, alex_session)
    assert not at.exception, at.exception
    assert next(b for b in at.button if b.label == "Discharge").disabled
    assert "BP 200/120" in _board_text(at)


def test_two_patients_in_one_chair_are_both_on_the_strip_and_in_an_alert(clinic_url, clinic_clock):
    """Two visits under way in Chair 2 (left from before the chair gate): the strip names
    both with a mark, and an alert says what to do; names stay text."""
    from tests.utils.clock import local_moment

    clinic = make_clinic(url=clinic_url)
    alex = make_patient(url=clinic_url, mrn="A1", first="Alex", last="Morgan",
                        site_id=clinic.site_id)  # fmt: skip
    bea = make_patient(url=clinic_url, mrn="B2", first="<b>Bea", last="Lund",
                       site_id=clinic.site_id)  # fmt: skip
    nine = local_moment("2026-12-07 09:00")
    make_session(url=clinic_url, clinic=clinic, patient_id=alex, chair_index=1,
                 scheduled_start=nine, status=SessionStatus.INFUSING,
                 checked_in_at=nine, infusion_started_at=nine + timedelta(minutes=10))  # fmt: skip
    make_session(url=clinic_url, clinic=clinic, patient_id=bea, chair_index=1,
                 scheduled_start=nine + timedelta(minutes=15), status=SessionStatus.CHECKED_IN,
                 checked_in_at=nine + timedelta(minutes=20))  # fmt: skip
    clinic_clock.set(nine + timedelta(minutes=25))
    at = _open_today()
    text = _board_text(at)
    assert "<b>Bea" not in text  # a name is text, never markup
    assert re.search(
        r'kd-chair busy shared">⚠ <b><bdi>Chair 2</bdi></b>: <bdi>Alex Morgan</bdi> \+ '
        r"<bdi>&lt;b&gt;Bea Lund</bdi> — two patients</span>",
        text,
    ), text
    assert re.search(
        r'kd-alert danger"><b><bdi>Chair 2</bdi> · <bdi>Alex Morgan</bdi> \+ '
        r"<bdi>&lt;b&gt;Bea Lund</bdi></b> — <bdi>Two patients recorded in Chair 2</bdi>\. "
        r'<span class="do">→ Move one to a free chair or close the record that is wrong\.',
        text,
    ), text


def test_the_compact_strip_of_a_large_clinic_marks_a_chair_with_two_patients():
    """Past FULL_CHAIR_STRIP_UP_TO chairs the strip groups chairs; one with two patients
    gets its own marked chip instead of hiding in the "dose running" count."""
    from ketadash.board import chair_states, view_board
    from ketadash.models import SessionStatus as S
    from ketadash.settings import ClinicSettings
    from ketadash.ui.board import FULL_CHAIR_STRIP_UP_TO, summary_html
    from ketadash.visits import SiteDay
    from tests.utils.visits import NINE, a_visit

    chairs = tuple((n, f"Chair {n}") for n in range(1, FULL_CHAIR_STRIP_UP_TO + 2))
    in_seven = {"chair_id": 7, "chair_name": "Chair 7", "checked_in_at": NINE}
    board = SiteDay(
        site_id=1, site_name="Main", time_zone="America/New_York", day=NINE.date(),
        settings=ClinicSettings(), chairs=chairs,
        visits=(
            a_visit(session_id=1, status=S.INFUSING, infusion_started_at=NINE, **in_seven),
            a_visit(session_id=2, patient_id=2, status=S.CHECKED_IN, **in_seven),
            a_visit(session_id=3, patient_id=3, status=S.INFUSING, chair_id=3,
                    chair_name="Chair 3", checked_in_at=NINE, infusion_started_at=NINE),
        ),
    )  # fmt: skip
    now = NINE + timedelta(minutes=5)
    html = summary_html(view_board(board, now), board, chairs=chair_states(board, now))
    assert re.search(
        r'kd-chair busy shared compact" title="Chair 7"><b>⚠ 1 with more than one patient:'
        r"</b> <bdi>Chair 7</bdi>",
        html,
    ), html
    assert "<b>1 dose running:</b> <bdi>Chair 3</bdi>" in html
