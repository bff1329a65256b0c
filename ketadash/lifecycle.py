"""The session lifecycle: one state machine, and every write that moves a session.

scheduled → checked in → infusing → recovery → ready for discharge → discharged,
with cancelled and no-show as exits before the dose. Every step is checked here
and nowhere else, written together with its status-history row in one
transaction, and guarded by the session's ``version``: a station that acts on a
session another station has just changed is told so, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from ketadash.clock import FutureMoment, refuse_future, utc_now
from ketadash.db import ROW_LOCK, rows_matched, write_session
from ketadash.gates import (
    DOSE_CHECK,
    HOLD_CHECK,
    Gate,
    OverrideReason,
    as_sentences,
    check_in_gate,
    discharge_gate,
    ready_gate,
    reopen_gate,
    start_gate,
)
from ketadash.limits import phq9_problem
from ketadash.models import (
    Chair,
    EscortException,
    Instrument,
    OutcomeScore,
    Ride,
    Severity,
    SideEffect,
    SideEffectObservation,
    Staff,
    StaffRole,
    StatusChange,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
    stored_id,
)
from ketadash.models import SessionStatus as S
from ketadash.rules import item9_answer, item9_flagged, weight_change_percent
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.staff import StaffMember
from ketadash.text import TextRejected, optional_reason, reason_text
from ketadash.visits import Visit, hold_patients_visits, load_visit
from ketadash.vitals import Alert, Vitals, check_physiological, vitals_alerts
from ketadash.vocabulary import (
    CLINICAL_STEPS,
    CLINICIANS,
    CLOSED_STATUSES,
    IN_WORDS,
    OPEN_STATUSES,
    STEP_INTO,
    TRANSITIONS,
    Step,
    Transition,
    allowed_steps,
)

# --- errors a nurse reads ---------------------------------------------------------


class LifecycleError(Exception):
    """A step refused; the message says why in the clinic's words. Nothing was written."""


class SessionNotFound(LifecycleError):
    pass


class StepNotAllowed(LifecycleError):
    pass


class StartHeld(LifecycleError):
    """Pre-infusion vitals hold the dose (blood pressure, SpO2) and no override was recorded."""


class SessionChanged(LifecycleError):
    """Another station changed the session first; carries the state it is in now."""

    def __init__(self, message: str, *, status: S, version: int) -> None:
        super().__init__(message)
        self.status = status
        self.version = version


def check_transition(step: Step | str, status: S | str) -> Transition:
    """The transition for ``step`` from ``status``; raises StepNotAllowed when illegal."""
    transition = TRANSITIONS[Step(step)]
    status = S(status)
    if status not in transition.sources:
        allowed = ", ".join(TRANSITIONS[s].label for s in allowed_steps(status)) or "nothing"
        raise StepNotAllowed(
            f"Cannot {transition.label.lower()}: the patient is {IN_WORDS[status]}. "
            f"Possible now: {allowed}."
        )
    return transition


@dataclass(frozen=True, kw_only=True)
class StepResult:
    session_id: int
    from_status: S
    to_status: S
    version: int
    at: datetime


# --- reading what a step depends on ------------------------------------------------


def _load_for_change(db: Session, session_id: int) -> TreatmentSession:
    """The session's row, held until the transaction ends (``SELECT ... FOR NO KEY
    UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the whole database).

    Every write that decides on a session takes its row first (steps, readings, ride
    changes), so a decision and the change it depends on queue instead of both being
    made on what each read before the other wrote.
    """
    session = db.get(TreatmentSession, session_id, with_for_update=ROW_LOCK)
    if session is None:
        raise SessionNotFound(f"Session {session_id} does not exist (was it removed?).")
    return session


def _require_staff(db: Session, staff_id: int | None) -> Staff:
    staff = db.get(Staff, staff_id) if staff_id is not None else None
    if staff is None:
        raise LifecycleError("Sign in first: every change records who made it.")
    if not staff.active:
        # Taken off the roster while still signed in somewhere: the write says no.
        raise LifecycleError(
            f"{staff.name} is no longer on this clinic's staff list, so nothing was saved."
        )
    return staff


def _require_clinician(staff: Staff, what: str) -> None:
    if StaffRole(staff.role) not in CLINICIANS:
        raise StepNotAllowed(
            f"{what}: only a nurse or a clinic lead can do this ({staff.name} is "
            f"{StaffRole(staff.role).value.replace('_', ' ')})."
        )


def _site_settings(db: Session, site_id: int) -> ClinicSettings:
    return load_clinic_settings(db=db, site_id=site_id)


def _refuse(gate: Gate, what: str, *, error: type[LifecycleError] = StepNotAllowed) -> None:
    """Raise ``error`` with the gate's own reasons when it does not allow the step."""
    if not gate.allowed:
        raise error(f"{what}. {as_sentences(gate.reasons)} Nothing was changed.")


# The column each of the start's reasons is stored in.
OVERRIDE_COLUMNS = {
    OverrideReason.HOLD: "hold_override_reason",
    OverrideReason.SECOND_DOSE: "same_day_dose_reason",
}


def _start_values(
    visit: Visit,
    staff: Staff,
    settings: ClinicSettings,
    *,
    dose_mg: float | None,
    weight_kg: float | None,
    weight_confirmed: bool,
    hold_override_reason: str | None,
    same_day_reason: str | None,
    item9_acknowledgement: str | None,
) -> tuple[dict[str, Any], str | None]:
    """The columns a start stamps, once the start gate allows it; and the history reason.

    The gate is worked out once and refused in the nurse's order: what must stand before
    any dose first, then a hold without an override (StartHeld), then the dose as typed.
    Each reason that passed a check (``Check.override``) or a hold is stored in its column
    and noted in the history in the check's words, grouped by the reason.
    """
    weight = weight_kg if weight_kg is not None else visit.weight_kg
    gate = start_gate(
        visit=visit,
        settings=settings,
        given_mg=dose_mg,
        weight_kg=weight,
        weight_confirmed=weight_confirmed,
        hold_override_reason=hold_override_reason,
        same_day_reason=same_day_reason,
        staff_role=StaffRole(staff.role),
        item9_acknowledgement=item9_acknowledgement,
    )
    checklist = Gate(
        checks=tuple(c for c in gate.checks if c.label not in (HOLD_CHECK, DOSE_CHECK))
    )
    _refuse(checklist, "Cannot start the dose")
    hold_check = gate.check(HOLD_CHECK)
    if hold_check is not None and not hold_check.ok:
        raise StartHeld(
            f"Dose on hold: {'; '.join(gate.hold_reasons)}. Recheck after rest, or record an "
            "override with the reason in words (e.g. the physician approved) to start anyway."
        )
    _refuse(
        Gate(checks=tuple(c for c in gate.checks if c.label == DOSE_CHECK)), "Cannot start the dose"
    )
    values: dict[str, Any] = {"given_dose_mg": dose_mg, "weight_kg": weight}
    notes = []
    if item9_flagged(visit, settings):
        notes.append(
            f"PHQ-9 item 9 answered {item9_answer(visit)}: {optional_reason(item9_acknowledgement)}"
        )
    given = {
        OverrideReason.HOLD: optional_reason(hold_override_reason),
        OverrideReason.SECOND_DOSE: optional_reason(same_day_reason),
    }
    for kind, reason in given.items():
        notes.extend(_override_notes(gate, kind, reason))
        if gate.overrides(kind) or (kind is OverrideReason.HOLD and gate.holds):
            values[OVERRIDE_COLUMNS[kind]] = reason
    change = weight_change_percent(visit, weight)
    if change is not None and change > settings.weight_change_confirm_percent:
        notes.append(
            f"weight {weight:g} kg confirmed ({change:.0f}% from {visit.previous_weight_kg:g} kg)"
        )
    return values, "; ".join(notes) or None


def _override_notes(gate: Gate, kind: OverrideReason, reason: str | None) -> list[str]:
    """The history's notes for what ``reason`` passed: each check's override in its own
    words, then (for the hold's override) the holds no check's note already speaks for."""
    overrides = gate.overrides(kind)
    notes = [f"{override.note}: {reason}" for override in overrides]
    covered = {measure for override in overrides for measure in override.covers}
    holds = gate.holds if kind is OverrideReason.HOLD else ()
    held = [hold for hold in holds if hold.measure not in covered]
    if held:
        measures = " and ".join(hold.measure for hold in held)
        why = "; ".join(hold.reason for hold in held)
        notes.append(f"Pre-infusion {measures} hold overridden ({why}): {reason}")
    return notes


# --- writing a step ----------------------------------------------------------------


def _apply(
    db: Session,
    session: TreatmentSession,
    *,
    expected_version: int,
    target: S,
    values: dict[str, Any],
    staff_id: int,
    now: datetime,
    reason: str | None,
    is_correction: bool = False,
) -> StepResult:
    # The conditional UPDATE is the lock: only the station that saw the current
    # version can move the session, whatever the isolation level.
    result = db.execute(
        update(TreatmentSession)
        .where(
            col(TreatmentSession.id) == session.id,
            col(TreatmentSession.version) == expected_version,
        )
        .values(status=target, version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if rows_matched(result) != 1:
        raise _changed_meanwhile(db, stored_id(session))
    db.add(
        StatusChange(
            session_id=stored_id(session),
            version=expected_version + 1,
            from_status=session.status,
            to_status=target,
            changed_at=now,
            staff_id=staff_id,
            reason=reason,
            is_correction=is_correction,
        )
    )
    db.flush()
    return StepResult(
        session_id=stored_id(session),
        from_status=S(session.status),
        to_status=target,
        version=expected_version + 1,
        at=now,
    )


def _changed_meanwhile(db: Session, session_id: int) -> SessionChanged:
    db.expire_all()
    current = db.get(TreatmentSession, session_id)
    # Every caller holds the session's row (``_load_for_change``) until its transaction ends.
    assert current is not None, f"session {session_id} vanished while its row was held"
    last = db.exec(
        select(StatusChange, col(Staff.name))
        .join(Staff, col(Staff.id) == col(StatusChange.staff_id), isouter=True)
        .where(col(StatusChange.session_id) == session_id)
        .order_by(col(StatusChange.version).desc())
        .limit(1)
    ).first()
    who = last[1] if last and last[1] else "Another station"
    return SessionChanged(
        f"{who} changed this session while you were working: the patient is now "
        f"{IN_WORDS[S(current.status)]}. Nothing you entered was saved; check the board and "
        "try again if still needed.",
        status=S(current.status),
        version=current.version,
    )


def _check_version(db: Session, session: TreatmentSession, expected_version: int) -> None:
    if session.version != expected_version:
        raise _changed_meanwhile(db, stored_id(session))


def _moment(now: datetime | None, what: str) -> datetime:
    """``now`` (or the clock), refused when it lies in the future beyond clock skew."""
    if now is None:
        return utc_now()
    try:
        refuse_future(now, what=what)
    except FutureMoment as error:
        raise LifecycleError(str(error)) from error
    return now


def _visit(db: Session, session_id: int, now: datetime) -> Visit:
    visit = load_visit(db=db, session_id=session_id, now=now)
    if visit is None:
        raise SessionNotFound(f"Session {session_id} does not exist (was it removed?).")
    return visit


def _approving_lead(db: Session, staff_id: int | None, *, site_id: int) -> StaffMember | None:
    """The staff member named as approving, when active at the site; the gate judges the role."""
    if staff_id is None:
        return None
    named = db.get(Staff, staff_id)
    if named is None or not named.active or named.site_id not in (None, site_id):
        return None
    return StaffMember(id=stored_id(named), name=named.name, role=StaffRole(named.role))


def _reason(text: str | None, what: str) -> str:
    try:
        return reason_text(text, what=what)
    except TextRejected as error:
        raise LifecycleError(str(error)) from error


def take_step(
    *,
    url: str,
    session_id: int,
    step: Step | str,
    staff_id: int,
    expected_version: int,
    now: datetime | None = None,
    reason: str | None = None,
    dose_mg: float | None = None,
    weight_kg: float | None = None,
    weight_confirmed: bool = False,
    hold_override_reason: str | None = None,
    same_day_reason: str | None = None,
    item9_acknowledgement: str | None = None,
    steady_on_feet: bool | None = None,
    escort_exception: EscortException | str | None = None,
    approved_by_lead_id: int | None = None,
) -> StepResult:
    """Move a session one step along; returns what changed or raises a LifecycleError.

    ``expected_version`` is the version the nurse was looking at. Each step is
    checked by its gate (``ketadash.gates``) on the visit as it stands inside this
    transaction, and refused with the gate's own reasons: check-in (one visit under
    way per patient, one patient per chair), start (PHQ-9 and vitals since check-in,
    holds need ``hold_override_reason``, ``dose_mg`` given against the plan at ``weight_kg``,
    a weight far from the last needs ``weight_confirmed``, a second dose within
    ``second_dose_window_hours`` of another needs a lead and ``same_day_reason``, a
    positive PHQ-9 item 9 needs ``item9_acknowledgement`` naming the C-SSRS screen, a
    reading at or above the start ceiling needs a lead's ``hold_override_reason``), ready
    (``steady_on_feet`` confirmed by the nurse, recorded in the step's history) and
    discharge (an arrived escort, or ``escort_exception`` with a ``reason``; a lead's
    approval names the lead, ``approved_by_lead_id``, an active lead of the site). Clinical
    steps need a nurse or a lead; cancel and no-show need a reason in words. All or
    nothing: on any error no row is written.
    """
    now = _moment(now, "A step")
    step = Step(step)
    with write_session(url) as db:
        staff = _require_staff(db, staff_id)
        session = _load_for_change(db, session_id)
        _check_version(db, session, expected_version)
        transition = check_transition(step, session.status)
        if step in CLINICAL_STEPS:
            _require_clinician(staff, transition.label)
        if transition.needs_reason:
            reason = _reason(reason, transition.label)
        else:
            reason = optional_reason(reason)
        # Lock order, the same in every write: the session, its patient, its chair, its ride.
        hold_patients_visits(db=db, patient_id=session.patient_id)
        if step in (Step.CHECK_IN, Step.START_INFUSION) and session.chair_id is not None:
            # One chair, one patient: two patients into one chair at once queue here.
            db.execute(
                select(col(Chair.id))
                .where(col(Chair.id) == session.chair_id)
                .with_for_update(**ROW_LOCK)
            ).all()
        if step == Step.DISCHARGE:
            # The ride the discharge relies on is held too (a ride change takes the session's
            # row first, so this is belt and braces, never a second order of locks).
            db.execute(
                select(col(Ride.id))
                .where(col(Ride.session_id) == session_id)
                .with_for_update(**ROW_LOCK)
            ).all()
        visit = _visit(db, session_id, now)
        settings = _site_settings(db, session.site_id)
        values: dict[str, Any] = {transition.stamp: now}
        if step == Step.CHECK_IN:
            _refuse(check_in_gate(visit=visit), "Cannot check in")
        elif step == Step.START_INFUSION:
            started, notes = _start_values(
                visit,
                staff,
                settings,
                dose_mg=dose_mg,
                weight_kg=weight_kg,
                weight_confirmed=weight_confirmed,
                hold_override_reason=hold_override_reason,
                same_day_reason=same_day_reason,
                item9_acknowledgement=item9_acknowledgement,
            )
            values |= started
            reason = "; ".join(r for r in (reason, notes) if r) or None
        elif step == Step.MARK_READY:
            gate = ready_gate(
                visit=visit, settings=settings, now=now, steady_on_feet=steady_on_feet
            )
            _refuse(gate, "Not ready to go")
            steady = f"Steady on feet and oriented: confirmed by {staff.name}"
            reason = "; ".join(r for r in (reason, steady) if r)
        elif step == Step.DISCHARGE:
            lead = _approving_lead(db, approved_by_lead_id, site_id=session.site_id)
            gate = discharge_gate(
                visit=visit,
                settings=settings,
                escort_exception=escort_exception,
                reason=reason,
                approving_lead=lead,
            )
            _refuse(gate, "Cannot discharge")
            if escort_exception is not None:
                kind = EscortException(escort_exception)
                values["escort_exception"] = kind.value
                if kind is EscortException.LEAD_APPROVED:
                    # The gate refuses a lead's approval that names no lead (``_refuse`` above).
                    assert lead is not None, "discharge_gate allowed a lead's approval, no lead"
                    values["escort_exception_reason"] = f"Approved by {lead.name}: {reason}"
                    reason = f"Escort exception: {kind.label} (approved by {lead.name}). {reason}"
                else:
                    values["escort_exception_reason"] = reason
                    reason = f"Escort exception: {kind.label}. {reason}"
        elif step in (Step.CANCEL, Step.NO_SHOW):
            values["close_reason"] = reason
        return _apply(
            db,
            session,
            expected_version=expected_version,
            target=transition.target,
            values=values,
            staff_id=staff_id,
            now=now,
            reason=reason,
        )


# What taking a step back clears besides its stamp: what the step itself recorded.
CLEARED_BY_UNDO: dict[S, tuple[str, ...]] = {
    S.INFUSING: ("given_dose_mg", "hold_override_reason", "same_day_dose_reason"),
    S.DISCHARGED: ("escort_exception", "escort_exception_reason"),
}


def _refuse_reopening(db: Session, session: TreatmentSession, *, target: S, now: datetime) -> None:
    """Refuse, with the check-in's reasons, to put a closed visit under way again while the
    patient has another visit under way or another patient is checked in or in the chair.

    A closed visit holds no chair and is not under way: meanwhile its chair may have gone
    to the next patient, or the patient may have checked in for another visit. The chair
    is held after the patient (the order of every write), so a check-in into it queues.
    """
    if session.chair_id is not None:
        db.execute(
            select(col(Chair.id)).where(col(Chair.id) == session.chair_id).with_for_update()
        ).all()
    visit = _visit(db, stored_id(session), now)
    _refuse(reopen_gate(visit=visit, into=target), "Cannot put this visit back under way")


def undo_last_step(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_version: int,
    reason: str,
    now: datetime | None = None,
) -> StepResult:
    """Take back the step that put the session in its current state, with a reason.

    The correction is itself a history row (``is_correction``); the stamp of the
    step taken back and what it recorded are cleared (a start taken back restores
    the planned dose), so timers and cycle times stay true. Taking back a cancel after
    check-in or a discharge puts the visit under way again, so it is refused with the
    check-in's reasons (``gates.reopen_gate``) while the patient has another visit
    under way or another patient is checked in or in the chair.
    """
    now = _moment(now, "A correction")
    given = optional_reason(reason)
    if given is None:
        raise LifecycleError(
            "Say why the step is being taken back, in words (a few letters at least)."
        )
    with write_session(url) as db:
        staff = _require_staff(db, staff_id)
        session = _load_for_change(db, session_id)
        _check_version(db, session, expected_version)
        # A step taken back may put the visit under way again: the patient's visits queue.
        hold_patients_visits(db=db, patient_id=session.patient_id)
        status = S(session.status)
        if status == S.SCHEDULED:
            raise StepNotAllowed("Nothing to take back: the patient is not checked in yet.")
        if status in (S.CANCELLED, S.NO_SHOW):
            previous = db.exec(
                select(col(StatusChange.from_status))
                .where(
                    col(StatusChange.session_id) == session_id,
                    col(StatusChange.to_status) == status,
                )
                .order_by(col(StatusChange.version).desc())
                .limit(1)
            ).first()
            target = S(previous or S.SCHEDULED)
            values = {"closed_at": None, "close_reason": None}
        else:
            undone = STEP_INTO[status]
            if undone.step in CLINICAL_STEPS:
                _require_clinician(staff, f"Taking back “{undone.label}”")
            target = S(next(iter(undone.sources)))
            values = {undone.stamp: None} | dict.fromkeys(CLEARED_BY_UNDO.get(status, ()))
        if status in CLOSED_STATUSES and target in OPEN_STATUSES:
            _refuse_reopening(db, session, target=target, now=now)
        return _apply(
            db,
            session,
            expected_version=expected_version,
            target=target,
            values=values,
            staff_id=staff_id,
            now=now,
            reason=given,
            is_correction=True,
        )


# --- observations during a visit ------------------------------------------------------

PHASE_BY_STATUS = {
    S.CHECKED_IN: VitalsPhase.BEFORE,
    S.INFUSING: VitalsPhase.DURING,
    S.RECOVERY: VitalsPhase.AFTER,
    S.READY: VitalsPhase.AFTER,
}


def _observable(db: Session, session_id: int, what: str) -> TreatmentSession:
    session = _load_for_change(db, session_id)
    if S(session.status) not in PHASE_BY_STATUS:
        raise StepNotAllowed(
            f"Cannot record {what}: the patient is {IN_WORDS[S(session.status)]}."
            + (" Check them in first." if session.status == S.SCHEDULED else "")
        )
    return session


@dataclass(frozen=True, kw_only=True)
class VitalsRecorded:
    reading_id: int
    phase: VitalsPhase
    alerts: list[Alert]


def record_vitals(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    vitals: Vitals,
    now: datetime | None = None,
) -> VitalsRecorded:
    """Store a reading (phase from the session's state) and return the alerts it raises.

    An impossible reading raises VitalsRejected and stores nothing.
    """
    check_physiological(vitals)
    now = _moment(now, "Vitals")
    with write_session(url) as db:
        _require_clinician(_require_staff(db, staff_id), "Recording vitals")
        session = _observable(db, session_id, "vitals")
        phase = PHASE_BY_STATUS[S(session.status)]
        reading = VitalsReading(
            session_id=session_id,
            taken_at=now,
            phase=phase,
            staff_id=staff_id,
            systolic=vitals.systolic,
            diastolic=vitals.diastolic,
            heart_rate=vitals.heart_rate,
            spo2=vitals.spo2,
        )
        db.add(reading)
        db.flush()
        settings = _site_settings(db, session.site_id)
        return VitalsRecorded(
            reading_id=stored_id(reading),
            phase=phase,
            alerts=vitals_alerts(vitals, phase=phase, settings=settings),
        )


def record_side_effects(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    effects: dict[SideEffect, Severity],
    now: datetime | None = None,
) -> int:
    """Store what the nurse observed (severity per effect); returns how many were stored."""
    now = _moment(now, "Side effects")
    with write_session(url) as db:
        _require_clinician(_require_staff(db, staff_id), "Recording side effects")
        _observable(db, session_id, "side effects")
        for effect, severity in effects.items():
            db.add(
                SideEffectObservation(
                    session_id=session_id,
                    observed_at=now,
                    effect=SideEffect(effect),
                    severity=Severity(severity),
                    staff_id=staff_id,
                )
            )
        return len(effects)


class ScoreRejected(ValueError):
    """A questionnaire score outside its scale; nothing was stored."""


@dataclass(frozen=True, kw_only=True)
class Phq9Recorded:
    score_id: int
    total: int
    item9: int
    item9_flagged: bool


def record_phq9(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    total: int,
    item9: int,
    correction_reason: str | None = None,
    now: datetime | None = None,
) -> Phq9Recorded:
    """Store the PHQ-9 taken before the dose; flags item 9 at the clinic's threshold.

    A second PHQ-9 at the same visit (since its check-in) is a correction: it needs
    ``correction_reason`` in words, and both scores stay. The visit keeps the highest
    item 9 of its scores, so ``item9_flagged`` is the visit's flag after this score.
    """
    if (problem := phq9_problem(total=total, item9=item9)) is not None:
        raise ScoreRejected(f"{problem} Nothing was saved.")
    now = _moment(now, "A PHQ-9")
    with write_session(url) as db:
        _require_staff(db, staff_id)
        # Two stations saving at once: the second waits at the session's lock (taken by
        # _observable) for the first to commit, then sees its score, so it cannot add a
        # second one without a reason.
        session = _observable(db, session_id, "a PHQ-9")
        visit = _visit(db, session_id, now)
        reason = optional_reason(correction_reason)
        if visit.phq9_count and reason is None:
            raise ScoreRejected(
                f"This visit already has a PHQ-9 ({visit.phq9_total}, item 9: "
                f"{visit.phq9_item9}). A second one is a correction: a correction needs a "
                "reason in words (both scores are kept). Nothing was saved."
            )
        score = OutcomeScore(
            patient_id=session.patient_id,
            session_id=session_id,
            instrument=Instrument.PHQ9,
            taken_at=now,
            total=total,
            item9=item9,
            staff_id=staff_id,
            correction_reason=reason if visit.phq9_count else None,
        )
        db.add(score)
        db.flush()
        settings = _site_settings(db, session.site_id)
        highest = max(item9, item9_answer(visit) or 0)
        return Phq9Recorded(
            score_id=stored_id(score),
            total=total,
            item9=item9,
            item9_flagged=highest >= settings.phq9_item9_flag_at,
        )


class RideChanged(SessionChanged):
    """Another station saved the ride first; carries the session's state."""


def history_agrees(*, db: Session, session_id: int) -> bool:
    """True when the session row's state and version match its status history."""
    session = db.get(TreatmentSession, session_id)
    if session is None:
        raise SessionNotFound(f"Session {session_id} does not exist (was it removed?).")
    count, last = db.exec(
        select(func.count(col(StatusChange.id)), func.max(col(StatusChange.version))).where(
            col(StatusChange.session_id) == session_id
        )
    ).one()
    if count == 0:
        return session.version == 1 and session.status == S.SCHEDULED
    latest = db.exec(
        select(col(StatusChange.to_status)).where(
            col(StatusChange.session_id) == session_id, col(StatusChange.version) == last
        )
    ).one()
    return session.version == count + 1 == last and S(latest) == S(session.status)
