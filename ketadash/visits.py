"""The read layer for visits: one ``Visit`` snapshot per session, built in one place.

A visit is what every screen and every rule needs to know about one session: who,
where, the plan and the dose, the standing timeline (taken-back steps folded out),
the readings that count for it, the PHQ-9 taken at this visit, side effects and
the ride. Query functions take the caller's database session, read a window (a
site's day, its open visits, one visit) and return frozen data: one query for the
sessions, each row with what counts for it (found by indexed lookups per session:
its readings, score, ride, and the patient's other visits the gates ask about),
then two batched ones (side effects, status history). Their size depends on the
window, never on years of history.
The rules (``ketadash.rules``, ``ketadash.gates``) are plain functions of a visit.

Readings count from the visit's check-in, not from the calendar day: a patient
checked in at 23:50 keeps their PHQ-9 and vitals after midnight, and a reading
from an earlier visit the same day never counts for this one. Nothing dated after
``now`` (beyond a little clock skew) counts.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    FromClause,
    Row,
    ScalarSelect,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    inspect,
    or_,
    select,
)
from sqlmodel import Session, SQLModel, col

from ketadash.clock import local_day_bounds, local_today
from ketadash.db import ROW_LOCK
from ketadash.db_types import UTCDateTime
from ketadash.limits import MAX_CLOCK_SKEW
from ketadash.models import (
    CareFlag,
    Chair,
    Instrument,
    OutcomeScore,
    Patient,
    RemsRecord,
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

if TYPE_CHECKING:
    # The statements below select many columns and their rows are read by label.
    Statement = Select[*tuple[Any, ...]]
    VisitRow = Row[*tuple[Any, ...]]

# How far back a site's day looks for sessions someone forgot to close.
EARLIER_DAYS_LOOKBACK = 30
# How far back a patient's last recorded weight is looked for.
WEIGHT_LOOKBACK_DAYS = 400


_KNOWN_FLAGS = frozenset(flag.value for flag in CareFlag)


def parse_care_flags(text: str) -> tuple[CareFlag, ...]:
    """The known flags in a patient's ``care_flags`` text; unknown words are ignored."""
    if not text:
        return ()
    return tuple(CareFlag(word.strip()) for word in text.split(";") if word.strip() in _KNOWN_FLAGS)


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
    # The PHQ-9 recorded at this visit (against this session, since check-in): the latest
    # one, and the highest item 9 of all of them, so a corrected score cannot take a
    # positive item 9 out of sight.
    phq9_total: int | None = None
    phq9_item9: int | None = None
    phq9_taken_at: datetime | None = None
    phq9_item9_highest: int | None = None
    phq9_count: int = 0
    side_effects: tuple[tuple[str, str], ...] = ()
    ride: RideSnapshot | None = None
    timeline: tuple[TimelineStep, ...] = ()
    # Doses started for this patient within the site's ``second_dose_window_hours``
    # before ``now`` (any visit, taken back or not: a start taken back may still have
    # been a dose given). A rolling window, not the calendar day: 21:05 and 00:40 are
    # two doses within hours of each other.
    doses_started_recently: int = 0
    # Another visit of the same patient that is under way (chair, status), if any.
    open_elsewhere: tuple[str, S] | None = None
    # Another visit under way in this visit's chair (its status; one in the chair rather
    # than checked in and waiting first), read for visits not yet dosed and for cancelled
    # and discharged ones (taking back the cancel or the discharge puts them under way).
    chair_occupied_by: S | None = None
    # The session's REMS Patient Monitoring Form has been started (esketamine, issue 20).
    rems_record_started: bool = False

    @property
    def ride_state(self) -> RideState:
        return RideState.of(self.ride)

    def public_label(self, rule: str) -> str:
        """What a public screen may call this patient under the ``wall_label`` rule."""
        return public_label(alias=self.display_alias, chair=self.chair_name, rule=rule)


# A status-history row: (version, from, to, at, staff, reason, is_correction).
HistoryRow = tuple[int, S | None, S, datetime, int | None, str | None, bool]


def fold_timeline(changes: list[HistoryRow]) -> tuple[TimelineStep, ...]:
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


def load_site_day(*, db: Session, site_id: int, day: date, now: datetime) -> SiteDay:
    """A site's sessions booked on ``day`` (site-local), plus any still open from earlier days.

    Raises LookupError for an unknown site.
    """
    _flush_pending(db)
    # The site and its active chairs in one read (a site without chairs: one row, no chair).
    site_rows = db.connection().execute(_site_and_chairs_select(), {"site_id": site_id}).all()
    if not site_rows:
        raise LookupError(f"There is no site {site_id}.")
    site_name, time_zone = site_rows[0].name, site_rows[0].time_zone
    settings = load_clinic_settings(db=db, site_id=site_id)
    day_start, day_end = local_day_bounds(day, time_zone)
    visits = _load_visits(
        db,
        _site_day_select(),
        {
            "site_id": site_id,
            "day_start": day_start,
            "day_end": day_end,
            "lookback": day_start - timedelta(days=EARLIER_DAYS_LOOKBACK),
        },
        now=now,
        day_start=day_start,
        settings=settings,
    )
    return SiteDay(
        site_id=site_id,
        site_name=site_name,
        time_zone=time_zone,
        day=day,
        settings=settings,
        chairs=tuple((row.chair_id, row.chair) for row in site_rows if row.chair_id is not None),
        visits=visits,
    )


def load_open_visits(*, db: Session, site_id: int, now: datetime) -> tuple[Visit, ...]:
    """Every visit under way at the site (checked in to ready), whatever day it was booked."""
    _flush_pending(db)
    time_zone = db.connection().execute(_site_zone_select(), {"site_id": site_id}).scalar()
    if time_zone is None:
        raise LookupError(f"There is no site {site_id}.")
    day_start, _ = local_day_bounds(local_today(time_zone, now=now), time_zone)
    return _load_visits(
        db,
        _open_select(),
        {"site_id": site_id, "lookback": day_start - timedelta(days=EARLIER_DAYS_LOOKBACK)},
        now=now,
        day_start=day_start,
        settings=load_clinic_settings(db=db, site_id=site_id),
    )


def load_visit(*, db: Session, session_id: int, now: datetime) -> Visit | None:
    """One visit, or None if the session does not exist. Used inside a write's transaction."""
    _flush_pending(db)
    site = db.connection().execute(_session_zone_select(), {"session_id": session_id}).first()
    if site is None:
        return None
    day_start, _ = local_day_bounds(local_today(site.time_zone, now=now), site.time_zone)
    visits = _load_visits(
        db,
        _one_select(),
        {"session_id": session_id},
        now=now,
        day_start=day_start,
        settings=load_clinic_settings(db=db, site_id=site.id),
    )
    return visits[0] if visits else None


def hold_patients_visits(*, db: Session, patient_id: int) -> None:
    """Hold the patient's row until the transaction ends, before reading their other visits.

    Every write that decides on "the patient's other visits" (check-in and start: one
    visit under way, doses within the second-dose window; a booking: one a day, one
    booked ahead) takes it first, so two stations deciding about one patient queue and
    the second decides on what the first wrote. ``SELECT ... FOR NO KEY UPDATE`` on
    PostgreSQL (``db.ROW_LOCK``); on SQLite the write's ``BEGIN IMMEDIATE`` already holds
    the whole database (and no lock clause is sent).
    """
    patient = select(col(Patient.id)).where(col(Patient.id) == patient_id)
    db.execute(patient.with_for_update(**ROW_LOCK)).all()


def _flush_pending(db: Session) -> None:
    # The reads below run on the session's connection (Core rows: the ORM's loading is
    # most of the cost of a small query), so they flush first as the ORM's would.
    if db.autoflush and (db.new or db.dirty or db.deleted):
        db.flush()


# Visits the check-in rules are read for: not dosed yet, or closed by a step a correction
# may take back into an open status (a cancel after check-in, a discharge).
_BEFORE_DOSE = (S.SCHEDULED, S.CHECKED_IN)
_REOPENABLE = (S.CANCELLED, S.DISCHARGED)


def _load_visits(
    db: Session,
    statement: Statement,
    params: dict[str, Any],
    *,
    now: datetime,
    day_start: datetime,
    settings: ClinicSettings,
) -> tuple[Visit, ...]:
    latest_allowed = now + MAX_CLOCK_SKEW
    connection = db.connection()
    rows = connection.execute(
        statement,
        {
            **params,
            "weight_since": now - timedelta(days=WEIGHT_LOOKBACK_DAYS),
            "open_since": now - timedelta(days=EARLIER_DAYS_LOOKBACK),
            "starts_from": now - timedelta(hours=settings.second_dose_window_hours),
            "starts_until": latest_allowed,
            "latest_allowed": latest_allowed,
        },
    ).all()
    if not rows:
        return ()
    session_ids = [row.id for row in rows]
    effects = _side_effects_by_session(connection, session_ids, latest_allowed)
    history = _history_by_session(connection, session_ids)
    # What only a visit under way needs (the dose checks, the weight on its card) is kept
    # for those patients alone: the start and check-in gates and the card read it there.
    under_way = {row.patient_id for row in rows if row.status in OPEN_STATUSES}
    before_dose = {row.patient_id for row in rows if row.status in _BEFORE_DOSE}
    starts = {row.patient_id: row.recent_starts for row in rows if row.status == S.CHECKED_IN}

    visits = []
    for row in rows:
        elsewhere = None
        if row.elsewhere_status is not None and (
            row.patient_id in before_dose or row.status in _REOPENABLE
        ):
            elsewhere = (row.elsewhere_chair or "No chair", S(row.elsewhere_status))
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
                previous_weight_kg=(
                    row.previous_weight_kg if row.patient_id in under_way else None
                ),
                baseline=_snapshot(row, "baseline"),
                latest=_snapshot(row, "latest"),
                phq9_total=row.phq9_total,
                phq9_item9=row.phq9_item9,
                phq9_taken_at=row.phq9_taken_at,
                phq9_item9_highest=row.phq9_item9_highest,
                phq9_count=row.phq9_count or 0,
                side_effects=effects.get(row.id, ()),
                ride=_ride(row),
                timeline=fold_timeline(history.get(row.id, [])),
                doses_started_recently=starts.get(row.patient_id) or 0,
                open_elsewhere=elsewhere,
                chair_occupied_by=(
                    S(row.occupant_status)
                    if row.occupant_status is not None
                    and row.status in (*_BEFORE_DOSE, *_REOPENABLE)
                    else None
                ),
                rems_record_started=row.rems_record_id is not None,
            )
        )
    return tuple(visits)


def _snapshot(row: VisitRow, reading: str) -> VitalsSnapshot | None:
    taken_at, phase, systolic, diastolic, heart_rate, spo2 = (
        getattr(row, label) for label in _READING_LABELS[reading]
    )
    if taken_at is None:
        return None
    return VitalsSnapshot(
        taken_at=taken_at,
        phase=VitalsPhase(phase),
        vitals=Vitals(systolic=systolic, diastolic=diastolic, heart_rate=heart_rate, spo2=spo2),
    )


def _ride(row: VisitRow) -> RideSnapshot | None:
    if row.ride_id is None:
        return None
    return RideSnapshot(
        driver_name=row.driver_name,
        driver_phone=row.driver_phone,
        relationship=row.relationship,
        expected_pickup_at=row.expected_pickup_at,
        on_the_way_at=row.on_the_way_at,
        eta_at=row.eta_at,
        arrived_at=row.arrived_at,
        version=row.ride_version,
    )


def _side_effects_by_session(
    connection: Connection, session_ids: list[int], latest_allowed: datetime
) -> dict[int, tuple[tuple[str, str], ...]]:
    latest: dict[int, dict[str, str]] = defaultdict(dict)
    for session_id, effect, severity in connection.execute(
        _side_effects_select(), {"session_ids": session_ids, "latest_allowed": latest_allowed}
    ):
        latest[session_id][effect] = severity
    return {
        session_id: tuple(
            (effect, severity) for effect, severity in effects.items() if severity != Severity.NONE
        )
        for session_id, effects in latest.items()
    }


def _history_by_session(
    connection: Connection, session_ids: list[int]
) -> dict[int, list[HistoryRow]]:
    found: dict[int, list[HistoryRow]] = defaultdict(list)
    for row in connection.execute(_history_select(), {"session_ids": session_ids}):
        # (version, from, to, at, staff, reason, is_correction), as fold_timeline takes them
        found[row[0]].append((*row[1:7], bool(row[7])))
    return found


# --- the statements ---------------------------------------------------------------------------
# Each is built once per process with named parameters: building a statement (its
# aliases above all) and computing its cache key cost more than running it does on a
# board's few dozen rows.


_READING_COLUMNS = ("taken_at", "phase", "systolic", "diastolic", "heart_rate", "spo2")
_READING_LABELS = {
    reading: tuple(f"{reading}_{column}" for column in _READING_COLUMNS)
    for reading in ("baseline", "latest")
}


def _at(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=UTCDateTime())


@functools.cache
def _site_and_chairs_select() -> Statement:
    return (
        select(
            col(Site.name),
            col(Site.time_zone),
            col(Chair.id).label("chair_id"),
            col(Chair.name).label("chair"),
        )
        .select_from(Site)
        .outerjoin(Chair, and_(col(Chair.site_id) == col(Site.id), col(Chair.active)))
        .where(col(Site.id) == bindparam("site_id"))
        .order_by(col(Chair.position), col(Chair.name))
    )


@functools.cache
def _site_zone_select() -> Statement:
    return select(col(Site.time_zone)).where(col(Site.id) == bindparam("site_id"))


@functools.cache
def _session_zone_select() -> Statement:
    return (
        select(col(Site.id), col(Site.time_zone))
        .join(TreatmentSession, col(TreatmentSession.site_id) == col(Site.id))
        .where(col(TreatmentSession.id) == bindparam("session_id"))
    )


def _table(model: type[SQLModel]) -> Table:
    # Core tables, not the ORM's classes: the rows are read without the ORM anyway, and
    # its columns carry annotations that SQLAlchemy strips, subquery by subquery, when it
    # builds the statement. Same SQL; built in about 7 ms instead of 13 and compiled in 6
    # instead of 9, once per process and statement.
    table = inspect(model).local_table  # the model's __table__, typed
    assert isinstance(table, Table), f"{model.__name__} is not a table model"
    return table


@functools.cache
def _site_day_select() -> Statement:
    """A site's day: booked on it (``:day_start`` to ``:day_end``), or still open or
    expected from the ``:lookback`` before it."""
    t = _table(TreatmentSession).c
    return _visits_select(
        and_(
            t.site_id == bindparam("site_id"),
            or_(
                and_(t.scheduled_start >= _at("day_start"), t.scheduled_start < _at("day_end")),
                and_(
                    t.status.in_([*OPEN_STATUSES, S.SCHEDULED]),
                    t.scheduled_start >= _at("lookback"),
                    t.scheduled_start < _at("day_start"),
                ),
            ),
        )
    )


@functools.cache
def _open_select() -> Statement:
    t = _table(TreatmentSession).c
    return _visits_select(
        and_(
            t.site_id == bindparam("site_id"),
            t.status.in_(list(OPEN_STATUSES)),
            t.scheduled_start >= _at("lookback"),
        )
    )


@functools.cache
def _one_select() -> Statement:
    return _visits_select(_table(TreatmentSession).c.id == bindparam("session_id"))


def _visits_select(where: ColumnElement[bool]) -> Statement:
    """The sessions in ``where`` with their patient, chair and ride, and per session the
    facts the gates need from the patient's other visits:

    * ``previous_weight_kg``: the weight of their last visit before this one, booked
      since ``:weight_since``;
    * ``recent_starts``: doses started for the patient from ``:starts_from`` (the
      second-dose window before now) until ``:starts_until``, taken back or not (read
      for checked-in sessions only);
    * ``elsewhere_*``: another visit of theirs under way, booked since ``:open_since``;
    * ``occupant_*``: another visit under way in the same chair, booked since ``:open_since``
      (read for visits not dosed yet, and cancelled or discharged ones a correction may
      put under way again);

    and what counts for the visit, from its check-in up to ``:latest_allowed``: its
    latest pre-dose reading (``baseline_*``), its latest reading (``latest_*``) and
    the PHQ-9 taken (``phq9_*``), each the last by time, then by id. A PHQ-9 counts
    for the visit only when it was recorded against this session for this patient: a
    score of the patient's imported from elsewhere and dated inside the visit is not
    this visit's. ``phq9_item9_highest`` and ``phq9_count`` are over all of them.

    Each is an indexed lookup per session. The sessions and the ids found are a
    materialized CTE that the rows found are then joined to by primary key: as one
    flat join of nine tables, PostgreSQL spent longer choosing a join order (5 ms)
    than reading the board.
    """
    sessions = _table(TreatmentSession)
    t = sessions.c

    def last(
        table: FromClause,
        *conditions: ColumnElement[bool],
        by_time: ColumnElement[Any],
        by_id: ColumnElement[Any],
        ascending: bool = False,
    ) -> ScalarSelect[Any]:
        order = (by_time, by_id) if ascending else (by_time.desc(), by_id.desc())
        return (
            select(table.c.id)
            .where(*conditions)
            .order_by(*order)
            .limit(1)
            .correlate(sessions)
            .scalar_subquery()
        )

    def last_reading_id(*, before_dose: bool) -> ScalarSelect[Any]:
        readings = _table(VitalsReading).alias("baseline_of" if before_dose else "latest_of")
        v = readings.c
        conditions = [
            v.session_id == t.id,
            v.taken_at >= t.checked_in_at,
            v.taken_at <= _at("latest_allowed"),
        ]
        if before_dose:
            conditions.append(v.phase == VitalsPhase.BEFORE)
        return last(readings, *conditions, by_time=v.taken_at, by_id=v.id)

    scores = _table(OutcomeScore).alias("score")
    score = scores.c
    phq9_of_visit = (
        score.session_id == t.id,
        score.patient_id == t.patient_id,
        score.instrument == Instrument.PHQ9,
        score.taken_at >= t.checked_in_at,
        score.taken_at <= _at("latest_allowed"),
    )
    phq9_id = last(scores, *phq9_of_visit, by_time=score.taken_at, by_id=score.id)
    all_phq9 = _table(OutcomeScore).alias("all_phq9")
    a = all_phq9.c
    every_phq9 = (
        a.session_id == t.id,
        a.patient_id == t.patient_id,
        a.instrument == Instrument.PHQ9,
        a.taken_at >= t.checked_in_at,
        a.taken_at <= _at("latest_allowed"),
    )
    phq9_item9_highest = (
        select(func.max(a.item9)).where(*every_phq9).correlate(sessions).scalar_subquery()
    )
    phq9_count = (
        select(func.count())
        .select_from(all_phq9)
        .where(*every_phq9)
        .correlate(sessions)
        .scalar_subquery()
    )
    prior = _table(TreatmentSession).alias("prior").c
    previous_weight = (
        select(prior.weight_kg)
        .where(
            prior.patient_id == t.patient_id,
            prior.id != t.id,
            prior.weight_kg.is_not(None),
            prior.scheduled_start >= _at("weight_since"),
            prior.scheduled_start < t.scheduled_start,
        )
        .order_by(prior.scheduled_start.desc(), prior.id.desc())
        .limit(1)
        .correlate(sessions)
        .scalar_subquery()
    )
    changes = _table(StatusChange)
    c = changes.c
    started_sessions = _table(TreatmentSession).alias("started")
    started = started_sessions.c
    recent_starts = (
        select(func.count())
        .select_from(changes)
        .join(started_sessions, started.id == c.session_id)
        .where(
            started.patient_id == t.patient_id,
            c.to_status == S.INFUSING,
            c.is_correction.is_(False),
            c.changed_at >= _at("starts_from"),
            c.changed_at < _at("starts_until"),
        )
        .correlate(sessions)
        .scalar_subquery()
    )
    others = _table(TreatmentSession).alias("other")
    other = others.c
    other_id = last(
        others,
        other.patient_id == t.patient_id,
        other.id != t.id,
        other.status.in_(list(OPEN_STATUSES)),
        other.scheduled_start >= _at("open_since"),
        by_time=other.scheduled_start,
        by_id=other.id,
        ascending=True,
    )
    occupants = _table(TreatmentSession).alias("occupant")
    occupant = occupants.c
    occupant_id = (
        select(occupant.id)
        .where(
            occupant.site_id == t.site_id,
            occupant.chair_id == t.chair_id,
            occupant.id != t.id,
            occupant.status.in_(list(OPEN_STATUSES)),
            occupant.scheduled_start >= _at("open_since"),
        )
        # A patient in the chair (dosing, recovering, ready) before one checked in and waiting.
        .order_by(case((occupant.status == S.CHECKED_IN, 1), else_=0), occupant.scheduled_start)
        .limit(1)
        .correlate(sessions)
        .scalar_subquery()
    )
    patients, chairs, rides = _table(Patient), _table(Chair), _table(Ride)
    p, chair, r = patients.c, chairs.c, rides.c
    rems = _table(RemsRecord)
    visit = (
        select(
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
            p.first_name,
            p.last_name,
            p.mrn,
            p.display_alias,
            p.care_flags,
            chair.name.label("chair_name"),
            chair.position.label("chair_position"),
            r.id.label("ride_id"),
            r.driver_name,
            r.driver_phone,
            r.relationship,
            r.expected_pickup_at,
            r.on_the_way_at,
            r.eta_at,
            r.arrived_at,
            r.version.label("ride_version"),
            rems.c.id.label("rems_record_id"),
            previous_weight.label("previous_weight_kg"),
            case((t.status == S.CHECKED_IN, recent_starts), else_=None).label("recent_starts"),
            other_id.label("elsewhere_id"),
            case((t.status.in_([*_BEFORE_DOSE, *_REOPENABLE]), occupant_id), else_=None).label(
                "occupant_id"
            ),
            last_reading_id(before_dose=True).label("baseline_id"),
            last_reading_id(before_dose=False).label("latest_id"),
            phq9_id.label("phq9_id"),
            phq9_item9_highest.label("phq9_item9_highest"),
            phq9_count.label("phq9_count"),
        )
        .select_from(sessions)
        .join(patients, p.id == t.patient_id)
        .outerjoin(chairs, chair.id == t.chair_id)
        .outerjoin(rides, r.session_id == t.id)
        # A form started after ``now`` (beyond clock skew) does not count yet, like a reading.
        .outerjoin(
            rems, and_(rems.c.session_id == t.id, rems.c.started_at <= _at("latest_allowed"))
        )
        .where(where)
        .cte("visit")
        .prefix_with("MATERIALIZED")
    )
    elsewhere_sessions = _table(TreatmentSession).alias("elsewhere")
    elsewhere_chairs = _table(Chair).alias("elsewhere_chair")
    occupant_sessions = _table(TreatmentSession).alias("occupant_session")
    baseline = _table(VitalsReading).alias("baseline")
    latest = _table(VitalsReading).alias("latest")
    phq9 = _table(OutcomeScore).alias("phq9")
    return (
        select(
            visit,
            elsewhere_sessions.c.status.label("elsewhere_status"),
            elsewhere_chairs.c.name.label("elsewhere_chair"),
            occupant_sessions.c.status.label("occupant_status"),
            *(
                reading.c[column].label(label)
                for name, reading in (("baseline", baseline), ("latest", latest))
                for column, label in zip(_READING_COLUMNS, _READING_LABELS[name], strict=True)
            ),
            phq9.c.taken_at.label("phq9_taken_at"),
            phq9.c.total.label("phq9_total"),
            phq9.c.item9.label("phq9_item9"),
        )
        .select_from(visit)
        .outerjoin(elsewhere_sessions, elsewhere_sessions.c.id == visit.c.elsewhere_id)
        .outerjoin(elsewhere_chairs, elsewhere_chairs.c.id == elsewhere_sessions.c.chair_id)
        .outerjoin(occupant_sessions, occupant_sessions.c.id == visit.c.occupant_id)
        .outerjoin(baseline, baseline.c.id == visit.c.baseline_id)
        .outerjoin(latest, latest.c.id == visit.c.latest_id)
        .outerjoin(phq9, phq9.c.id == visit.c.phq9_id)
        .order_by(visit.c.scheduled_start, visit.c.chair_position, visit.c.id)
    )


@functools.cache
def _side_effects_select() -> Statement:
    o = SideEffectObservation
    return (
        select(col(o.session_id), col(o.effect), col(o.severity))
        .where(
            col(o.session_id).in_(bindparam("session_ids", expanding=True)),
            col(o.observed_at) <= _at("latest_allowed"),
        )
        .order_by(col(o.observed_at), col(o.id))
    )


@functools.cache
def _history_select() -> Statement:
    c = StatusChange
    return select(
        col(c.session_id),
        col(c.version),
        col(c.from_status),
        col(c.to_status),
        col(c.changed_at),
        col(c.staff_id),
        col(c.reason),
        col(c.is_correction),
    ).where(col(c.session_id).in_(bindparam("session_ids", expanding=True)))
