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

from sqlalchemy import func, update
from sqlmodel import Session, select

from ketadash.clock import local_day_bounds, utc_now, whole_minutes_between
from ketadash.db import write_session
from ketadash.models import (
    Instrument,
    OutcomeScore,
    Ride,
    Severity,
    SideEffect,
    SideEffectObservation,
    Site,
    Staff,
    StaffRole,
    StatusChange,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.vitals import (
    Alert,
    Vitals,
    back_to_baseline,
    check_physiological,
    start_holds,
    vitals_alerts,
)
from ketadash.vocabulary import (
    CLINICAL_STEPS,
    CLINICIANS,
    IN_WORDS,
    STEP_INTO,
    TRANSITIONS,
    Step,
    Transition,
)

# Bounds of what can be typed, not clinical limits: past them it is a slip of the keyboard.
MAX_DOSE_MG = 500
MIN_WEIGHT_KG, MAX_WEIGHT_KG = 25, 300


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


def allowed_steps(status: S | str) -> list[Step]:
    """The steps the state machine allows from ``status``, in lifecycle order."""
    return [t.step for t in TRANSITIONS.values() if S(status) in t.sources]


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
    session = db.get(TreatmentSession, session_id)
    if session is None:
        raise SessionNotFound(f"Session {session_id} does not exist (was it removed?).")
    return session


def _require_staff(db: Session, staff_id: int | None) -> Staff:
    staff = db.get(Staff, staff_id) if staff_id is not None else None
    if staff is None:
        raise LifecycleError("Choose who you are (Acting as) before changing a session.")
    return staff


def _require_clinician(staff: Staff, what: str) -> None:
    if StaffRole(staff.role) not in CLINICIANS:
        raise StepNotAllowed(
            f"{what}: only a nurse or a clinic lead can do this ({staff.name} is "
            f"{StaffRole(staff.role).value.replace('_', ' ')})."
        )


def _site_settings(db: Session, site_id: int) -> tuple[ClinicSettings, str]:
    site = db.get(Site, site_id)
    return load_clinic_settings(db=db, site_id=site_id), site.time_zone


def _vitals_of(reading: VitalsReading | None) -> Vitals | None:
    if reading is None:
        return None
    return Vitals(
        systolic=reading.systolic,
        diastolic=reading.diastolic,
        heart_rate=reading.heart_rate,
        spo2=reading.spo2,
    )


def _latest_vitals(
    db: Session, session_id: int, phase: VitalsPhase, *, since: datetime | None = None
) -> VitalsReading | None:
    query = select(VitalsReading).where(
        VitalsReading.session_id == session_id, VitalsReading.phase == phase
    )
    if since is not None:
        query = query.where(VitalsReading.taken_at >= since)
    return db.exec(query.order_by(VitalsReading.taken_at.desc()).limit(1)).first()


def _phq9_today(db: Session, session: TreatmentSession, day_start: datetime) -> OutcomeScore | None:
    return db.exec(
        select(OutcomeScore)
        .where(
            OutcomeScore.patient_id == session.patient_id,
            OutcomeScore.instrument == Instrument.PHQ9,
            OutcomeScore.taken_at >= day_start,
        )
        .order_by(OutcomeScore.taken_at.desc())
        .limit(1)
    ).first()


def _guard_start(
    db: Session,
    session: TreatmentSession,
    *,
    now: datetime,
    hold_override_reason: str | None,
) -> ClinicSettings:
    """Refuse the start unless today's checks are done; returns the site's settings."""
    settings, time_zone = _site_settings(db, session.site_id)
    day_start, _ = local_day_bounds(now.astimezone(_zone(time_zone)).date(), time_zone)
    missing = []
    if _phq9_today(db, session, day_start) is None:
        missing.append("a PHQ-9")
    before = _latest_vitals(db, session.id, VitalsPhase.BEFORE, since=day_start)
    if before is None:
        missing.append("pre-infusion vitals")
    if missing:
        raise StepNotAllowed(
            f"Cannot start the dose: record {' and '.join(missing)} from today first."
        )
    holds = start_holds(_vitals_of(before), settings)
    if holds and not (hold_override_reason or "").strip():
        raise StartHeld(
            f"Dose on hold: {'; '.join(holds)}. Recheck after rest, or record an override "
            "with the reason (e.g. the physician approved) to start anyway."
        )
    return settings


def _checked_dose(
    session: TreatmentSession,
    *,
    dose_mg: float | None,
    weight_kg: float | None,
    settings: ClinicSettings,
) -> dict:
    """The dose columns to store at the start, once the dose given is checked against the plan."""
    if dose_mg is None:
        raise StepNotAllowed("Enter the dose given, in mg, before starting.")
    if not 0 < dose_mg <= MAX_DOSE_MG:
        raise StepNotAllowed(f"A dose of {dose_mg:g} mg is not possible; check it and retype.")
    weight = weight_kg if weight_kg is not None else session.weight_kg
    if weight is not None and not MIN_WEIGHT_KG <= weight <= MAX_WEIGHT_KG:
        raise StepNotAllowed(f"A weight of {weight:g} kg is not possible; check it and retype.")
    per_kg = session.dose_mg_per_kg
    if per_kg:
        if weight is None:
            raise StepNotAllowed(
                f"Enter today's weight: the dose is planned as {per_kg:g} mg/kg and is checked "
                "against it."
            )
        planned = per_kg * weight
        off = abs(dose_mg - planned) / planned * 100
        if off > settings.dose_tolerance_percent:
            raise StepNotAllowed(
                f"Check the dose: {dose_mg:g} mg is {dose_mg / weight:.2f} mg/kg at {weight:g} kg, "
                f"but the plan is {per_kg:g} mg/kg ({planned:.1f} mg, ±"
                f"{settings.dose_tolerance_percent}%). Nothing was started."
            )
    return {"dose_mg": dose_mg, "weight_kg": weight}


def _guard_ready(db: Session, session: TreatmentSession, *, now: datetime) -> None:
    settings, _ = _site_settings(db, session.site_id)
    minimum = settings.min_recovery_minutes(session.route)
    in_recovery = whole_minutes_between(session.infusion_ended_at, now)
    if in_recovery < minimum:
        raise StepNotAllowed(
            f"Too early: {in_recovery} of the {minimum} minutes of recovery this route needs. "
            f"Ready in {minimum - in_recovery} min."
        )
    after = _latest_vitals(db, session.id, VitalsPhase.AFTER)
    if after is None or after.taken_at < session.infusion_ended_at:
        raise StepNotAllowed("Record a set of recovery vitals before marking ready.")
    dangers = [
        a
        for a in vitals_alerts(_vitals_of(after), phase=VitalsPhase.AFTER, settings=settings)
        if a.level == "danger"
    ]
    if dangers:
        raise StepNotAllowed(
            "Not ready: the last recovery vitals show "
            + "; ".join(a.what for a in dangers)
            + ". Recheck later."
        )
    baseline = _latest_vitals(db, session.id, VitalsPhase.BEFORE)
    if baseline is not None:
        ok, off = back_to_baseline(
            _vitals_of(after),
            _vitals_of(baseline),
            within_percent=settings.discharge_vitals_within_percent,
        )
        if not ok:
            raise StepNotAllowed(
                "Vitals are not back to baseline yet: " + "; ".join(off) + ". Recheck later."
            )


def _guard_discharge(db: Session, session: TreatmentSession) -> None:
    ride = db.exec(select(Ride).where(Ride.session_id == session.id)).first()
    if ride is None or ride.arrived_at is None:
        raise StepNotAllowed(
            "Cannot discharge: no adult has been recorded as arrived to take the patient home. "
            "Record the ride's arrival first (no driving for 12–24 h)."
        )


def _zone(time_zone: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(time_zone)


# --- writing a step ----------------------------------------------------------------


def _apply(
    db: Session,
    session: TreatmentSession,
    *,
    expected_version: int,
    target: S,
    values: dict,
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
            TreatmentSession.id == session.id,
            TreatmentSession.version == expected_version,
        )
        .values(status=target, version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise _changed_meanwhile(db, session.id)
    db.add(
        StatusChange(
            session_id=session.id,
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
        session_id=session.id,
        from_status=S(session.status),
        to_status=target,
        version=expected_version + 1,
        at=now,
    )


def _changed_meanwhile(db: Session, session_id: int) -> SessionChanged:
    db.expire_all()
    current = db.get(TreatmentSession, session_id)
    last = db.exec(
        select(StatusChange, Staff.name)
        .join(Staff, Staff.id == StatusChange.staff_id, isouter=True)
        .where(StatusChange.session_id == session_id)
        .order_by(StatusChange.version.desc())
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
        raise _changed_meanwhile(db, session.id)


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
    hold_override_reason: str | None = None,
) -> StepResult:
    """Move a session one step along; returns what changed or raises a LifecycleError.

    ``expected_version`` is the version the nurse was looking at. Starting a dose
    needs today's PHQ-9 and pre-infusion vitals and records ``dose_mg``, checked
    against the planned mg/kg at ``weight_kg`` (or the weight already on the session);
    vitals that hold the dose need ``hold_override_reason``. Clinical steps need a
    nurse or a lead. Cancel and no-show need a ``reason``. All or nothing: on any
    error no row is written.
    """
    now = now or utc_now()
    step = Step(step)
    with write_session(url) as db:
        staff = _require_staff(db, staff_id)
        session = _load_for_change(db, session_id)
        _check_version(db, session, expected_version)
        transition = check_transition(step, session.status)
        if step in CLINICAL_STEPS:
            _require_clinician(staff, transition.label)
        if transition.needs_reason and not (reason or "").strip():
            raise LifecycleError(f"{transition.label} needs a reason.")
        values: dict = {transition.stamp: now}
        if step == Step.START_INFUSION:
            settings = _guard_start(db, session, now=now, hold_override_reason=hold_override_reason)
            values |= _checked_dose(
                session, dose_mg=dose_mg, weight_kg=weight_kg, settings=settings
            )
            if (hold_override_reason or "").strip():
                values["hold_override_reason"] = hold_override_reason.strip()
                reason = reason or f"BP hold overridden: {hold_override_reason.strip()}"
        elif step == Step.MARK_READY:
            _guard_ready(db, session, now=now)
        elif step == Step.DISCHARGE:
            _guard_discharge(db, session)
        elif step in (Step.CANCEL, Step.NO_SHOW):
            values["close_reason"] = reason.strip()
        return _apply(
            db,
            session,
            expected_version=expected_version,
            target=transition.target,
            values=values,
            staff_id=staff_id,
            now=now,
            reason=reason.strip() if reason else None,
        )


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
    step taken back is cleared so timers and cycle times stay true.
    """
    now = now or utc_now()
    if not (reason or "").strip():
        raise LifecycleError("Say why the step is being taken back.")
    with write_session(url) as db:
        staff = _require_staff(db, staff_id)
        session = _load_for_change(db, session_id)
        _check_version(db, session, expected_version)
        status = S(session.status)
        if status == S.SCHEDULED:
            raise StepNotAllowed("Nothing to take back: the patient is not checked in yet.")
        if status in (S.CANCELLED, S.NO_SHOW):
            previous = db.exec(
                select(StatusChange.from_status)
                .where(StatusChange.session_id == session_id, StatusChange.to_status == status)
                .order_by(StatusChange.version.desc())
                .limit(1)
            ).first()
            target = S(previous or S.SCHEDULED)
            values = {"closed_at": None, "close_reason": None}
        else:
            undone = STEP_INTO[status]
            if undone.step in CLINICAL_STEPS:
                _require_clinician(staff, f"Taking back “{undone.label}”")
            target = S(next(iter(undone.sources)))
            values = {undone.stamp: None}
            if status == S.INFUSING:
                values["hold_override_reason"] = None
        return _apply(
            db,
            session,
            expected_version=expected_version,
            target=target,
            values=values,
            staff_id=staff_id,
            now=now,
            reason=reason.strip(),
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
    now = now or utc_now()
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
        settings, _ = _site_settings(db, session.site_id)
        return VitalsRecorded(
            reading_id=reading.id,
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
    now = now or utc_now()
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
    now: datetime | None = None,
) -> Phq9Recorded:
    """Store the PHQ-9 taken before the dose; flags item 9 at the clinic's threshold."""
    if not 0 <= total <= 27:
        raise ScoreRejected(f"A PHQ-9 total is 0–27; {total} is not possible. Nothing was saved.")
    if not 0 <= item9 <= 3:
        raise ScoreRejected(f"PHQ-9 item 9 is 0–3; {item9} is not possible. Nothing was saved.")
    if item9 > total:
        raise ScoreRejected("Item 9 cannot be more than the total. Nothing was saved.")
    now = now or utc_now()
    with write_session(url) as db:
        _require_staff(db, staff_id)
        session = _observable(db, session_id, "a PHQ-9")
        score = OutcomeScore(
            patient_id=session.patient_id,
            session_id=session_id,
            instrument=Instrument.PHQ9,
            taken_at=now,
            total=total,
            item9=item9,
            staff_id=staff_id,
        )
        db.add(score)
        db.flush()
        settings, _ = _site_settings(db, session.site_id)
        return Phq9Recorded(
            score_id=score.id,
            total=total,
            item9=item9,
            item9_flagged=item9 >= settings.phq9_item9_flag_at,
        )


class RideChanged(SessionChanged):
    """Another station saved the ride first; carries the session's state."""


def record_ride(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    driver_name: str,
    expected_ride_version: int | None,
    driver_phone: str | None = None,
    relationship: str | None = None,
    expected_pickup_at: datetime | None = None,
    arrived: bool = False,
    now: datetime | None = None,
) -> int:
    """Record (or update) who takes the patient home, and whether they have arrived.

    Kept for its callers: a thin wrapper over ``ketadash.rides.arrange_ride``, which
    also writes the ride's history. ``expected_ride_version`` is the version of the
    ride the nurse saw (None: no ride yet). If another station saved the ride
    meanwhile, RideChanged is raised and nothing is written; returns the ride's new
    version.
    """
    from ketadash.rides import arrange_ride

    return arrange_ride(
        url=url,
        session_id=session_id,
        staff_id=staff_id,
        expected_ride_version=expected_ride_version,
        driver_name=driver_name,
        driver_phone=driver_phone,
        relationship=relationship,
        expected_pickup_at=expected_pickup_at,
        arrived=arrived,
        now=now,
    ).version


def history_agrees(*, db: Session, session_id: int) -> bool:
    """True when the session row's state and version match its status history."""
    session = db.get(TreatmentSession, session_id)
    count, last = db.exec(
        select(func.count(StatusChange.id), func.max(StatusChange.version)).where(
            StatusChange.session_id == session_id
        )
    ).one()
    if count == 0:
        return session.version == 1 and session.status == S.SCHEDULED
    latest = db.exec(
        select(StatusChange.to_status).where(
            StatusChange.session_id == session_id, StatusChange.version == last
        )
    ).one()
    return session.version == count + 1 == last and S(latest) == S(session.status)
