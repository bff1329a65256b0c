"""The public projection: what a screen that patients and visitors can see may know.

The recovery-area TV (and, later, a driver's status link) shows a person by the
alias they chose, else their chair, where they are and since when: nothing else.
The type below has no field for a name, MRN, date of birth, phone, dose, vitals,
score or care flag, and the query that fills it never selects those columns, so
nothing personal is read to be filtered out later (tests check both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Select, select
from sqlmodel import Session

from ketadash.db import read_session
from ketadash.models import Chair, Patient, Ride, Site, TreatmentSession
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
            Chair.name.label("chair"),
            Patient.display_alias.label("alias"),
            t.status,
            t.infusion_ended_at,
            t.ready_at,
            Ride.arrived_at.label("ride_arrived_at"),
        )
        .select_from(t)
        .join(Patient, Patient.id == t.patient_id)
        .outerjoin(Chair, Chair.id == t.chair_id)
        .outerjoin(Ride, Ride.session_id == t.id)
        .where(
            t.site_id == site_id,
            t.status.in_([status.value for status in PUBLIC_STATUSES]),
            t.scheduled_start >= now - RECOVERY_LOOKBACK,
            t.scheduled_start <= now + RECOVERY_LOOKBACK,
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
    site = db.exec(
        select(Site.id, Site.code, Site.name, Site.time_zone).where(Site.code == site_code)
    ).first()
    if site is None:
        raise UnknownSite(f"There is no site with the code {site_code!r}.")
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
        return db.execute(select(Site.code).order_by(Site.id).limit(1)).scalars().first()
