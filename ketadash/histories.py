"""Patient histories for boosters: a read of the visits layer (issue 7).

Windowed, batched queries on the caller's database session: for one site or all,
each patient's infusions, PHQ-9 scores and symptom returns from
``booster_history_days`` before ``as_of`` up to ``as_of`` (the database filters; nothing
after ``as_of`` is read), the booking still expected after ``as_of``, the pre-treatment
PHQ-9 and whether the course has ended. Five queries whatever the number of patients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import String, and_, or_, select, type_coerce
from sqlmodel import Session, col

from ketadash.boosters import (
    WORKLIST_FLAGS,
    Booking,
    BoosterFlag,
    BoosterPlan,
    ClinicRelief,
    Infusion,
    PatientHistory,
    Score,
    plan_boosters,
    sort_worklist,
    worklist_frame,
)
from ketadash.models import (
    Instrument,
    OutcomeScore,
    Patient,
    SessionStatus,
    Site,
    SymptomReturn,
    TreatmentCourse,
    TreatmentSession,
    core_table,
)
from ketadash.settings import ClinicSettings, load_clinic_settings


def load_patient_histories(
    *,
    db: Session,
    as_of: datetime,
    history_days: int,
    site_id: int | None = None,
    patient_id: int | None = None,
) -> list[PatientHistory]:
    """The histories of every patient seen at the site (or anywhere) in the window.

    A patient is in scope when they have a session at the site scheduled within
    ``history_days`` before ``as_of``, or one booked after it. Infusions are sessions
    whose dose started before ``as_of``; a booking is a session still scheduled at or
    after ``as_of``. ``patient_id`` narrows it to one patient. Ordered by patient reference.
    """
    window_start = as_of - timedelta(days=history_days)
    sqlite = db.get_bind().dialect.name == "sqlite"
    moment = datetime.fromisoformat if sqlite else _utc
    session_rows = _sessions_in_scope(
        db, as_of=as_of, window_start=window_start, site_id=site_id, patient_id=patient_id
    )
    if not session_rows:
        return []
    zones = dict(db.execute(select(col(Site.id), col(Site.time_zone))).all())
    infusions, bookings, site_of = _by_patient(session_rows, moment=moment)
    patient_ids = sorted(site_of)

    # Reported on a calendar day: "as the clinic saw it that morning" is the day before.
    earliest_day = min(z_day(window_start, zone) for zone in zones.values())
    latest_day = max(z_day(as_of, zone) for zone in zones.values())
    scores, returns, course_ends, patients = _patient_rows(
        db,
        patient_ids=patient_ids,
        as_of=as_of,
        window_start=window_start,
        days=(earliest_day, latest_day),
        moment=moment,
    )

    histories = []
    for pid, mrn, care_flags, baseline in sorted(patients, key=lambda row: row[1]):
        site = site_of[pid]
        zone = zones[site]
        today = z_day(as_of, zone)
        ended = course_ends.get(pid)
        histories.append(
            PatientHistory(
                patient_id=pid,
                patient_ref=mrn,
                site_id=site,
                time_zone=zone,
                care_flags=tuple(f for f in (care_flags or "").split(";") if f),
                infusions=tuple(infusions.get(pid, ())),
                scores=tuple(scores.get(pid, ())),
                symptom_returns=tuple(sorted(d for d in returns.get(pid, ()) if d < today)),
                booking=bookings.get(pid),
                course_ended_on=ended if ended is not None and ended < today else None,
                baseline_phq9=baseline,
            )
        )
    return histories


def _sessions_in_scope(
    db: Session,
    *,
    as_of: datetime,
    window_start: datetime,
    site_id: int | None,
    patient_id: int | None,
) -> list:
    """The sessions that put a patient in scope: given before ``as_of``, or booked after."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    t = core_table(TreatmentSession).c
    in_scope = [t.scheduled_start >= window_start]
    if site_id is not None:
        in_scope.append(t.site_id == site_id)
    if patient_id is not None:
        in_scope.append(t.patient_id == patient_id)
    given = and_(t.infusion_started_at.is_not(None), t.infusion_started_at < as_of)
    booked = and_(t.status == SessionStatus.SCHEDULED.value, t.scheduled_start >= as_of)
    session_rows = db.execute(
        select(
            t.id,
            t.patient_id,
            t.site_id,
            _moment(t.scheduled_start, sqlite),
            _moment(t.infusion_started_at, sqlite),
            t.kind,
            t.route,
        ).where(*in_scope, or_(given, booked))
    ).all()
    return list(session_rows)


def _by_patient(
    session_rows: list, *, moment
) -> tuple[dict[int, list[Infusion]], dict[int, Booking], dict[int, int]]:
    """Each patient's infusions in time order, their first booking and their site."""

    infusions: dict[int, list[Infusion]] = defaultdict(list)
    bookings: dict[int, Booking] = {}
    site_of: dict[int, int] = {}
    # Sorted here rather than in the database: the rows come straight off the site index.
    for session_id, pid, site, scheduled, started, kind, route in sorted(
        session_rows, key=lambda row: (row[1], row[3])
    ):
        if started is not None:
            infusions[pid].append(Infusion(session_id, moment(started), kind, route))
            site_of[pid] = site
        elif pid not in bookings:
            bookings[pid] = Booking(
                session_id=session_id, scheduled_start=moment(scheduled), kind=kind
            )
            site_of.setdefault(pid, site)
    return infusions, bookings, site_of


def _patient_rows(
    db: Session,
    *,
    patient_ids: list[int],
    as_of: datetime,
    window_start: datetime,
    days: tuple[date, date],
    moment,
) -> tuple[
    dict[int, list[Score]], dict[int, list[date]], dict[int, date | None], list[Sequence[Any]]
]:
    """Per patient, in chunks: PHQ-9 scores in the window, symptom returns on the days
    ``days`` (earliest, latest), the end of the latest course, and the patient row."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    earliest_day, latest_day = days
    s = core_table(OutcomeScore).c
    scores: dict[int, list[Score]] = defaultdict(list)
    r = core_table(SymptomReturn).c
    returns: dict[int, list[date]] = defaultdict(list)
    c = core_table(TreatmentCourse).c
    course_ends: dict[int, date | None] = {}
    p = core_table(Patient).c
    # The pre-treatment PHQ-9 may be older than the window: the patient's first score,
    # found through the (patient, taken_at) index one patient at a time.
    first_score = (
        select(s.total)
        .where(s.patient_id == p.id, s.instrument == Instrument.PHQ9.value, s.taken_at < as_of)
        .order_by(s.taken_at)
        .limit(1)
        .scalar_subquery()
    )
    patients: list[Sequence[Any]] = []
    for chunk in _chunks(patient_ids):
        for pid, taken_at, total, item9, session_id in db.execute(
            select(s.patient_id, _moment(s.taken_at, sqlite), s.total, s.item9, s.session_id)
            .where(
                s.patient_id.in_(chunk),
                s.instrument == Instrument.PHQ9.value,
                s.taken_at >= window_start,
                s.taken_at < as_of,
            )
            # The (patient, taken_at) index gives this order without a sort.
            .order_by(s.patient_id, s.taken_at)
        ).all():
            scores[pid].append(Score(moment(taken_at), total, item9, session_id))
        for pid, reported_on in db.execute(
            select(r.patient_id, r.reported_on).where(
                r.patient_id.in_(chunk),
                r.reported_on >= earliest_day,
                r.reported_on < latest_day,
            )
        ).all():
            returns[pid].append(reported_on)
        for pid, _started, ended in db.execute(
            select(c.patient_id, c.started_on, c.ended_on)
            .where(c.patient_id.in_(chunk), c.started_on <= latest_day)
            .order_by(c.patient_id, c.started_on)
        ).all():
            course_ends[pid] = ended  # the latest course started by then wins
        patients += db.execute(
            select(p.id, p.mrn, p.care_flags, first_score).where(p.id.in_(chunk))
        ).all()
    return scores, returns, course_ends, patients


# Bound parameters per statement stay well inside every backend's limit.
_CHUNK = 5_000


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _moment(column, sqlite: bool):
    # SQLite keeps UTC timestamps as naive ISO text: read the text with its zone appended
    # and parse it with datetime.fromisoformat (one C call a row) instead of the generic
    # per-row type processing, which is most of the read time for a large clinic.
    # PostgreSQL hands back aware datetimes.
    return type_coerce(column, String) + "+00:00" if sqlite else column


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def z_day(moment: datetime, zone: str) -> date:
    """The calendar day of ``moment`` at a site."""
    return moment.astimezone(ZoneInfo(zone)).date()


@dataclass(frozen=True, kw_only=True)
class SiteBoosters:
    """One site's booster plans, the curve they were shrunk towards, and the settings used."""

    site_id: int
    time_zone: str
    settings: ClinicSettings
    plans: list[BoosterPlan]
    clinic: ClinicRelief


def site_boosters(
    *, db: Session, site_id: int, as_of: datetime, clinic: ClinicRelief | None = None
) -> SiteBoosters:
    """The site's patients planned with the site's own settings and relief model (``clinic``:
    the model fitted earlier the same day, else fitted now)."""
    settings = load_clinic_settings(db=db, site_id=site_id)
    zone = db.execute(select(col(Site.time_zone)).where(col(Site.id) == site_id)).scalar_one()
    histories = load_patient_histories(
        db=db, as_of=as_of, history_days=settings.booster_history_days, site_id=site_id
    )
    plans, clinic = plan_boosters(
        histories=histories, settings=settings, as_of=as_of, clinic=clinic
    )
    return SiteBoosters(
        site_id=site_id, time_zone=zone, settings=settings, plans=plans, clinic=clinic
    )


def boosters_worklist(
    *,
    db: Session,
    as_of: datetime,
    site_ids: list[int],
    flags: tuple[BoosterFlag, ...] = WORKLIST_FLAGS,
) -> pd.DataFrame:
    """The worklist of the sites (each with its own settings and curve), most urgent first.

    What the page shows and ``python -m ketadash boosters`` prints.
    """
    frames = []
    for site_id in site_ids:
        site = site_boosters(db=db, site_id=site_id, as_of=as_of)
        frames.append(worklist_frame(plans=site.plans, flags=flags, time_zone=site.time_zone))
    filled = [f for f in frames if not f.empty]
    if not filled:
        return worklist_frame(plans=[], flags=flags)
    return sort_worklist(pd.concat(filled, ignore_index=True)) if len(filled) > 1 else filled[0]


@dataclass(frozen=True, kw_only=True)
class PatientContact:
    """Who to call: shown to staff on the Boosters page, never on a public screen."""

    patient_id: int
    name: str
    phone: str | None


def patient_contacts(*, db: Session, patient_ids: Sequence[int]) -> dict[int, PatientContact]:
    """Name and phone of each patient (staff screens only: the caller's list)."""
    found: dict[int, PatientContact] = {}
    ids = sorted(set(patient_ids))
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        for pid, first, last, phone in db.execute(
            select(
                col(Patient.id), col(Patient.first_name), col(Patient.last_name), col(Patient.phone)
            ).where(col(Patient.id).in_(chunk))
        ).all():
            found[pid] = PatientContact(patient_id=pid, name=f"{first} {last}", phone=phone)
    return found


def patient_contact(*, db: Session, patient_id: int) -> PatientContact | None:
    row = db.execute(
        select(col(Patient.first_name), col(Patient.last_name), col(Patient.phone)).where(
            col(Patient.id) == patient_id
        )
    ).first()
    if row is None:
        return None
    first, last, phone = row
    return PatientContact(patient_id=patient_id, name=f"{first} {last}", phone=phone)
