"""Hostile safety review (h4): PHQ-9 item 9 kept in sight, and the start's hard limits.

1. A second PHQ-9 at a visit is a correction with a reason; both stay in the history and
   the visit's item-9 flag is the highest answer of the visit. An imported score dated
   inside a live visit is not that visit's PHQ-9.
3. A positive item 9 is a check on the start checklist, passed only by acknowledging the
   C-SSRS step, and the start write enforces it.
4. A pre-dose reading at or above the start ceiling needs a clinic lead's recorded reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from ketadash.board import load_board, view_board
from ketadash.db import read_session, write_session
from ketadash.gates import ITEM9_CHECK, START_CEILING_CHECK, start_checklist, start_gate
from ketadash.importer import ImportRejected, import_files
from ketadash.lifecycle import (
    LifecycleError,
    ScoreRejected,
    StepNotAllowed,
    record_phq9,
    record_vitals,
    undo_last_step,
)
from ketadash.models import OutcomeScore, StaffRole, StatusChange, TreatmentSession, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.rules import item9_flagged
from ketadash.settings import ClinicSettings
from ketadash.visits import load_visit
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.steps import current_version as _version
from tests.utils.steps import step_at as _step
from tests.utils.visits import a_visit, reading

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York
CALM = Vitals(systolic=122, diastolic=78, heart_rate=72, spo2=98)
SEVERE = Vitals(systolic=228, diastolic=128, heart_rate=96, spo2=97)
SETTINGS = ClinicSettings()
CSSRS = "C-SSRS screen done and reviewed"


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


def _phq9(url, clinic, session_id, at, *, total, item9, **extra):
    return record_phq9(
        url=url,
        session_id=session_id,
        staff_id=clinic.nurse_id,
        total=total,
        item9=item9,
        now=at,
        **extra,
    )


def _visit(url, session_id, now):
    with read_session(url) as db:
        return load_visit(db=db, session_id=session_id, now=now)


def _checked_in(url, clinic, *, mrn="MRN-1"):
    patient = make_patient(url=url, mrn=mrn, site_id=clinic.site_id)
    session_id = make_session(url=url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    _step(url, clinic, session_id, Step.CHECK_IN, NINE)
    return patient, session_id


# --- 1. a second PHQ-9 at a visit ---------------------------------------------------------


def test_a_second_phq9_at_a_visit_is_refused_without_a_reason(db_url, clinic):
    _patient, session_id = _checked_in(db_url, clinic)
    _phq9(db_url, clinic, session_id, NINE + minutes(2), total=18, item9=2)
    with pytest.raises(ScoreRejected, match="correction needs a reason"):
        _phq9(db_url, clinic, session_id, NINE + minutes(4), total=9, item9=0)
    with read_session(db_url) as db:
        assert len(db.exec(select(OutcomeScore)).all()) == 1


def test_a_corrected_phq9_keeps_both_and_item9_stays_flagged(db_url, clinic):
    _patient, session_id = _checked_in(db_url, clinic)
    _phq9(db_url, clinic, session_id, NINE + minutes(2), total=18, item9=2)
    corrected = _phq9(
        db_url,
        clinic,
        session_id,
        NINE + minutes(4),
        total=9,
        item9=0,
        correction_reason="Typed into the wrong patient's form",
    )
    assert corrected.item9_flagged  # the visit's flag, not only this score's answer
    with read_session(db_url) as db:
        scores = db.exec(select(OutcomeScore).order_by(OutcomeScore.id)).all()
    assert [(s.total, s.item9) for s in scores] == [(18, 2), (9, 0)]
    assert scores[0].correction_reason is None
    assert scores[1].correction_reason == "Typed into the wrong patient's form"
    visit = _visit(db_url, session_id, NINE + minutes(5))
    assert visit.phq9_total == 9
    assert visit.phq9_count == 2
    assert item9_flagged(visit, SETTINGS)
    board = load_board(url=db_url, site_id=clinic.site_id, day=NINE.date(), now=NINE + minutes(5))
    (view,) = view_board(board, NINE + minutes(5))
    assert any("PHQ-9 item 9 answered 2" in a.what for a in view.alerts)


def test_a_phq9_from_before_a_new_check_in_needs_no_correction(db_url, clinic):
    _patient, session_id = _checked_in(db_url, clinic)
    _phq9(db_url, clinic, session_id, NINE + minutes(2), total=18, item9=0)
    undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                   expected_version=_version(db_url, session_id), reason="Wrong patient",
                   now=NINE + minutes(3))  # fmt: skip
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE + minutes(4))
    _phq9(db_url, clinic, session_id, NINE + minutes(5), total=10, item9=0)


def _import_score(tmp_path: Path, url: str, *, mrn: str, taken_at: datetime, item9: int,
                  now: datetime, session_ref: str = "") -> None:  # fmt: skip
    patients = tmp_path / "patients.csv"
    patients.write_text(f"mrn,first_name,last_name\n{mrn},Alex,Morgan\n")
    sessions = tmp_path / "sessions.csv"
    sessions.write_text("session_ref,mrn,site,scheduled_start,route,kind,dose_mg_per_kg,status\n")
    scores = tmp_path / "scores.csv"
    scores.write_text(
        "mrn,instrument,taken_at,total,item9,session_ref\n"
        f"{mrn},phq9,{taken_at.isoformat()},3,{item9},{session_ref}\n"
    )
    import_files(url=url, patients=patients, sessions=sessions, scores=scores, now=now)


def test_an_imported_score_inside_a_live_visit_does_not_hide_item9(db_url, clinic, tmp_path):
    _patient, session_id = _checked_in(db_url, clinic)
    _phq9(db_url, clinic, session_id, NINE + minutes(2), total=18, item9=2)
    _import_score(tmp_path, db_url, mrn="MRN-1", taken_at=NINE + minutes(5), item9=0,
                  now=NINE + minutes(10))  # fmt: skip
    visit = _visit(db_url, session_id, NINE + minutes(11))
    assert visit.phq9_total == 18
    assert item9_flagged(visit, SETTINGS)


def test_an_imported_score_inside_a_live_visit_is_not_this_visits_phq9(db_url, clinic, tmp_path):
    _patient, session_id = _checked_in(db_url, clinic)
    _import_score(tmp_path, db_url, mrn="MRN-1", taken_at=NINE + minutes(5), item9=0,
                  now=NINE + minutes(10))  # fmt: skip
    visit = _visit(db_url, session_id, NINE + minutes(11))
    assert visit.phq9_total is None
    checklist = start_checklist(visit=visit, settings=SETTINGS)
    assert any("record a PHQ-9" in r for r in checklist.reasons)


# --- 3. item 9 on the start checklist -----------------------------------------------------

READY_TO_START = a_visit(
    status=S.CHECKED_IN,
    checked_in_at=NINE,
    phq9_total=16,
    phq9_item9=2,
    baseline=reading(NINE + minutes(5), VitalsPhase.BEFORE),
    weight_kg=70,
)


@pytest.mark.parametrize(
    ("acknowledgement", "ok"),
    [
        (None, False),
        ("", False),
        ("patient fine", False),
        ("reviewed", False),
        (CSSRS, True),
        ("c-ssrs  screen done and REVIEWED", True),
        # Naming the screen is not recording it.
        ("CSSRS not done", False),
        ("c-ssrs screen done, Dr Patel told", False),
    ],
)
def test_a_positive_item9_is_a_start_check_passed_only_by_the_cssrs_step(acknowledgement, ok):
    checklist = start_checklist(
        visit=READY_TO_START, settings=SETTINGS, item9_acknowledgement=acknowledgement
    )
    (check,) = [c for c in checklist.checks if c.label == ITEM9_CHECK]
    assert check.ok is ok
    if not ok:
        assert "C-SSRS" in check.detail


def test_item9_stays_a_start_check_after_a_correction_to_zero():
    corrected = replace(READY_TO_START, phq9_item9=0, phq9_item9_highest=2)
    assert not start_checklist(visit=corrected, settings=SETTINGS).allowed


def test_no_item9_check_when_item9_is_zero():
    visit = replace(READY_TO_START, phq9_item9=0)
    checklist = start_checklist(visit=visit, settings=SETTINGS)
    assert ITEM9_CHECK not in [c.label for c in checklist.checks]
    assert checklist.allowed


def test_the_start_write_refuses_a_positive_item9_without_the_cssrs_step(db_url, clinic):
    _patient, session_id = _checked_in(db_url, clinic)
    _phq9(db_url, clinic, session_id, NINE + minutes(2), total=18, item9=2)
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(3))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="C-SSRS"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(6), dose_mg=35,
              weight_kg=70)  # fmt: skip
    with pytest.raises(StepNotAllowed, match="C-SSRS"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(6), dose_mg=35,
              weight_kg=70, item9_acknowledgement="seems fine")  # fmt: skip
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(7), dose_mg=35,
          weight_kg=70, item9_acknowledgement=CSSRS)  # fmt: skip
    with read_session(db_url) as db:
        change = db.exec(select(StatusChange).where(StatusChange.to_status == S.INFUSING)).one()
    assert "C-SSRS screen done and reviewed" in change.reason
    assert "item 9" in change.reason


# --- 4. a ceiling above the hold ------------------------------------------------------------


def test_the_start_ceiling_settings_default_to_the_escalation_line():
    assert SETTINGS.start_ceiling_systolic == 180
    assert SETTINGS.start_ceiling_diastolic == 110


SEVERE_VISIT = a_visit(
    status=S.CHECKED_IN,
    checked_in_at=NINE,
    phq9_total=12,
    phq9_item9=0,
    baseline=reading(NINE + minutes(5), VitalsPhase.BEFORE, SEVERE),
    weight_kg=70,
)


@pytest.mark.parametrize(
    ("vitals", "role", "reason", "ok"),
    [
        (SEVERE, StaffRole.NURSE, "patient anxious", False),
        (SEVERE, StaffRole.LEAD, None, False),
        (SEVERE, StaffRole.LEAD, "Dr Patel saw the patient, treated, benefit outweighs", True),
        (Vitals(systolic=180, diastolic=90, heart_rate=80, spo2=98), StaffRole.NURSE, "x y z",
         False),
        (Vitals(systolic=150, diastolic=110, heart_rate=80, spo2=98), StaffRole.NURSE, "x y z",
         False),
    ],
)  # fmt: skip
def test_a_reading_at_the_ceiling_needs_a_leads_reason(vitals, role, reason, ok):
    visit = replace(SEVERE_VISIT, baseline=reading(NINE, VitalsPhase.BEFORE, vitals))
    gate = start_gate(visit=visit, settings=SETTINGS, given_mg=35, weight_kg=70,
                      hold_override_reason=reason, staff_role=role)  # fmt: skip
    (check,) = [c for c in gate.checks if c.label == START_CEILING_CHECK]
    assert check.ok is ok
    assert gate.allowed is ok


def test_below_the_ceiling_a_nurse_may_still_override_the_hold():
    high = Vitals(systolic=152, diastolic=95, heart_rate=80, spo2=98)
    visit = replace(SEVERE_VISIT, baseline=reading(NINE, VitalsPhase.BEFORE, high))
    gate = start_gate(visit=visit, settings=SETTINGS, given_mg=35, weight_kg=70,
                      hold_override_reason="white-coat, Dr Patel approved",
                      staff_role=StaffRole.NURSE)  # fmt: skip
    assert gate.allowed
    assert START_CEILING_CHECK not in [c.label for c in gate.checks]


def test_the_start_write_refuses_a_nurses_override_above_the_ceiling(db_url, clinic):
    _patient, session_id = _checked_in(db_url, clinic)
    _phq9(db_url, clinic, session_id, NINE + minutes(2), total=12, item9=0)
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=SEVERE,
                  now=NINE + minutes(3))  # fmt: skip
    with pytest.raises(LifecycleError, match="clinic lead"):
        _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(6), dose_mg=35,
              weight_kg=70, hold_override_reason="patient anxious")  # fmt: skip
    assert _visit(db_url, session_id, NINE + minutes(7)).status == S.CHECKED_IN
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(8), dose_mg=35,
          weight_kg=70, staff_id=clinic.lead_id,
          hold_override_reason="Dr Patel saw the patient: treated, go ahead")  # fmt: skip
    with read_session(db_url) as db:
        session = db.get(TreatmentSession, session_id)
        change = db.exec(select(StatusChange).where(StatusChange.to_status == S.INFUSING)).one()
    assert session.hold_override_reason.startswith("Dr Patel")
    assert "ceiling" in change.reason


def test_an_import_cannot_attach_a_score_to_a_visit_under_way(db_url, clinic, tmp_path):
    _patient, session_id = _checked_in(db_url, clinic)
    with write_session(db_url) as db:
        db.get(TreatmentSession, session_id).external_ref = "EHR-77"
    with pytest.raises(ImportRejected) as rejected:
        _import_score(tmp_path, db_url, mrn="MRN-1", taken_at=NINE + minutes(5), item9=0,
                      now=NINE + minutes(10), session_ref="EHR-77")  # fmt: skip
    assert "session_ref 'EHR-77' is a visit under way" in str(rejected.value.problems)
    visit = _visit(db_url, session_id, NINE + minutes(11))
    assert visit.phq9_total is None


def test_an_import_refuses_an_mrn_that_two_stored_patients_share_ignoring_case(
    db_url, clinic, tmp_path
):
    # Two patients stored as "ab-1" and "AB-1" (written before the import's matching rule,
    # or by hand): matching ignoring case, a score for one could land on the other.
    make_patient(url=db_url, mrn="ab-1", site_id=clinic.site_id)
    _checked_in(db_url, clinic, mrn="AB-1")
    with pytest.raises(ImportRejected) as rejected:
        _import_score(tmp_path, db_url, mrn="ab-1", taken_at=NINE + minutes(5), item9=0,
                      now=NINE + minutes(10))  # fmt: skip
    assert "more than one patient" in str(rejected.value.problems)
    with read_session(db_url) as db:
        assert db.exec(select(OutcomeScore)).all() == []


def test_two_stations_saving_a_first_phq9_at_once_make_one_a_correction(
    db_url, clinic, monkeypatch
):
    """Forced interleaving: each station, once it has read the visit, waits (up to a second)
    for the other to have read it too. Both reading "no PHQ-9 yet" would let two scores in
    without a reason; the second station must wait for the first and be told."""
    import threading

    import ketadash.lifecycle as lifecycle
    from tests.utils.interleave import wait_while

    _patient, session_id = _checked_in(db_url, clinic)
    have_read: list[int] = []
    read_visit = lifecycle._visit

    def visit_then_wait(db, session_id, now):
        visit = read_visit(db, session_id, now)
        have_read.append(session_id)
        # A second at most: the other station is kept waiting, as it should be.
        wait_while(lambda: len(have_read) < 2, seconds=1)
        return visit

    monkeypatch.setattr(lifecycle, "_visit", visit_then_wait)
    outcomes: list[str] = []

    def station(item9: int) -> None:
        try:
            _phq9(
                db_url, clinic, session_id, NINE + minutes(2 + item9), total=12 + item9, item9=item9
            )
            outcomes.append("saved")
        except ScoreRejected as refused:
            assert "correction needs a reason" in str(refused)
            outcomes.append("told")

    threads = [threading.Thread(target=station, args=(n,)) for n in (0, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["saved", "told"]
    with read_session(db_url) as db:
        assert len(db.exec(select(OutcomeScore)).all()) == 1


def test_a_site_cannot_set_its_hold_at_or_above_its_start_ceiling(db_url, clinic):
    """A reading that needs a lead to dose must already hold the start: the settings refuse
    a hold at or above the ceiling, so the ceiling can never sit under the hold."""
    from ketadash.db import write_session as writing
    from ketadash.settings import InvalidSetting, set_site_setting

    with writing(db_url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="start_ceiling_systolic",
                         value="150", staff_id=clinic.lead_id, now=NINE)  # fmt: skip
    refused = pytest.raises(InvalidSetting, match=r"hold_systolic .* must be below start_ceiling")
    with refused, writing(db_url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="hold_systolic", value="155",
                         staff_id=clinic.lead_id, now=NINE)  # fmt: skip
