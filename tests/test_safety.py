"""Issue 6, patient safety: each defect a hostile test found, as a test of the fixed behaviour.

Items 1–8 of the issue; item 9 (a ride's arrival taken back) is in tests/test_rides.py.
Every test here failed on the code before the visits layer and its gates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from ketadash.board import chair_states, load_board, view_board
from ketadash.clock import utc_now
from ketadash.db import read_session, write_session
from ketadash.lifecycle import (
    LifecycleError,
    StartHeld,
    StepNotAllowed,
    history_agrees,
    record_phq9,
    record_vitals,
    undo_last_step,
)
from ketadash.models import Instrument, OutcomeScore, Route, StatusChange, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.rules import dose_timer, recovery_timer, route_protocol
from ketadash.settings import ClinicSettings, set_site_setting
from ketadash.visits import load_visit
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.steps import current_version as _version
from tests.utils.steps import step_at as _step
from tests.utils.visits import a_visit

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York
CALM = Vitals(systolic=122, diastolic=78, heart_rate=72, spo2=98)
HIGH = Vitals(systolic=152, diastolic=95, heart_rate=80, spo2=98)
SETTINGS = ClinicSettings()
ZERO_WIDTH = "\u200b"


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


def _checks_done(url, clinic, session_id, at, vitals=CALM):
    """Checked in at ``at``, PHQ-9 and pre-infusion vitals a few minutes later."""
    _step(url, clinic, session_id, Step.CHECK_IN, at)
    record_phq9(url=url, session_id=session_id, staff_id=clinic.nurse_id, total=14, item9=0,
                now=at + minutes(3))  # fmt: skip
    record_vitals(url=url, session_id=session_id, staff_id=clinic.nurse_id, vitals=vitals,
                  now=at + minutes(5))  # fmt: skip


def _visit(url, session_id, now):
    with read_session(url) as db:
        return load_visit(db=db, session_id=session_id, now=now)


# --- 1. every dose against its plan; planned and given kept apart --------------------------


@pytest.mark.parametrize("given", [500, 1, 0.5, 28, 112])
def test_fixed_mg_esketamine_plan_refuses_a_dose_off_the_plan(db_url, clinic, given):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE,
                              route=Route.ESKETAMINE, dose_mg=84)  # fmt: skip
    _checks_done(db_url, clinic, session_id, NINE)
    with pytest.raises(StepNotAllowed, match=r"Check the dose|whole 28 mg devices"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=given)
    assert _visit(db_url, session_id, NINE + minutes(10)).status == S.CHECKED_IN


def test_given_dose_is_kept_apart_and_undo_restores_the_plan(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE,
                              route=Route.ESKETAMINE, dose_mg=84)  # fmt: skip
    _checks_done(db_url, clinic, session_id, NINE)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=84)
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert (row.dose_mg, row.given_dose_mg) == (84, 84)
    undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                   expected_version=_version(db_url, session_id),
                   reason="Pressed start too early", now=NINE + minutes(11))  # fmt: skip
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert (row.dose_mg, row.given_dose_mg, row.infusion_started_at) == (84, None, None)
        assert history_agrees(db=db, session_id=session_id)


# --- 2. each route its own phases and clocks -------------------------------------------------


def test_esketamine_is_devices_then_two_hours_from_the_first_device():
    visit = a_visit(route=Route.ESKETAMINE, dose_mg_per_kg=None, dose_mg=84,
                    status=S.INFUSING, checked_in_at=NINE,
                    infusion_started_at=NINE + minutes(10))  # fmt: skip
    protocol = route_protocol(visit, SETTINGS)
    assert (protocol.dose_label, protocol.dose_minutes) == ("Devices", 10)  # 3 devices, 5 min
    timer = dose_timer(visit, NINE + minutes(16), SETTINGS)
    assert timer.text == "Devices 6 / 10 min"
    # Observation runs from the first device, even while the devices are still given.
    observation = recovery_timer(visit, SETTINGS, NINE + minutes(16))
    assert observation.text == "Observation 6 / 120 min"
    assert "40" not in timer.text


def test_esketamine_ready_counts_from_the_first_device(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE,
                              route=Route.ESKETAMINE, dose_mg=56)  # fmt: skip
    _checks_done(db_url, clinic, session_id, NINE)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=56)
    _step(db_url, clinic, session_id, Step.END_INFUSION, NINE + minutes(16))
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(125))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="119 of the 120 minutes of observation"):
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(129),
              steady_on_feet=True)  # fmt: skip
    _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(130), steady_on_feet=True)


# --- 3. nothing in the future counts, or is accepted -----------------------------------------


def test_a_phq9_dated_in_the_future_is_refused(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    now = utc_now()
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=now)
    _step(db_url, clinic, session_id, Step.CHECK_IN, now)
    with pytest.raises(LifecycleError, match="cannot be dated in the future"):
        record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=10,
                    item9=0, now=now + timedelta(days=1))  # fmt: skip
    with pytest.raises(LifecycleError, match="cannot be dated in the future"):
        record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                      now=now + timedelta(hours=2))  # fmt: skip


def test_an_imported_future_phq9_neither_counts_nor_hides_todays_item9(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    with write_session(db_url) as db:
        db.add(OutcomeScore(patient_id=patient, instrument=Instrument.PHQ9, total=5, item9=0,
                            taken_at=NINE + timedelta(days=1)))  # fmt: skip
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    visit = _visit(db_url, session_id, NINE + minutes(2))
    assert visit.phq9_total is None  # tomorrow's score is not this visit's
    record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=24, item9=3,
                now=NINE + minutes(3))  # fmt: skip
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 11, 24),
                       now=NINE + minutes(4))  # fmt: skip
    (view,) = view_board(board, NINE + minutes(4))
    assert view.session.phq9_total == 24
    assert any("PHQ-9 item 9 answered 3" in a.what for a in view.alerts)


# --- 4. one patient, one chair; a second dose needs a lead ------------------------------------


def test_a_patient_cannot_be_under_way_in_two_chairs(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    first = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    second = make_session(url=db_url, clinic=clinic, patient_id=patient,
                          scheduled_start=NINE + minutes(30), chair_index=1)  # fmt: skip
    _checks_done(db_url, clinic, first, NINE)
    with pytest.raises(StepNotAllowed, match="already checked in in Chair 1"):
        _step(db_url, clinic, second, Step.CHECK_IN, NINE + minutes(20))


def test_a_second_dose_the_same_day_needs_new_checks_and_a_leads_reason(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    _checks_done(db_url, clinic, session_id, NINE)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=35,
          weight_kg=70)  # fmt: skip
    for at in (11, 12):  # take back the start, then the check-in
        undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                       expected_version=_version(db_url, session_id), reason="Wrong patient",
                       now=NINE + minutes(at))  # fmt: skip
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE + minutes(13))
    # The PHQ-9 and vitals from before this check-in no longer count.
    with pytest.raises(StepNotAllowed, match="Record a PHQ-9 and pre-infusion vitals"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(14), dose_mg=35,
              weight_kg=70)  # fmt: skip
    record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=14, item9=0,
                now=NINE + minutes(15))  # fmt: skip
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(16))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="second dose within 24 h needs a clinic lead"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(17), dose_mg=35,
              weight_kg=70, same_day_reason="first start was a mis-click")  # fmt: skip
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(18), dose_mg=35,
          weight_kg=70, staff_id=clinic.lead_id,
          same_day_reason="First start was a mis-click, no dose given")  # fmt: skip
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert row.same_day_dose_reason == "First start was a mis-click, no dose given"


# A second dose is counted over a rolling window before now, not the site's calendar day:
# New York in late November is UTC-5, so 21:05 there is 02:05 UTC the next day.
EVENING_2105 = datetime(2026, 11, 25, 2, 5, tzinfo=UTC)  # Tue 24 Nov, 21:05 in New York
AFTER_MIDNIGHT_0030 = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)  # Wed 25 Nov, 00:30


def _earlier_dose_started(url, clinic, patient, at):
    """A finished visit of ``patient`` whose dose was started at ``at``."""
    earlier = make_session(url=url, clinic=clinic, patient_id=patient, chair_index=1,
                           scheduled_start=at - minutes(5),
                           status=S.DISCHARGED)  # fmt: skip
    with write_session(url) as db:
        db.add(StatusChange(session_id=earlier, version=3, from_status=S.CHECKED_IN,
                            to_status=S.INFUSING, changed_at=at,
                            staff_id=clinic.nurse_id))  # fmt: skip


def test_a_dose_at_2105_and_another_at_0040_is_a_second_dose(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    _earlier_dose_started(db_url, clinic, patient, EVENING_2105)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient,
                              scheduled_start=AFTER_MIDNIGHT_0030)  # fmt: skip
    _checks_done(db_url, clinic, session_id, AFTER_MIDNIGHT_0030)
    at_0040 = AFTER_MIDNIGHT_0030 + minutes(10)
    assert _visit(db_url, session_id, at_0040).doses_started_recently == 1
    with pytest.raises(StepNotAllowed, match="second dose within 24 h needs a clinic lead"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, at_0040, dose_mg=35,
              weight_kg=70)  # fmt: skip


def test_a_start_at_2345_taken_back_and_restarted_at_0005_is_a_second_dose(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    at_2340 = datetime(2026, 11, 25, 4, 40, tzinfo=UTC)  # Tue 24 Nov, 23:40 in New York
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient,
                              scheduled_start=at_2340)  # fmt: skip
    _checks_done(db_url, clinic, session_id, at_2340)
    _step(db_url, clinic, session_id, Step.START_INFUSION, at_2340 + minutes(5), dose_mg=35,
          weight_kg=70)  # fmt: skip
    undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                   expected_version=_version(db_url, session_id), reason="Pump alarm",
                   now=at_2340 + minutes(6))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="second dose within 24 h needs a clinic lead"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, at_2340 + minutes(25),
              dose_mg=35, weight_kg=70)  # fmt: skip


def test_a_dose_longer_ago_than_the_window_is_not_a_second_dose(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    _earlier_dose_started(db_url, clinic, patient, AFTER_MIDNIGHT_0030 - timedelta(hours=25))
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient,
                              scheduled_start=AFTER_MIDNIGHT_0030)  # fmt: skip
    _checks_done(db_url, clinic, session_id, AFTER_MIDNIGHT_0030)
    assert _visit(db_url, session_id, AFTER_MIDNIGHT_0030 + minutes(10)).doses_started_recently == 0
    # A site that widens the window to 36 h counts it.
    with write_session(db_url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="second_dose_window_hours",
                         value="36", staff_id=clinic.lead_id,
                         now=AFTER_MIDNIGHT_0030)  # fmt: skip
    assert _visit(db_url, session_id, AFTER_MIDNIGHT_0030 + minutes(10)).doses_started_recently == 1


# --- 5. after midnight a visit under way keeps its alerts, clock and chair --------------------


def test_after_midnight_an_open_visit_keeps_alerts_clock_and_chair(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    evening = datetime(2026, 11, 25, 4, 40, tzinfo=UTC)  # 23:40 in New York on the 24th
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient,
                              scheduled_start=evening)  # fmt: skip
    _step(db_url, clinic, session_id, Step.CHECK_IN, evening + minutes(10))  # 23:50
    record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=14, item9=0,
                now=evening + minutes(16))  # 23:56  # fmt: skip
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=evening + minutes(18))  # fmt: skip
    # 00:01 on the 25th: the PHQ-9 from 23:56 counts, it was taken at this visit.
    _step(db_url, clinic, session_id, Step.START_INFUSION, evening + minutes(21), dose_mg=35,
          weight_kg=70)  # fmt: skip
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                  vitals=Vitals(systolic=185, diastolic=115, heart_rate=90, spo2=85),
                  now=evening + minutes(38))  # fmt: skip
    now = evening + minutes(40)  # 00:20
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 11, 25), now=now)
    (view,) = view_board(board, now)
    whats = " | ".join(a.what for a in view.alerts)
    assert "Left open from" in whats
    assert "SpO2 85% below 92%" in whats
    assert "185/115 at or above the alert limit" in whats
    assert view.vitals_due_in is not None
    assert not chair_states(board, now)[0].free


# --- 6. a weight far from the last needs a deliberate confirmation ---------------------------


def test_a_weight_far_from_the_last_needs_confirmation(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    earlier = make_session(
        url=db_url, clinic=clinic, patient_id=patient,
        scheduled_start=NINE - timedelta(days=7), status=S.DISCHARGED,
    )  # fmt: skip
    with write_session(db_url) as db:
        db.get(TreatmentSession, earlier).weight_kg = 70
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    _checks_done(db_url, clinic, session_id, NINE)
    with pytest.raises(StepNotAllowed, match="160 kg is 129% from the last recorded 70 kg"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=80,
              weight_kg=160)  # fmt: skip
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(11), dose_mg=80,
          weight_kg=160, weight_confirmed=True)  # fmt: skip
    with read_session(db_url) as db:
        last = db.exec(select(StatusChange).order_by(StatusChange.id.desc())).first()
    assert "weight 160 kg confirmed (129% from 70 kg)" in last.reason
    assert _visit(db_url, session_id, NINE + minutes(12)).previous_weight_kg == 70


# --- 7. a reason needs real words -------------------------------------------------------------


def test_invisible_reasons_are_refused_for_override_cancel_and_undo(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    _checks_done(db_url, clinic, session_id, NINE, vitals=HIGH)
    with pytest.raises(StartHeld):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=35,
              weight_kg=70, hold_override_reason=ZERO_WIDTH)  # fmt: skip
    with pytest.raises(LifecycleError, match="needs a reason in words"):
        _step(db_url, clinic, session_id, Step.CANCEL, NINE + minutes(10),
              reason=f"{ZERO_WIDTH} {ZERO_WIDTH}")  # fmt: skip
    with pytest.raises(LifecycleError, match="Say why"):
        undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                       expected_version=_version(db_url, session_id), reason="\u202e\u200b.",
                       now=NINE + minutes(10))  # fmt: skip
    assert _visit(db_url, session_id, NINE + minutes(10)).status == S.CHECKED_IN


# --- 8. ready needs a recent recovery reading ------------------------------------------------


def _in_recovery(url, clinic, *, vitals_at: int) -> int:
    """An IV dose from 09:10 to 09:50, one set of recovery vitals at ``vitals_at`` minutes."""
    patient = make_patient(url=url, site_id=clinic.site_id)
    session_id = make_session(url=url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    _checks_done(url, clinic, session_id, NINE)
    _step(url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), dose_mg=35,
          weight_kg=70)  # fmt: skip
    _step(url, clinic, session_id, Step.END_INFUSION, NINE + minutes(50))
    record_vitals(url=url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(vitals_at))  # fmt: skip
    return session_id


def test_ready_refused_on_a_three_hour_old_recovery_reading(db_url, clinic):
    session_id = _in_recovery(db_url, clinic, vitals_at=60)
    later = NINE + minutes(240)
    with pytest.raises(StepNotAllowed, match="Record a set of recovery vitals now"):
        _step(db_url, clinic, session_id, Step.MARK_READY, later, steady_on_feet=True)
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=later)  # fmt: skip
    _step(db_url, clinic, session_id, Step.MARK_READY, later + minutes(1), steady_on_feet=True)


def test_ready_needs_the_nurse_to_confirm_steady_on_feet(db_url, clinic):
    session_id = _in_recovery(db_url, clinic, vitals_at=85)
    with pytest.raises(StepNotAllowed, match="steady on their feet"):
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(90))
    _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(90), steady_on_feet=True)


# --- what is recorded after "ready" holds the discharge -----------------------------------------

ALARMING = Vitals(systolic=200, diastolic=120, heart_rate=130, spo2=85)


def _ready_with_escort_here(url, clinic):
    from ketadash.rides import arrange_ride

    session_id = _in_recovery(url, clinic, vitals_at=85)
    _step(url, clinic, session_id, Step.MARK_READY, NINE + minutes(90), steady_on_feet=True)
    arrange_ride(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo", arrived=True,
                 now=NINE + minutes(92))  # fmt: skip
    return session_id


def _discharge_gate_now(url, session_id, now):
    from ketadash.gates import discharge_gate

    return discharge_gate(visit=_visit(url, session_id, now), settings=SETTINGS)


def test_discharge_refused_after_danger_vitals_and_a_severe_side_effect_since_ready(db_url, clinic):
    """Ready, then 200/120, HR 130, SpO2 85 and severe nausea while still ready: the escort
    has arrived, yet the patient may not go until a nurse clears it; the gate shows why
    and the discharge refuses with the same words."""
    from ketadash.gates import as_sentences
    from ketadash.lifecycle import record_side_effects
    from ketadash.models import Severity, SideEffect

    session_id = _ready_with_escort_here(db_url, clinic)
    nurse = clinic.nurse_id
    record_vitals(url=db_url, session_id=session_id, staff_id=nurse, vitals=ALARMING,
                  now=NINE + minutes(94))  # fmt: skip
    record_side_effects(url=db_url, session_id=session_id, staff_id=nurse,
                        effects={SideEffect.NAUSEA: Severity.SEVERE},
                        now=NINE + minutes(94))  # fmt: skip
    gate = _discharge_gate_now(db_url, session_id, NINE + minutes(95))
    assert not gate.allowed
    shown = as_sentences(gate.reasons)
    assert "BP 200/120" in shown and "SpO2 85%" in shown and "nausea (severe)" in shown
    with pytest.raises(StepNotAllowed) as refused:
        _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(95))
    assert shown in str(refused.value)
    assert _visit(db_url, session_id, NINE + minutes(95)).status == S.READY
    # The nurse clears it: a newer calm reading, and the nausea recorded again as mild.
    record_vitals(url=db_url, session_id=session_id, staff_id=nurse, vitals=CALM,
                  now=NINE + minutes(110))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="nausea"):
        _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(111))
    record_side_effects(url=db_url, session_id=session_id, staff_id=nurse,
                        effects={SideEffect.NAUSEA: Severity.MILD},
                        now=NINE + minutes(111))  # fmt: skip
    assert _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(112)).to_status == (
        S.DISCHARGED
    )


def test_taking_the_patient_back_to_recovery_clears_the_hold_once_ready_again(db_url, clinic):
    session_id = _ready_with_escort_here(db_url, clinic)
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=ALARMING,
                  now=NINE + minutes(94))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="BP 200/120"):
        _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(95))
    undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                   expected_version=_version(db_url, session_id),
                   reason="BP up again, back to recovery", now=NINE + minutes(96))  # fmt: skip
    # Back in recovery the ready gate sees the danger too, until a calm reading.
    with pytest.raises(StepNotAllowed, match="BP 200/120"):
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(97),
              steady_on_feet=True)  # fmt: skip
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(115))  # fmt: skip
    _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(116), steady_on_feet=True)
    assert _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(117)).to_status == (
        S.DISCHARGED
    )


# --- one chair, one patient -----------------------------------------------------------------


def test_check_in_and_start_refused_into_a_chair_another_patient_occupies(db_url, clinic):
    first = make_session(url=db_url, clinic=clinic, scheduled_start=NINE,
                         patient_id=make_patient(url=db_url, site_id=clinic.site_id))  # fmt: skip
    second = make_session(url=db_url, clinic=clinic, scheduled_start=NINE + minutes(60),
                          patient_id=make_patient(url=db_url, mrn="MRN-2",
                                                  site_id=clinic.site_id))  # fmt: skip
    _checks_done(db_url, clinic, first, NINE)
    with pytest.raises(StepNotAllowed, match="Chair 1 is occupied") as refused:
        _step(db_url, clinic, second, Step.CHECK_IN, NINE + minutes(10))
    from ketadash.gates import as_sentences, check_in_gate

    shown = check_in_gate(visit=_visit(db_url, second, NINE + minutes(10)))
    assert as_sentences(shown.reasons) in str(refused.value)
    _step(db_url, clinic, first, Step.START_INFUSION, NINE + minutes(15), dose_mg=35,
          weight_kg=70)  # fmt: skip
    # A visit checked in before this rule (or by an import) may not start either while the
    # chair's first patient is in it.
    with write_session(db_url) as db:
        row = db.get(TreatmentSession, second)
        row.status, row.checked_in_at = S.CHECKED_IN, NINE + minutes(20)
    record_phq9(url=db_url, session_id=second, staff_id=clinic.nurse_id, total=14, item9=0,
                now=NINE + minutes(21))  # fmt: skip
    record_vitals(url=db_url, session_id=second, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(22))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="Chair 1 is occupied: another patient is receiving"):
        _step(db_url, clinic, second, Step.START_INFUSION, NINE + minutes(25), dose_mg=35,
              weight_kg=70)  # fmt: skip
