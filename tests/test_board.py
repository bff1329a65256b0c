"""Today's board: what it reads, and what its timers, alerts and chairs say at a moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ketadash.board import Lane, chair_alerts, chair_states, load_board, view_board
from ketadash.lifecycle import record_phq9, record_vitals, take_step
from ketadash.models import Route, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.rules import dose_timer, recovery_timer, session_alerts, vitals_due_in, waiting_timer
from ketadash.settings import ClinicSettings
from ketadash.visits import SiteDay
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.visits import a_visit, reading

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York
SETTINGS = ClinicSettings()
CALM = Vitals(systolic=120, diastolic=80, heart_rate=70, spo2=98)


a_session = a_visit


INFUSING = a_session(
    status=S.INFUSING,
    checked_in_at=NINE,
    infusion_started_at=NINE + minutes(15),
    baseline=reading(NINE + minutes(5), VitalsPhase.BEFORE),
    latest=reading(NINE + minutes(25), VitalsPhase.DURING),
)


def _whats(alerts) -> str:
    return " | ".join(a.what for a in alerts)


# --- timers --------------------------------------------------------------------------------


def test_dose_timer_runs_against_the_planned_minutes():
    timer = dose_timer(INFUSING, NINE + minutes(38))
    assert (timer.minutes, timer.target, timer.running, timer.over) == (23, 40, True, False)
    assert timer.text == "Dose 23 / 40 min"


def test_dose_timer_stops_when_the_dose_ends():
    ended = replace(INFUSING, status=S.RECOVERY, infusion_ended_at=NINE + minutes(55))
    later = dose_timer(ended, NINE + minutes(200))
    assert (later.minutes, later.running) == (40, False)


def test_recovery_timer_uses_the_routes_minimum_and_stops_when_ready():
    recovering = a_session(
        status=S.RECOVERY, infusion_started_at=NINE, infusion_ended_at=NINE + minutes(40)
    )
    assert recovery_timer(recovering, SETTINGS, NINE + minutes(52)).text == "Recovery 12 / 30 min"
    esketamine = replace(recovering, route=Route.ESKETAMINE)
    assert recovery_timer(esketamine, SETTINGS, NINE + minutes(52)).target == 120
    ready = replace(recovering, status=S.READY, ready_at=NINE + minutes(75))
    frozen = recovery_timer(ready, SETTINGS, NINE + minutes(300))
    assert (frozen.minutes, frozen.running) == (35, False)
    assert waiting_timer(ready, NINE + minutes(90)).text == "Waiting 15 min"


def test_no_timer_before_the_dose():
    assert dose_timer(a_session(), NINE) is None
    assert recovery_timer(a_session(), SETTINGS, NINE) is None


# --- vitals due ----------------------------------------------------------------------------


def test_vitals_due_every_ten_minutes_during_the_dose():
    # Last reading at 25 min past nine: next due at 35.
    assert vitals_due_in(INFUSING, SETTINGS, NINE + minutes(30)) == 5
    assert vitals_due_in(INFUSING, SETTINGS, NINE + minutes(38)) == -3


def test_vitals_due_from_the_phase_start_when_none_taken_in_it():
    recovering = replace(
        INFUSING, status=S.RECOVERY, infusion_ended_at=NINE + minutes(55)
    )  # latest reading is from during the dose
    assert vitals_due_in(recovering, SETTINGS, NINE + minutes(60)) == 10


def test_checked_in_without_vitals_has_vitals_due():
    checked_in = a_session(status=S.CHECKED_IN, checked_in_at=NINE)
    assert vitals_due_in(checked_in, SETTINGS, NINE + minutes(14)) == -4
    assert vitals_due_in(replace(checked_in, baseline=reading(NINE, VitalsPhase.BEFORE)),
                         SETTINGS, NINE) is None  # fmt: skip


# --- alerts --------------------------------------------------------------------------------


def test_late_arrival_after_the_clinics_minutes():
    assert session_alerts(a_session(), SETTINGS, NINE + minutes(14), time_zone="UTC") == []
    late = session_alerts(a_session(), SETTINGS, NINE + minutes(22), time_zone="UTC")
    assert _whats(late) == "Not arrived, 22 min late"
    assert "no-show" in late[0].action


def test_infusion_past_its_planned_time_alerts():
    alerts = session_alerts(INFUSING, SETTINGS, NINE + minutes(60), time_zone="UTC")
    assert "Dose running 45 min, planned 40" in _whats(alerts)


def test_high_blood_pressure_during_the_dose_alerts_with_the_reading():
    high = replace(
        INFUSING,
        latest=reading(NINE + minutes(35), VitalsPhase.DURING,
                       Vitals(systolic=184, diastolic=100, heart_rate=90, spo2=97)),
    )  # fmt: skip
    alerts = session_alerts(high, SETTINGS, NINE + minutes(36), time_zone="UTC")
    assert "BP 184/100 at or above the alert limit 180/110" in _whats(alerts)
    assert alerts[0].level == "danger"


def test_phq9_item9_raises_a_visible_flag():
    flagged = a_session(status=S.CHECKED_IN, checked_in_at=NINE, phq9_total=18, phq9_item9=1,
                        baseline=reading(NINE, VitalsPhase.BEFORE))  # fmt: skip
    alerts = session_alerts(flagged, SETTINGS, NINE + minutes(2), time_zone="UTC")
    assert "PHQ-9 item 9 answered 1" in _whats(alerts)


def test_session_left_open_from_an_earlier_day():
    yesterday = a_session(
        status=S.RECOVERY, earlier_day=True, scheduled_start=NINE - timedelta(days=1)
    )
    alerts = session_alerts(yesterday, SETTINGS, NINE, time_zone="America/New_York")
    assert _whats(alerts) == "Left open from Mon 23 Nov (in recovery)"


def test_a_calm_patient_on_time_has_no_alerts():
    assert session_alerts(INFUSING, SETTINGS, NINE + minutes(30), time_zone="UTC") == []


# --- against the database --------------------------------------------------------------------


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url, chairs=3)


def test_board_reads_today_and_open_sessions_from_earlier_days_only(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    today = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    make_session(
        url=db_url,
        clinic=clinic,
        patient_id=patient,
        scheduled_start=NINE - timedelta(days=7),
        status=S.DISCHARGED,
    )
    forgotten = make_session(
        url=db_url,
        clinic=clinic,
        patient_id=patient,
        scheduled_start=NINE - timedelta(days=1),
        status=S.RECOVERY,
    )
    make_session(url=db_url, clinic=clinic, patient_id=patient,
                 scheduled_start=NINE + timedelta(days=1))  # fmt: skip
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 11, 24))
    assert [s.session_id for s in board.sessions] == [forgotten, today]
    assert [s.earlier_day for s in board.sessions] == [True, False]
    assert board.chairs[0][1] == "Chair 1"


def test_board_day_follows_the_sites_time_zone(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    # 23:30 in New York on the 24th is already the 25th in UTC.
    late_evening = make_session(
        url=db_url,
        clinic=clinic,
        patient_id=patient,
        scheduled_start=datetime(2026, 11, 25, 4, 30, tzinfo=UTC),
    )
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 11, 24))
    assert [s.session_id for s in board.sessions] == [late_evening]


def test_board_carries_vitals_phq9_and_chair_occupancy(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id, care_flags="hypertension;anxiety")
    session_id = make_session(
        url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE, chair_index=1
    )
    take_step(
        url=db_url,
        session_id=session_id,
        step=Step.CHECK_IN,
        staff_id=clinic.nurse_id,
        expected_version=1,
        now=NINE,
    )
    record_phq9(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        total=16,
        item9=0,
        now=NINE + minutes(2),
    )
    record_vitals(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        vitals=Vitals(systolic=150, diastolic=85, heart_rate=80, spo2=97),
        now=NINE + minutes(4),
    )
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 11, 24))
    (session,) = board.sessions
    assert [f.value for f in session.care_flags] == ["hypertension", "anxiety"]
    assert session.phq9_total == 16
    assert session.baseline.vitals.systolic == 150
    (view,) = view_board(board, NINE + minutes(5))
    assert view.lane == Lane.CHECKED_IN
    assert "above the pre-infusion hold 140/90" in _whats(view.alerts)
    chairs = chair_states(board, NINE + minutes(5))
    assert [c.free for c in chairs] == [True, False, True]
    assert chairs[1].occupied_by.patient_name == "Alex Morgan"


def test_a_visit_under_way_since_an_earlier_day_keeps_its_chair_and_clock(db_url, clinic):
    # Issue 6 item 5: "left open" is an extra flag, never a reason to stop watching.
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    make_session(url=db_url, clinic=clinic, patient_id=patient,
                 scheduled_start=NINE - timedelta(days=1), status=S.RECOVERY)  # fmt: skip
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 11, 24), now=NINE)
    assert not chair_states(board, NINE)[0].free
    (view,) = view_board(board, NINE)
    assert _whats(view.alerts).startswith("Left open from")


def _board_of(*visits) -> SiteDay:
    return SiteDay(
        site_id=1, site_name="Main", time_zone="America/New_York", day=date(2026, 11, 24),
        settings=SETTINGS, chairs=((1, "Chair 1"), (2, "Chair 2")), visits=visits,
    )  # fmt: skip


def test_two_patients_under_way_in_one_chair_are_both_named_in_the_order_they_entered():
    # Left from before the chair gate (or an import): Bea infusing since 09:10, then Alex
    # checked in at 09:20 into the same chair. The strip must not hide either of them.
    alex = a_session(session_id=1, status=S.CHECKED_IN, chair_id=2, chair_name="Chair 2",
                     checked_in_at=NINE + minutes(20))  # fmt: skip
    bea = a_session(session_id=2, patient_id=2, patient_name="Bea Lund", status=S.INFUSING,
                    chair_id=2, chair_name="Chair 2", checked_in_at=NINE - minutes(10),
                    infusion_started_at=NINE + minutes(10))  # fmt: skip
    chairs = chair_states(_board_of(alex, bea), NINE + minutes(30))
    assert [c.free for c in chairs] == [True, False]
    assert [s.patient_name for s in chairs[1].occupants] == ["Bea Lund", "Alex Morgan"]
    assert chairs[1].shared and not chairs[0].shared
    (alert,) = [a for _chair, a in chair_alerts(chairs=chairs)]
    assert (alert.level, alert.what) == ("danger", "Two patients recorded in Chair 2")
    assert alert.action == "Move one to a free chair or close the record that is wrong."


def test_one_patient_in_each_chair_raises_no_chair_alert():
    alex = a_session(status=S.INFUSING, checked_in_at=NINE, infusion_started_at=NINE)
    later = a_session(session_id=2, patient_id=2, chair_id=1, status=S.SCHEDULED,
                      scheduled_start=NINE + minutes(60))  # fmt: skip
    chairs = chair_states(_board_of(alex, later), NINE + minutes(5))
    assert [len(c.occupants) for c in chairs] == [1, 0]
    assert chair_alerts(chairs=chairs) == []


def test_pre_infusion_vitals_are_due_after_the_patient_settles():
    checked_in = a_session(status=S.CHECKED_IN, checked_in_at=NINE)
    assert vitals_due_in(checked_in, SETTINGS, NINE + minutes(4)) == 6
    assert session_alerts(checked_in, SETTINGS, NINE + minutes(4), time_zone="UTC") == []
    overdue = session_alerts(checked_in, SETTINGS, NINE + minutes(12), time_zone="UTC")
    assert _whats(overdue) == "Vitals overdue by 2 min"


def test_low_oxygen_before_the_dose_alerts_even_with_a_normal_blood_pressure():
    checked_in = a_session(
        status=S.CHECKED_IN, checked_in_at=NINE,
        baseline=reading(NINE, VitalsPhase.BEFORE,
                         Vitals(systolic=120, diastolic=80, heart_rate=135, spo2=86)),
    )  # fmt: skip
    whats = _whats(session_alerts(checked_in, SETTINGS, NINE + minutes(1), time_zone="UTC"))
    assert "SpO2 86% below 92%" in whats
    assert "Heart rate 135 above 120" in whats


def test_item9_alert_is_for_before_the_dose_and_the_flag_stays():
    after = replace(INFUSING, phq9_total=18, phq9_item9=2)
    assert "PHQ-9" not in _whats(session_alerts(after, SETTINGS, NINE + minutes(30),
                                                time_zone="UTC"))  # fmt: skip
