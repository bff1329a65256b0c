"""Booking a booster: a scheduled session at a site, on a day and time, in a free chair.

The write takes the acting staff member and returns what it booked, or raises a
``BookingRefused`` whose message a nurse understands; nothing is half-written.

Who booked a session and when are stored on the session itself (``booked_by``,
``booked_at``), not as a status-history row: a session with no history is a fresh
version-1 booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from ketadash.clock import as_utc, local_day_bounds
from ketadash.db import ROW_LOCK, read_session, write_session
from ketadash.gates import as_sentences, plan_problems, standard_plan
from ketadash.models import (
    Chair,
    Patient,
    SessionKind,
    SessionStatus,
    Site,
    Staff,
    TreatmentCourse,
    TreatmentSession,
    core_table,
    stored_id,
)
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.text import optional_reason
from ketadash.visits import hold_patients_visits

# Sessions that no longer hold a chair.
_FREED = (SessionStatus.CANCELLED.value, SessionStatus.NO_SHOW.value)
# The longest a session can hold a chair (esketamine: dose and two hours' observation, and
# some slack): how far back to look for a session still in the chair at the new start.
_LONGEST_VISIT = timedelta(hours=6)


class BookingRefused(ValueError):
    """The booster was not booked; the message says why. Nothing was written."""


@dataclass(frozen=True, kw_only=True)
class BoosterBooked:
    """What was booked, and by whom."""

    session_id: int
    patient_id: int
    site_id: int
    chair_id: int
    chair_name: str
    scheduled_start: datetime
    booked_by: int
    booked_by_name: str


@dataclass(frozen=True, kw_only=True)
class ChairChoice:
    id: int
    name: str


def chair_minutes(*, planned_minutes: int, route: str, settings: ClinicSettings) -> int:
    """How long a session holds its chair: the dose, then the minimum recovery."""
    return planned_minutes + settings.min_recovery_minutes(route)


def _chairs_held(
    db: Session, *, site_id: int, start: datetime, end: datetime, settings: ClinicSettings
) -> dict[int, list[tuple[datetime, datetime]]]:
    """When each chair is held by a session overlapping ``start``–``end``: one query."""
    t = core_table(TreatmentSession).c
    rows = db.execute(
        select(t.chair_id, t.scheduled_start, t.planned_minutes, t.route).where(
            t.site_id == site_id,
            t.scheduled_start >= start - _LONGEST_VISIT,
            t.scheduled_start < end,
            t.status.not_in(_FREED),
            t.chair_id.is_not(None),
        )
    ).all()
    held: dict[int, list[tuple[datetime, datetime]]] = {}
    for chair_id, other_start, minutes, route in rows:
        length = chair_minutes(planned_minutes=minutes, route=route, settings=settings)
        held.setdefault(chair_id, []).append((other_start, other_start + timedelta(minutes=length)))
    return held


def _site_chairs(db: Session, site_id: int) -> list[ChairChoice]:
    rows = db.execute(
        select(col(Chair.id), col(Chair.name))
        .where(col(Chair.site_id) == site_id, col(Chair.active))
        .order_by(col(Chair.position), col(Chair.id))
    ).all()
    # A stored chair always has its id.
    return [ChairChoice(id=id_, name=name) for id_, name in rows if id_ is not None]


def _free(
    chairs: list[ChairChoice],
    held: dict[int, list[tuple[datetime, datetime]]],
    start: datetime,
    end: datetime,
) -> list[ChairChoice]:
    return [c for c in chairs if not any(s < end and e > start for s, e in held.get(c.id, ()))]


def free_chairs(
    *, db: Session, site_id: int, start: datetime, minutes: int, settings: ClinicSettings
) -> list[ChairChoice]:
    """The site's active chairs with nothing booked between ``start`` and ``minutes`` later."""
    end = start + timedelta(minutes=minutes)
    held = _chairs_held(db, site_id=site_id, start=start, end=end, settings=settings)
    return _free(_site_chairs(db, site_id), held, start, end)


def _course_ended_on(db: Session, *, patient_id: int, today: date) -> date | None:
    """The day the patient's course ended, when it has (before ``today``); else None.

    As the worklist reads it (``histories``): the latest course started by today wins,
    so a new course started after an old one ended puts the patient back in care.
    """
    c = core_table(TreatmentCourse).c
    latest = db.execute(
        select(c.ended_on)
        .where(c.patient_id == patient_id, c.started_on <= today)
        .order_by(c.started_on.desc(), c.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.ended_on is None or latest.ended_on >= today:
        return None
    return latest.ended_on


def _last_plan(db: Session, *, patient_id: int, before: datetime):
    t = core_table(TreatmentSession).c
    return db.execute(
        select(t.route, t.planned_minutes, t.dose_mg_per_kg, t.dose_mg, t.course_id)
        .where(t.patient_id == patient_id, t.scheduled_start < before)
        .order_by(t.scheduled_start.desc())
        .limit(1)
    ).first()


def booster_plan_problems(*, url: str, patient_id: int, start: datetime) -> list[str]:
    """Why the plan a booster at ``start`` would copy (the patient's last plan before
    it, as ``book_booster`` takes it) cannot be booked without a lead's reason, in the
    words of ``gates.plan_problems`` that the booking refuses with; empty when it can."""
    with read_session(url) as db:
        last = _last_plan(db, patient_id=patient_id, before=as_utc(start))
    if last is None:
        return []
    return plan_problems(route=last.route, dose_mg=last.dose_mg, plan_reason=None, staff_role=None)


def book_booster(
    *,
    url: str,
    patient_id: int,
    site_id: int,
    start: datetime,
    staff_id: int,
    now: datetime,
    chair_id: int | None = None,
    plan_reason: str | None = None,
) -> BoosterBooked:
    """Book a booster for the patient at ``start`` (aware), in ``chair_id`` or the first free chair.

    The route, planned length and dose plan follow the patient's last session; a plan
    outside the label's doses (``gates.plan_problems``: esketamine other than 56 or
    84 mg) is booked only by a clinic lead recording ``plan_reason``. Refused
    (``BookingRefused``) when the staff member is unknown, the time has passed, the site
    is closed then, the patient's course has ended (out of care), the patient already
    has a session booked that day or a visit booked ahead, or no chair is free for the
    whole visit. The patient's row is held first (``hold_patients_visits``), so two
    bookings of one patient queue. On PostgreSQL the site's chairs are locked while the
    booking is checked and written, so two stations cannot book the same chair.
    """
    start = as_utc(start)
    with write_session(url) as db:
        staff = db.get(Staff, staff_id)
        if staff is None or not staff.active:
            raise BookingRefused("Sign in first: every booking records who made it.")
        patient = db.get(Patient, patient_id)
        site = db.get(Site, site_id)
        if patient is None or site is None:
            raise BookingRefused("That patient or site no longer exists; reload the page.")
        # Before anything is read of the patient's other visits (one a day, one booked
        # ahead): a second booking of this patient waits here. Then the site's chairs.
        hold_patients_visits(db=db, patient_id=patient_id)
        if start <= now:
            raise BookingRefused("That time has already passed: choose a later time.")
        settings = load_clinic_settings(db=db, site_id=site_id)
        zone = ZoneInfo(site.time_zone)
        local = start.astimezone(zone)
        ended = _course_ended_on(db, patient_id=patient_id, today=now.astimezone(zone).date())
        if ended is not None:
            raise BookingRefused(
                f"This patient's treatment course ended on {ended:%a %d %b %Y}, so they are out "
                "of care: no booster is booked after a course has ended. If they are coming "
                "back into care, the clinic lead records a new course first."
            )
        last = _last_plan(db, patient_id=patient_id, before=start)
        if last is None:
            raise BookingRefused(
                "This patient has no earlier session to take the route and dose from."
            )
        route, planned, per_kg, dose_mg, course_id = last
        refused = plan_problems(
            route=route, dose_mg=dose_mg, plan_reason=plan_reason, staff_role=staff.role
        )
        if refused:
            raise BookingRefused(as_sentences(refused) + " Nothing was booked.")
        reason = (
            None if standard_plan(route=route, dose_mg=dose_mg) else optional_reason(plan_reason)
        )
        minutes = chair_minutes(planned_minutes=planned, route=route, settings=settings)
        _refuse_closed(site=site, start=start, minutes=minutes)
        _refuse_other_bookings(db, patient_id=patient_id, site=site, local=local, now=now)
        # Lock the site's chairs: a second booking waits until this one is written.
        db.execute(
            select(col(Chair.id)).where(col(Chair.site_id) == site_id).with_for_update(**ROW_LOCK)
        ).all()
        free = free_chairs(db=db, site_id=site_id, start=start, minutes=minutes, settings=settings)
        chosen = next((c for c in free if chair_id is None or c.id == chair_id), None)
        if chosen is None:
            raise BookingRefused(
                f"No chair is free for {minutes} min from {local:%a %d %b %H:%M}"
                + (" in that chair" if chair_id is not None and free else "")
                + ": choose another time."
            )
        session = TreatmentSession(
            site_id=site_id,
            chair_id=chosen.id,
            patient_id=patient_id,
            course_id=course_id,
            scheduled_start=start,
            planned_minutes=planned,
            route=route,
            kind=SessionKind.BOOSTER,
            dose_mg_per_kg=per_kg,
            dose_mg=dose_mg,
            plan_reason=reason,
            status=SessionStatus.SCHEDULED,
            booked_at=now,
            booked_by=staff.id,
        )
        db.add(session)
        db.flush()
        return BoosterBooked(
            session_id=stored_id(session),
            patient_id=patient_id,
            site_id=site_id,
            chair_id=chosen.id,
            chair_name=chosen.name,
            scheduled_start=start,
            booked_by=stored_id(staff),
            booked_by_name=staff.name,
        )


def _refuse_closed(*, site: Site, start: datetime, minutes: int) -> None:
    """BookingRefused unless the site is open for the whole visit from ``start``."""
    zone = ZoneInfo(site.time_zone)
    local = start.astimezone(zone)
    end_local = (start + timedelta(minutes=minutes)).astimezone(zone)
    open_day = str(local.weekday()) in site.open_weekdays
    if (
        not open_day
        or local.time() < site.opens_at
        or end_local.time() > site.closes_at
        or end_local.date() != local.date()
    ):
        raise BookingRefused(
            f"{site.name} is not open for a whole visit ({minutes} min) at "
            f"{local:%a %d %b %H:%M}: it opens {site.opens_at:%H:%M}–"
            f"{site.closes_at:%H:%M}."
        )


def _refuse_other_bookings(
    db: Session, *, patient_id: int, site: Site, local: datetime, now: datetime
) -> None:
    """BookingRefused when the patient has a session that day, or a visit booked ahead."""
    t = core_table(TreatmentSession).c
    zone = ZoneInfo(site.time_zone)
    day_start, day_end = local_day_bounds(local.date(), site.time_zone)
    same_day = db.execute(
        select(t.id).where(
            t.patient_id == patient_id,
            t.scheduled_start >= day_start,
            t.scheduled_start < day_end,
            t.status.not_in(_FREED),
        )
    ).first()
    if same_day is not None:
        raise BookingRefused(
            f"This patient already has a session on {local:%a %d %b}: see Today for that day."
        )
    # One booking ahead at a time, as the worklist shows it (a booking is a visit still
    # scheduled at or after now): a second would be a second booster, not a choice.
    ahead = db.execute(
        select(t.scheduled_start)
        .where(
            t.patient_id == patient_id,
            t.status == SessionStatus.SCHEDULED.value,
            t.scheduled_start >= now,
        )
        .order_by(t.scheduled_start)
        .limit(1)
    ).scalar()
    if ahead is not None:
        raise BookingRefused(
            "This patient already has a visit booked for "
            f"{as_utc(ahead).astimezone(zone):%a %d %b at %H:%M}: one booking ahead at a "
            "time. To change the day, cancel that visit on Today (with the reason) first."
        )


def first_free_start(
    *, url: str, site_id: int, day_start: datetime, patient_id: int, step_minutes: int = 30
) -> datetime | None:
    """The first start on the day of ``day_start`` (at or after it) with a chair free for the
    patient's usual visit, in ``step_minutes`` steps; None when the day is full or closed."""
    with read_session(url) as db:
        site = db.get(Site, site_id)
        settings = load_clinic_settings(db=db, site_id=site_id)
        t = core_table(TreatmentSession).c
        last = db.execute(
            select(t.route, t.planned_minutes)
            .where(t.patient_id == patient_id)
            .order_by(t.scheduled_start.desc())
            .limit(1)
        ).first()
        if site is None or last is None:
            return None
        zone = ZoneInfo(site.time_zone)
        local = as_utc(day_start).astimezone(zone)
        if str(local.weekday()) not in site.open_weekdays:
            return None
        minutes = chair_minutes(planned_minutes=last[1], route=last[0], settings=settings)
        opens = local.replace(
            hour=site.opens_at.hour, minute=site.opens_at.minute, second=0, microsecond=0
        )
        closes = opens.replace(hour=site.closes_at.hour, minute=site.closes_at.minute)
        moment = max(opens, local.replace(second=0, microsecond=0))
        # Round up to the next step so suggested times read like a booking sheet.
        moment += timedelta(minutes=(-moment.minute) % step_minutes)
        chairs = _site_chairs(db, site_id)
        held = _chairs_held(
            db, site_id=site_id, start=moment, end=closes + timedelta(minutes=1), settings=settings
        )
        while moment + timedelta(minutes=minutes) <= closes:
            if _free(chairs, held, moment, moment + timedelta(minutes=minutes)):
                return as_utc(moment)
            moment += timedelta(minutes=step_minutes)
    return None
