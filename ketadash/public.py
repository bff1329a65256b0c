"""The public projection: what a screen that patients and visitors can see may know.

The recovery-area TV shows a person by the alias they chose, else their chair,
where they are and since when: nothing else. The driver's status link shows the
clinic's name, the site's address and phone, and where one visit is on its route's
clock. The types below have no field for a patient's name, MRN, date of birth,
phone, chair, dose, vitals, score or care flag, and the queries that fill them never
select those columns, so nothing personal is read to be filtered out later (tests
check both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Select, select
from sqlmodel import Session, col

from ketadash.clinic import CLINIC_NAME_KEY
from ketadash.db import read_session
from ketadash.models import Chair, ClinicInfo, Patient, Ride, Route, Site, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.settings import load_clinic_settings
from ketadash.text import clean_text

# A visit in recovery is at most a few hours old; a day bounds the index range and
# still keeps a patient who was dosed before midnight on the wall after it.
RECOVERY_LOOKBACK = timedelta(hours=24)
PUBLIC_STATUSES = (S.RECOVERY, S.READY)


class PublicPlace(StrEnum):
    """Where a person in the recovery area is, in words for everyone."""

    RESTING = "resting"
    WAITING_FOR_RIDE = "waiting_for_ride"
    RIDE_ARRIVED = "ride_arrived"

    @property
    def label(self) -> str:
        return {
            "resting": "Resting",
            "waiting_for_ride": "Ready — waiting for ride",
            "ride_arrived": "Ride has arrived",
        }[self.value]


@dataclass(frozen=True, kw_only=True)
class PublicRecoveryPatient:
    """One person on the wall: the public label, where they are, and since when."""

    label: str
    place: PublicPlace
    since: datetime


@dataclass(frozen=True, kw_only=True)
class PublicRecoveryArea:
    """One site's recovery area as the wall shows it, read at ``read_at``."""

    site_code: str
    site_name: str
    time_zone: str
    read_at: datetime
    patients: tuple[PublicRecoveryPatient, ...]


class UnknownSite(LookupError):
    """No site has the code asked for."""


def public_label(*, alias: str | None, chair: str | None, rule: str) -> str:
    """The name the wall may show: the patient's own alias, else the chair (``wall_label``).

    ``alias_or_chair`` uses the alias the patient chose when there is one;
    ``chair_only`` never does. A person with neither is "In recovery".
    """
    chosen = clean_text(alias) if rule == "alias_or_chair" else ""
    return chosen or clean_text(chair) or "In recovery"


def public_place(
    *,
    status: S,
    ready_at: datetime | None,
    ride_arrived_at: datetime | None,
    ended_at: datetime | None,
) -> tuple[PublicPlace, datetime | None]:
    """Where the person is and since when, from the few facts the public query reads."""
    if S(status) == S.READY and ride_arrived_at is not None:
        return PublicPlace.RIDE_ARRIVED, max(ride_arrived_at, ready_at or ride_arrived_at)
    if S(status) == S.READY:
        return PublicPlace.WAITING_FOR_RIDE, ready_at
    return PublicPlace.RESTING, ended_at


def public_recovery_query(*, site_id: int, now: datetime) -> Select:
    """The only query behind the wall: public columns of one site's recovery area.

    It selects the chair name, the patient's display alias, the status, three
    timestamps and the ride's arrival, nothing else; the patient table is joined
    for the alias alone. Uses the ``site_id, status, scheduled_start`` index.
    """
    t = TreatmentSession
    return (
        select(
            col(Chair.name).label("chair"),
            col(Patient.display_alias).label("alias"),
            col(t.status),
            col(t.infusion_ended_at),
            col(t.ready_at),
            col(Ride.arrived_at).label("ride_arrived_at"),
        )
        .select_from(t)
        .join(Patient, col(Patient.id) == col(t.patient_id))
        .outerjoin(Chair, col(Chair.id) == col(t.chair_id))
        .outerjoin(Ride, col(Ride.session_id) == col(t.id))
        .where(
            col(t.site_id) == site_id,
            col(t.status).in_([status.value for status in PUBLIC_STATUSES]),
            col(t.scheduled_start) >= now - RECOVERY_LOOKBACK,
            col(t.scheduled_start) <= now + RECOVERY_LOOKBACK,
        )
    )


# Who catches the eye first: those whose ride is here, then those ready, then resting.
_PLACE_ORDER = {
    PublicPlace.RIDE_ARRIVED: 0,
    PublicPlace.WAITING_FOR_RIDE: 1,
    PublicPlace.RESTING: 2,
}


def public_recovery_area(*, db: Session, site_code: str, now: datetime) -> PublicRecoveryArea:
    """One site's recovery area for the wall; raises UnknownSite for an unknown code."""
    site = db.execute(
        select(col(Site.id), col(Site.code), col(Site.name), col(Site.time_zone)).where(
            col(Site.code) == site_code
        )
    ).first()
    if site is None:
        raise UnknownSite(f"There is no site with the code {site_code!r}.")
    if site.id is None:
        raise ValueError(f"The site {site_code!r} has no id: a stored site always has one.")
    rule = load_clinic_settings(db=db, site_id=site.id).wall_label
    people = []
    for row in db.execute(public_recovery_query(site_id=site.id, now=now)):
        place, since = public_place(
            status=row.status,
            ready_at=row.ready_at,
            ride_arrived_at=row.ride_arrived_at,
            ended_at=row.infusion_ended_at,
        )
        people.append(
            PublicRecoveryPatient(
                label=public_label(alias=row.alias, chair=row.chair, rule=rule),
                place=place,
                since=since or now,
            )
        )
    people.sort(key=lambda p: (_PLACE_ORDER[p.place], p.since, p.label))
    return PublicRecoveryArea(
        site_code=site.code,
        site_name=site.name,
        time_zone=site.time_zone,
        read_at=now,
        patients=tuple(people),
    )


def load_public_recovery_area(*, url: str, site_code: str, now: datetime) -> PublicRecoveryArea:
    """``public_recovery_area`` with its own read session."""
    with read_session(url) as db:
        return public_recovery_area(db=db, site_code=site_code, now=now)


def first_site_code(*, url: str) -> str | None:
    """The code of the clinic's first site (a wall without ``?site=`` shows it), or None."""
    with read_session(url) as db:
        return db.execute(select(col(Site.code)).order_by(col(Site.id)).limit(1)).scalars().first()


# --- the driver's status link ------------------------------------------------------------------


class DriverState(StrEnum):
    """Where the visit is, as the person driving the patient home needs to know it."""

    IN_TREATMENT = "in_treatment"
    READY = "ready"
    CALL_US = "call_us"


class LinkState(StrEnum):
    """Whether a driver's link still shows anything."""

    LIVE = "live"
    # The patient has gone home, or the visit ended otherwise, or the link is too old.
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class PublicVisitClock:
    """What the driver's page may know of one visit: its route, plan length and step times.

    Nothing else: no patient, no chair, no dose, no vitals.
    """

    site_id: int
    status: S
    route: Route
    planned_minutes: int | None
    scheduled_start: datetime
    checked_in_at: datetime | None
    infusion_started_at: datetime | None
    infusion_ended_at: datetime | None
    ready_at: datetime | None
    discharged_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class PublicSiteContact:
    """The clinic's name and the site's address and phone, as a driver's page shows them."""

    clinic_name: str
    site_name: str
    site_address: str | None
    site_phone: str | None
    time_zone: str


@dataclass(frozen=True, kw_only=True)
class PublicDriverStatus:
    """The whole driver's page, read at ``read_at``.

    ``contact`` is None only for a link nobody made (``LinkState.UNKNOWN``); ``state``
    and ``ready_around`` only for a live link (``ready_around`` while in treatment).
    """

    link: LinkState
    contact: PublicSiteContact | None
    state: DriverState | None
    ready_around: datetime | None
    read_at: datetime


def public_visit_clock_query(*, session_id: int) -> Select:
    """The only query behind a driver's page for the visit: its route's clock, nothing else."""
    t = TreatmentSession
    return select(
        col(t.site_id),
        col(t.status),
        col(t.route),
        col(t.planned_minutes),
        col(t.scheduled_start),
        col(t.checked_in_at),
        col(t.infusion_started_at),
        col(t.infusion_ended_at),
        col(t.ready_at),
        col(t.discharged_at),
    ).where(col(t.id) == session_id)


def public_visit_clock(*, db: Session, session_id: int) -> PublicVisitClock | None:
    """One visit's clock for the driver's page; None when there is no such visit."""
    row = db.execute(public_visit_clock_query(session_id=session_id)).first()
    if row is None:
        return None
    return PublicVisitClock(
        site_id=row.site_id,
        status=S(row.status),
        route=Route(row.route),
        planned_minutes=row.planned_minutes,
        scheduled_start=row.scheduled_start,
        checked_in_at=row.checked_in_at,
        infusion_started_at=row.infusion_started_at,
        infusion_ended_at=row.infusion_ended_at,
        ready_at=row.ready_at,
        discharged_at=row.discharged_at,
    )


def public_site_contact(*, db: Session, site_id: int) -> PublicSiteContact | None:
    """The site's public contact details; the clinic's recorded name, else the site's."""
    site = db.execute(
        select(col(Site.name), col(Site.address), col(Site.phone), col(Site.time_zone)).where(
            col(Site.id) == site_id
        )
    ).first()
    if site is None:
        return None
    clinic = db.execute(
        select(col(ClinicInfo.value)).where(col(ClinicInfo.key) == CLINIC_NAME_KEY)
    ).scalar()
    return PublicSiteContact(
        clinic_name=clean_text(clinic) or clean_text(site.name),
        site_name=clean_text(site.name),
        site_address=clean_text(site.address) or None,
        site_phone=clean_text(site.phone) or None,
        time_zone=site.time_zone,
    )


def public_recent_ready_query(
    *, site_id: int, route: Route, since: datetime, until: datetime
) -> Select:
    """How the site's recent visits of a route went: their booked time and step times.

    Visits booked between ``since`` and ``until`` that were marked ready; no patient,
    no chair. Uses the ``site_id, status, scheduled_start`` index.
    """
    t = TreatmentSession
    return select(
        col(t.scheduled_start),
        col(t.checked_in_at),
        col(t.infusion_started_at),
        col(t.infusion_ended_at),
        col(t.ready_at),
    ).where(
        col(t.site_id) == site_id,
        col(t.status).in_([S.READY.value, S.DISCHARGED.value]),
        col(t.scheduled_start) >= since,
        col(t.scheduled_start) < until,
        col(t.route) == Route(route).value,
        col(t.ready_at).is_not(None),
    )
