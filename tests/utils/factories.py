"""Small factories: a site with chairs and staff, patients and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ketadash.db import write_session
from ketadash.models import (
    Chair,
    Patient,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    Staff,
    StaffRole,
    TreatmentSession,
)

# The e-mails sign-in gives make_clinic's staff (the page tests sign in with them).
NURSE_EMAIL = "dana.reyes@clinic.test"
OTHER_NURSE_EMAIL = "sam.okafor@clinic.test"
LEAD_EMAIL = "lee.park@clinic.test"
FRONT_DESK_EMAIL = "fran.quinn@clinic.test"


@dataclass(frozen=True)
class ClinicIds:
    site_id: int
    chair_ids: list[int]
    nurse_id: int
    other_nurse_id: int
    lead_id: int
    time_zone: str


def make_clinic(*, url: str, chairs: int = 6, time_zone: str = "America/New_York") -> ClinicIds:
    with write_session(url) as db:
        site = Site(code="main", name="Main Street", time_zone=time_zone)
        db.add(site)
        db.flush()
        chair_rows = [
            Chair(site_id=site.id, name=f"Chair {n}", position=n) for n in range(1, chairs + 1)
        ]
        nurse = Staff(name="Dana Reyes", role=StaffRole.NURSE, site_id=site.id, email=NURSE_EMAIL)
        other = Staff(
            name="Sam Okafor", role=StaffRole.NURSE, site_id=site.id, email=OTHER_NURSE_EMAIL
        )
        lead = Staff(name="Lee Park", role=StaffRole.LEAD, site_id=site.id, email=LEAD_EMAIL)
        db.add_all([*chair_rows, nurse, other, lead])
        db.flush()
        return ClinicIds(
            site_id=site.id,
            chair_ids=[c.id for c in chair_rows],
            nurse_id=nurse.id,
            other_nurse_id=other.id,
            lead_id=lead.id,
            time_zone=time_zone,
        )


def make_patient(
    *,
    url: str,
    mrn: str = "MRN-1",
    first: str = "Alex",
    last: str = "Morgan",
    alias: str | None = None,
    care_flags: str = "",
    site_id: int | None = None,
) -> int:
    with write_session(url) as db:
        patient = Patient(
            mrn=mrn,
            first_name=first,
            last_name=last,
            display_alias=alias,
            care_flags=care_flags,
            home_site_id=site_id,
        )
        db.add(patient)
        db.flush()
        return patient.id


def make_session(
    *,
    url: str,
    clinic: ClinicIds,
    patient_id: int,
    scheduled_start: datetime,
    chair_index: int = 0,
    route: Route = Route.IV,
    kind: SessionKind = SessionKind.SERIES,
    status: SessionStatus = SessionStatus.SCHEDULED,
    planned_minutes: int = 40,
    dose_mg: float | None = None,
    **stamps: datetime,
) -> int:
    """A session; IV plans 0.5 mg/kg, esketamine 56 mg (two devices), lozenges 100 mg.
    ``stamps`` are its step times (``checked_in_at=...``), written as they are."""
    if dose_mg is None and route == Route.ESKETAMINE:
        dose_mg = 56
    elif dose_mg is None and route == Route.LOZENGE:
        dose_mg = 100
    with write_session(url) as db:
        session = TreatmentSession(
            site_id=clinic.site_id,
            chair_id=clinic.chair_ids[chair_index],
            patient_id=patient_id,
            scheduled_start=scheduled_start,
            planned_minutes=planned_minutes,
            route=route,
            kind=kind,
            status=status,
            dose_mg_per_kg=0.5 if dose_mg is None else None,
            dose_mg=dose_mg,
            **stamps,
        )
        db.add(session)
        db.flush()
        return session.id


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def mark_as_demo(url: str) -> None:
    """Mark a test clinic as a demo clinic: a server then signs its visitors in as the
    demo's first nurse (make_clinic's Dana Reyes), with no identity provider to run."""
    from ketadash.clinic import DEMO_KEY
    from ketadash.clock import utc_now
    from ketadash.models import ClinicInfo

    with write_session(url) as db:
        db.add(ClinicInfo(key=DEMO_KEY, value=utc_now().isoformat()))
