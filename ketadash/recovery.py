"""Recovery & rides for staff: who is recovering or waiting to go home, what still holds
them, and the discharge with its recorded alternatives.

The readiness checklist and the discharge rule belong to the gates
(``ketadash.gates``: ``ready_gate`` and ``discharge_gate``), which the lead
developer is writing at the same time. Until they land, the two functions in the
"gates adapter" section compute the same checks from what can be read today; the
lead wires the gates in there, in one place, and nothing else on the page changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlmodel import select

from ketadash.board import (
    BoardSession,
    load_board,
    recovery_timer,
    session_alerts,
    waiting_timer,
)
from ketadash.clock import local_day_bounds, local_today, utc_now, whole_minutes_between
from ketadash.db import read_session, write_session
from ketadash.lifecycle import (
    LifecycleError,
    StepResult,
    _apply,
    _check_version,
    _load_for_change,
    _require_clinician,
    _require_staff,
    check_transition,
    take_step,
)
from ketadash.models import (
    Chair,
    EscortException,
    Patient,
    RideState,
    Route,
    Site,
    Staff,
    StatusChange,
    TreatmentSession,
    VitalsPhase,
)
from ketadash.models import SessionStatus as S
from ketadash.rides import RideFacts, RideVisitFacts, ride_alerts, ride_state, rides_of
from ketadash.settings import ClinicSettings
from ketadash.text import optional_reason
from ketadash.vitals import Alert, back_to_baseline
from ketadash.vocabulary import TRANSITIONS, Step

# --- the gates' shape (as ketadash.gates declares it) ----------------------------------------


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of a checklist: what is checked, whether it passes, and the detail."""

    label: str
    ok: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Gate:
    """Whether a step may be taken now, why not, and every check behind the answer."""

    allowed: bool
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]


def _gate(checks: list[Check]) -> Gate:
    failed = tuple(f"{c.label}: {c.detail}" for c in checks if not c.ok)
    return Gate(allowed=not failed, reasons=failed, checks=tuple(checks))


# --- what the page reads ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecoveryEntry:
    """One patient on the Recovery page, at a moment."""

    session: BoardSession
    ride: RideFacts | None
    minutes_in_recovery: int | None
    minimum_minutes: int
    remaining_minutes: int | None
    waiting_minutes: int | None
    # Esketamine: the REMS observation clock counts from the first device.
    observation_minutes: int | None
    ready: Gate
    discharge: Gate
    alerts: tuple[Alert, ...]

    @property
    def ride_state(self) -> RideState:
        return ride_state(self.ride)


@dataclass(frozen=True, kw_only=True)
class EscortExceptionDischarge:
    """A patient who went home without an arrived adult escort: listed for the lead."""

    session_id: int
    patient_name: str
    chair_name: str
    discharged_at: datetime
    exception: EscortException
    reason: str
    staff_name: str | None
    ride: RideFacts | None


@dataclass(frozen=True, kw_only=True)
class RecoveryView:
    site_id: int
    site_name: str
    time_zone: str
    closes_at: time | None
    settings: ClinicSettings
    read_at: datetime
    # In recovery or ready to go, longest in recovery first.
    recovering: tuple[RecoveryEntry, ...]
    # Today's other patients whose ride can be arranged ahead (expected, checked in, dosing).
    later: tuple[tuple[BoardSession, RideFacts | None], ...]
    escort_exceptions: tuple[EscortExceptionDischarge, ...]


def load_recovery(*, url: str, site_id: int, now: datetime) -> RecoveryView:
    """One site's recovery area and today's rides, as the Recovery page shows them."""
    day = None
    with read_session(url) as db:
        site = db.get(Site, site_id)
        if site is None:
            raise LookupError(f"There is no site {site_id}.")
        day = local_today(site.time_zone, now=now)
        time_zone, closes_at, name = site.time_zone, site.closes_at, site.name
    board = load_board(url=url, site_id=site_id, day=day)
    with read_session(url) as db:
        rides = rides_of(db=db, session_ids=[s.session_id for s in board.sessions])
    day_start, _ = local_day_bounds(day, time_zone)
    exceptions = escort_exception_discharges(url=url, site_id=site_id, since=day_start)
    entries = []
    later = []
    for session in board.sessions:
        ride = rides.get(session.session_id)
        if session.status in (S.RECOVERY, S.READY):
            entries.append(
                recovery_entry(
                    session=session,
                    ride=ride,
                    settings=board.settings,
                    time_zone=time_zone,
                    closes_at=closes_at,
                    now=now,
                )
            )
        elif session.status in (S.SCHEDULED, S.CHECKED_IN, S.INFUSING) and not session.earlier_day:
            later.append((session, ride))
    entries.sort(key=lambda e: (e.session.infusion_ended_at or now, e.session.chair_name))
    return RecoveryView(
        site_id=site_id,
        site_name=name,
        time_zone=time_zone,
        closes_at=closes_at,
        settings=board.settings,
        read_at=now,
        recovering=tuple(entries),
        later=tuple(later),
        escort_exceptions=tuple(exceptions),
    )


def recovery_entry(
    *,
    session: BoardSession,
    ride: RideFacts | None,
    settings: ClinicSettings,
    time_zone: str,
    closes_at: time | None,
    now: datetime,
) -> RecoveryEntry:
    """One patient's timers, checklist, discharge check and alerts at ``now`` (pure)."""
    recovery = recovery_timer(session, settings, now)
    waiting = waiting_timer(session, now)
    minimum = settings.min_recovery_minutes(session.route)
    observation = None
    if session.route == Route.ESKETAMINE and session.infusion_started_at is not None:
        observation = whole_minutes_between(
            session.infusion_started_at, session.ready_at or session.discharged_at or now
        )
    ready, discharge = recovery_gates(session=session, ride=ride, settings=settings, now=now)
    visit = RideVisitFacts(
        status=session.status, ready_at=session.ready_at, time_zone=time_zone, closes_at=closes_at
    )
    alerts = [
        *session_alerts(session, settings, now, time_zone=time_zone),
        *ride_alerts(ride=ride, visit=visit, settings=settings, now=now),
    ]
    return RecoveryEntry(
        session=session,
        ride=ride,
        minutes_in_recovery=recovery.minutes if recovery else None,
        minimum_minutes=minimum,
        remaining_minutes=max(0, minimum - recovery.minutes) if recovery else None,
        waiting_minutes=waiting.minutes if waiting else None,
        observation_minutes=observation,
        ready=ready,
        discharge=discharge,
        alerts=tuple(alerts),
    )


def escort_exception_discharges(
    *, url: str, site_id: int, since: datetime
) -> list[EscortExceptionDischarge]:
    """Discharges without an arrived adult escort at the site since ``since``, newest first."""
    t = TreatmentSession
    with read_session(url) as db:
        rows = db.exec(
            select(
                t.id,
                Patient.first_name,
                Patient.last_name,
                t.chair_id,
                t.discharged_at,
                t.escort_exception,
                t.escort_exception_reason,
            )
            .join(Patient, Patient.id == t.patient_id)
            .where(
                t.site_id == site_id,
                t.status == S.DISCHARGED,
                t.discharged_at >= since,
                t.escort_exception.is_not(None),
            )
            .order_by(t.discharged_at.desc())
        ).all()
        ids = [row[0] for row in rows]
        rides = rides_of(db=db, session_ids=ids)
        who = dict(
            db.exec(
                select(StatusChange.session_id, Staff.name)
                .join(Staff, Staff.id == StatusChange.staff_id)
                .where(StatusChange.session_id.in_(ids), StatusChange.to_status == S.DISCHARGED)
                .order_by(StatusChange.version)
            ).all()
        )
        chairs = dict(db.exec(select(Chair.id, Chair.name).where(Chair.site_id == site_id)).all())
    return [
        EscortExceptionDischarge(
            session_id=session_id,
            patient_name=f"{first} {last}",
            chair_name=chairs.get(chair_id, "No chair"),
            discharged_at=discharged_at,
            exception=EscortException(exception),
            reason=reason or "",
            staff_name=who.get(session_id),
            ride=rides.get(session_id),
        )
        for session_id, first, last, chair_id, discharged_at, exception, reason in rows
    ]


# --- the gates adapter: ketadash.gates is wired in here ------------------------------------------


def recovery_gates(
    *, session: BoardSession, ride: RideFacts | None, settings: ClinicSettings, now: datetime
) -> tuple[Gate, Gate]:
    """The ready gate and the discharge gate for one patient at ``now``.

    ADAPTER. When ``ketadash.gates`` lands this becomes::

        visit = <the Visit of session.session_id>
        return (gates.ready_gate(visit=visit, settings=settings, now=now),
                gates.discharge_gate(visit=visit, settings=settings, now=now))

    Until then it computes the checks the lifecycle's guards make, from the board's
    reading of the session, so the page shows what a write will enforce.
    """
    return (
        _interim_ready_gate(session=session, settings=settings, now=now),
        interim_discharge_gate(status=session.status, ride=ride),
    )


def discharge_patient(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_version: int,
    escort_exception: EscortException | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> StepResult:
    """Discharge: with an arrived adult, or with a recorded escort exception and its reason.

    ADAPTER. When the lifecycle accepts escort exceptions this becomes one call::

        return take_step(url=url, session_id=session_id, step=Step.DISCHARGE,
                         staff_id=staff_id, expected_version=expected_version, now=now,
                         escort_exception=escort_exception, reason=reason)

    Until then an exception is written here, with the same checks as the step (version,
    state, a nurse or a lead) and the escort rule below; never a silent bypass.
    """
    if escort_exception is None:
        return take_step(
            url=url,
            session_id=session_id,
            step=Step.DISCHARGE,
            staff_id=staff_id,
            expected_version=expected_version,
            now=now,
            reason=reason,
        )
    now = now or utc_now()
    with write_session(url) as db:
        staff = _require_staff(db, staff_id)
        session = _load_for_change(db, session_id)
        _check_version(db, session, expected_version)
        transition = check_transition(Step.DISCHARGE, session.status)
        _require_clinician(staff, transition.label)
        ride = rides_of(db=db, session_ids=[session_id]).get(session_id)
        gate = interim_discharge_gate(
            status=S(session.status), ride=ride, escort_exception=escort_exception, reason=reason
        )
        if not gate.allowed:
            raise LifecycleError("Cannot discharge: " + "; ".join(gate.reasons))
        why = optional_reason(reason)
        exception = EscortException(escort_exception)
        return _apply(
            db,
            session,
            expected_version=expected_version,
            target=TRANSITIONS[Step.DISCHARGE].target,
            values={
                "discharged_at": now,
                "escort_exception": exception.value,
                "escort_exception_reason": why,
            },
            staff_id=staff_id,
            now=now,
            reason=f"Escort exception: {exception.label}. {why}",
        )


# --- the interim rules (replaced by ketadash.gates) ----------------------------------------------


def _interim_ready_gate(*, session: BoardSession, settings: ClinicSettings, now: datetime) -> Gate:
    minimum = settings.min_recovery_minutes(session.route)
    recovery = recovery_timer(session, settings, now)
    minutes = recovery.minutes if recovery else 0
    checks = [
        Check(
            label="Minimum recovery",
            ok=recovery is not None and minutes >= minimum,
            detail=f"{minutes} of {minimum} min ({session.route.label})",
        )
    ]
    latest, baseline = session.latest, session.baseline
    fresh = (
        latest is not None
        and latest.phase == VitalsPhase.AFTER
        and session.infusion_ended_at is not None
        and latest.taken_at >= session.infusion_ended_at
        and now - latest.taken_at <= timedelta(minutes=settings.vitals_every_after_minutes)
    )
    if not fresh:
        vitals_check = Check(
            label="Vitals back to baseline",
            ok=False,
            detail=f"no recovery vitals in the last {settings.vitals_every_after_minutes} min",
        )
    elif baseline is None:
        vitals_check = Check(
            label="Vitals back to baseline", ok=True, detail="no pre-infusion vitals to compare"
        )
    else:
        ok, off = back_to_baseline(
            latest.vitals,
            baseline.vitals,
            within_percent=settings.discharge_vitals_within_percent,
        )
        vitals_check = Check(
            label="Vitals back to baseline",
            ok=ok,
            detail="; ".join(off)
            if off
            else f"within {settings.discharge_vitals_within_percent}% of pre-infusion",
        )
    checks.append(vitals_check)
    alerts = [
        a
        for a in session_alerts(session, settings, now, time_zone="UTC")
        if not a.what.startswith("Left open")
    ]
    checks.append(
        Check(
            label="No open alert",
            ok=not alerts,
            detail="; ".join(a.what for a in alerts) if alerts else "none",
        )
    )
    effects = ", ".join(
        f"{effect.replace('_', ' ')} ({sev})" for effect, sev in session.side_effects
    )
    checks.append(
        Check(
            label="Side effects resolved",
            ok=not session.side_effects,
            detail=effects or "none recorded now",
        )
    )
    return _gate(checks)


def interim_discharge_gate(
    *,
    status: S,
    ride: RideFacts | None,
    escort_exception: EscortException | None = None,
    reason: str | None = None,
) -> Gate:
    """The discharge rule: ready to go, and an adult has arrived, or a recorded exception.

    An exception (a named person coming later, the lead approved another arrangement)
    needs a reason in words; with an arrived ride no exception is taken.
    """
    checks = [
        Check(
            label="Ready to go",
            ok=S(status) == S.READY,
            detail="marked ready" if S(status) == S.READY else f"now {S(status).label.lower()}",
        )
    ]
    arrived = ride_state(ride) is RideState.ARRIVED
    if escort_exception is None:
        checks.append(
            Check(
                label="Adult escort arrived",
                ok=arrived,
                detail=(
                    f"{ride.driver_name} is here"
                    if arrived
                    else "nobody recorded as arrived: record the ride's arrival, or an escort "
                    "exception with its reason"
                ),
            )
        )
    elif arrived:
        checks.append(
            Check(
                label="Escort exception",
                ok=False,
                detail="the ride has arrived: discharge with the escort, no exception needed",
            )
        )
    else:
        why = optional_reason(reason)
        checks.append(
            Check(
                label="Escort exception",
                ok=why is not None,
                detail=(
                    f"{EscortException(escort_exception).label}: {why}"
                    if why
                    else "say who is coming and when, or which lead approved what (in words)"
                ),
            )
        )
    return _gate(checks)
