"""Recovery & rides for staff: who is recovering or waiting to go home, what still holds
them, and the discharge with its recorded alternatives.

The readiness checklist and the discharge rule are the gates' (``ketadash.gates``:
``ready_gate`` and ``discharge_gate``): the page shows the same checks the
lifecycle enforces when the nurse marks the patient ready or discharges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

import sqlalchemy as sa
from sqlmodel import col, select

from ketadash.board import load_board
from ketadash.clock import local_day_bounds, local_today, to_local
from ketadash.db import read_session
from ketadash.gates import Gate, discharge_gate, fit_to_go_gate, ready_gate
from ketadash.lifecycle import StepResult, take_step
from ketadash.models import (
    Chair,
    EscortException,
    Patient,
    RideState,
    Site,
    Staff,
    StatusChange,
    TreatmentSession,
)
from ketadash.models import SessionStatus as S
from ketadash.rides import RideFacts, RideVisitFacts, ride_alerts, ride_state, rides_of
from ketadash.rules import (
    Timer,
    esketamine_bp_due_in,
    recovery_timer,
    session_alerts,
    vitals_due_in,
    waiting_timer,
)
from ketadash.settings import ClinicSettings
from ketadash.visits import Visit
from ketadash.vitals import Alert
from ketadash.vocabulary import Step

# --- what the page reads ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecoveryEntry:
    """One patient on the Recovery page, at a moment."""

    session: Visit
    ride: RideFacts | None
    # The route's own observation clock (esketamine's counts from the first device), from
    # ``ketadash.rules``: its label, minutes, target and whether the minimum is reached.
    observation: Timer | None
    waiting_minutes: int | None
    # Minutes to the next vitals (negative when overdue), by the rule Today's cards use.
    vitals_due_in: int | None
    # Minutes to the esketamine blood pressure check about 40 min after the first device
    # (negative when overdue), while it is still to take; None for other routes.
    bp_check_due_in: int | None
    ready: Gate
    discharge: Gate
    # The part of the discharge gate no escort exception overrides (see ``fit_to_go_gate``).
    fit_to_go: Gate
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
    later: tuple[tuple[Visit, RideFacts | None], ...]
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
    session: Visit,
    ride: RideFacts | None,
    settings: ClinicSettings,
    time_zone: str,
    closes_at: time | None,
    now: datetime,
) -> RecoveryEntry:
    """One patient's timers, checklist, discharge check and alerts at ``now`` (pure)."""
    waiting = waiting_timer(session, now)
    ready, discharge = recovery_gates(session=session, settings=settings, now=now)
    visit = RideVisitFacts(
        status=session.status,
        ready_at=session.ready_at,
        time_zone=time_zone,
        closes_at=closes_at,
        day=to_local(session.scheduled_start, time_zone).date(),
    )
    alerts = [
        *session_alerts(session, settings, now, time_zone=time_zone),
        *ride_alerts(ride=ride, visit=visit, settings=settings, now=now),
    ]
    return RecoveryEntry(
        session=session,
        ride=ride,
        observation=recovery_timer(session, settings, now),
        waiting_minutes=waiting.minutes if waiting else None,
        vitals_due_in=vitals_due_in(session, settings, now),
        bp_check_due_in=esketamine_bp_due_in(session, settings, now),
        ready=ready,
        discharge=discharge,
        fit_to_go=fit_to_go_gate(visit=session, settings=settings),
        alerts=tuple(alerts),
    )


def escort_exception_discharges(
    *, url: str, site_id: int, since: datetime
) -> list[EscortExceptionDischarge]:
    """Discharges without an arrived adult escort at the site since ``since``, newest first."""
    t = TreatmentSession
    with read_session(url) as db:
        rows = db.execute(
            sa.select(  # seven columns: more than sqlmodel's select is typed for
                col(t.id),
                col(Patient.first_name),
                col(Patient.last_name),
                col(t.chair_id),
                col(t.discharged_at),
                col(t.escort_exception),
                col(t.escort_exception_reason),
            )
            .join(Patient, col(Patient.id) == col(t.patient_id))
            .where(
                col(t.site_id) == site_id,
                col(t.status) == S.DISCHARGED,
                col(t.discharged_at) >= since,
                col(t.escort_exception).is_not(None),
            )
            .order_by(col(t.discharged_at).desc())
        ).all()
        ids = [row[0] for row in rows]
        rides = rides_of(db=db, session_ids=ids)
        who = dict(
            db.exec(
                select(StatusChange.session_id, Staff.name)
                .join(Staff, col(Staff.id) == col(StatusChange.staff_id))
                .where(
                    col(StatusChange.session_id).in_(ids), StatusChange.to_status == S.DISCHARGED
                )
                .order_by(col(StatusChange.version))
            ).all()
        )
        chairs = dict(
            db.exec(select(col(Chair.id), Chair.name).where(Chair.site_id == site_id)).all()
        )
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


# --- the gates: the same checks the lifecycle enforces ------------------------------------------


def recovery_gates(*, session: Visit, settings: ClinicSettings, now: datetime) -> tuple[Gate, Gate]:
    """The ready gate and the discharge gate for one patient at ``now``.

    The nurse's own confirmation (steady on their feet) is the ready checklist's last
    line, ticked in the form that marks the patient ready.
    """
    return (
        ready_gate(visit=session, settings=settings, now=now),
        discharge_gate(visit=session, settings=settings),
    )


def discharge_patient(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_version: int,
    escort_exception: EscortException | None = None,
    reason: str | None = None,
    approved_by_lead_id: int | None = None,
    now: datetime | None = None,
) -> StepResult:
    """Discharge: with an arrived adult, or with a recorded escort exception and its reason.

    One lifecycle step: the discharge gate decides, and an exception is recorded with
    the step (never a silent bypass); a lead's approval names the lead
    (``approved_by_lead_id``).
    """
    return take_step(
        url=url,
        session_id=session_id,
        step=Step.DISCHARGE,
        staff_id=staff_id,
        expected_version=expected_version,
        now=now,
        escort_exception=escort_exception,
        reason=reason,
        approved_by_lead_id=approved_by_lead_id,
    )
