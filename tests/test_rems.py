"""The esketamine REMS Patient Monitoring Form (issue 20): the pre-fill from a recorded
session, the 7-day clock, the discharge check and every refusal of a save or a submit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from sqlmodel import func, select

from ketadash.db import read_session, write_session
from ketadash.gates import REMS_STARTED_CHECK, rems_started_gate, rems_submit_gate
from ketadash.lifecycle import (
    StepNotAllowed,
    record_phq9,
    record_side_effects,
    record_vitals,
)
from ketadash.models import (
    RemsRecord,
    RemsRecordChange,
    Route,
    Severity,
    SideEffect,
    Staff,
    StaffRole,
    VitalsPhase,
)
from ketadash.models import SessionStatus as S
from ketadash.pdf import one_page_pdf
from ketadash.rems import (
    RemsError,
    RemsRecordChanged,
    days_left,
    dose_choice,
    due_on,
    form_lines,
    form_pdf,
    forms_to_submit,
    load_form,
    prefill,
    save_record,
    start_record,
)
from ketadash.rems_form import Observation, Reading, RecordFields, SessionFacts
from ketadash.rides import arrange_ride
from ketadash.rules import esketamine_bp_due_in, vitals_due_in
from ketadash.settings import ClinicSettings, set_site_setting
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.utils.clock import local_moment
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.steps import step_at
from tests.utils.visits import a_visit, reading

# 09:00 in New York on a winter Tuesday (EST, UTC-5).
NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
CALM = Vitals(systolic=122, diastolic=78, heart_rate=72, spo2=98)
PEAK = Vitals(systolic=150, diastolic=92, heart_rate=84, spo2=97)
SETTINGS = ClinicSettings()


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


def _vitals(url, clinic, session_id, at, vitals=CALM):
    record_vitals(url=url, session_id=session_id, staff_id=clinic.nurse_id, vitals=vitals, now=at)


def _dosed(url, clinic, *, dose_mg=84, mrn="MRN-ESK"):
    """An esketamine session: checked in at 09:00, BP 122/78 at 09:05, first device at
    09:15, devices done at 09:25; 150/92 at 09:55 (40 min), dissociation moderate at 09:35."""
    patient = make_patient(url=url, mrn=mrn, site_id=clinic.site_id)
    session_id = make_session(
        url=url,
        clinic=clinic,
        patient_id=patient,
        scheduled_start=NINE,
        route=Route.ESKETAMINE,
        dose_mg=dose_mg,
    )
    step_at(url, clinic, session_id, Step.CHECK_IN, NINE)
    record_phq9(url=url, session_id=session_id, staff_id=clinic.nurse_id, total=14, item9=0,
                now=NINE + minutes(3))  # fmt: skip
    _vitals(url, clinic, session_id, NINE + minutes(5))
    step_at(url, clinic, session_id, Step.START_INFUSION, NINE + minutes(15), dose_mg=dose_mg)
    step_at(url, clinic, session_id, Step.END_INFUSION, NINE + minutes(25))
    record_side_effects(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                        effects={SideEffect.DISSOCIATION: Severity.MODERATE},
                        now=NINE + minutes(35))  # fmt: skip
    _vitals(url, clinic, session_id, NINE + minutes(55), PEAK)
    return session_id


def _ready(url, clinic, session_id):
    """Dissociation gone at 10:30, calm vitals at 11:15, ready at 11:16 (121 min)."""
    record_side_effects(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                        effects={SideEffect.DISSOCIATION: Severity.NONE},
                        now=NINE + minutes(90))  # fmt: skip
    _vitals(url, clinic, session_id, NINE + minutes(135))
    step_at(url, clinic, session_id, Step.MARK_READY, NINE + minutes(136), steady_on_feet=True)


COMPLETE = RecordFields(
    device_lot="ab12c-34",
    benzodiazepines=False,
    non_benzo_sedative_hypnotics=False,
    psychostimulants=True,
    maois=False,
    ready_to_leave_at=NINE + minutes(105),
    notes=None,
)

# What a nurse can fill in while the patient is still monitored.
DURING = replace(COMPLETE, ready_to_leave_at=None)


def _version(url, session_id):
    with read_session(url) as db:
        return db.exec(select(RemsRecord.version).where(RemsRecord.session_id == session_id)).one()


# --- the pre-fill from a recorded session ------------------------------------------------------


def test_the_form_is_filled_from_the_recorded_session(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    _ready(db_url, clinic, session_id)
    form = load_form(url=db_url, session_id=session_id, now=NINE + minutes(140))
    p = form.prefill
    assert p.treatment_date == date(2026, 11, 24)
    assert (p.dose_mg, p.dose_choice) == (84, "84 mg")
    assert p.first_device_at == NINE + minutes(15)
    assert p.monitoring_ended_at == NINE + minutes(136)
    assert (p.total_minutes, p.two_hours_met) == (121, True)
    assert p.bp_before.vitals == CALM and p.bp_before.taken_at == NINE + minutes(5)
    assert p.bp_after_dose.vitals == PEAK
    assert p.bp_at_end.taken_at == NINE + minutes(135)
    assert (p.vitals_ok_before, p.vitals_ok_at_end) == (True, True)
    assert p.dissociation.occurred and p.dissociation.resolved
    assert not p.sedation.occurred and not p.respiratory_depression.occurred
    assert not form.started and form.state == "Not started"
    lines = dict(form_lines(form))
    assert lines["Blood pressure about 40 min after dosing"] == (
        "150/92 mmHg at 09:55, 40 min after the first device"
    )
    assert lines["Total time from first device to end of monitoring"] == "121 min"
    assert lines["Dissociation"].startswith("Occurred, resolved")


def _facts(**changes) -> SessionFacts:
    start = NINE + minutes(15)
    base = SessionFacts(
        session_id=1,
        site_id=1,
        site_name="Main",
        time_zone="America/New_York",
        patient_name="Alex Morgan",
        mrn="MRN-1",
        date_of_birth=None,
        route=Route.ESKETAMINE,
        status=S.RECOVERY,
        dose_mg=56,
        given_dose_mg=56,
        infusion_started_at=start,
        ready_at=None,
        discharged_at=None,
        readings=(Reading(taken_at=NINE, phase=VitalsPhase.BEFORE, vitals=CALM),),
    )
    return replace(base, **changes)


def test_monitoring_not_over_leaves_the_total_open_and_no_bp_at_40_minutes():
    p = prefill(facts=_facts(), settings=SETTINGS)
    assert p.total_minutes is None and p.two_hours_met is None and p.monitoring_ended_at is None
    assert p.bp_after_dose is None and p.bp_at_end is None


def test_a_reading_far_from_40_minutes_is_not_the_40_minute_bp():
    start = NINE + minutes(15)
    readings = (
        Reading(taken_at=NINE, phase=VitalsPhase.BEFORE, vitals=CALM),
        Reading(taken_at=start + minutes(20), phase=VitalsPhase.AFTER, vitals=PEAK),
        Reading(taken_at=start + minutes(38), phase=VitalsPhase.AFTER, vitals=CALM),
        Reading(taken_at=start + minutes(90), phase=VitalsPhase.AFTER, vitals=CALM),
    )
    p = prefill(facts=_facts(readings=readings), settings=SETTINGS)
    assert p.bp_after_dose.taken_at == start + minutes(38)
    p = prefill(facts=_facts(readings=(*readings[:2], readings[3])), settings=SETTINGS)
    assert p.bp_after_dose is None


def test_sedation_not_resolved_and_low_spo2_show_as_they_were_recorded():
    start = NINE + minutes(15)
    low = Vitals(systolic=120, diastolic=75, heart_rate=70, spo2=88)
    facts = _facts(
        readings=(
            Reading(taken_at=NINE, phase=VitalsPhase.BEFORE, vitals=CALM),
            Reading(taken_at=start + minutes(30), phase=VitalsPhase.AFTER, vitals=low),
            Reading(taken_at=start + minutes(60), phase=VitalsPhase.AFTER, vitals=CALM),
        ),
        observations=(
            Observation(
                observed_at=start + minutes(20),
                effect=SideEffect.SEDATION,
                severity=Severity.MODERATE,
            ),
            Observation(
                observed_at=start + minutes(50), effect=SideEffect.SEDATION, severity=Severity.MILD
            ),
        ),
    )
    p = prefill(facts=facts, settings=SETTINGS)
    assert p.sedation.occurred and p.sedation.resolved is False
    assert "still mild" in p.sedation.detail
    assert p.respiratory_depression.occurred and p.respiratory_depression.resolved
    assert "88%" in p.respiratory_depression.detail


def test_held_pre_dose_vitals_are_not_acceptable():
    high = Vitals(systolic=152, diastolic=95, heart_rate=80, spo2=98)
    facts = _facts(readings=(Reading(taken_at=NINE, phase=VitalsPhase.BEFORE, vitals=high),))
    assert prefill(facts=facts, settings=SETTINGS).vitals_ok_before is False


@pytest.mark.parametrize(
    ("mg", "choice"), [(56, "56 mg"), (84, "84 mg"), (112, "Other (112 mg, 4 devices)")]
)
def test_the_dose_box(mg, choice):
    assert dose_choice(mg) == choice


# --- the 7-day clock ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "left"),
    [
        (date(2026, 11, 24), 7),
        (date(2026, 11, 30), 1),
        (date(2026, 12, 1), 0),
        (date(2026, 12, 2), -1),
    ],
)
def test_days_left_count_calendar_days_of_the_site(today, left):
    treated = date(2026, 11, 24)
    assert due_on(treatment_date=treated, within_days=7) == date(2026, 12, 1)
    assert days_left(treatment_date=treated, today=today, within_days=7) == left


def test_the_list_counts_days_at_the_site_across_a_daylight_saving_change(db_url, clinic):
    # First device at 23:40 on Saturday 31 October (EDT); summer time ends that night.
    late = local_moment("2026-10-31 23:40")
    patient = make_patient(url=db_url, mrn="MRN-DST", site_id=clinic.site_id)
    make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=late,
                 route=Route.ESKETAMINE, status=S.DISCHARGED, infusion_started_at=late)  # fmt: skip
    # The last day is Saturday 7 November, whatever the hour of the day it is read.
    for moment, left in (
        ("2026-11-01 00:30", 6),
        ("2026-11-07 00:03", 0),
        ("2026-11-07 23:58", 0),
        ("2026-11-08 00:03", -1),
    ):
        listed = forms_to_submit(url=db_url, site_id=clinic.site_id, now=local_moment(moment))
        assert [f.days_left for f in listed.forms] == [left], moment
        assert listed.forms[0].treatment_date == date(2026, 10, 31)
        assert listed.forms[0].overdue is (left < 0)


def test_a_submitted_form_leaves_the_list_and_the_setting_shortens_the_window(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    _ready(db_url, clinic, session_id)
    now = NINE + minutes(140)
    listed = forms_to_submit(url=db_url, site_id=clinic.site_id, now=now)
    assert [(f.session_id, f.state, f.days_left) for f in listed.forms] == [
        (session_id, "Not started", 7)
    ]
    with write_session(db_url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="rems_submit_within_days",
                         value="3", staff_id=clinic.lead_id, now=now)  # fmt: skip
    assert forms_to_submit(url=db_url, site_id=clinic.site_id, now=now).forms[0].days_left == 3
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, expected_version=1,
                fields=replace(COMPLETE, monitoring_provider_id=clinic.nurse_id), submit=True,
                now=now)  # fmt: skip
    assert forms_to_submit(url=db_url, site_id=clinic.site_id, now=now).forms == ()


def test_a_clinic_that_turns_the_form_off_has_no_list_and_no_discharge_check(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    with write_session(db_url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="rems_monitoring_form",
                         value="off", staff_id=clinic.lead_id, now=NINE)  # fmt: skip
    listed = forms_to_submit(url=db_url, site_id=clinic.site_id, now=NINE + minutes(60))
    assert not listed.required and listed.forms == ()
    off = replace(SETTINGS, rems_monitoring_form="off")
    visit = a_visit(route=Route.ESKETAMINE, status=S.READY)
    assert rems_started_gate(visit=visit, settings=off).checks == ()
    assert session_id


# --- the discharge check --------------------------------------------------------------------


def test_an_esketamine_session_is_not_discharged_without_its_form_started(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    _ready(db_url, clinic, session_id)
    arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo Driver", arrived=True,
                 now=NINE + minutes(137))  # fmt: skip
    with pytest.raises(StepNotAllowed) as refused:
        step_at(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(138))
    message = str(refused.value)
    assert "start its REMS Patient Monitoring Form" in message
    assert "Nothing was changed" in message
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                 now=NINE + minutes(139))  # fmt: skip
    result = step_at(db_url, clinic, session_id, Step.DISCHARGE, NINE + minutes(140))
    assert result.to_status == S.DISCHARGED


def test_the_discharge_check_is_for_esketamine_only():
    for route in (Route.IV, Route.LOZENGE):
        visit = a_visit(route=route, status=S.READY)
        assert rems_started_gate(visit=visit, settings=SETTINGS).checks == ()
    visit = a_visit(route=Route.ESKETAMINE, status=S.READY)
    gate = rems_started_gate(visit=visit, settings=SETTINGS)
    assert [c.label for c in gate.checks] == [REMS_STARTED_CHECK] and not gate.allowed
    assert rems_started_gate(
        visit=replace(visit, rems_record_started=True), settings=SETTINGS
    ).allowed


# --- the 40-minute blood pressure on the board ----------------------------------------------


def test_the_40_minute_bp_is_due_for_esketamine_only():
    start = NINE
    visit = a_visit(
        route=Route.ESKETAMINE,
        status=S.RECOVERY,
        infusion_started_at=start,
        infusion_ended_at=start + minutes(10),
    )
    # The recovery round (every 15 min after the devices) would be due at 25 min; at 30 min
    # a reading was taken, so the next round is at 45 but the BP check is at 40.
    taken = replace(visit, latest=reading(start + minutes(30), VitalsPhase.AFTER, CALM))
    assert vitals_due_in(taken, SETTINGS, start + minutes(31)) == 9
    assert esketamine_bp_due_in(taken, SETTINGS, start + minutes(31)) == 9
    done = replace(visit, latest=reading(start + minutes(36), VitalsPhase.AFTER, CALM))
    assert esketamine_bp_due_in(done, SETTINGS, start + minutes(37)) is None
    assert vitals_due_in(done, SETTINGS, start + minutes(37)) == 14
    iv = replace(taken, route=Route.IV)
    assert esketamine_bp_due_in(iv, SETTINGS, start + minutes(31)) is None
    assert vitals_due_in(iv, SETTINGS, start + minutes(31)) == 14


# --- writes and their refusals --------------------------------------------------------------


def test_a_nurse_completes_and_submits_the_form_with_its_history(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    now = NINE + minutes(60)
    assert start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now) == 1
    fields = replace(COMPLETE, monitoring_provider_id=clinic.other_nurse_id)
    # Saved during monitoring without the ready-to-leave time, completed after it.
    during = replace(fields, ready_to_leave_at=None)
    version = save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                          expected_version=1, fields=during, now=now)  # fmt: skip
    assert version == 2
    _ready(db_url, clinic, session_id)
    submitted_at = NINE + minutes(140)
    version = save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                          expected_version=2, fields=fields, submit=True,
                          now=submitted_at)  # fmt: skip
    form = load_form(url=db_url, session_id=session_id, now=submitted_at)
    assert form.submitted and form.submitted_at == submitted_at and form.version == 3
    assert form.record.device_lot == "AB12C-34"
    lines = dict(form_lines(form))
    assert lines["Device lot number"] == "AB12C-34"
    assert lines["Concomitant medication: Psychostimulants"] == "Yes"
    assert lines["Ready to leave without the 2-hour rule at"] == "10:45"
    with read_session(db_url) as db:
        actions = db.exec(
            select(RemsRecordChange.action)
            .where(RemsRecordChange.session_id == session_id)
            .order_by(RemsRecordChange.version)
        ).all()
    assert actions == ["started", "saved", "submitted"]
    pdf = form_pdf(form)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf.count(b"/Type /Page ") == 1
    assert b"(AB12C-34)" in pdf and b"Esketamine REMS Patient Monitoring Form" in pdf


def test_a_submitted_form_keeps_what_was_submitted_and_refuses_changes(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    _ready(db_url, clinic, session_id)
    now = NINE + minutes(140)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    fields = replace(COMPLETE, monitoring_provider_id=clinic.nurse_id)
    save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, expected_version=1,
                fields=fields, submit=True, now=now)  # fmt: skip
    with pytest.raises(RemsError, match="marked submitted: it cannot be changed"):
        save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                    expected_version=2, fields=fields, now=now)  # fmt: skip
    # A reading recorded against the session later does not rewrite the submitted copy.
    before = form_lines(load_form(url=db_url, session_id=session_id, now=now))
    _vitals(db_url, clinic, session_id, NINE + minutes(141), PEAK)
    assert form_lines(load_form(url=db_url, session_id=session_id, now=now)) == before


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (replace(COMPLETE, device_lot=None), "type the lot number printed on the device carton"),
        (replace(COMPLETE, maois=None), "answer yes or no for monoamine oxidase inhibitors"),
        (replace(COMPLETE, ready_to_leave_at=None), "would have been ready to leave"),
        (
            replace(COMPLETE, ready_to_leave_at=NINE + minutes(137)),
            "between the first device and the end of monitoring",
        ),
        (replace(COMPLETE, monitoring_provider_id=None), "choose the nurse or lead who monitored"),
    ],
)
def test_an_incomplete_form_is_not_marked_submitted(db_url, clinic, fields, words):
    session_id = _dosed(db_url, clinic)
    _ready(db_url, clinic, session_id)
    now = NINE + minutes(140)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    if "choose" not in words:
        fields = replace(fields, monitoring_provider_id=clinic.nurse_id)
    with pytest.raises(RemsError) as refused:
        save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                    expected_version=1, fields=fields, submit=True, now=now)  # fmt: skip
    assert words in str(refused.value).lower()
    assert "Nothing was saved" in str(refused.value)
    assert _version(db_url, session_id) == 1


def test_the_form_is_not_submitted_while_monitoring_goes_on(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    now = NINE + minutes(60)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    with pytest.raises(RemsError, match="monitoring is not over: mark them ready to go first"):
        save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                    expected_version=1, submit=True, now=now,
                    fields=replace(COMPLETE, monitoring_provider_id=clinic.nurse_id,
                                   ready_to_leave_at=NINE + minutes(50)))  # fmt: skip


def test_a_missing_40_minute_bp_needs_a_note(db_url, clinic):
    form = load_form(url=db_url, session_id=_dosed(db_url, clinic), now=NINE + minutes(60))
    form = replace(
        form,
        prefill=replace(
            form.prefill,
            bp_after_dose=None,
            bp_at_end=form.prefill.bp_after_dose,
            monitoring_ended_at=NINE + minutes(136),
        ),
        record=replace(COMPLETE, monitoring_provider_id=clinic.nurse_id),
    )
    gate = rems_submit_gate(form=form)
    assert gate.reasons == (
        "no blood pressure is recorded about 40 min after dosing: say why in the notes",
    )
    noted = replace(form, record=replace(form.record, notes="Patient asleep, BP taken at 55 min"))
    assert rems_submit_gate(form=noted).allowed


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"device_lot": "LOT#1;DROP"}, "is not a lot number"),
        ({"device_lot": "X" * 41}, "is not a lot number"),
        ({"ready_to_leave_at": NINE}, "before the first device"),
        ({"ready_to_leave_at": NINE + minutes(600)}, "later than now"),
    ],
)
def test_a_save_refuses_what_cannot_be_true(db_url, clinic, change, words):
    session_id = _dosed(db_url, clinic)
    now = NINE + minutes(60)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    with pytest.raises(RemsError) as refused:
        save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                    expected_version=1, fields=replace(COMPLETE, **change), now=now)  # fmt: skip
    assert words in str(refused.value).lower() and "Nothing was saved" in str(refused.value)
    assert _version(db_url, session_id) == 1


def test_the_provider_must_be_a_clinician_of_the_site(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    with write_session(db_url) as db:
        front_desk = Staff(name="Robin Desk", role=StaffRole.FRONT_DESK, site_id=clinic.site_id)
        db.add(front_desk)
        db.flush()
        desk = front_desk.id
    now = NINE + minutes(60)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    with pytest.raises(RemsError, match="must be a nurse or clinic lead"):
        save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                    expected_version=1, fields=replace(DURING, monitoring_provider_id=desk),
                    now=now)  # fmt: skip
    with pytest.raises(RemsError, match="completed by a nurse or a clinic lead"):
        save_record(url=db_url, session_id=session_id, staff_id=desk, expected_version=1,
                    fields=DURING, now=now)  # fmt: skip


def test_a_save_on_a_version_another_station_changed_writes_nothing(db_url, clinic):
    session_id = _dosed(db_url, clinic)
    now = NINE + minutes(60)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    save_record(url=db_url, session_id=session_id, staff_id=clinic.other_nurse_id,
                expected_version=1, fields=DURING, now=now)  # fmt: skip
    with pytest.raises(RemsRecordChanged, match="saved this REMS form while you were working"):
        save_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                    expected_version=1, fields=replace(DURING, maois=True), now=now)  # fmt: skip
    assert _version(db_url, session_id) == 2


def test_starting_is_refused_for_other_routes_before_the_dose_and_twice(db_url, clinic):
    patient = make_patient(url=db_url, mrn="MRN-IV", site_id=clinic.site_id)
    iv = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    with pytest.raises(RemsError, match="for esketamine sessions; this one is IV infusion"):
        start_record(url=db_url, session_id=iv, staff_id=clinic.nurse_id, now=NINE)
    other = make_patient(url=db_url, mrn="MRN-E2", site_id=clinic.site_id)
    waiting = make_session(url=db_url, clinic=clinic, patient_id=other, scheduled_start=NINE,
                           chair_index=1, route=Route.ESKETAMINE)  # fmt: skip
    with pytest.raises(RemsError, match="the form starts with the first device"):
        start_record(url=db_url, session_id=waiting, staff_id=clinic.nurse_id, now=NINE)
    session_id = _dosed(db_url, clinic)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=NINE)
    with pytest.raises(RemsRecordChanged, match="already started this session's REMS form"):
        start_record(url=db_url, session_id=session_id, staff_id=clinic.lead_id, now=NINE)
    with read_session(db_url) as db:
        assert db.exec(select(func.count(RemsRecord.id))).one() == 1


def test_the_pdf_is_one_page_of_escaped_latin1_text():
    pdf = one_page_pdf(
        title="Form (copy)", subtitle="Zoë \\ test", lines=[("Q", "A " * 400)] * 80, footer="f"
    )
    assert pdf.count(b"/Type /Page ") == 1
    assert b"Form \\(copy\\)" in pdf and b"Zo\xeb \\\\ test" in pdf
    assert b"more lines than fit on one page" in pdf
    # The cross-reference table points at each object.
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref:].startswith(b"xref")
    for offset in pdf[xref:].split(b"\n")[3:9]:
        assert pdf[int(offset[:10]) :].split(b" ")[1] == b"0"


@pytest.mark.parametrize(
    "statement",
    ["UPDATE rems_record_change SET action = 'saved'", "DELETE FROM rems_record_change"],
)
def test_the_forms_history_is_append_only_in_the_database(db_url, clinic, statement):
    import sqlalchemy as sa

    from ketadash.db import get_engine

    session_id = _dosed(db_url, clinic)
    start_record(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=NINE)
    with (
        pytest.raises(sa.exc.IntegrityError, match="rems_record_change is append-only"),
        get_engine(db_url).begin() as connection,
    ):
        connection.exec_driver_sql(statement)
    with read_session(db_url) as db:
        assert db.exec(select(RemsRecordChange.action)).all() == ["started"]


def test_a_ready_time_typed_after_midnight_is_the_next_day():
    from datetime import time

    from ketadash.rems import ready_moment

    zone = "America/New_York"
    first = local_moment("2026-11-24 22:50")
    assert ready_moment(clock=time(0, 40), first_device_at=first, time_zone=zone) == (
        local_moment("2026-11-25 00:40")
    )
    assert ready_moment(clock=time(23, 55), first_device_at=first, time_zone=zone) == (
        local_moment("2026-11-24 23:55")
    )
