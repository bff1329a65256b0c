"""The gates, table-driven on hand-made visits: no database needed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ketadash.gates import (
    START_CEILING_CHECK,
    OverrideReason,
    as_sentences,
    check_in_gate,
    discharge_gate,
    dose_plan,
    dose_problems,
    ready_gate,
    reopen_gate,
    reopened_into,
    start_checklist,
    start_gate,
)
from ketadash.models import EscortException, Route, StaffRole, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.settings import ClinicSettings
from ketadash.staff import StaffMember
from ketadash.text import MIN_ACCOUNT_LETTERS
from ketadash.visits import RideSnapshot, TimelineStep
from ketadash.vitals import BP_HOLD, Vitals
from tests.utils.factories import minutes
from tests.utils.visits import NINE, a_visit, reading

SETTINGS = ClinicSettings()
HIGH = Vitals(systolic=152, diastolic=95, heart_rate=80, spo2=98)
LOW_SPO2 = Vitals(systolic=120, diastolic=80, heart_rate=70, spo2=85)

CHECKED_IN = a_visit(
    status=S.CHECKED_IN,
    checked_in_at=NINE,
    phq9_total=12,
    phq9_item9=0,
    baseline=reading(NINE + minutes(5), VitalsPhase.BEFORE),
    weight_kg=70,
)


def _failing(gate) -> list[str]:
    return [c.label for c in gate.checks if not c.ok]


# --- check-in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elsewhere", "allowed"),
    [(None, True), (("Chair 2", S.INFUSING), False), (("Chair 4", S.READY), False)],
)
def test_check_in_gate_one_visit_under_way_per_patient(elsewhere, allowed):
    gate = check_in_gate(visit=a_visit(open_elsewhere=elsewhere))
    assert gate.allowed is allowed
    if not allowed:
        assert elsewhere[0] in gate.reasons[0]


@pytest.mark.parametrize(
    ("occupant", "allowed"),
    [(None, True), (S.CHECKED_IN, False), (S.INFUSING, False), (S.RECOVERY, False)],
)
def test_check_in_gate_refuses_a_chair_another_patient_occupies(occupant, allowed):
    gate = check_in_gate(visit=a_visit(chair_name="Chair 3", chair_occupied_by=occupant))
    assert gate.allowed is allowed
    if not allowed:
        assert "Chair 3 is occupied" in gate.reasons[0]


def _steps(*statuses):
    return tuple(TimelineStep(status=s, at=NINE, staff_id=1, reason=None) for s in statuses)


@pytest.mark.parametrize(
    ("status", "steps", "into"),
    [
        (S.DISCHARGED, _steps(S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY, S.DISCHARGED),
         S.READY),
        (S.CANCELLED, _steps(S.CHECKED_IN, S.CANCELLED), S.CHECKED_IN),
        (S.CANCELLED, _steps(S.CANCELLED), None),
        (S.NO_SHOW, _steps(S.NO_SHOW), None),
        (S.INFUSING, _steps(S.CHECKED_IN, S.INFUSING), None),
    ],
)  # fmt: skip
def test_reopened_into_names_the_open_status_a_correction_returns_to(status, steps, into):
    assert reopened_into(a_visit(status=status, timeline=steps)) == into


@pytest.mark.parametrize(
    ("elsewhere", "occupant", "reason"),
    [
        (("Chair 2", S.CHECKED_IN), None, "already checked in in Chair 2"),
        (None, S.INFUSING, "Chair 3 is occupied: another patient is receiving the dose there"),
        (None, S.CHECKED_IN, "Chair 3 is occupied: another patient is checked in there"),
    ],
)
def test_reopen_gate_holds_a_correction_to_the_check_in_rules(elsewhere, occupant, reason):
    visit = a_visit(status=S.DISCHARGED, chair_name="Chair 3", open_elsewhere=elsewhere,
                    chair_occupied_by=occupant)  # fmt: skip
    assert not reopen_gate(visit=visit).allowed
    assert reason in " ".join(reopen_gate(visit=visit).reasons)
    # Back to scheduled (a no-show, a cancel before check-in) is not under way: no checks.
    assert reopen_gate(visit=visit, into=S.SCHEDULED).allowed
    assert reopen_gate(visit=replace(visit, open_elsewhere=None, chair_occupied_by=None)).allowed


@pytest.mark.parametrize(
    ("occupant", "allowed"),
    [(None, True), (S.CHECKED_IN, True), (S.INFUSING, False), (S.READY, False)],
)
def test_start_refused_while_another_patient_is_in_the_chair(occupant, allowed):
    """Another patient only checked in for the chair is waiting, not in it: the dose may start."""
    visit = replace(CHECKED_IN, chair_name="Chair 3", chair_occupied_by=occupant)
    gate = start_gate(visit=visit, settings=SETTINGS, given_mg=35, weight_kg=70)
    assert gate.allowed is allowed
    assert start_checklist(visit=visit, settings=SETTINGS).checks[-1].ok is allowed
    if not allowed:
        assert "Chair 3 is occupied" in " ".join(gate.reasons)


# --- start ---------------------------------------------------------------------------------

START_CASES = [
    # (name, changes, start_gate keywords, failing check labels)
    ("all done", {}, {}, []),
    ("no PHQ-9", {"phq9_total": None}, {}, ["PHQ-9 and pre-infusion vitals taken at this visit"]),
    ("no vitals", {"baseline": None}, {}, ["PHQ-9 and pre-infusion vitals taken at this visit"]),
    ("under way elsewhere", {"open_elsewhere": ("Chair 3", S.RECOVERY)}, {},
     ["No other visit under way"]),
    ("second dose, nurse", {"doses_started_recently": 1}, {"same_day_reason": "Mis-click earlier"},
     ["A second dose within 24 h has a lead's reason"]),
    ("second dose, lead, no words", {"doses_started_recently": 1},
     {"same_day_reason": "\u200b", "staff_role": StaffRole.LEAD},
     ["A second dose within 24 h has a lead's reason"]),
    ("second dose, lead with reason", {"doses_started_recently": 1},
     {"same_day_reason": "Mis-click earlier, no dose", "staff_role": StaffRole.LEAD}, []),
    ("BP hold, no override", {"baseline": reading(NINE, VitalsPhase.BEFORE, HIGH)}, {},
     ["Pre-infusion vitals within the hold limits, or an override"]),
    ("BP hold, invisible override", {"baseline": reading(NINE, VitalsPhase.BEFORE, HIGH)},
     {"hold_override_reason": "\u200b\u202e"},
     ["Pre-infusion vitals within the hold limits, or an override"]),
    ("BP hold, overridden", {"baseline": reading(NINE, VitalsPhase.BEFORE, HIGH)},
     {"hold_override_reason": "Dr Patel approved"}, []),
    ("low SpO2 holds", {"baseline": reading(NINE, VitalsPhase.BEFORE, LOW_SPO2)}, {},
     ["Pre-infusion vitals within the hold limits, or an override"]),
    ("tenfold dose", {}, {"given_mg": 350}, ["Dose matches the plan"]),
    ("no weight for mg/kg", {"weight_kg": None}, {"weight_kg": None}, ["Dose matches the plan"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "keywords", "failing"),
    [case[1:] for case in START_CASES],
    ids=[case[0] for case in START_CASES],
)
def test_start_gate(changes, keywords, failing):
    visit = replace(CHECKED_IN, **changes)
    arguments = {"given_mg": 35, "weight_kg": visit.weight_kg, **keywords}
    gate = start_gate(visit=visit, settings=SETTINGS, **arguments)
    assert _failing(gate) == failing
    assert gate.allowed is (not failing)


def test_a_check_passed_by_a_reason_says_which_reason_whose_and_what_it_notes():
    """What the start form draws and the start write records comes from the check itself."""
    severe = Vitals(systolic=228, diastolic=128, heart_rate=96, spo2=97)
    visit = replace(CHECKED_IN, doses_started_recently=1,
                    baseline=reading(NINE, VitalsPhase.BEFORE, severe))  # fmt: skip
    checklist = start_checklist(visit=visit, settings=SETTINGS)
    second_dose, ceiling = (c.override for c in checklist.checks if c.override is not None)
    assert (second_dose.reason, second_dose.by_lead) == (OverrideReason.SECOND_DOSE, True)
    assert second_dose.field == "Lead's reason for a second dose within 24 h"
    assert second_dose.note == "second dose within 24 h"
    assert checklist.overrides(OverrideReason.HOLD) == (ceiling,)
    assert checklist.check(START_CEILING_CHECK).override is ceiling
    assert (ceiling.by_lead, ceiling.level, ceiling.covers) == (True, "danger", (BP_HOLD,))
    assert "(180/110)" in ceiling.message
    assert ceiling.note == "BP at or above the start ceiling, lead's reason"
    # The checks a patient's state passes carry none.
    assert all(
        c.override is None for c in start_checklist(visit=CHECKED_IN, settings=SETTINGS).checks
    )


def test_start_checklist_is_what_the_start_gate_checks_first():
    visit = replace(CHECKED_IN, phq9_total=None)
    checklist = start_checklist(visit=visit, settings=SETTINGS)
    gate = start_gate(visit=visit, settings=SETTINGS, given_mg=35, weight_kg=70)
    assert checklist.checks == gate.checks[: len(checklist.checks)]


DOSE_CASES = [
    # route, planned mg/kg, planned mg, given, weight, confirmed, previous weight, problem
    (Route.IV, 0.5, None, 35, 70, False, None, None),
    (Route.IV, 0.5, None, 38, 70, False, None, None),  # within 10%
    (Route.IV, 0.5, None, 40, 70, False, None, "Check the dose: 40 mg is 0.57 mg/kg"),
    (Route.IV, 0.5, None, 600, 70, False, None, "600 mg is not possible"),
    (Route.IV, 0.5, None, 35, 700, False, None, "700 kg is not possible"),
    (Route.IV, 0.5, None, None, 70, False, None, "Enter the dose given"),
    (Route.IV, 0.5, None, 80, 160, False, 70, "160 kg is 129% from the last recorded 70 kg"),
    (Route.IV, 0.5, None, 80, 160, True, 70, None),
    (Route.IV, 0.5, None, 36, 72, False, 70, None),  # 3% change needs no confirmation
    (Route.ESKETAMINE, None, 84, 84, None, False, None, None),
    (Route.ESKETAMINE, None, 84, 56, None, False, None, "33% from the plan of 84 mg"),
    (Route.ESKETAMINE, None, 84, 600, None, False, None, "600 mg is not possible"),
    (Route.ESKETAMINE, None, 84, 500, None, False, None, "495% from the plan"),
    (Route.ESKETAMINE, None, 84, 0.5, None, False, None, "not a number of devices"),
    (Route.LOZENGE, None, 100, 100, None, False, None, None),
    (Route.LOZENGE, None, 100, 1, None, False, None, "99% from the plan of 100 mg"),
    (Route.IV, None, None, 35, 70, False, None, "no planned dose"),
]


@pytest.mark.parametrize(
    ("route", "per_kg", "fixed", "given", "weight", "confirmed", "previous", "problem"),
    DOSE_CASES,
)
def test_every_dose_is_checked_against_its_plan(
    route, per_kg, fixed, given, weight, confirmed, previous, problem
):
    visit = replace(CHECKED_IN, route=route, dose_mg_per_kg=per_kg, dose_mg=fixed,
                    weight_kg=weight, previous_weight_kg=previous)  # fmt: skip
    problems = dose_problems(visit=visit, settings=SETTINGS, given_mg=given, weight_kg=weight,
                             weight_confirmed=confirmed)  # fmt: skip
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_dose_plan_explains_itself():
    assert dose_plan(visit=CHECKED_IN, weight_kg=70).explained == "0.5 mg/kg at 70 kg = 35 mg"
    esketamine = replace(CHECKED_IN, route=Route.ESKETAMINE, dose_mg_per_kg=None, dose_mg=56)
    assert dose_plan(visit=esketamine, weight_kg=None).explained == "56 mg (2 devices of 28 mg)"


# --- ready ---------------------------------------------------------------------------------

RECOVERING = replace(
    CHECKED_IN,
    status=S.RECOVERY,
    infusion_started_at=NINE + minutes(10),
    infusion_ended_at=NINE + minutes(50),
    latest=reading(NINE + minutes(85), VitalsPhase.AFTER),
)

READY_CASES = [
    # (name, changes, minutes after nine, steady, failing)
    ("all good", {}, 90, True, []),
    ("too early", {}, 70, True, ["Recovery of at least 30 min"]),
    ("not confirmed", {}, 90, None, ["Steady on feet and oriented (nurse confirms)"]),
    ("stale reading", {}, 240, True, ["Recovery vitals within the last 15 min"]),
    ("no recovery reading", {"latest": reading(NINE + minutes(40), VitalsPhase.DURING)}, 90, True,
     ["Recovery vitals within the last 15 min"]),
    ("danger", {"latest": reading(NINE + minutes(85), VitalsPhase.AFTER, LOW_SPO2)}, 90, True,
     ["No danger in the last vitals"]),
    ("not back to baseline",
     {"latest": reading(NINE + minutes(85), VitalsPhase.AFTER,
                        Vitals(systolic=160, diastolic=90, heart_rate=75, spo2=98))}, 90, True,
     ["Vitals within 20% of pre-infusion"]),
    ("side effects lingering", {"side_effects": (("dissociation", "moderate"),)}, 90, True,
     ["Side effects settled"]),
    ("mild side effects are fine", {"side_effects": (("nausea", "mild"),)}, 90, True, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "at", "steady", "failing"),
    [case[1:] for case in READY_CASES],
    ids=[case[0] for case in READY_CASES],
)
def test_ready_gate(changes, at, steady, failing):
    gate = ready_gate(visit=replace(RECOVERING, **changes), settings=SETTINGS,
                      now=NINE + minutes(at), steady_on_feet=steady)  # fmt: skip
    assert _failing(gate) == failing


def test_ready_gate_says_how_long_is_left():
    gate = ready_gate(visit=RECOVERING, settings=SETTINGS, now=NINE + minutes(62),
                      steady_on_feet=True)  # fmt: skip
    assert "12 of the 30 minutes of recovery this route needs; ready in 18 min" in gate.reasons[0]


def test_esketamine_observation_counts_from_the_first_device():
    esketamine = replace(RECOVERING, route=Route.ESKETAMINE, dose_mg_per_kg=None, dose_mg=56,
                         latest=reading(NINE + minutes(128), VitalsPhase.AFTER))  # fmt: skip
    # Ten minutes of devices, then 120 from the first device (09:10): ready at 11:10.
    early = ready_gate(visit=esketamine, settings=SETTINGS, now=NINE + minutes(129),
                       steady_on_feet=True)  # fmt: skip
    assert _failing(early) == ["Observation of at least 120 min"]
    on_time = ready_gate(visit=esketamine, settings=SETTINGS, now=NINE + minutes(130),
                         steady_on_feet=True)  # fmt: skip
    assert on_time.allowed


# --- discharge -----------------------------------------------------------------------------

RIDE = RideSnapshot(driver_name="Jo", driver_phone=None, relationship="partner",
                    expected_pickup_at=None, arrived_at=None, version=1)  # fmt: skip
ARRIVED = replace(RIDE, arrived_at=NINE + minutes(100), version=2)


@pytest.mark.parametrize(
    ("ride", "exception", "reason", "allowed"),
    [
        (None, None, None, False),
        (RIDE, None, None, False),
        (ARRIVED, None, None, True),
        (None, EscortException.PERSON_COMING_LATER, None, False),
        (None, EscortException.PERSON_COMING_LATER, "\u200b", False),
        (None, EscortException.PERSON_COMING_LATER, "Her brother Sam, at 17:30", True),
        # The lead's approval names the lead (test below), not only in the reason's words.
        (RIDE, EscortException.LEAD_APPROVED, "Lee Park approved a taxi with a carer", False),
        # With the escort here there is nothing to make an exception for.
        (ARRIVED, EscortException.LEAD_APPROVED, "Dr Patel approved", False),
    ],
)
def test_discharge_gate_needs_an_escort_or_a_recorded_alternative(ride, exception, reason,
                                                                  allowed):  # fmt: skip
    visit = replace(RECOVERING, status=S.READY, ride=ride)
    gate = discharge_gate(visit=visit, settings=SETTINGS, escort_exception=exception,
                          reason=reason)  # fmt: skip
    assert gate.allowed is allowed


LEAD = StaffMember(id=3, name="Lee Park", role=StaffRole.LEAD)
NURSE = StaffMember(id=1, name="Dana Reyes", role=StaffRole.NURSE)


def test_a_leads_approval_names_a_lead_on_the_roster():
    visit = replace(RECOVERING, status=S.READY, ride=RIDE)
    approved = EscortException.LEAD_APPROVED
    why = "a taxi with her carer, who rides with her"
    assert discharge_gate(visit=visit, settings=SETTINGS, escort_exception=approved, reason=why,
                          approving_lead=LEAD).allowed  # fmt: skip
    for nobody in (None, NURSE):
        gate = discharge_gate(visit=visit, settings=SETTINGS, escort_exception=approved, reason=why,
                              approving_lead=nobody)  # fmt: skip
        assert not gate.allowed
        assert any("name the clinic lead who approved" in r for r in gate.reasons)


@pytest.mark.parametrize("reason", ["abc", "ok fine", "lead said"])
def test_an_escort_exceptions_reason_is_more_than_a_word(reason):
    visit = replace(RECOVERING, status=S.READY, ride=None)
    for exception, lead in ((EscortException.PERSON_COMING_LATER, None),
                            (EscortException.LEAD_APPROVED, LEAD)):  # fmt: skip
        gate = discharge_gate(visit=visit, settings=SETTINGS, escort_exception=exception,
                              reason=reason, approving_lead=lead)  # fmt: skip
        assert not gate.allowed
        assert f"at least {MIN_ACCOUNT_LETTERS} letters" in " ".join(gate.reasons)


def test_reasons_read_as_sentences():
    assert as_sentences(["record a PHQ-9", "Done."]) == "Record a PHQ-9. Done."


ALARMING = Vitals(systolic=200, diastolic=120, heart_rate=130, spo2=85)
READY_TO_GO = replace(RECOVERING, status=S.READY, ready_at=NINE + minutes(90), ride=ARRIVED)


@pytest.mark.parametrize(
    ("changes", "failing", "words"),
    [
        ({}, [], ""),
        (
            {"latest": reading(NINE + minutes(95), VitalsPhase.AFTER, ALARMING)},
            ["No danger in the vitals since ready"],
            "BP 200/120",
        ),
        (
            {"side_effects": (("nausea", "severe"),)},
            ["No moderate or severe side effect since ready"],
            "nausea (severe)",
        ),
        (
            {"side_effects": (("light_headedness", "moderate"),)},
            ["No moderate or severe side effect since ready"],
            "light-headedness (moderate)",
        ),
        # Cleared by the nurse: a newer calm reading, the effect recorded again as mild.
        (
            {
                "latest": reading(NINE + minutes(99), VitalsPhase.AFTER),
                "side_effects": (("nausea", "mild"),),
            },
            [],
            "",
        ),
    ],
)
def test_discharge_gate_refuses_what_was_recorded_after_ready(changes, failing, words):
    """Ready, then alarming vitals or a severe side effect: the arrived escort is not enough."""
    gate = discharge_gate(visit=replace(READY_TO_GO, **changes), settings=SETTINGS)
    assert _failing(gate) == failing
    assert words in " ".join(gate.reasons)
