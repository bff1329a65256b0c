"""Relief histories relative to a moment, and a site open at every hour, for boosters tests."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ketadash.db import write_session
from ketadash.models import (
    Instrument,
    OutcomeScore,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    SymptomReturn,
    TreatmentSession,
)
from tests.utils.factories import ClinicIds, make_clinic, make_patient


def zone_at_midday(now: datetime) -> str:
    """A fixed-offset time zone in which ``now`` is around noon, so a booking fits today."""
    offset = 12 - now.hour
    if offset == 0:
        return "Etc/GMT"
    # Etc/GMT signs are POSIX-style: Etc/GMT-2 is two hours ahead of UTC.
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def make_open_clinic(*, url: str, now: datetime, chairs: int = 3) -> ClinicIds:
    """A clinic whose one site is open every day, all day, with ``now`` near its midday."""
    zone = zone_at_midday(now)
    clinic = make_clinic(url=url, chairs=chairs, time_zone=zone)
    with write_session(url) as db:
        site = db.get(Site, clinic.site_id)
        site.opens_at, site.closes_at = time(0, 0), time(23, 59)
        site.open_weekdays = "0123456"
        db.add(site)
    return clinic


def make_relief_patient(
    *,
    url: str,
    clinic: ClinicIds,
    now: datetime,
    mrn: str,
    relief: int,
    episodes: int,
    days_since_last: int,
    first: str = "Alex",
    last: str = "Morgan",
) -> int:
    """A series of six, then ``episodes`` reliefs of ``relief`` days each ended by a reported
    return of symptoms and a booster 3 days later; the last booster ``days_since_last`` ago."""
    span = 10 + episodes * (relief + 3)
    begin = now - timedelta(days=span + days_since_last)
    patient_id = make_patient(url=url, mrn=mrn, first=first, last=last, site_id=clinic.site_id)
    with write_session(url) as db:

        def infusion(day: int, kind: SessionKind) -> None:
            start = begin + timedelta(days=day)
            db.add(
                TreatmentSession(
                    site_id=clinic.site_id,
                    chair_id=clinic.chair_ids[0],
                    patient_id=patient_id,
                    scheduled_start=start,
                    route=Route.IV,
                    kind=kind,
                    status=SessionStatus.DISCHARGED,
                    dose_mg_per_kg=0.5,
                    infusion_started_at=start + timedelta(minutes=15),
                    infusion_ended_at=start + timedelta(minutes=55),
                    discharged_at=start + timedelta(minutes=100),
                )
            )

        def score(day: float, total: int) -> None:
            db.add(
                OutcomeScore(
                    patient_id=patient_id,
                    instrument=Instrument.PHQ9,
                    taken_at=begin + timedelta(days=day),
                    total=total,
                )
            )

        score(-1, 21)
        for n in range(6):
            infusion(2 * n, SessionKind.SERIES)
            score(2 * n + 0.001, max(4, 21 - 3 * n))
        anchor = 10
        for _ in range(episodes):
            db.add(
                SymptomReturn(
                    patient_id=patient_id,
                    reported_on=(begin + timedelta(days=anchor + relief)).date(),
                )
            )
            anchor += relief + 3
            score(anchor - 0.01, 15)
            infusion(anchor, SessionKind.BOOSTER)
    return patient_id
