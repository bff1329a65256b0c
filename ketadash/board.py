"""Today's board for the monitoring room: what is read, and what it means right now.

``load_board`` reads one site's day in a handful of indexed queries whose size
depends on today's sessions only, never on years of history. Everything else
here is pure: given the board and the moment, it says where each patient is,
what the timers read, which alerts stand and which chairs are free. So the page
can re-read the database every few seconds and recompute timers every second.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, or_, select

from ketadash.clock import clock_text, local_day_bounds, to_local, whole_minutes_between
from ketadash.db import read_session
from ketadash.models import (
    CareFlag,
    Chair,
    Instrument,
    OutcomeScore,
    Patient,
    Ride,
    Route,
    SessionKind,
    Severity,
    SideEffectObservation,
    Site,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.vitals import Alert, Vitals, vitals_alerts
from ketadash.vocabulary import OPEN_STATUSES


def parse_care_flags(text: str) -> tuple[CareFlag, ...]:
    """The known flags in a patient's ``care_flags`` text; unknown words are ignored."""
    known = {flag.value for flag in CareFlag}
    return tuple(CareFlag(word.strip()) for word in text.split(";") if word.strip() in known)


# How far back the board looks for sessions someone forgot to close.
EARLIER_DAYS_LOOKBACK = 30


@dataclass(frozen=True, kw_only=True)
class VitalsSnapshot:
    taken_at: datetime
    phase: VitalsPhase
    vitals: Vitals


@dataclass(frozen=True, kw_only=True)
class RideSnapshot:
    driver_name: str
    driver_phone: str | None
    relationship: str | None
    expected_pickup_at: datetime | None
    arrived_at: datetime | None
    version: int


@dataclass(frozen=True, kw_only=True)
class BoardSession:
    session_id: int
    version: int
    status: S
    patient_name: str
    mrn: str
    care_flags: tuple[CareFlag, ...]
    chair_id: int | None
    chair_name: str
    scheduled_start: datetime
    route: Route
    kind: SessionKind
    planned_minutes: int
    dose_mg_per_kg: float | None
    dose_mg: float | None
    weight_kg: float | None
    checked_in_at: datetime | None
    infusion_started_at: datetime | None
    infusion_ended_at: datetime | None
    ready_at: datetime | None
    discharged_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    hold_override_reason: str | None
    earlier_day: bool
    baseline: VitalsSnapshot | None = None
    latest: VitalsSnapshot | None = None
    phq9_total: int | None = None
    phq9_item9: int | None = None
    side_effects: tuple[tuple[str, str], ...] = ()
    ride: RideSnapshot | None = None


@dataclass(frozen=True, kw_only=True)
class Board:
    site_id: int
    site_name: str
    time_zone: str
    day: date
    settings: ClinicSettings
    chairs: tuple[tuple[int, str], ...]
    sessions: tuple[BoardSession, ...]


def load_board(*, url: str, site_id: int, day: date) -> Board:
    """One site's sessions for ``day`` (site-local), plus any left open from earlier days."""
    with read_session(url) as db:
        site = db.get(Site, site_id)
        if site is None:
            raise LookupError(f"There is no site {site_id}.")
        settings = load_clinic_settings(db=db, site_id=site_id)
        day_start, day_end = local_day_bounds(day, site.time_zone)
        lookback = day_start - timedelta(days=EARLIER_DAYS_LOOKBACK)
        t = TreatmentSession
        rows = db.execute(
            select(
                t.id,
                t.version,
                t.status,
                t.patient_id,
                t.chair_id,
                t.scheduled_start,
                t.route,
                t.kind,
                t.planned_minutes,
                t.dose_mg_per_kg,
                t.dose_mg,
                t.weight_kg,
                t.checked_in_at,
                t.infusion_started_at,
                t.infusion_ended_at,
                t.ready_at,
                t.discharged_at,
                t.closed_at,
                t.close_reason,
                t.hold_override_reason,
                Patient.first_name,
                Patient.last_name,
                Patient.mrn,
                Patient.care_flags,
                Chair.name.label("chair_name"),
            )
            .join(Patient, Patient.id == t.patient_id)
            .outerjoin(Chair, Chair.id == t.chair_id)
            .where(
                t.site_id == site_id,
                or_(
                    and_(t.scheduled_start >= day_start, t.scheduled_start < day_end),
                    and_(
                        t.status.in_([*OPEN_STATUSES, S.SCHEDULED]),
                        t.scheduled_start >= lookback,
                        t.scheduled_start < day_start,
                    ),
                ),
            )
            .order_by(t.scheduled_start, Chair.position)
        ).all()
        session_ids = [row.id for row in rows]
        patient_ids = sorted({row.patient_id for row in rows})
        vitals = _vitals_by_session(db, session_ids)
        phq9 = _phq9_today_by_patient(db, patient_ids, day_start)
        effects = _side_effects_by_session(db, session_ids)
        rides = _rides_by_session(db, session_ids)
        chairs = db.execute(
            select(Chair.id, Chair.name)
            .where(Chair.site_id == site_id, Chair.active)
            .order_by(Chair.position, Chair.name)
        ).all()

    sessions = []
    for row in rows:
        readings = vitals.get(row.id, [])
        befores = [r for r in readings if r.phase == VitalsPhase.BEFORE]
        score = phq9.get(row.patient_id)
        sessions.append(
            BoardSession(
                session_id=row.id,
                version=row.version,
                status=S(row.status),
                patient_name=f"{row.first_name} {row.last_name}",
                mrn=row.mrn,
                care_flags=parse_care_flags(row.care_flags),
                chair_id=row.chair_id,
                chair_name=row.chair_name or "No chair",
                scheduled_start=row.scheduled_start,
                route=Route(row.route),
                kind=SessionKind(row.kind),
                planned_minutes=row.planned_minutes,
                dose_mg_per_kg=row.dose_mg_per_kg,
                dose_mg=row.dose_mg,
                weight_kg=row.weight_kg,
                checked_in_at=row.checked_in_at,
                infusion_started_at=row.infusion_started_at,
                infusion_ended_at=row.infusion_ended_at,
                ready_at=row.ready_at,
                discharged_at=row.discharged_at,
                closed_at=row.closed_at,
                close_reason=row.close_reason,
                hold_override_reason=row.hold_override_reason,
                earlier_day=row.scheduled_start < day_start,
                baseline=befores[-1] if befores else None,
                latest=readings[-1] if readings else None,
                phq9_total=score[0] if score else None,
                phq9_item9=score[1] if score else None,
                side_effects=effects.get(row.id, ()),
                ride=rides.get(row.id),
            )
        )
    return Board(
        site_id=site_id,
        site_name=site.name,
        time_zone=site.time_zone,
        day=day,
        settings=settings,
        chairs=tuple((chair_id, name) for chair_id, name in chairs),
        sessions=tuple(sessions),
    )


def _vitals_by_session(db, session_ids: list[int]) -> dict[int, list[VitalsSnapshot]]:
    found: dict[int, list[VitalsSnapshot]] = defaultdict(list)
    if not session_ids:
        return found
    v = VitalsReading
    for session_id, taken_at, phase, systolic, diastolic, heart_rate, spo2 in db.execute(
        select(v.session_id, v.taken_at, v.phase, v.systolic, v.diastolic, v.heart_rate, v.spo2)
        .where(v.session_id.in_(session_ids))
        .order_by(v.session_id, v.taken_at)
    ):
        found[session_id].append(
            VitalsSnapshot(
                taken_at=taken_at,
                phase=VitalsPhase(phase),
                vitals=Vitals(
                    systolic=systolic, diastolic=diastolic, heart_rate=heart_rate, spo2=spo2
                ),
            )
        )
    return found


def _phq9_today_by_patient(
    db, patient_ids: list[int], day_start: datetime
) -> dict[int, tuple[int, int | None]]:
    if not patient_ids:
        return {}
    o = OutcomeScore
    latest: dict[int, tuple[int, int | None]] = {}
    for patient_id, total, item9 in db.execute(
        select(o.patient_id, o.total, o.item9)
        .where(
            o.patient_id.in_(patient_ids),
            o.instrument == Instrument.PHQ9,
            o.taken_at >= day_start,
        )
        .order_by(o.taken_at)
    ):
        latest[patient_id] = (total, item9)
    return latest


def _side_effects_by_session(db, session_ids: list[int]) -> dict[int, tuple[tuple[str, str], ...]]:
    if not session_ids:
        return {}
    o = SideEffectObservation
    latest: dict[int, dict[str, str]] = defaultdict(dict)
    for session_id, effect, severity in db.execute(
        select(o.session_id, o.effect, o.severity)
        .where(o.session_id.in_(session_ids))
        .order_by(o.observed_at)
    ):
        latest[session_id][effect] = severity
    return {
        session_id: tuple(
            (effect, severity) for effect, severity in effects.items() if severity != Severity.NONE
        )
        for session_id, effects in latest.items()
    }


def _rides_by_session(db, session_ids: list[int]) -> dict[int, RideSnapshot]:
    if not session_ids:
        return {}
    r = Ride
    return {
        session_id: RideSnapshot(
            driver_name=name,
            driver_phone=phone,
            relationship=relationship,
            expected_pickup_at=expected,
            arrived_at=arrived,
            version=version,
        )
        for session_id, name, phone, relationship, expected, arrived, version in db.execute(
            select(
                r.session_id,
                r.driver_name,
                r.driver_phone,
                r.relationship,
                r.expected_pickup_at,
                r.arrived_at,
                r.version,
            ).where(r.session_id.in_(session_ids))
        )
    }


# --- what the board means at a moment ---------------------------------------------------------


class Lane(StrEnum):
    """Where the patient is, as the board groups them."""

    EXPECTED = "expected"
    CHECKED_IN = "checked_in"
    INFUSING = "infusing"
    RECOVERY = "recovery"
    READY = "ready"
    DISCHARGED = "discharged"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return {
            "expected": "Expected",
            "checked_in": "Checked in",
            "infusing": "Dose running",
            "recovery": "In recovery",
            "ready": "Ready to go",
            "discharged": "Gone home",
            "closed": "Cancelled / no-show",
        }[self.value]


LANE_OF_STATUS = {
    S.SCHEDULED: Lane.EXPECTED,
    S.CHECKED_IN: Lane.CHECKED_IN,
    S.INFUSING: Lane.INFUSING,
    S.RECOVERY: Lane.RECOVERY,
    S.READY: Lane.READY,
    S.DISCHARGED: Lane.DISCHARGED,
    S.CANCELLED: Lane.CLOSED,
    S.NO_SHOW: Lane.CLOSED,
}


@dataclass(frozen=True, kw_only=True)
class Timer:
    """A phase clock: minutes so far against the target; frozen once the phase ends."""

    label: str
    minutes: int
    target: int | None
    running: bool

    @property
    def over(self) -> bool:
        return self.target is not None and self.minutes > self.target

    @property
    def reached(self) -> bool:
        return self.target is not None and self.minutes >= self.target

    @property
    def text(self) -> str:
        target = f" / {self.target}" if self.target is not None else ""
        return f"{self.label} {self.minutes}{target} min"


@dataclass(frozen=True, kw_only=True)
class SessionView:
    """One card on the board at a moment: the session with its timers and alerts."""

    session: BoardSession
    lane: Lane
    timers: tuple[Timer, ...]
    vitals_due_in: int | None
    alerts: tuple[Alert, ...] = field(default_factory=tuple)


def dose_timer(session: BoardSession, now: datetime) -> Timer | None:
    """Minutes of dose against the planned minutes; stops when the dose ends."""
    if session.infusion_started_at is None:
        return None
    end = session.infusion_ended_at or now
    return Timer(
        label="Dose",
        minutes=whole_minutes_between(session.infusion_started_at, end),
        target=session.planned_minutes,
        running=session.infusion_ended_at is None,
    )


def recovery_timer(session: BoardSession, settings: ClinicSettings, now: datetime) -> Timer | None:
    """Minutes in recovery against the route's minimum; stops when marked ready."""
    if session.infusion_ended_at is None:
        return None
    end = session.ready_at or session.discharged_at or now
    return Timer(
        label="Recovery",
        minutes=whole_minutes_between(session.infusion_ended_at, end),
        target=settings.min_recovery_minutes(session.route),
        running=session.ready_at is None and session.discharged_at is None,
    )


def waiting_timer(session: BoardSession, now: datetime) -> Timer | None:
    """Minutes since ready for discharge: how long the patient has waited for the ride."""
    if session.ready_at is None:
        return None
    end = session.discharged_at or now
    return Timer(
        label="Waiting",
        minutes=whole_minutes_between(session.ready_at, end),
        target=None,
        running=session.discharged_at is None,
    )


def vitals_due_in(session: BoardSession, settings: ClinicSettings, now: datetime) -> int | None:
    """Minutes until the next vitals check (negative when overdue); None when none is due."""
    if session.earlier_day:
        return None
    if session.status == S.CHECKED_IN:
        if session.baseline is None:
            # Pre-infusion vitals are due once the patient has settled in the chair.
            due = session.checked_in_at + timedelta(minutes=settings.vitals_every_during_minutes)
            return _minutes_until(due, now)
        return None
    if session.status == S.INFUSING:
        phase, since, every = (
            VitalsPhase.DURING,
            session.infusion_started_at,
            settings.vitals_every_during_minutes,
        )
    elif session.status in (S.RECOVERY, S.READY):
        phase, since, every = (
            VitalsPhase.AFTER,
            session.infusion_ended_at,
            settings.vitals_every_after_minutes,
        )
    else:
        return None
    last = since
    if session.latest is not None and session.latest.phase == phase:
        last = max(since, session.latest.taken_at)
        # A reading that raised an alert is rechecked sooner, as the alert says.
        if vitals_alerts(session.latest.vitals, phase=phase, settings=settings):
            every = min(every, settings.recheck_after_alert_minutes)
    return _minutes_until(last + timedelta(minutes=every), now)


def _minutes_until(due: datetime, now: datetime) -> int:
    """Whole minutes until ``due``: rounded up while ahead, down (negative) once past."""
    seconds = (due - now).total_seconds()
    return int(seconds // 60) if seconds < 0 else int(-(-seconds // 60))


def session_alerts(
    session: BoardSession, settings: ClinicSettings, now: datetime, *, time_zone: str
) -> list[Alert]:
    """The few alerts that matter for one session now, each with what to do next."""
    alerts: list[Alert] = []
    if session.earlier_day:
        day = to_local(session.scheduled_start, time_zone).strftime("%a %d %b")
        alerts.append(
            Alert(
                level="warning",
                what=f"Left open from {day} ({session.status.label.lower()})",
                action="Close it: finish the visit, mark a no-show, or take back the step.",
            )
        )
        return alerts
    before_dose = session.status in (S.SCHEDULED, S.CHECKED_IN)
    item9 = session.phq9_item9
    # After the dose the flag stays on the card; the alert is for before it.
    if before_dose and item9 is not None and item9 >= settings.phq9_item9_flag_at:
        alerts.append(
            Alert(
                level="danger",
                what=f"PHQ-9 item 9 answered {item9} (self-harm thoughts)",
                action="Do the C-SSRS screen and tell the physician before the dose.",
            )
        )
    if session.status == S.SCHEDULED:
        late = whole_minutes_between(session.scheduled_start, now)
        if now > session.scheduled_start and late >= settings.late_arrival_minutes:
            alerts.append(
                Alert(
                    level="warning",
                    what=f"Not arrived, {late} min late",
                    action="Call the patient; mark a no-show if they are not coming.",
                )
            )
    baseline = session.baseline
    if session.status == S.CHECKED_IN and baseline is not None:
        alerts.extend(vitals_alerts(baseline.vitals, phase=VitalsPhase.BEFORE, settings=settings))
    latest = session.latest
    watching = session.status in (S.INFUSING, S.RECOVERY, S.READY)
    if watching and latest is not None and latest.phase != VitalsPhase.BEFORE:
        alerts.extend(vitals_alerts(latest.vitals, phase=latest.phase, settings=settings))
    dose = dose_timer(session, now)
    if dose is not None and dose.running and dose.over:
        alerts.append(
            Alert(
                level="warning",
                what=f"Dose running {dose.minutes} min, planned {dose.target}",
                action="End the dose now, or note why it continues.",
            )
        )
    due = vitals_due_in(session, settings, now)
    if due is not None and due < 0:
        alerts.append(
            Alert(
                level="warning",
                what=f"Vitals overdue by {-due} min",
                action="Take a set of vitals now.",
            )
        )
    return alerts


def view_board(board: Board, now: datetime) -> list[SessionView]:
    """Every session of the board as it stands at ``now``."""
    views = []
    for session in board.sessions:
        timers = tuple(
            t
            for t in (
                dose_timer(session, now),
                recovery_timer(session, board.settings, now),
                waiting_timer(session, now),
            )
            if t is not None
        )
        views.append(
            SessionView(
                session=session,
                lane=LANE_OF_STATUS[session.status],
                timers=timers,
                vitals_due_in=vitals_due_in(session, board.settings, now),
                alerts=tuple(
                    session_alerts(session, board.settings, now, time_zone=board.time_zone)
                ),
            )
        )
    return views


def by_lane(views: list[SessionView]) -> dict[Lane, list[SessionView]]:
    """Views grouped by lane, every lane present, in board order."""
    lanes: dict[Lane, list[SessionView]] = {lane: [] for lane in Lane}
    for view in views:
        lanes[view.lane].append(view)
    return lanes


@dataclass(frozen=True, kw_only=True)
class ChairState:
    chair_id: int
    name: str
    occupied_by: BoardSession | None
    next_expected: datetime | None

    @property
    def free(self) -> bool:
        return self.occupied_by is None


def chair_states(board: Board, now: datetime) -> list[ChairState]:
    """Each chair now: who is in it (checked in to discharge) and who is expected next."""
    states = []
    for chair_id, name in board.chairs:
        # A session left open from an earlier day is a record to close, not a patient
        # in the chair: counting it would show today's free chairs as taken.
        in_chair = [
            s
            for s in board.sessions
            if s.chair_id == chair_id and s.status in OPEN_STATUSES and not s.earlier_day
        ]
        upcoming = [
            s.scheduled_start
            for s in board.sessions
            if s.chair_id == chair_id and s.status == S.SCHEDULED and not s.earlier_day
        ]
        states.append(
            ChairState(
                chair_id=chair_id,
                name=name,
                occupied_by=in_chair[0] if in_chair else None,
                next_expected=min(upcoming) if upcoming else None,
            )
        )
    return states


def time_text(moment: datetime | None, board: Board) -> str:
    """A stored UTC moment as the site's wall-clock ``HH:MM``."""
    return clock_text(moment, board.time_zone)
