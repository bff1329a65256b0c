"""The demo clinic: a synthetic, lived-in clinic for first starts, demos and load tests.

Everything is drawn from one ``random.Random(seed)``, so a seed and a moment give the
same clinic every time. The parts, in the clinic's words:

- ``sites``: the sites, chairs, staff and the clinic settings they work by;
- ``calendar``: each site's open days and hours, and the chair book that never
  double-books a chair;
- ``visit_times``: how long each part of a visit takes, from the clinic settings;
- ``story``: a patient's story (course, series, relief episodes, boosters, scores,
  symptom returns);
- ``booking``: a visit booked into a free chair, and what became of the booking;
- ``lead_time``: when each visit was booked, from a generator of its own;
- ``visit``, ``monitoring``, ``ride_home``: one visit's rows, its vitals, its ride home;
- ``today``: today's layout around the moment ``now``, every state on the board at once
  as far as the part of the day already passed allows it under the gates;
- ``writer``: the bulk writer (COPY on PostgreSQL).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select
from sqlmodel import SQLModel, col

from ketadash.clinic import DEMO_KEY
from ketadash.config import normalise_url
from ketadash.db import get_engine, migrate
from ketadash.demo.calendar import ChairBook
from ketadash.demo.lead_time import BookingTimes
from ketadash.demo.sites import write_sites
from ketadash.demo.story import PatientStories
from ketadash.demo.today import TodayLayout
from ketadash.demo.visit import VisitWriter
from ketadash.demo.visit_times import VisitTimes
from ketadash.demo.writer import TABLES_WITH_IDS, Rows
from ketadash.models import ClinicInfo, Patient, Site, TreatmentSession, core_table
from ketadash.settings import ClinicSettings

__all__ = ["DemoSummary", "VisitTimes", "build_demo_clinic", "chairs_for"]

PATIENTS_PER_BATCH = 2_000
# A chair takes about five two-hour visits a day, and a patient of the demo comes
# about every three weeks: some 330 patients keep a chair busy. Six chairs is the
# smallest site that shows every state of the board at once.
PATIENTS_PER_CHAIR = 330
MIN_CHAIRS = 6


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """What the demo build wrote, and how long it took."""

    sites: int
    chairs: int
    staff: int
    patients: int
    sessions: int
    status_changes: int
    vitals: int
    scores: int
    symptom_returns: int
    rides: int
    ride_changes: int
    side_effects: int
    elapsed_seconds: float

    def __str__(self) -> str:
        return (
            f"Demo clinic built in {self.elapsed_seconds:.1f} s: {self.sites:,} sites, "
            f"{self.chairs:,} chairs, {self.staff:,} staff, {self.patients:,} patients, "
            f"{self.sessions:,} sessions, {self.status_changes:,} status changes, "
            f"{self.vitals:,} vitals, {self.side_effects:,} side effects, "
            f"{self.scores:,} scores, {self.symptom_returns:,} symptom returns, "
            f"{self.rides:,} rides ({self.ride_changes:,} ride changes)."
        )


def chairs_for(*, patients: int, sites: int) -> int:
    """Chairs per site for a clinic of this many patients: enough to book them all."""
    return max(MIN_CHAIRS, -(-patients // (sites * PATIENTS_PER_CHAIR)))


def build_demo_clinic(
    *,
    url: str,
    now: datetime,
    sites: int = 2,
    chairs: int | None = None,
    patients: int = 400,
    history_days: int = 730,
    seed: int = 7,
    replace_demo: bool = False,
    settings: ClinicSettings | None = None,
    relief_truth: list[tuple[int, int, int]] | None = None,
) -> DemoSummary:
    """Migrate ``url`` and fill it with the demo clinic, laid out around ``now``.

    Deterministic for a seed and a moment: ``now`` is the caller's (the screen or the
    command line reads the clock once; nothing here does). Raises ValueError if the database already
    holds clinic data or if ``now`` is naive; writes everything or nothing. Without
    ``chairs``, each site gets enough chairs for its patients (see chairs_for).
    With ``replace_demo`` an existing demo clinic (never real data) is replaced in
    the same transaction, so readers see the old day until the new one is complete.
    Every site works by ``settings`` (the defaults unless given); values other than
    the defaults are stored as each site's overrides. ``relief_truth``, when given, is
    filled with each relapse as it truly happened, (patient id, relief start, relapse
    day) as date ordinals: the day relief ended, before anyone reported it (a back-test).
    """
    started = time.perf_counter()
    chairs = chairs_for(patients=patients, sites=sites) if chairs is None else chairs
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime, e.g. 2026-11-27T09:30+00:00")
    if sites < 1 or chairs < 1 or patients < 0 or history_days < 1:
        raise ValueError("The demo needs at least one site, one chair and one day of history.")
    url = normalise_url(url)
    migrate(url)
    engine = get_engine(url).execution_options(ketadash_write=True)
    with engine.begin() as connection:
        if replace_demo:
            _clear_demo(connection)
        _refuse_unless_empty(connection)
        counts = _build(
            connection=connection,
            rng=random.Random(seed),
            now=now.astimezone(UTC),
            sites=sites,
            chairs=chairs,
            patients=patients,
            history_days=history_days,
            settings=settings or ClinicSettings(),
            booking_rng=random.Random(f"{seed}:booked_at"),
            relief_rng=random.Random(f"{seed}:relief"),
            relief_truth=relief_truth,
        )
    return DemoSummary(
        sites=counts["site"],
        chairs=counts["chair"],
        staff=counts["staff"],
        patients=counts["patient"],
        sessions=counts["treatment_session"],
        status_changes=counts["status_change"],
        vitals=counts["vitals_reading"],
        scores=counts["outcome_score"],
        symptom_returns=counts["symptom_return"],
        rides=counts["ride"],
        ride_changes=counts["ride_change"],
        side_effects=counts["side_effect_observation"],
        elapsed_seconds=round(time.perf_counter() - started, 2),
    )


def _build(
    *,
    connection: Connection,
    rng: random.Random,
    now: datetime,
    sites: int,
    chairs: int,
    patients: int,
    history_days: int,
    settings: ClinicSettings,
    booking_rng: random.Random,
    relief_rng: random.Random,
    relief_truth: list[tuple[int, int, int]] | None,
) -> dict[str, int]:
    rows = Rows(connection=connection)
    calendars = write_sites(
        connection=connection,
        rows=rows,
        rng=rng,
        now=now,
        sites=sites,
        chairs=chairs,
        settings=settings,
    )
    booking_times = BookingTimes(rng=booking_rng, now=int(now.timestamp()))
    visits = VisitWriter(rows=rows, rng=rng, booking_times=booking_times)
    stories = PatientStories(
        rng=rng,
        visits=visits,
        book=ChairBook(chairs=chairs),
        sites=calendars,
        history_days=history_days,
        chairs=chairs,
        now=int(now.timestamp()),
        relief_rng=relief_rng,
        truth=relief_truth,
    )
    for first in range(1, patients + 1, PATIENTS_PER_BATCH):
        for patient_id in range(first, min(first + PATIENTS_PER_BATCH, patients + 1)):
            stories.tell(patient_id)
        rows.flush()
    layout = TodayLayout(rng=rng, visits=visits, now=int(now.timestamp()), chairs=chairs)
    for site in calendars:
        queues = stories.today[site.index]
        layout.lay_out(site, due=queues.due + queues.stand_ins + queues.returning)
    rows.finish()
    connection.execute(
        core_table(ClinicInfo).insert(), [{"key": DEMO_KEY, "value": now.isoformat()}]
    )
    if rows.dialect == "postgresql":
        for table in TABLES_WITH_IDS:
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        connection.exec_driver_sql("ANALYZE")
    return rows.counts


def _clear_demo(connection: Connection) -> None:
    demo_mark = select(col(ClinicInfo.key)).where(col(ClinicInfo.key) == DEMO_KEY)
    if connection.execute(demo_mark).first() is None:
        return  # not the demo: _refuse_unless_empty decides, and never deletes
    # The demo's mark last: while it is there, the access log's and the status history's
    # triggers (migration 0005) let their rows go; on a real clinic they refuse.
    tables = [
        t for t in reversed(SQLModel.metadata.sorted_tables) if t is not core_table(ClinicInfo)
    ]
    for table in [*tables, core_table(ClinicInfo)]:
        connection.execute(table.delete())


def _refuse_unless_empty(connection: Connection) -> None:
    patients = connection.execute(select(func.count()).select_from(Patient)).scalar_one()
    sites = connection.execute(select(func.count()).select_from(Site)).scalar_one()
    sessions = connection.execute(select(func.count()).select_from(TreatmentSession)).scalar_one()
    if patients or sites or sessions:
        raise ValueError(
            f"This database already holds clinic data ({patients:,} patients, {sites:,} sites, "
            f"{sessions:,} sessions). The demo clinic is only built into an empty database: "
            "point --url at a new one."
        )
