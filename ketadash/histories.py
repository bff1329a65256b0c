"""Patient histories for boosters: a read of the visits layer (issue 7).

Windowed, batched queries on the caller's database session: for one site or all,
each patient's infusions, PHQ-9 scores and symptom returns from
``booster_history_days`` before ``as_of`` up to ``as_of`` (the database filters; nothing
after ``as_of`` is read), the booking still expected after ``as_of``, the pre-treatment
PHQ-9 and whether the course has ended. Five queries whatever the number of patients.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

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
    t = TreatmentSession.__table__.c
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
            t.scheduled_start,
            t.infusion_started_at,
            t.kind,
            t.route,
        )
        .where(*in_scope, or_(given, booked))
        .order_by(t.patient_id, t.scheduled_start)
    ).all()
    if not session_rows:
        return []
    scope = select(t.patient_id).where(*in_scope, or_(given, booked)).distinct().scalar_subquery()
    zones = dict(db.execute(select(Site.id, Site.time_zone)).all())

    infusions: dict[int, list[Infusion]] = defaultdict(list)
    bookings: dict[int, Booking] = {}
    site_of: dict[int, int] = {}
    for session_id, patient_id, site, scheduled, started, kind, route in session_rows:
        if started is not None and started < as_of:
            infusions[patient_id].append(
                Infusion(session_id=session_id, at=started, kind=kind, route=route)
            )
            site_of[patient_id] = site
        elif patient_id not in bookings:
            bookings[patient_id] = Booking(
                session_id=session_id, scheduled_start=scheduled, kind=kind
            )
            site_of.setdefault(patient_id, site)

    s = OutcomeScore.__table__.c
    scores: dict[int, list[Score]] = defaultdict(list)
    for patient_id, taken_at, total in db.execute(
        select(s.patient_id, s.taken_at, s.total)
        .where(
            s.patient_id.in_(scope),
            s.instrument == Instrument.PHQ9.value,
            s.taken_at >= window_start,
            s.taken_at < as_of,
        )
        .order_by(s.patient_id, s.taken_at)
    ):
        scores[patient_id].append(Score(taken_at=taken_at, total=total))

    # The pre-treatment PHQ-9 may be older than the window: the patient's first score.
    first = (
        select(s.patient_id, func.min(s.taken_at).label("first_at"))
        .where(s.patient_id.in_(scope), s.instrument == Instrument.PHQ9.value, s.taken_at < as_of)
        .group_by(s.patient_id)
        .subquery()
    )
    baselines = dict(
        db.execute(
            select(s.patient_id, s.total).join(
                first,
                and_(
                    s.patient_id == first.c.patient_id,
                    s.taken_at == first.c.first_at,
                    s.instrument == Instrument.PHQ9.value,
                ),
            )
        ).all()
    )

    # Reported on a calendar day: "as the clinic saw it that morning" is the day before.
    earliest_day = min(z_day(window_start, zone) for zone in zones.values())
    latest_day = max(z_day(as_of, zone) for zone in zones.values())
    r = SymptomReturn.__table__.c
    returns: dict[int, list[date]] = defaultdict(list)
    for patient_id, reported_on in db.execute(
        select(r.patient_id, r.reported_on)
        .where(
            r.patient_id.in_(scope),
            r.reported_on >= earliest_day,
            r.reported_on < latest_day,
        )
        .order_by(r.patient_id, r.reported_on)
    ):
        returns[patient_id].append(reported_on)

    p = Patient.__table__.c
    c = TreatmentCourse.__table__.c
    course_ends: dict[int, date | None] = {}
    for patient_id, _started, ended in db.execute(
        select(c.patient_id, c.started_on, c.ended_on)
        .where(c.patient_id.in_(scope), c.started_on <= latest_day)
        .order_by(c.patient_id, c.started_on)
    ):
        course_ends[patient_id] = ended  # the latest course started by then wins
    histories = []
    for patient_id, mrn, care_flags in db.execute(
        select(p.id, p.mrn, p.care_flags).where(p.id.in_(scope)).order_by(p.mrn)
    ):
        site = site_of[patient_id]
        zone = zones[site]
        today = z_day(as_of, zone)
        ended = course_ends.get(patient_id)
        histories.append(
            PatientHistory(
                patient_id=patient_id,
                patient_ref=mrn,
                site_id=site,
                time_zone=zone,
                care_flags=tuple(f for f in (care_flags or "").split(";") if f),
                infusions=tuple(infusions.get(patient_id, ())),
                scores=tuple(scores.get(patient_id, ())),
                symptom_returns=tuple(d for d in returns.get(patient_id, ()) if d < today),
                booking=bookings.get(patient_id),
                course_ended_on=ended if ended is not None and ended < today else None,
                baseline_phq9=baselines.get(patient_id),
            )
        )
    return histories


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


def site_boosters(*, db: Session, site_id: int, as_of: datetime) -> SiteBoosters:
    """The site's patients planned with the site's own settings and relief curve."""
    settings = load_clinic_settings(db=db, site_id=site_id)
    zone = db.execute(select(Site.time_zone).where(Site.id == site_id)).scalar_one()
    histories = load_patient_histories(
        db=db, as_of=as_of, history_days=settings.booster_history_days, site_id=site_id
    )
    plans, clinic = plan_boosters(histories=histories, settings=settings, as_of=as_of)
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
    if not frames:
        return worklist_frame(plans=[], flags=flags)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return sort_worklist(frame)


@dataclass(frozen=True, kw_only=True)
class PatientContact:
    """Who to call: shown to staff on the Boosters page, never on a public screen."""

    patient_id: int
    name: str
    phone: str | None


def patient_contact(*, db: Session, patient_id: int) -> PatientContact | None:
    row = db.execute(
        select(Patient.first_name, Patient.last_name, Patient.phone).where(Patient.id == patient_id)
    ).first()
    if row is None:
        return None
    first, last, phone = row
    return PatientContact(patient_id=patient_id, name=f"{first} {last}", phone=phone)
