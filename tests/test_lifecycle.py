"""The session lifecycle: every legal and illegal step, the safety rules, concurrent stations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from ketadash.db import read_session, write_session
from ketadash.lifecycle import (
    LifecycleError,
    ScoreRejected,
    SessionChanged,
    StartHeld,
    StepNotAllowed,
    check_transition,
    history_agrees,
    record_phq9,
    record_side_effects,
    record_vitals,
    take_step,
    undo_last_step,
)
from ketadash.models import (
    OutcomeScore,
    Route,
    Severity,
    SideEffect,
    SiteSetting,
    StatusChange,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.rides import arrange_ride
from ketadash.vitals import Vitals, VitalsRejected
from ketadash.vocabulary import TRANSITIONS, Step, allowed_steps
from tests.utils.factories import make_clinic, make_patient, make_session, minutes

# 09:00 in New York on a winter weekday.
NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
CALM = Vitals(systolic=122, diastolic=78, heart_rate=72, spo2=98)
HIGH = Vitals(systolic=152, diastolic=95, heart_rate=80, spo2=98)

EVERY_STATUS = list(S)
EXPECTED_MACHINE = {
    S.SCHEDULED: {Step.CHECK_IN: S.CHECKED_IN, Step.CANCEL: S.CANCELLED, Step.NO_SHOW: S.NO_SHOW},
    S.CHECKED_IN: {Step.START_INFUSION: S.INFUSING, Step.CANCEL: S.CANCELLED},
    S.INFUSING: {Step.END_INFUSION: S.RECOVERY},
    S.RECOVERY: {Step.MARK_READY: S.READY},
    S.READY: {Step.DISCHARGE: S.DISCHARGED},
    S.DISCHARGED: {},
    S.CANCELLED: {},
    S.NO_SHOW: {},
}


# --- the state machine, without a database ----------------------------------------------


@pytest.mark.parametrize("status", EVERY_STATUS)
@pytest.mark.parametrize("step", list(Step))
def test_every_step_from_every_status(status, step):
    legal = EXPECTED_MACHINE[status]
    if step in legal:
        assert check_transition(step, status).target == legal[step]
    else:
        with pytest.raises(StepNotAllowed) as refused:
            check_transition(step, status)
        assert "Cannot" in str(refused.value)
        assert "Possible now" in str(refused.value)


def test_allowed_steps_follow_the_lifecycle_order():
    assert allowed_steps(S.SCHEDULED) == [Step.CHECK_IN, Step.CANCEL, Step.NO_SHOW]
    assert allowed_steps(S.DISCHARGED) == []
    assert set(TRANSITIONS) == set(Step)


def test_refusal_reads_like_a_nurse_would_say_it():
    with pytest.raises(StepNotAllowed, match="Cannot start dose: the patient is in recovery"):
        check_transition(Step.START_INFUSION, S.RECOVERY)


# --- against the database -----------------------------------------------------------------


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


@pytest.fixture
def session_id(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    return make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)


def _state(url, session_id):
    with read_session(url) as db:
        row = db.get(TreatmentSession, session_id)
        return S(row.status), row.version


def _history(url, session_id):
    with read_session(url) as db:
        return db.exec(
            select(StatusChange)
            .where(StatusChange.session_id == session_id)
            .order_by(StatusChange.version)
        ).all()


def _step(url, clinic, session_id, step, at, **extra):
    if step == Step.START_INFUSION:
        extra = {"dose_mg": 35, "weight_kg": 70, **extra}
    if step == Step.MARK_READY:
        extra = {"steady_on_feet": True, **extra}
    _, version = _state(url, session_id)
    return take_step(
        url=url,
        session_id=session_id,
        step=step,
        staff_id=clinic.nurse_id,
        expected_version=version,
        now=at,
        **extra,
    )


def _vitals(url, clinic, session_id, at, vitals=CALM):
    return record_vitals(
        url=url, session_id=session_id, staff_id=clinic.nurse_id, vitals=vitals, now=at
    )


def _ready_to_start(url, clinic, session_id, vitals=CALM):
    _step(url, clinic, session_id, Step.CHECK_IN, NINE)
    record_phq9(
        url=url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        total=14,
        item9=0,
        now=NINE + minutes(3),
    )
    _vitals(url, clinic, session_id, NINE + minutes(5), vitals)


def _into_recovery(url, clinic, session_id):
    """Checks done, dose from 09:15 to 09:55: the patient is in recovery."""
    _ready_to_start(url, clinic, session_id)
    _step(url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))
    _step(url, clinic, session_id, Step.END_INFUSION, NINE + minutes(55))


def _whole_visit(url, clinic, session_id):
    _ready_to_start(url, clinic, session_id)
    _step(url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))
    _vitals(
        url,
        clinic,
        session_id,
        NINE + minutes(35),
        Vitals(systolic=138, diastolic=88, heart_rate=80, spo2=97),
    )
    _step(url, clinic, session_id, Step.END_INFUSION, NINE + minutes(55))
    _vitals(url, clinic, session_id, NINE + minutes(80), CALM)
    _step(url, clinic, session_id, Step.MARK_READY, NINE + minutes(90))
    arrange_ride(
        url=url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        expected_ride_version=None,
        driver_name="Jo Morgan",
        relationship="partner",
        arrived=True,
        now=NINE + minutes(95),
    )
    _step(url, clinic, session_id, Step.DISCHARGE, NINE + minutes(96))


def test_a_whole_visit_is_recorded_step_by_step(db_url, clinic, session_id):
    _whole_visit(db_url, clinic, session_id)
    status, version = _state(db_url, session_id)
    assert status == S.DISCHARGED
    history = _history(db_url, session_id)
    assert [h.to_status for h in history] == [
        S.CHECKED_IN,
        S.INFUSING,
        S.RECOVERY,
        S.READY,
        S.DISCHARGED,
    ]
    assert all(h.staff_id == clinic.nurse_id for h in history)
    assert version == 6
    with read_session(db_url) as db:
        assert history_agrees(db=db, session_id=session_id)
        row = db.get(TreatmentSession, session_id)
        assert (row.given_dose_mg, row.dose_mg) == (35, None)
        assert row.infusion_started_at == NINE + minutes(15)
        assert row.discharged_at == NINE + minutes(96)
        phases = db.exec(select(VitalsReading.phase).where(VitalsReading.session_id == session_id))
        assert [VitalsPhase(p) for p in phases] == ["before", "during", "after"]


def test_start_refused_without_phq9_and_pre_infusion_vitals(db_url, clinic, session_id):
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    with pytest.raises(StepNotAllowed, match="Record a PHQ-9 and pre-infusion vitals"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10))
    record_phq9(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        total=12,
        item9=0,
        now=NINE + minutes(11),
    )
    with pytest.raises(StepNotAllowed, match="pre-infusion vitals"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(12))
    assert _state(db_url, session_id) == (S.CHECKED_IN, 2)


def test_start_refused_with_yesterdays_phq9(db_url, clinic, session_id):
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    record_phq9(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        total=12,
        item9=0,
        now=NINE - minutes(24 * 60),
    )
    _vitals(db_url, clinic, session_id, NINE + minutes(5), CALM)
    with pytest.raises(StepNotAllowed, match="PHQ-9"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10))


def test_start_held_above_blood_pressure_limit_unless_overridden(db_url, clinic, session_id):
    _ready_to_start(db_url, clinic, session_id, vitals=HIGH)
    with pytest.raises(StartHeld, match="blood pressure 152/95 is above the hold limit 140/90"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))
    assert _state(db_url, session_id) == (S.CHECKED_IN, 2)
    result = _step(
        db_url,
        clinic,
        session_id,
        Step.START_INFUSION,
        NINE + minutes(20),
        hold_override_reason="Dr Patel approved: white-coat, 150s at baseline",
    )
    assert result.to_status == S.INFUSING
    with read_session(db_url) as db:
        assert db.get(TreatmentSession, session_id).hold_override_reason.startswith("Dr Patel")
    assert "BP hold overridden" in _history(db_url, session_id)[-1].reason


def test_hold_limit_is_the_sites_setting(db_url, clinic, session_id):
    with write_session(db_url) as db:
        db.add(
            SiteSetting(site_id=clinic.site_id, name="hold_systolic", value="160", updated_at=NINE)
        )
        db.add(
            SiteSetting(site_id=clinic.site_id, name="hold_diastolic", value="100", updated_at=NINE)
        )
    _ready_to_start(db_url, clinic, session_id, vitals=HIGH)
    assert (
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15)).to_status
        == S.INFUSING
    )


@pytest.mark.parametrize(
    ("vitals", "message"),
    [
        (Vitals(systolic=1200, diastolic=80, heart_rate=70, spo2=98), "Systolic 1200"),
        (Vitals(systolic=40, diastolic=30, heart_rate=70, spo2=98), "Systolic 40"),
        (Vitals(systolic=120, diastolic=80, heart_rate=70, spo2=101), "SpO2 101"),
        (Vitals(systolic=120, diastolic=80, heart_rate=7, spo2=98), "Heart rate 7"),
        (Vitals(systolic=80, diastolic=120, heart_rate=70, spo2=98), "diastolic must be lower"),
    ],
)
def test_impossible_vitals_are_refused_and_nothing_stored(
    db_url, clinic, session_id, vitals, message
):
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    with pytest.raises(VitalsRejected, match=message):
        record_vitals(
            url=db_url,
            session_id=session_id,
            staff_id=clinic.nurse_id,
            vitals=vitals,
            now=NINE + minutes(1),
        )
    with read_session(db_url) as db:
        assert db.exec(select(func.count(VitalsReading.id))).one() == 0


def test_vitals_outside_thresholds_are_stored_and_alert(db_url, clinic, session_id):
    _ready_to_start(db_url, clinic, session_id)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))
    recorded = record_vitals(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        vitals=Vitals(systolic=186, diastolic=112, heart_rate=88, spo2=90),
        now=NINE + minutes(45),
    )
    assert recorded.phase == VitalsPhase.DURING
    whats = " | ".join(a.what for a in recorded.alerts)
    assert "186/112 at or above the alert limit 180/110" in whats
    assert "SpO2 90% below 92%" in whats
    assert all(a.action for a in recorded.alerts)
    with read_session(db_url) as db:
        assert db.exec(select(func.count(VitalsReading.id))).one() == 2


def test_vitals_refused_before_check_in(db_url, clinic, session_id):
    with pytest.raises(StepNotAllowed, match="Check them in first"):
        record_vitals(
            url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM, now=NINE
        )


def test_phq9_item9_is_flagged_and_impossible_scores_refused(db_url, clinic, session_id):
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    flagged = record_phq9(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        total=19,
        item9=1,
        now=NINE + minutes(2),
    )
    assert flagged.item9_flagged
    with pytest.raises(ScoreRejected, match="0–27"):
        record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=31, item9=0)


def test_ready_refused_before_minimum_recovery_for_the_route(db_url, clinic):
    patient = make_patient(url=db_url, mrn="MRN-ESK", site_id=clinic.site_id)
    session_id = make_session(
        url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE, route=Route.ESKETAMINE
    )
    _ready_to_start(db_url, clinic, session_id)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15), dose_mg=56)
    _step(db_url, clinic, session_id, Step.END_INFUSION, NINE + minutes(20))
    _vitals(db_url, clinic, session_id, NINE + minutes(60), CALM)
    # 45 minutes would do for IV; esketamine needs 120, counted from the first device.
    with pytest.raises(StepNotAllowed, match="45 of the 120 minutes"):
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(60))
    _vitals(db_url, clinic, session_id, NINE + minutes(134), CALM)
    assert (
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(135)).to_status == S.READY
    )


def test_ready_refused_until_vitals_back_to_baseline(db_url, clinic, session_id):
    _into_recovery(db_url, clinic, session_id)
    _vitals(
        db_url,
        clinic,
        session_id,
        NINE + minutes(85),
        Vitals(systolic=160, diastolic=90, heart_rate=75, spo2=98),
    )
    with pytest.raises(StepNotAllowed, match="Systolic 160 is 31% from its pre-infusion 122"):
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(90))


def test_discharge_refused_without_ride(db_url, clinic, session_id):
    _into_recovery(db_url, clinic, session_id)
    _vitals(db_url, clinic, session_id, NINE + minutes(80), CALM)
    _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(90))
    with pytest.raises(StepNotAllowed, match="No adult has been recorded as arrived"):
        _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(91))
    arrange_ride(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        expected_ride_version=None,
        driver_name="Jo",
        now=NINE + minutes(92),
    )
    with pytest.raises(StepNotAllowed, match="arrived"):
        _step(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(93))


def test_cancel_and_no_show_need_a_reason(db_url, clinic, session_id):
    with pytest.raises(LifecycleError, match="needs a reason"):
        _step(db_url, clinic, session_id, Step.NO_SHOW, NINE + minutes(30), reason="  ")
    _step(db_url, clinic, session_id, Step.NO_SHOW, NINE + minutes(30), reason="No answer by phone")
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert (row.status, row.close_reason) == (S.NO_SHOW, "No answer by phone")


def test_undo_takes_back_the_last_step_and_records_it(db_url, clinic, session_id):
    _ready_to_start(db_url, clinic, session_id)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))
    _, version = _state(db_url, session_id)
    result = undo_last_step(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.other_nurse_id,
        expected_version=version,
        reason="Pressed start on the wrong chair",
        now=NINE + minutes(16),
    )
    assert result.to_status == S.CHECKED_IN
    last = _history(db_url, session_id)[-1]
    assert (last.from_status, last.to_status, last.is_correction) == (
        S.INFUSING,
        S.CHECKED_IN,
        True,
    )
    assert last.staff_id == clinic.other_nurse_id
    with read_session(db_url) as db:
        assert db.get(TreatmentSession, session_id).infusion_started_at is None
        assert history_agrees(db=db, session_id=session_id)


def test_undo_of_a_no_show_returns_to_expected(db_url, clinic, session_id):
    _step(db_url, clinic, session_id, Step.NO_SHOW, NINE + minutes(30), reason="Not arrived")
    _, version = _state(db_url, session_id)
    undo_last_step(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        expected_version=version,
        reason="Arrived late, traffic",
    )
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert (row.status, row.closed_at, row.close_reason) == (S.SCHEDULED, None, None)


def test_undo_needs_a_reason_and_something_to_undo(db_url, clinic, session_id):
    with pytest.raises(LifecycleError, match="Say why"):
        undo_last_step(
            url=db_url,
            session_id=session_id,
            staff_id=clinic.nurse_id,
            expected_version=1,
            reason="",
        )
    with pytest.raises(StepNotAllowed, match="Nothing to take back"):
        undo_last_step(
            url=db_url,
            session_id=session_id,
            staff_id=clinic.nurse_id,
            expected_version=1,
            reason="oops",
        )


def test_a_stale_version_is_told_the_new_state_and_writes_nothing(db_url, clinic, session_id):
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    with pytest.raises(
        SessionChanged, match=r"Dana Reyes changed this session .* now checked in"
    ) as changed:
        take_step(
            url=db_url,
            session_id=session_id,
            step=Step.NO_SHOW,
            reason="late",
            staff_id=clinic.other_nurse_id,
            expected_version=1,
            now=NINE + minutes(1),
        )
    assert (changed.value.status, changed.value.version) == (S.CHECKED_IN, 2)
    assert len(_history(db_url, session_id)) == 1


def test_steps_need_a_known_staff_member(db_url, clinic, session_id):
    with pytest.raises(LifecycleError, match="Sign in first"):
        take_step(
            url=db_url, session_id=session_id, step=Step.CHECK_IN, staff_id=9999, expected_version=1
        )


def test_side_effects_are_recorded_with_severity(db_url, clinic, session_id):
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    stored = record_side_effects(
        url=db_url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        effects={SideEffect.DISSOCIATION: Severity.MODERATE, SideEffect.NAUSEA: Severity.MILD},
    )
    assert stored == 2


def _sessions_to_race(url, clinic, *, count: int) -> list[int]:
    # One patient each (a patient has at most one visit under way, issue 6) and one chair
    # each (a chair has at most one patient under way): the clinic gets a chair per session.
    from dataclasses import replace

    from ketadash.models import Chair

    with write_session(url) as db:
        extra = [Chair(site_id=clinic.site_id, name=f"Race chair {n}", position=100 + n)
                 for n in range(len(clinic.chair_ids), count)]  # fmt: skip
        db.add_all(extra)
        db.flush()
        chairs = [*clinic.chair_ids, *(chair.id for chair in extra)]
    clinic = replace(clinic, chair_ids=chairs)
    return [
        make_session(url=url, clinic=clinic,
                     patient_id=make_patient(url=url, mrn=f"RACE-{n}", site_id=clinic.site_id),
                     scheduled_start=NINE + minutes(130 * n), chair_index=n)
        for n in range(count)
    ]  # fmt: skip


def _race(session_ids: list[int], stations) -> list[str]:
    """Release every station at once on each session, in threads with their own connections.

    Returns, per attempt, "done" or "told" (SessionChanged, which RideChanged is).
    """
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(act, session_id, barrier):
        barrier.wait()
        try:
            act(session_id)
            outcome = "done"
        except SessionChanged:
            outcome = "told"
        with lock:
            outcomes.append(outcome)

    for session_id in session_ids:
        barrier = threading.Barrier(len(stations))
        threads = [
            threading.Thread(target=attempt, args=(act, session_id, barrier)) for act in stations
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize(
    "first_step,second_step",
    [(Step.CHECK_IN, Step.CHECK_IN), (Step.CHECK_IN, Step.NO_SHOW)],
)
def test_two_stations_at_once_one_wins_and_history_has_one_row(
    db_url, clinic, first_step, second_step
):
    """Two real writers (threads with their own connections) released together, many times."""
    sessions = _sessions_to_race(db_url, clinic, count=12)

    def station(step, staff_id):
        def act(session_id):
            take_step(url=db_url, session_id=session_id, step=step, staff_id=staff_id,
                      expected_version=1, reason="not here", now=NINE)  # fmt: skip

        return act

    outcomes = _race(
        sessions,
        [station(first_step, clinic.nurse_id), station(second_step, clinic.other_nurse_id)],
    )
    assert outcomes.count("done") == len(sessions)
    assert outcomes.count("told") == len(sessions)
    with read_session(db_url) as db:
        for session_id in sessions:
            assert history_agrees(db=db, session_id=session_id)
            count = db.exec(
                select(func.count(StatusChange.id)).where(StatusChange.session_id == session_id)
            ).one()
            assert count == 1


def test_a_database_that_is_down_gets_a_plain_message():
    from ketadash.db import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match="cannot be reached"):
        take_step(
            url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
            session_id=1,
            step=Step.CHECK_IN,
            staff_id=1,
            expected_version=1,
        )


def test_an_outage_half_way_through_a_step_leaves_nothing_half_written(
    db_url, clinic, session_id, monkeypatch
):
    """The session row is updated first; if the history row then fails, both roll back."""
    import sqlalchemy.exc

    from ketadash import lifecycle
    from ketadash.db import DatabaseUnavailable

    def connection_lost(**_fields):
        raise sqlalchemy.exc.OperationalError("INSERT INTO status_change", {}, Exception("gone"))

    monkeypatch.setattr(lifecycle, "StatusChange", connection_lost)
    with pytest.raises(DatabaseUnavailable):
        _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    assert _state(db_url, session_id) == (S.SCHEDULED, 1)
    assert _history(db_url, session_id) == []


# --- the dose, who may give it, and the ride ----------------------------------------------


def test_start_refused_without_the_dose_given(db_url, clinic, session_id):
    _ready_to_start(db_url, clinic, session_id)
    with pytest.raises(StepNotAllowed, match="Enter the dose given"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15), dose_mg=None)


def test_start_refused_when_the_dose_does_not_match_the_plan(db_url, clinic, session_id):
    _ready_to_start(db_url, clinic, session_id)
    # A tenfold slip: 350 mg for 0.5 mg/kg at 70 kg (35 mg).
    with pytest.raises(StepNotAllowed, match=r"350 mg is 5.00 mg/kg at 70 kg.*35.0 mg, ±10%"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15), dose_mg=350)
    with pytest.raises(StepNotAllowed, match="Enter today's weight"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15),
              weight_kg=None)  # fmt: skip
    assert _state(db_url, session_id) == (S.CHECKED_IN, 2)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15), dose_mg=37)
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert (row.given_dose_mg, row.dose_mg, row.weight_kg) == (37, None, 70)


def test_low_oxygen_before_the_dose_holds_it(db_url, clinic, session_id):
    low = Vitals(systolic=120, diastolic=78, heart_rate=72, spo2=89)
    _ready_to_start(db_url, clinic, session_id, vitals=low)
    with pytest.raises(StartHeld, match="SpO2 89% is below 92%"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))


def test_a_start_works_out_its_checklist_once(db_url, clinic, session_id, monkeypatch):
    """One start, one checklist: the holds it finds are enforced by one check."""
    import ketadash.gates
    import ketadash.lifecycle

    calls = []
    real = ketadash.gates.start_checklist

    def counted(**arguments):
        calls.append(arguments)
        return real(**arguments)

    monkeypatch.setattr(ketadash.gates, "start_checklist", counted)
    monkeypatch.setattr(ketadash.lifecycle, "start_checklist", counted, raising=False)
    _ready_to_start(db_url, clinic, session_id, vitals=HIGH)
    with pytest.raises(StartHeld):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15))
    assert len(calls) == 1
    calls.clear()
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(16),
          hold_override_reason="Dr Patel approved: white-coat")  # fmt: skip
    assert len(calls) == 1


def test_an_overridden_oxygen_hold_is_named_in_the_history(db_url, clinic, session_id):
    """The history says what was held and overridden, not "BP" for a low SpO2."""
    low = Vitals(systolic=120, diastolic=78, heart_rate=72, spo2=89)
    _ready_to_start(db_url, clinic, session_id, vitals=low)
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15),
          hold_override_reason="Dr Patel approved: 90% is her baseline")  # fmt: skip
    note = _history(db_url, session_id)[-1].reason
    assert "Pre-infusion SpO2 hold overridden (SpO2 89% is below 92%): Dr Patel approved" in note
    assert "BP" not in note


def test_ready_refused_while_recovery_vitals_are_dangerous(db_url, clinic, session_id):
    _into_recovery(db_url, clinic, session_id)
    _vitals(db_url, clinic, session_id, NINE + minutes(85),
            Vitals(systolic=124, diastolic=80, heart_rate=72, spo2=85))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="SpO2 85% below 92%"):
        _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(90))


def test_front_desk_checks_in_but_cannot_start_the_dose(db_url, clinic, session_id):
    from ketadash.models import Staff, StaffRole

    with write_session(db_url) as db:
        desk = Staff(name="Rita Desk", role=StaffRole.FRONT_DESK, site_id=clinic.site_id)
        db.add(desk)
        db.flush()
        desk_id = desk.id
    take_step(url=db_url, session_id=session_id, step=Step.CHECK_IN, staff_id=desk_id,
              expected_version=1, now=NINE)  # fmt: skip
    record_phq9(url=db_url, session_id=session_id, staff_id=desk_id, total=10, item9=0, now=NINE)
    with pytest.raises(StepNotAllowed, match="only a nurse or a clinic lead"):
        record_vitals(url=db_url, session_id=session_id, staff_id=desk_id, vitals=CALM, now=NINE)
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(1))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="Rita Desk is front desk"):
        take_step(url=db_url, session_id=session_id, step=Step.START_INFUSION, staff_id=desk_id,
                  expected_version=2, dose_mg=35, weight_kg=70, now=NINE + minutes(5))  # fmt: skip


def test_a_ride_changed_at_another_station_is_not_overwritten(db_url, clinic, session_id):
    from ketadash.lifecycle import RideChanged

    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    first = arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                         expected_ride_version=None, driver_name="Jo Morgan")  # fmt: skip
    assert first.version == 1
    second = arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.other_nurse_id,
                          expected_ride_version=1, driver_name="Jo Morgan",
                          arrived=True).version  # fmt: skip
    assert second == 2
    with pytest.raises(RideChanged, match="changed this patient's ride"):
        arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                     expected_ride_version=1, driver_name="Sam Morgan")  # fmt: skip


def test_two_stations_adding_the_first_ride_at_once(db_url, clinic):
    """Both saw no ride; one is stored, the other is told. No traceback on either database."""
    from ketadash.models import Ride

    sessions = _sessions_to_race(db_url, clinic, count=8)

    def station(driver):
        def act(session_id):
            arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                         expected_ride_version=None, driver_name=driver)  # fmt: skip

        return act

    outcomes = _race(sessions, [station("Jo Morgan"), station("Sam Morgan")])
    assert outcomes.count("done") == len(sessions)
    assert outcomes.count("told") == len(sessions)
    with read_session(db_url) as db:
        assert db.exec(select(func.count(Ride.id))).one() == len(sessions)


def test_someone_taken_off_the_roster_cannot_change_a_session(db_url):
    from ketadash.clock import utc_now
    from ketadash.models import Staff as StaffRow

    ids = make_clinic(url=db_url)
    patient = make_patient(url=db_url, site_id=ids.site_id)
    session_id = make_session(url=db_url, clinic=ids, patient_id=patient,
                              scheduled_start=utc_now())  # fmt: skip
    with write_session(db_url) as db:
        db.get(StaffRow, ids.nurse_id).active = False
    with pytest.raises(LifecycleError, match="no longer on this clinic's staff list"):
        take_step(url=db_url, session_id=session_id, step=Step.CHECK_IN,
                  staff_id=ids.nurse_id, expected_version=1)  # fmt: skip


def test_the_ready_step_records_the_nurses_steady_on_feet_confirmation(db_url, clinic, session_id):
    _into_recovery(db_url, clinic, session_id)
    _vitals(db_url, clinic, session_id, NINE + minutes(80), CALM)
    _step(db_url, clinic, session_id, Step.MARK_READY, NINE + minutes(90))
    ready = _history(db_url, session_id)[-1]
    assert ready.to_status == S.READY
    assert ready.reason == "Steady on feet and oriented: confirmed by Dana Reyes"


def test_two_bookings_of_one_patient_checked_in_at_once_leave_one_under_way(
    db_url, clinic, monkeypatch
):
    """Two stations check in the patient's two bookings of the day; the first pauses after
    reading the patient's other visits, the second tries meanwhile: one is refused."""
    import ketadash.lifecycle
    from tests.utils.interleave import interleave

    patient = make_patient(url=db_url, site_id=clinic.site_id)
    morning = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    later = make_session(url=db_url, clinic=clinic, patient_id=patient,
                         scheduled_start=NINE + minutes(30), chair_index=1)  # fmt: skip

    def check_in(session_id, staff_id):
        return lambda: take_step(url=db_url, session_id=session_id, step=Step.CHECK_IN,
                                 staff_id=staff_id, expected_version=1, now=NINE)  # fmt: skip

    first, second = interleave(
        monkeypatch=monkeypatch,
        pause_in=(ketadash.lifecycle, "check_in_gate"),
        first=check_in(morning, clinic.nurse_id),
        second=check_in(later, clinic.other_nurse_id),
    )
    assert first.accepted
    assert isinstance(second.error, StepNotAllowed), second.error
    assert "already checked in in Chair 1" in str(second.error)
    with read_session(db_url) as db:
        checked_in = db.exec(
            select(func.count(TreatmentSession.id)).where(
                TreatmentSession.patient_id == patient, TreatmentSession.status == S.CHECKED_IN
            )
        ).one()
    assert checked_in == 1


def test_two_patients_checked_in_to_one_chair_at_once_get_one_chair(db_url, clinic, monkeypatch):
    import ketadash.lifecycle
    from tests.utils.interleave import interleave

    first, second = (
        make_session(url=db_url, clinic=clinic, scheduled_start=NINE + minutes(n),
                     patient_id=make_patient(url=db_url, mrn=f"CHAIR-{n}",
                                             site_id=clinic.site_id))
        for n in (0, 30)
    )  # fmt: skip

    def check_in(session_id, staff_id):
        return lambda: take_step(url=db_url, session_id=session_id, step=Step.CHECK_IN,
                                 staff_id=staff_id, expected_version=1, now=NINE)  # fmt: skip

    a, b = interleave(
        monkeypatch=monkeypatch,
        pause_in=(ketadash.lifecycle, "check_in_gate"),
        first=check_in(first, clinic.nurse_id),
        second=check_in(second, clinic.other_nurse_id),
    )
    assert a.accepted
    assert isinstance(b.error, StepNotAllowed), b.error
    assert "Chair 1 is occupied" in str(b.error)


@pytest.mark.postgres
def test_an_import_referring_to_a_visit_never_deadlocks_a_check_in(postgres_template):
    """An import's transaction adds a booking for a patient (a key-share lock on the
    patient), a nurse checks in the patient's visit (holds the visit, waits for the
    patient), then the import adds a score to that visit (a key-share lock on the visit).
    With FOR UPDATE locks PostgreSQL killed the nurse's check-in as a deadlock; with
    FOR NO KEY UPDATE both go through, the import first."""
    import threading
    import time

    import sqlalchemy as sa

    from tests.conftest import _truncate_postgres

    url, _schema = postgres_template
    _truncate_postgres(url)
    ids = make_clinic(url=url, chairs=2)
    patient = make_patient(url=url, site_id=ids.site_id)
    visit = make_session(url=url, clinic=ids, patient_id=patient, scheduled_start=NINE)
    engine = sa.create_engine(url)
    outcome: dict[str, str] = {}
    try:
        with engine.connect() as importer:
            work = importer.begin()
            importer.execute(
                sa.insert(TreatmentSession.__table__).values(
                    site_id=ids.site_id, chair_id=ids.chair_ids[1], patient_id=patient,
                    scheduled_start=NINE + timedelta(days=2), planned_minutes=40, route="iv",
                    kind="series", status="scheduled", version=1, dose_mg_per_kg=0.5,
                )
            )  # fmt: skip
            (importer_pid,) = importer.execute(sa.text("SELECT pg_backend_pid()")).one()

            def check_in():
                try:
                    _step(url, ids, visit, Step.CHECK_IN, NINE)
                    outcome["nurse"] = "checked in"
                except Exception as error:  # the test reports whatever it was
                    outcome["nurse"] = f"{type(error).__name__}: {error}"

            nurse = threading.Thread(target=check_in)
            nurse.start()
            # The nurse's check-in is waiting on the import's lock before the import goes on.
            with engine.connect() as watcher:
                for _ in range(400):
                    blocked = watcher.execute(
                        sa.text("SELECT count(*) FROM pg_stat_activity "
                                "WHERE :pid = ANY(pg_blocking_pids(pid))"),
                        {"pid": importer_pid},
                    ).scalar()  # fmt: skip
                    if blocked or not nurse.is_alive():
                        break
                    time.sleep(0.025)
            importer.execute(
                sa.insert(OutcomeScore.__table__).values(
                    patient_id=patient, session_id=visit, instrument="phq9",
                    taken_at=NINE - timedelta(days=1), total=10, item9=0,
                )
            )  # fmt: skip
            work.commit()
            nurse.join(30)
    finally:
        engine.dispose()
    assert outcome == {"nurse": "checked in"}
    assert _state(url, visit)[0] == S.CHECKED_IN


# --- taking back a cancel or a discharge puts a visit under way again: the check-in rules ---


def _undo(url, clinic, session_id, at, reason="Pressed the wrong patient"):
    _, version = _state(url, session_id)
    return undo_last_step(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                          expected_version=version, reason=reason, now=at)  # fmt: skip


def _a_patient(url, clinic, mrn):
    return make_patient(url=url, mrn=mrn, first=mrn.title(), site_id=clinic.site_id)


def test_a_cancel_taken_back_is_refused_while_the_patient_is_checked_in_elsewhere(db_url, clinic):
    patient = _a_patient(db_url, clinic, "ONE")
    a = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    b = make_session(url=db_url, clinic=clinic, patient_id=patient,
                     scheduled_start=NINE + minutes(30), chair_index=1)  # fmt: skip
    _step(db_url, clinic, a, Step.CHECK_IN, NINE)
    _step(db_url, clinic, a, Step.CANCEL, NINE + minutes(2), reason="Booked twice")
    _step(db_url, clinic, b, Step.CHECK_IN, NINE + minutes(5))
    with pytest.raises(StepNotAllowed) as refused:
        _undo(db_url, clinic, a, NINE + minutes(10))
    assert str(refused.value) == (
        "Cannot put this visit back under way. This patient is already checked in in "
        "Chair 2: one patient, one chair. Finish or close that visit first. Nothing was changed."
    )
    assert _state(db_url, a) == (S.CANCELLED, 3)
    assert _state(db_url, b)[0] == S.CHECKED_IN


def test_a_cancel_taken_back_is_refused_once_another_patient_doses_in_the_chair(db_url, clinic):
    x = make_session(url=db_url, clinic=clinic, patient_id=_a_patient(db_url, clinic, "EX"),
                     scheduled_start=NINE, chair_index=2)  # fmt: skip
    y = make_session(url=db_url, clinic=clinic, patient_id=_a_patient(db_url, clinic, "WHY"),
                     scheduled_start=NINE + minutes(30), chair_index=2)  # fmt: skip
    _step(db_url, clinic, x, Step.CHECK_IN, NINE - minutes(5))
    _step(db_url, clinic, x, Step.CANCEL, NINE - minutes(4), reason="Felt unwell")
    _ready_to_start(db_url, clinic, y)
    _step(db_url, clinic, y, Step.START_INFUSION, NINE + minutes(15))
    with pytest.raises(StepNotAllowed) as refused:
        _undo(db_url, clinic, x, NINE + minutes(20))
    assert str(refused.value) == (
        "Cannot put this visit back under way. Chair 3 is occupied: another patient is "
        "receiving the dose there. One chair, one patient: wait until that patient has left "
        "the chair. Nothing was changed."
    )
    assert _state(db_url, x)[0] == S.CANCELLED
    assert _state(db_url, y)[0] == S.INFUSING


def test_a_discharge_taken_back_is_refused_once_the_chair_or_the_patient_moved_on(
    db_url, clinic, session_id
):
    _whole_visit(db_url, clinic, session_id)
    with read_session(db_url) as db:
        patient = db.get(TreatmentSession, session_id).patient_id
    # The next patient is checked in to the chair the discharged one left.
    nxt = make_session(url=db_url, clinic=clinic, patient_id=_a_patient(db_url, clinic, "NEXT"),
                       scheduled_start=NINE + minutes(100))  # fmt: skip
    _step(db_url, clinic, nxt, Step.CHECK_IN, NINE + minutes(100))
    with pytest.raises(StepNotAllowed) as refused:
        _undo(db_url, clinic, session_id, NINE + minutes(105))
    assert "Chair 1 is occupied: another patient is checked in there" in str(refused.value)
    assert _state(db_url, session_id)[0] == S.DISCHARGED
    # Once the chair is free again but the patient has another visit under way: refused too.
    _step(db_url, clinic, nxt, Step.CANCEL, NINE + minutes(106), reason="Left early")
    later = make_session(url=db_url, clinic=clinic, patient_id=patient,
                         scheduled_start=NINE + minutes(120), chair_index=3)  # fmt: skip
    _step(db_url, clinic, later, Step.CHECK_IN, NINE + minutes(110))
    with pytest.raises(StepNotAllowed, match="already checked in in Chair 4"):
        _undo(db_url, clinic, session_id, NINE + minutes(112))
    assert _state(db_url, session_id)[0] == S.DISCHARGED
    # With the chair free and nothing else under way, the discharge can be taken back.
    _step(db_url, clinic, later, Step.CANCEL, NINE + minutes(113), reason="Booked twice")
    assert _undo(db_url, clinic, session_id, NINE + minutes(114)).to_status == S.READY


def test_a_cancel_taken_back_with_the_chair_free_checks_the_patient_in_again(db_url, clinic):
    x = make_session(url=db_url, clinic=clinic, patient_id=_a_patient(db_url, clinic, "EX"),
                     scheduled_start=NINE)  # fmt: skip
    _step(db_url, clinic, x, Step.CHECK_IN, NINE)
    _step(db_url, clinic, x, Step.CANCEL, NINE + minutes(1), reason="Wrong patient")
    assert _undo(db_url, clinic, x, NINE + minutes(2)).to_status == S.CHECKED_IN


def test_a_cancel_taken_back_and_a_check_in_into_the_same_chair_at_once_get_one_chair(
    db_url, clinic, monkeypatch
):
    """The correction pauses after reading the chair; the next patient's check-in into that
    chair meanwhile waits for it, then is refused: one patient in the chair."""
    import ketadash.lifecycle
    from tests.utils.interleave import interleave

    x = make_session(url=db_url, clinic=clinic, patient_id=_a_patient(db_url, clinic, "EX"),
                     scheduled_start=NINE)  # fmt: skip
    y = make_session(url=db_url, clinic=clinic, patient_id=_a_patient(db_url, clinic, "WHY"),
                     scheduled_start=NINE + minutes(30))  # fmt: skip
    _step(db_url, clinic, x, Step.CHECK_IN, NINE)
    _step(db_url, clinic, x, Step.CANCEL, NINE + minutes(1), reason="Wrong patient")
    undo, check_in = interleave(
        monkeypatch=monkeypatch,
        pause_in=(ketadash.lifecycle, "reopen_gate"),
        first=lambda: _undo(db_url, clinic, x, NINE + minutes(2)),
        second=lambda: take_step(
            url=db_url,
            session_id=y,
            step=Step.CHECK_IN,
            staff_id=clinic.other_nurse_id,
            expected_version=1,
            now=NINE + minutes(2),
        ),
    )
    assert undo.accepted, undo.error
    assert isinstance(check_in.error, StepNotAllowed), check_in.error
    assert "Chair 1 is occupied: another patient is checked in there" in str(check_in.error)
    assert (_state(db_url, x)[0], _state(db_url, y)[0]) == (S.CHECKED_IN, S.SCHEDULED)


def test_a_check_in_and_a_cancel_of_the_patients_other_visit_taken_back_at_once_leave_one(
    db_url, clinic, monkeypatch
):
    """The check-in of visit B pauses after reading the patient's other visits; taking back
    the cancel of visit A meanwhile waits for it, then is refused: one visit under way."""
    import ketadash.lifecycle
    from tests.utils.interleave import interleave

    patient = _a_patient(db_url, clinic, "ONE")
    a = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    b = make_session(url=db_url, clinic=clinic, patient_id=patient,
                     scheduled_start=NINE + minutes(30), chair_index=1)  # fmt: skip
    _step(db_url, clinic, a, Step.CHECK_IN, NINE)
    _step(db_url, clinic, a, Step.CANCEL, NINE + minutes(1), reason="Booked twice")
    check_in, undo = interleave(
        monkeypatch=monkeypatch,
        pause_in=(ketadash.lifecycle, "check_in_gate"),
        first=lambda: take_step(
            url=db_url,
            session_id=b,
            step=Step.CHECK_IN,
            staff_id=clinic.other_nurse_id,
            expected_version=1,
            now=NINE + minutes(2),
        ),
        second=lambda: _undo(db_url, clinic, a, NINE + minutes(2)),
    )
    assert check_in.accepted, check_in.error
    assert isinstance(undo.error, StepNotAllowed), undo.error
    assert "already checked in in Chair 2" in str(undo.error)
    assert (_state(db_url, a)[0], _state(db_url, b)[0]) == (S.CANCELLED, S.CHECKED_IN)
