"""The read layer for visits: one ``Visit`` snapshot per session, built in one place.

A visit is what every screen and every rule needs to know about one session: who,
where, the plan and the dose, the standing timeline (taken-back steps folded out),
the readings that count for it, the PHQ-9 taken at this visit, side effects and
the ride. Query functions take the caller's database session, read a window (a
site's day, its open visits, one visit) in a few batched, indexed queries whose
size depends on the window and never on years of history, and return frozen data.
The rules (``ketadash.rules``, ``ketadash.gates``) are plain functions of a visit.

Readings count from the visit's check-in, not from the calendar day: a patient
checked in at 23:50 keeps their PHQ-9 and vitals after midnight, and a reading
from an earlier visit the same day never counts for this one. Nothing dated after
``now`` (beyond a little clock skew) counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from ketadash.clock import MAX_CLOCK_SKEW, local_day_bounds, local_today
from ketadash.models import (
    CareFlag,
    Chair,
    Instrument,
    OutcomeScore,
    Patient,
    Ride,
    RideState,
    Route,
    SessionKind,
    Severity,
    SideEffectObservation,
    Site,
    StatusChange,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.public import public_label
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.vitals import Vitals
from ketadash.vocabulary import OPEN_STATUSES

# How far back a site's day looks for sessions someone forgot to close.
EARLIER_DAYS_LOOKBACK = 30
# How far back a patient's last recorded weight is looked for.
WEIGHT_LOOKBACK_DAYS = 400


def parse_care_flags(text: str) -> tuple[CareFlag, ...]:
    """The known flags in a patient's ``care_flags`` text; unknown words are ignored."""
    known = {flag.value for flag in CareFlag}
    return tuple(CareFlag(word.strip()) for word in text.split(";") if word.strip() in known)


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
    on_the_way_at: datetime | None = None
    eta_at: datetime | None = None

    @property
    def state(self) -> RideState:
        return RideState.of(self)


@dataclass(frozen=True, kw_only=True)
class TimelineStep:
    """A step that stands in a visit's history: into which status, when, by whom."""

    status: S
    at: datetime
    staff_id: int | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class Visit:
    """One session as every screen and rule sees it; plain data, safe to cache."""

    session_id: int
    version: int
    site_id: int
    status: S
    patient_id: int
    patient_name: str
    mrn: str
    display_alias: str | None
    care_flags: tuple[CareFlag, ...]
    chair_id: int | None
    chair_name: str
    scheduled_start: datetime
    route: Route
    kind: SessionKind
    planned_minutes: int
    # The plan: mg/kg (IV) or a fixed dose in mg (esketamine devices, lozenges).
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
    # Booked on an earlier day than the one being shown (a flag, never a reason to
    # stop watching a patient who is still here).
    earlier_day: bool
    given_dose_mg: float | None = None
    same_day_dose_reason: str | None = None
    escort_exception: str | None = None
    escort_exception_reason: str | None = None
    # The patient's weight at their last visit before this one, if recorded.
    previous_weight_kg: float | None = None
    # Latest pre-dose reading since check-in, and the latest reading of the visit.
    baseline: VitalsSnapshot | None = None
    latest: VitalsSnapshot | None = None
    # The PHQ-9 taken at this visit (since check-in), if any.
    phq9_total: int | None = None
    phq9_item9: int | None = None
    phq9_taken_at: datetime | None = None
    side_effects: tuple[tuple[str, str], ...] = ()
    ride: RideSnapshot | None = None
    timeline: tuple[TimelineStep, ...] = ()
    # Doses started for this patient on this site's day of ``now`` (any visit, taken
    # back or not: a start taken back may still have been a dose given).
    doses_started_today: int = 0
    # Another visit of the same patient that is under way (chair, status), if any.
    open_elsewhere: tuple[str, S] | None = None

    @property
    def ride_state(self) -> RideState:
        return RideState.of(self.ride)

    def public_label(self, rule: str) -> str:
        """What a public screen may call this patient under the ``wall_label`` rule."""
        return public_label(alias=self.display_alias, chair=self.chair_name, rule=rule)


def fold_timeline(
    changes: list[tuple[int, S | None, S, datetime, int | None, str | None, bool]],
) -> tuple[TimelineStep, ...]:
    """The steps that stand, from history rows ``(version, from, to, at, staff, reason,
    is_correction)``: a correction takes the step before it back, so both drop out."""
    standing: list[TimelineStep] = []
    for _version, _from, to, at, staff_id, reason, is_correction in sorted(
        changes, key=lambda c: c[0]
    ):
        if is_correction:
            if standing:
                standing.pop()
            continue
        standing.append(TimelineStep(status=S(to), at=at, staff_id=staff_id, reason=reason))
    return tuple(standing)


@dataclass(frozen=True, kw_only=True)
class SiteDay:
    """One site's day: its visits (and those left open from earlier days), chairs, settings."""

    site_id: int
    site_name: str
    time_zone: str
    day: date
    settings: ClinicSettings
    chairs: tuple[tuple[int, str], ...]
    visits: tuple[Visit, ...]

    @property
    def sessions(self) -> tuple[Visit, ...]:
        return self.visits


def _session_columns():
    t = TreatmentSession
    return (
        t.id,
        t.version,
        t.site_id,
        t.status,
        t.patient_id,
        t.chair_id,
        t.scheduled_start,
        t.route,
        t.kind,
        t.planned_minutes,
        t.dose_mg_per_kg,
        t.dose_mg,
        t.given_dose_mg,
        t.weight_kg,
        t.checked_in_at,
        t.infusion_started_at,
        t.infusion_ended_at,
        t.ready_at,
        t.discharged_at,
        t.closed_at,
        t.close_reason,
        t.hold_override_reason,
        t.same_day_dose_reason,
        t.escort_exception,
        t.escort_exception_reason,
        Patient.first_name,
        Patient.last_name,
        Patient.mrn,
        Patient.display_alias,
        Patient.care_flags,
        Chair.name.label("chair_name"),
        Chair.position.label("chair_position"),
    )


def load_site_day(*, db: Session, site_id: int, day: date, now: datetime) -> SiteDay:
    """A site's sessions booked on ``day`` (site-local), plus any still open from earlier days.

    Raises LookupError for an unknown site.
    """
    site = db.get(Site, site_id)
    if site is None:
        raise LookupError(f"There is no site {site_id}.")
    settings = load_clinic_settings(db=db, site_id=site_id)
    day_start, day_end = local_day_bounds(day, site.time_zone)
    lookback = day_start - timedelta(days=EARLIER_DAYS_LOOKBACK)
    t = TreatmentSession
    where = and_(
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
    visits = _load_visits(db, where=where, now=now, time_zone=site.time_zone, day_start=day_start)
    chairs = db.execute(
        select(Chair.id, Chair.name)
        .where(Chair.site_id == site_id, Chair.active)
        .order_by(Chair.position, Chair.name)
    ).all()
    return SiteDay(
        site_id=site_id,
        site_name=site.name,
        time_zone=site.time_zone,
        day=day,
        settings=settings,
        chairs=tuple((chair_id, name) for chair_id, name in chairs),
        visits=visits,
    )


def load_open_visits(*, db: Session, site_id: int, now: datetime) -> tuple[Visit, ...]:
    """Every visit under way at the site (checked in to ready), whatever day it was booked."""
    site = db.get(Site, site_id)
    if site is None:
        raise LookupError(f"There is no site {site_id}.")
    day_start, _ = local_day_bounds(local_today(site.time_zone, now=now), site.time_zone)
    t = TreatmentSession
    where = and_(
        t.site_id == site_id,
        t.status.in_(list(OPEN_STATUSES)),
        t.scheduled_start >= day_start - timedelta(days=EARLIER_DAYS_LOOKBACK),
    )
    return _load_visits(db, where=where, now=now, time_zone=site.time_zone, day_start=day_start)


def load_visit(*, db: Session, session_id: int, now: datetime) -> Visit | None:
    """One visit, or None if the session does not exist. Used inside a write's transaction."""
    row = db.execute(
        select(TreatmentSession.site_id).where(TreatmentSession.id == session_id)
    ).first()
    if row is None:
        return None
    site = db.get(Site, row.site_id)
    day_start, _ = local_day_bounds(local_today(site.time_zone, now=now), site.time_zone)
    visits = _load_visits(
        db,
        where=TreatmentSession.id == session_id,
        now=now,
        time_zone=site.time_zone,
        day_start=day_start,
    )
    return visits[0] if visits else None


def _load_visits(
    db: Session, *, where, now: datetime, time_zone: str, day_start: datetime
) -> tuple[Visit, ...]:
    t = TreatmentSession
    rows = db.execute(
        select(*_session_columns())
        .join(Patient, Patient.id == t.patient_id)
        .outerjoin(Chair, Chair.id == t.chair_id)
        .where(where)
        .order_by(t.scheduled_start, Chair.position, t.id)
    ).all()
    if not rows:
        return ()
    session_ids = [row.id for row in rows]
    patient_ids = sorted({row.patient_id for row in rows})
    latest_allowed = now + MAX_CLOCK_SKEW
    day_end = day_start + timedelta(days=1, hours=1)
    vitals = _vitals_by_session(db, session_ids, latest_allowed)
    phq9 = _phq9_by_patient(db, rows, patient_ids, latest_allowed)
    effects = _side_effects_by_session(db, session_ids, latest_allowed)
    rides = _rides_by_session(db, session_ids)
    history = _history_by_session(db, session_ids)
    # What only a visit under way needs (the dose checks, the weight on its card) is read
    # for those patients alone: on a day's board most visits are expected or gone home.
    under_way = sorted({row.patient_id for row in rows if row.status in OPEN_STATUSES})
    before_dose = sorted(
        {row.patient_id for row in rows if row.status in (S.SCHEDULED, S.CHECKED_IN)}
    )
    weights = _weights_by_patient(db, under_way, now)
    starts = _starts_by_patient(
        db,
        sorted({row.patient_id for row in rows if row.status == S.CHECKED_IN}),
        day_start,
        min(day_end, latest_allowed),
    )
    open_visits = _open_by_patient(db, before_dose, now)

    visits = []
    for row in rows:
        checked_in = row.checked_in_at
        readings = [v for v in vitals.get(row.id, []) if checked_in and v.taken_at >= checked_in]
        befores = [r for r in readings if r.phase == VitalsPhase.BEFORE]
        score = None
        if checked_in is not None:
            score = next(
                (s for s in reversed(phq9.get(row.patient_id, [])) if s[0] >= checked_in), None
            )
        elsewhere = next(
            (
                (chair or "No chair", S(status))
                for session_id, chair, status in open_visits.get(row.patient_id, [])
                if session_id != row.id
            ),
            None,
        )
        visits.append(
            Visit(
                session_id=row.id,
                version=row.version,
                site_id=row.site_id,
                status=S(row.status),
                patient_id=row.patient_id,
                patient_name=f"{row.first_name} {row.last_name}",
                mrn=row.mrn,
                display_alias=row.display_alias,
                care_flags=parse_care_flags(row.care_flags),
                chair_id=row.chair_id,
                chair_name=row.chair_name or "No chair",
                scheduled_start=row.scheduled_start,
                route=Route(row.route),
                kind=SessionKind(row.kind),
                planned_minutes=row.planned_minutes,
                dose_mg_per_kg=row.dose_mg_per_kg,
                dose_mg=row.dose_mg,
                given_dose_mg=row.given_dose_mg,
                weight_kg=row.weight_kg,
                checked_in_at=row.checked_in_at,
                infusion_started_at=row.infusion_started_at,
                infusion_ended_at=row.infusion_ended_at,
                ready_at=row.ready_at,
                discharged_at=row.discharged_at,
                closed_at=row.closed_at,
                close_reason=row.close_reason,
                hold_override_reason=row.hold_override_reason,
                same_day_dose_reason=row.same_day_dose_reason,
                escort_exception=row.escort_exception,
                escort_exception_reason=row.escort_exception_reason,
                earlier_day=row.scheduled_start < day_start,
                previous_weight_kg=_weight_before(weights.get(row.patient_id, []), row),
                baseline=befores[-1] if befores else None,
                latest=readings[-1] if readings else None,
                phq9_total=score[1] if score else None,
                phq9_item9=score[2] if score else None,
                phq9_taken_at=score[0] if score else None,
                side_effects=effects.get(row.id, ()),
                ride=rides.get(row.id),
                timeline=fold_timeline(history.get(row.id, [])),
                doses_started_today=starts.get(row.patient_id, 0),
                open_elsewhere=elsewhere,
            )
        )
    return tuple(visits)


def _vitals_by_session(db, session_ids, latest_allowed) -> dict[int, list[VitalsSnapshot]]:
    found: dict[int, list[VitalsSnapshot]] = defaultdict(list)
    v = VitalsReading
    for session_id, taken_at, phase, systolic, diastolic, heart_rate, spo2 in db.execute(
        select(v.session_id, v.taken_at, v.phase, v.systolic, v.diastolic, v.heart_rate, v.spo2)
        .where(v.session_id.in_(session_ids), v.taken_at <= latest_allowed)
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


def _phq9_by_patient(db, rows, patient_ids, latest_allowed):
    """Each patient's PHQ-9s from the earliest check-in among ``rows`` up to ``now``."""
    check_ins = [row.checked_in_at for row in rows if row.checked_in_at is not None]
    if not check_ins:
        return {}
    o = OutcomeScore
    found: dict[int, list[tuple[datetime, int, int | None]]] = defaultdict(list)
    for patient_id, taken_at, total, item9 in db.execute(
        select(o.patient_id, o.taken_at, o.total, o.item9)
        .where(
            o.patient_id.in_(patient_ids),
            o.instrument == Instrument.PHQ9,
            o.taken_at >= min(check_ins),
            o.taken_at <= latest_allowed,
        )
        .order_by(o.taken_at, o.id)
    ):
        found[patient_id].append((taken_at, total, item9))
    return found


def _side_effects_by_session(db, session_ids, latest_allowed):
    o = SideEffectObservation
    latest: dict[int, dict[str, str]] = defaultdict(dict)
    for session_id, effect, severity in db.execute(
        select(o.session_id, o.effect, o.severity)
        .where(o.session_id.in_(session_ids), o.observed_at <= latest_allowed)
        .order_by(o.observed_at, o.id)
    ):
        latest[session_id][effect] = severity
    return {
        session_id: tuple(
            (effect, severity) for effect, severity in effects.items() if severity != Severity.NONE
        )
        for session_id, effects in latest.items()
    }


def _rides_by_session(db, session_ids) -> dict[int, RideSnapshot]:
    r = Ride
    return {
        row.session_id: RideSnapshot(
            driver_name=row.driver_name,
            driver_phone=row.driver_phone,
            relationship=row.relationship,
            expected_pickup_at=row.expected_pickup_at,
            on_the_way_at=row.on_the_way_at,
            eta_at=row.eta_at,
            arrived_at=row.arrived_at,
            version=row.version,
        )
        for row in db.execute(
            select(
                r.session_id,
                r.driver_name,
                r.driver_phone,
                r.relationship,
                r.expected_pickup_at,
                r.on_the_way_at,
                r.eta_at,
                r.arrived_at,
                r.version,
            ).where(r.session_id.in_(session_ids))
        )
    }


def _history_by_session(db, session_ids):
    c = StatusChange
    found = defaultdict(list)
    for row in db.execute(
        select(
            c.session_id,
            c.version,
            c.from_status,
            c.to_status,
            c.changed_at,
            c.staff_id,
            c.reason,
            c.is_correction,
        ).where(c.session_id.in_(session_ids))
    ):
        found[row.session_id].append(
            (
                row.version,
                row.from_status,
                row.to_status,
                row.changed_at,
                row.staff_id,
                row.reason,
                bool(row.is_correction),
            )
        )
    return found


def _weights_by_patient(db, patient_ids, now):
    t = TreatmentSession
    found = defaultdict(list)
    if not patient_ids:
        return found
    for patient_id, session_id, start, weight in db.execute(
        select(t.patient_id, t.id, t.scheduled_start, t.weight_kg)
        .where(
            t.patient_id.in_(patient_ids),
            t.weight_kg.is_not(None),
            t.scheduled_start >= now - timedelta(days=WEIGHT_LOOKBACK_DAYS),
        )
        .order_by(t.scheduled_start)
    ):
        found[patient_id].append((start, session_id, weight))
    return found


def _weight_before(weights, row) -> float | None:
    earlier = [w for start, sid, w in weights if sid != row.id and start < row.scheduled_start]
    return earlier[-1] if earlier else None


def _starts_by_patient(db, patient_ids, day_start, day_end) -> dict[int, int]:
    c, t = StatusChange, TreatmentSession
    counts: dict[int, int] = defaultdict(int)
    if not patient_ids:
        return counts
    for (patient_id,) in db.execute(
        select(t.patient_id)
        .select_from(c)
        .join(t, t.id == c.session_id)
        .where(
            t.patient_id.in_(patient_ids),
            c.to_status == S.INFUSING,
            c.is_correction.is_(False),
            c.changed_at >= day_start,
            c.changed_at < day_end,
        )
    ):
        counts[patient_id] += 1
    return counts


def _open_by_patient(db, patient_ids, now):
    t = TreatmentSession
    found = defaultdict(list)
    if not patient_ids:
        return found
    for session_id, patient_id, chair, status in db.execute(
        select(t.id, t.patient_id, Chair.name, t.status)
        .outerjoin(Chair, Chair.id == t.chair_id)
        .where(
            t.patient_id.in_(patient_ids),
            t.status.in_(list(OPEN_STATUSES)),
            t.scheduled_start >= now - timedelta(days=EARLIER_DAYS_LOOKBACK),
        )
    ):
        found[patient_id].append((session_id, chair, status))
    return found
