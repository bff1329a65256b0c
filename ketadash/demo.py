"""The demo clinic: a synthetic, lived-in clinic for first starts, demos and load tests.

Everything is drawn from one ``random.Random(seed)``, so a seed and a moment give the
same clinic every time. History is generated patient by patient, booked into a chair
calendar that never double-books a chair, and written in bulk (COPY on PostgreSQL).
Today is laid out around the moment ``now`` so that every state on the board is
visible at once, even for someone opening the app at night.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select
from sqlmodel import SQLModel

from ketadash.clinic import DEMO_KEY
from ketadash.clock import utc_now
from ketadash.config import normalise_url
from ketadash.db import get_engine, migrate
from ketadash.models import (
    CareFlag,
    Chair,
    ClinicInfo,
    Instrument,
    Patient,
    Route,
    SessionKind,
    SessionStatus,
    Severity,
    SideEffect,
    Site,
    Staff,
    StaffRole,
    TreatmentSession,
    VitalsPhase,
)

# --- the clinic's shape -------------------------------------------------------------

# Stored as plain strings: psycopg dumps an Enum by its name, not its value.
IV, ESKETAMINE, LOZENGE = Route.IV.value, Route.ESKETAMINE.value, Route.LOZENGE.value
SERIES, BOOSTER = SessionKind.SERIES.value, SessionKind.BOOSTER.value
PHQ9 = Instrument.PHQ9.value
BEFORE, DURING, AFTER = VitalsPhase.BEFORE.value, VitalsPhase.DURING.value, VitalsPhase.AFTER.value
SCHEDULED = SessionStatus.SCHEDULED.value
CHECKED_IN = SessionStatus.CHECKED_IN.value
INFUSING = SessionStatus.INFUSING.value
RECOVERY = SessionStatus.RECOVERY.value
READY = SessionStatus.READY.value
DISCHARGED = SessionStatus.DISCHARGED.value
CANCELLED = SessionStatus.CANCELLED.value
NO_SHOW = SessionStatus.NO_SHOW.value
LATE = "late"  # a scheduled session whose patient has not arrived: a layout word only

OPENS_AT = clock_time(8, 0)
CLOSES_AT = clock_time(18, 0)
SLOT_MINUTES = 30
DAY_SLOTS = 20  # 08:00–18:00 in half hours
BOOK_AHEAD_DAYS = 14
PATIENTS_PER_BATCH = 2_000
MINUTE = 60

# A chair is held from the scheduled start for the whole visit. The visit's jitter
# below is drawn so that discharge always fits inside the block.
BLOCK_SLOTS = {IV: 4, LOZENGE: 5, ESKETAMINE: 6}
PLANNED_MINUTES = {IV: 40, LOZENGE: 30, ESKETAMINE: 15}
ARRIVAL_MINUTES = {IV: (-10, 20), LOZENGE: (-10, 20), ESKETAMINE: (-10, 15)}
WAIT_MINUTES = {IV: (10, 25), LOZENGE: (10, 25), ESKETAMINE: (10, 20)}
DOSE_MINUTES = {IV: (38, 43), LOZENGE: (25, 35), ESKETAMINE: (12, 18)}
# Clinic protocol pages: 30–60 min after IV; Spravato REMS: at least 2 h.
RECOVERY_MINUTES = {IV: (30, 60), LOZENGE: (60, 75), ESKETAMINE: (120, 140)}
SERIES_INFUSIONS = {IV: 6, LOZENGE: 6, ESKETAMINE: 8}
SERIES_WINDOW_DAYS = {IV: 21, LOZENGE: 21, ESKETAMINE: 28}
# Mon/Wed/Fri for IV; esketamine's label asks for twice weekly.
SERIES_GAP_DAYS = {IV: 2, LOZENGE: 2, ESKETAMINE: 3}

# Murrough 2013: median 18 days to relapse after the series, with a long tail.
RELIEF_MEDIAN_DAYS = 18
RELIEF_SIGMA = 0.7
RELIEF_CLIP_DAYS = (7, 180)

NO_SHOW_RATE = 0.05
CANCEL_RATE = 0.03

SITE_PLACES = (
    ("back-bay", "Back Bay", "America/New_York"),
    ("lakeview", "Lakeview", "America/Chicago"),
    ("riverside", "Riverside", "America/New_York"),
    ("cherry-creek", "Cherry Creek", "America/Denver"),
    ("harbor-point", "Harbor Point", "America/New_York"),
    ("union-square", "Union Square", "America/New_York"),
    ("oak-park", "Oak Park", "America/Chicago"),
    ("westgate", "Westgate", "America/New_York"),
    ("highlands", "Highlands", "America/Denver"),
    ("maple-grove", "Maple Grove", "America/New_York"),
)
AREA_CODES = {"America/New_York": "617", "America/Chicago": "312", "America/Denver": "303"}

FIRST_NAMES = (
    "Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
    "Dana", "Sam", "Robin", "Maria", "James", "Linda", "David", "Susan", "Michael",
    "Karen", "Daniel", "Laura", "Kevin", "Grace", "Omar", "Priya", "Wei", "Elena",
    "Marcus", "Hannah", "Luis", "Fatima", "Noah", "Olivia", "Ethan", "Chloe", "Isaac",
    "Nora", "Caleb", "Leah", "Mateo", "Zoe", "Andre", "Keisha", "Tomas", "Ingrid",
    "Ravi", "Mei", "Samuel", "Rosa", "Victor",
)  # fmt: skip
LAST_NAMES = (
    "Reyes", "Okafor", "Park", "Nguyen", "Smith", "Johnson", "Garcia", "Miller", "Davis",
    "Lopez", "Wilson", "Anderson", "Thomas", "Moore", "Martin", "Lee", "Thompson", "White",
    "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott",
    "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter",
    "Phillips", "Evans", "Turner", "Torres", "Collins", "Stewart", "Morris", "Murphy",
    "Cook", "Rogers", "Patel", "Shah", "Kim", "Chen",
)  # fmt: skip
ALIAS_WORDS = (
    "Blue", "Quiet", "Golden", "Silver", "Green", "Swift", "Gentle", "Bright", "Calm",
    "Red", "Little", "Wild",
)  # fmt: skip
ALIAS_NAMES = (
    "Heron", "Maple", "Fox", "Otter", "Willow", "Sparrow", "Cedar", "River", "Finch",
    "Birch", "Wren", "Harbor", "Meadow", "Robin", "Pine", "Lark", "Aspen", "Comet",
)  # fmt: skip
RELATIONSHIPS = ("partner", "partner", "spouse", "parent", "friend", "friend", "sibling", "child")
CARE_FLAG_WEIGHTS = (
    (CareFlag.ANXIETY.value, 0.40),
    (CareFlag.HYPERTENSION.value, 0.25),
    (CareFlag.CHRONIC_PAIN.value, 0.20),
    (CareFlag.NEEDLE_PHOBIA.value, 0.10),
    (CareFlag.FALL_RISK.value, 0.05),
)
CANCEL_REASONS = (
    "Patient unwell",
    "No ride home available",
    "Rescheduled by patient",
    "Work conflict",
    "Weather",
)
NO_SHOW_REASON = "Did not arrive; phone not answered"
# Per route: chance of each side effect in a session (CADSS literature, Spravato label).
SIDE_EFFECT_CHANCES = {
    IV: (
        (SideEffect.DISSOCIATION.value, 0.45),
        (SideEffect.LIGHT_HEADEDNESS.value, 0.25),
        (SideEffect.VISION_CHANGES.value, 0.20),
        (SideEffect.NAUSEA.value, 0.08),
        (SideEffect.SEDATION.value, 0.05),
    ),
    LOZENGE: (
        (SideEffect.DISSOCIATION.value, 0.25),
        (SideEffect.LIGHT_HEADEDNESS.value, 0.20),
        (SideEffect.NAUSEA.value, 0.10),
        (SideEffect.SEDATION.value, 0.10),
    ),
    ESKETAMINE: (
        (SideEffect.DISSOCIATION.value, 0.55),
        (SideEffect.SEDATION.value, 0.25),
        (SideEffect.NAUSEA.value, 0.15),
        (SideEffect.LIGHT_HEADEDNESS.value, 0.20),
        (SideEffect.VISION_CHANGES.value, 0.10),
    ),
}
MILD, MODERATE, SEVERE = Severity.MILD.value, Severity.MODERATE.value, Severity.SEVERE.value

# The columns written in bulk, in the order the generator builds each row.
COLUMNS = {
    "patient": (
        "id", "mrn", "first_name", "last_name", "date_of_birth", "phone", "display_alias",
        "care_flags", "home_site_id",
    ),
    "treatment_course": (
        "id", "patient_id", "route", "series_target_infusions", "series_window_days",
        "started_on", "ended_on",
    ),
    "treatment_session": (
        "id", "site_id", "chair_id", "patient_id", "course_id", "scheduled_start",
        "planned_minutes", "route", "kind", "dose_mg_per_kg", "dose_mg", "weight_kg", "status",
        "checked_in_at", "infusion_started_at", "infusion_ended_at", "ready_at",
        "discharged_at", "closed_at", "close_reason", "version",
    ),
    "status_change": (
        "id", "session_id", "version", "from_status", "to_status", "changed_at", "staff_id",
        "reason", "is_correction",
    ),
    "vitals_reading": (
        "id", "session_id", "taken_at", "phase", "systolic", "diastolic", "heart_rate", "spo2",
        "staff_id",
    ),
    "side_effect_observation": (
        "id", "session_id", "observed_at", "effect", "severity", "staff_id",
    ),
    "outcome_score": (
        "id", "patient_id", "session_id", "instrument", "taken_at", "total", "item9", "staff_id",
    ),
    "symptom_return": ("id", "patient_id", "reported_on", "note"),
    "ride": (
        "id", "session_id", "driver_name", "driver_phone", "relationship",
        "expected_pickup_at", "arrived_at", "version",
    ),
}  # fmt: skip
TABLES_WITH_IDS = ("site", "chair", "staff", *COLUMNS)


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
    side_effects: int
    elapsed_seconds: float

    def __str__(self) -> str:
        return (
            f"Demo clinic built in {self.elapsed_seconds:.1f} s: {self.sites:,} sites, "
            f"{self.chairs:,} chairs, {self.staff:,} staff, {self.patients:,} patients, "
            f"{self.sessions:,} sessions, {self.status_changes:,} status changes, "
            f"{self.vitals:,} vitals, {self.side_effects:,} side effects, "
            f"{self.scores:,} scores, {self.symptom_returns:,} symptom returns, "
            f"{self.rides:,} rides."
        )


# A chair takes about five two-hour visits a day, and a patient of the demo comes
# about every three weeks: some 330 patients keep a chair busy. Six chairs is the
# smallest site that shows every state of the board at once.
PATIENTS_PER_CHAIR = 330
MIN_CHAIRS = 6


def chairs_for(*, patients: int, sites: int) -> int:
    """Chairs per site for a clinic of this many patients: enough to book them all."""
    return max(MIN_CHAIRS, -(-patients // (sites * PATIENTS_PER_CHAIR)))


def build_demo_clinic(
    *,
    url: str,
    sites: int = 2,
    chairs: int | None = None,
    patients: int = 400,
    history_days: int = 730,
    seed: int = 7,
    now: datetime | None = None,
    replace_demo: bool = False,
) -> DemoSummary:
    """Migrate ``url`` and fill it with the demo clinic, laid out around ``now``.

    Deterministic for a seed and a moment. Raises ValueError if the database already
    holds clinic data or if ``now`` is naive; writes everything or nothing. Without
    ``chairs``, each site gets enough chairs for its patients (see chairs_for).
    With ``replace_demo`` an existing demo clinic (never real data) is replaced in
    the same transaction, so readers see the old day until the new one is complete.
    """
    started = time.perf_counter()
    chairs = chairs_for(patients=patients, sites=sites) if chairs is None else chairs
    now = utc_now() if now is None else now
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
        builder = _DemoBuilder(
            connection=connection,
            rng=random.Random(seed),
            now=now.astimezone(UTC),
            sites=sites,
            chairs=chairs,
            patients=patients,
            history_days=history_days,
        )
        builder.build()
    counts = builder.counts
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
        side_effects=counts["side_effect_observation"],
        elapsed_seconds=round(time.perf_counter() - started, 2),
    )


def _clear_demo(connection: Connection) -> None:
    if connection.execute(select(ClinicInfo.key).where(ClinicInfo.key == DEMO_KEY)).first() is None:
        return  # not the demo: _refuse_unless_empty decides, and never deletes
    for table in reversed(SQLModel.metadata.sorted_tables):
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


# --- writing rows in bulk ---------------------------------------------------------------


class _StampFormat:
    """Epoch seconds as the text each backend stores for an aware UTC datetime.

    SQLite gets SQLAlchemy's own storage format for naive UTC (what UTCDateTime writes);
    PostgreSQL gets an explicit ``+00`` so the session's TimeZone cannot shift it.
    """

    def __init__(self, *, dialect: str) -> None:
        self.suffix = ".000000" if dialect == "sqlite" else "+00"
        self.days: dict[int, str] = {}
        self.clock = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]

    def __call__(self, moment: int) -> str:
        day, second = divmod(moment, 86_400)
        text = self.days.get(day)
        if text is None:
            text = self.days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + " "
        return text + self.clock[second] + self.suffix


class _BulkWriter:
    """Appends rows to one table at a time inside the caller's transaction."""

    def __init__(self, *, connection: Connection) -> None:
        self.dialect = connection.dialect.name
        self.raw = connection.connection.driver_connection

    def write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = COLUMNS[table]
        names = ", ".join(f'"{name}"' for name in columns)
        if self.dialect == "postgresql":
            with (
                self.raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cursor = self.raw.cursor()
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            cursor.close()


# --- the clinic's calendar ----------------------------------------------------------------


@dataclass(slots=True)
class _SiteInfo:
    index: int
    id: int
    time_zone: str
    zone: ZoneInfo
    open_weekdays: frozenset[int]
    today: int  # date ordinal, local to the site
    horizon: int
    chair_ids: list[int]
    nurse_ids: list[int]
    front_desk_id: int
    area_code: str
    openings: dict[int, int] = field(default_factory=dict)

    def is_open(self, day: int) -> bool:
        # date.fromordinal(1) is a Monday.
        return (day - 1) % 7 in self.open_weekdays

    def next_open(self, day: int) -> int:
        for _ in range(7):
            if self.is_open(day):
                return day
            day += 1
        return day

    def opening(self, day: int) -> int:
        """Epoch seconds of the site's opening time on ``day`` (DST-safe)."""
        moment = self.openings.get(day)
        if moment is None:
            local = datetime.combine(date.fromordinal(day), OPENS_AT, tzinfo=self.zone)
            moment = self.openings[day] = int(local.timestamp())
        return moment


class _ChairBook:
    """Which half-hours of which chair are taken, per site and day; never double-books."""

    def __init__(self, *, chairs: int) -> None:
        self.chairs = chairs
        self.capacity = chairs * DAY_SLOTS
        self.taken: dict[tuple[int, int], list[int]] = {}
        self.used: dict[tuple[int, int], int] = {}
        self.orders = {
            units: [
                sorted(range(DAY_SLOTS - units + 1), key=lambda s, p=p: (abs(s - p), s))
                for p in range(DAY_SLOTS - units + 1)
            ]
            for units in set(BLOCK_SLOTS.values())
        }

    def book(
        self, *, site: _SiteInfo, day: int, units: int, preferred: int, tries: int, last_day: int
    ) -> tuple[int, int, int] | None:
        """(day, slot, chair index) of the first free block from ``day``, or None.

        Looks at up to ``tries`` open days; the site's today is left to the today layout.
        """
        need_base = (1 << units) - 1
        order = self.orders[units][preferred]
        while tries > 0 and day <= last_day:
            if site.is_open(day) and day != site.today:
                tries -= 1
                key = (site.index, day)
                used = self.used.get(key, 0)
                if used + units <= self.capacity:
                    masks = self.taken.get(key)
                    if masks is None:
                        masks = self.taken[key] = [0] * self.chairs
                    for slot in order:
                        need = need_base << slot
                        for chair, mask in enumerate(masks):
                            if not mask & need:
                                masks[chair] = mask | need
                                self.used[key] = used + units
                                return day, slot, chair
            day += 1
        return None


@dataclass(slots=True)
class _Patient:
    id: int
    site: _SiteInfo
    route: str
    units: int
    slot: int
    weight: float
    systolic: float
    diastolic: float
    heart_rate: float
    driver: tuple[str, str, str]
    phq_baseline: float
    phq_relief: float
    phq_rate: float
    doses: int = 0
    in_series: bool = True


@dataclass(slots=True)
class _TodayVisit:
    """One of today's sessions, before its patient is known: offsets from now, in seconds."""

    chair: int
    status: str
    sched: float
    checkin: float | None = None
    start: float | None = None
    end: float | None = None
    ready: float | None = None
    discharged: float | None = None
    closed: float | None = None


# --- the builder ----------------------------------------------------------------------------


class _DemoBuilder:
    def __init__(
        self,
        *,
        connection: Connection,
        rng: random.Random,
        now: datetime,
        sites: int,
        chairs: int,
        patients: int,
        history_days: int,
    ) -> None:
        self.connection = connection
        self.rng = rng
        self.now = now
        self.now_ts = int(now.timestamp())
        self.site_count = sites
        self.chairs = chairs
        self.patient_count = patients
        self.history_days = history_days
        self.writer = _BulkWriter(connection=connection)
        self.stamp = _StampFormat(dialect=self.writer.dialect)
        self.book = _ChairBook(chairs=chairs)
        self.rows: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
        self.next_id = dict.fromkeys(COLUMNS, 1)
        self.counts: dict[str, int] = dict.fromkeys(TABLES_WITH_IDS, 0)
        self.sites: list[_SiteInfo] = []
        self.today_pool: list[list[tuple[_Patient, str, float]]] = []
        # Patients who can fill today's board when too few were due: active courses
        # first, then patients coming back after a break.
        self.stand_ins: list[list[tuple[_Patient, str, float]]] = []
        self.returning: list[list[tuple[_Patient, str, float]]] = []

    def build(self) -> None:
        self._write_sites()
        for first in range(1, self.patient_count + 1, PATIENTS_PER_BATCH):
            last = min(first + PATIENTS_PER_BATCH, self.patient_count + 1)
            for patient_id in range(first, last):
                self._patient(patient_id)
            self._flush()
        for site in self.sites:
            self._lay_out_today(site)
        self._flush()
        self.connection.execute(
            ClinicInfo.__table__.insert(), [{"key": DEMO_KEY, "value": self.now.isoformat()}]
        )
        if self.writer.dialect == "postgresql":
            for table in TABLES_WITH_IDS:
                self.connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            self.connection.exec_driver_sql("ANALYZE")

    def _flush(self) -> None:
        for table, rows in self.rows.items():
            self.writer.write(table, rows)
            self.counts[table] += len(rows)
            rows.clear()

    # --- sites, chairs, staff ----------------------------------------------------------

    def _write_sites(self) -> None:
        rng = self.rng
        site_rows, chair_rows, staff_rows = [], [], []
        names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
        rng.shuffle(names)
        staff_names = iter(names)
        nurses_per_site = max(4, (self.chairs + 1) // 2)
        for index in range(self.site_count):
            code, name, time_zone = SITE_PLACES[index % len(SITE_PLACES)]
            if index >= len(SITE_PLACES):
                round_ = index // len(SITE_PLACES) + 1
                code, name = f"{code}-{round_}", f"{name} {round_}"
            # One site also opens on Saturdays.
            open_weekdays = "012345" if index == 1 else "01234"
            site_id = index + 1
            site_rows.append(
                {
                    "id": site_id,
                    "code": code,
                    "name": name,
                    "time_zone": time_zone,
                    "opens_at": OPENS_AT,
                    "closes_at": CLOSES_AT,
                    "open_weekdays": open_weekdays,
                }
            )
            chair_ids = []
            for position in range(1, self.chairs + 1):
                chair_id = len(chair_rows) + 1
                chair_ids.append(chair_id)
                chair_rows.append(
                    {
                        "id": chair_id,
                        "site_id": site_id,
                        "name": f"Chair {position}",
                        "position": position,
                        "active": True,
                    }
                )
            roles = [StaffRole.NURSE] * nurses_per_site + [StaffRole.LEAD, StaffRole.FRONT_DESK]
            nurse_ids, front_desk_id = [], 0
            for role in roles:
                staff_id = len(staff_rows) + 1
                staff_rows.append(
                    {
                        "id": staff_id,
                        "name": next(staff_names, f"Staff {staff_id}"),
                        "role": role.value,
                        "site_id": site_id,
                        "active": True,
                    }
                )
                if role == StaffRole.NURSE:
                    nurse_ids.append(staff_id)
                elif role == StaffRole.FRONT_DESK:
                    front_desk_id = staff_id
            zone = ZoneInfo(time_zone)
            today = self.now.astimezone(zone).date().toordinal()
            self.sites.append(
                _SiteInfo(
                    index=index,
                    id=site_id,
                    time_zone=time_zone,
                    zone=zone,
                    open_weekdays=frozenset(int(d) for d in open_weekdays),
                    today=today,
                    horizon=today + BOOK_AHEAD_DAYS,
                    chair_ids=chair_ids,
                    nurse_ids=nurse_ids,
                    front_desk_id=front_desk_id,
                    area_code=AREA_CODES.get(time_zone, "555"),
                )
            )
            self.today_pool.append([])
            self.stand_ins.append([])
            self.returning.append([])
        self.connection.execute(Site.__table__.insert(), site_rows)
        self.connection.execute(Chair.__table__.insert(), chair_rows)
        self.connection.execute(Staff.__table__.insert(), staff_rows)
        self.counts["site"] = len(site_rows)
        self.counts["chair"] = len(chair_rows)
        self.counts["staff"] = len(staff_rows)

    # --- one patient's story ---------------------------------------------------------------

    def _phone(self, site: _SiteInfo) -> str:
        # 555-0100 to 555-0199 are the numbers set aside for fiction.
        return f"{site.area_code}-555-{self.rng.randrange(100, 200):04d}"

    def _patient(self, patient_id: int) -> None:
        rng = self.rng
        site = self.sites[rng.randrange(self.site_count)]
        today = site.today
        draw = rng.random()
        route = IV if draw < 0.82 else ESKETAMINE if draw < 0.97 else LOZENGE
        units = BLOCK_SLOTS[route]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        born = date.fromordinal(today - rng.randint(22 * 365, 75 * 365))
        alias = (
            f"{rng.choice(ALIAS_WORDS)} {rng.choice(ALIAS_NAMES)}" if rng.random() < 0.5 else None
        )
        if alias is not None and rng.random() < 0.3:
            alias = alias.split(" ")[1]
        flags = ""
        if rng.random() < 0.35:
            chosen = {
                rng.choices([f for f, _ in CARE_FLAG_WEIGHTS], [w for _, w in CARE_FLAG_WEIGHTS])[0]
                for _ in range(1 if rng.random() < 0.8 else 2)
            }
            flags = ";".join(sorted(chosen))
        self.rows["patient"].append(
            (
                patient_id,
                f"KD-{patient_id:06d}",
                first,
                last,
                born.isoformat(),
                self._phone(site),
                alias,
                flags,
                site.id,
            )
        )
        hypertensive = CareFlag.HYPERTENSION.value in flags
        responder = rng.random() < 0.70
        remitter = responder and rng.random() < 0.45
        phq_baseline = rng.uniform(15, 25.5)
        if remitter:
            phq_relief = rng.uniform(1, 4)
        elif responder:
            phq_relief = phq_baseline * rng.uniform(0.3, 0.5)
        else:
            phq_relief = phq_baseline * rng.uniform(0.7, 0.95)
        driver = (
            f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            self._phone(site),
            rng.choice(RELATIONSHIPS),
        )
        patient = _Patient(
            id=patient_id,
            site=site,
            route=route,
            units=units,
            slot=rng.randrange(DAY_SLOTS - units + 1),
            weight=min(140.0, max(45.0, rng.gauss(80, 16))),
            systolic=rng.gauss(121, 9) + (9 if hypertensive else 0),
            diastolic=rng.gauss(77, 6) + (5 if hypertensive else 0),
            heart_rate=rng.gauss(74, 8),
            driver=driver,
            phq_baseline=phq_baseline,
            phq_relief=phq_relief,
            phq_rate=rng.uniform(0.35, 0.7),
        )
        relief_median = min(
            RELIEF_CLIP_DAYS[1],
            max(
                RELIEF_CLIP_DAYS[0], rng.lognormvariate(math.log(RELIEF_MEDIAN_DAYS), RELIEF_SIGMA)
            ),
        )
        # Some patients' relief wears off sooner with each booster.
        shortening = rng.uniform(0.85, 0.95) if rng.random() < 0.2 else 1.0
        # How long a responder keeps coming for boosters before stopping.
        stays_days = rng.expovariate(1 / 420)
        drops_out = rng.random() < 0.10

        # A steady flow of patients over the history, and a few starting now, so that
        # today has series infusions as well as boosters.
        if rng.random() < 0.08 or self.history_days <= 28:
            start = today + rng.randint(-min(24, self.history_days), 6)
        else:
            start = today - rng.randint(25, self.history_days)
        start = site.next_open(start)
        course_id = patient_id  # one course per patient

        target = SERIES_INFUSIONS[route]
        if not responder and rng.random() < 0.35:
            target = rng.randint(3, 5)
        if drops_out and rng.random() < 0.4:
            target = rng.randint(1, 3)
            drops_out = False
            responder = False
        attended, attempts = 0, 0
        last_day: int | None = None
        ended_on: int | None = None
        active = False
        day = start
        while attended < target and attempts < target + 2:
            if day > site.horizon:
                active = True
                break
            attempts += 1
            phq = self._series_phq(patient, attended)
            outcome, booked_day = self._book(patient, day, SERIES, phq, tries=3)
            # The rest of the series is booked ahead too, as far as the calendar goes.
            active = active or outcome == "future"
            if booked_day is None:
                day = site.next_open(day + SERIES_GAP_DAYS[route])
                continue
            last_day = booked_day
            if outcome in ("attended", "today", "future"):
                attended += 1
            day = site.next_open(booked_day + SERIES_GAP_DAYS[route])
        patient.in_series = active
        if active:
            pass
        elif last_day is None:
            # No chair was free for any of the series: the patient went elsewhere.
            ended_on = start if start < today else None
        elif not responder or attended == 0:
            ended_on = last_day if last_day < today else None
        else:
            ended_on, active = self._relief(
                patient,
                anchor=last_day,
                relief_median=relief_median,
                shortening=shortening,
                stays_until=last_day + stays_days,
                drops_out=drops_out,
            )
        if last_day is not None:
            self._remember_stand_in(patient, start, active=active or ended_on is None)
        self.rows["treatment_course"].append(
            (
                course_id,
                patient_id,
                route,
                SERIES_INFUSIONS[route],
                SERIES_WINDOW_DAYS[route],
                date.fromordinal(start).isoformat(),
                date.fromordinal(ended_on).isoformat() if ended_on is not None else None,
            )
        )

    def _relief(
        self,
        patient: _Patient,
        *,
        anchor: int,
        relief_median: float,
        shortening: float,
        stays_until: float,
        drops_out: bool,
    ) -> tuple[int | None, bool]:
        """Relief episodes and boosters after the series; returns (ended_on, booked ahead)."""
        rng = self.rng
        site = patient.site
        today = site.today
        dropout_episode = rng.randint(0, 5) if drops_out else -1
        episode = 0
        while True:
            length = relief_median * shortening**episode * rng.lognormvariate(0, 0.15)
            returned = anchor + max(5, round(length))
            if returned > today:
                return None, False
            if returned > stays_until:
                return anchor, False
            relapse = self._relapse_phq(patient)
            self._symptom_return(patient, anchor=anchor, returned=returned, relapse=relapse)
            if episode == dropout_episode:
                return returned, False
            booked = None
            day = site.next_open(returned + rng.randint(2, 5))
            for _ in range(2):
                if day > site.horizon:
                    return None, False
                outcome, booked_day = self._book(patient, day, BOOSTER, relapse, tries=7)
                if outcome == "future":
                    return None, True
                if booked_day is None:
                    return returned, False
                if outcome in ("attended", "today"):
                    booked = booked_day
                    break
                day = site.next_open(booked_day + rng.randint(2, 4))
            if booked is None:
                return returned, False
            anchor = booked
            episode += 1

    def _series_phq(self, patient: _Patient, attended: int) -> float:
        drop = math.exp(-patient.phq_rate * attended)
        return patient.phq_relief + (patient.phq_baseline - patient.phq_relief) * drop

    def _relapse_phq(self, patient: _Patient) -> float:
        gap = patient.phq_baseline - patient.phq_relief
        return patient.phq_relief + gap * self.rng.uniform(0.5, 0.8)

    def _symptom_return(
        self, patient: _Patient, *, anchor: int, returned: int, relapse: float
    ) -> None:
        rng = self.rng
        site = patient.site
        rows = self.rows
        return_id = self.next_id["symptom_return"]
        self.next_id["symptom_return"] = return_id + 1
        rows["symptom_return"].append(
            (return_id, patient.id, date.fromordinal(returned).isoformat(), None)
        )
        # Scores from home, in the evening: the PHQ-9 creeps up before relief ends.
        checks = [(returned, relapse)]
        if returned - anchor >= 21:
            gap = patient.phq_baseline - patient.phq_relief
            checks.insert(0, (returned - 7, patient.phq_relief + gap * rng.uniform(0.25, 0.45)))
        for day, level in checks:
            taken = site.opening(day) + (11 * 60 + rng.randrange(180)) * MINUTE
            self._score(patient, None, taken, level, None)

    def _score(
        self, patient: _Patient, session_id: int | None, taken: int, level: float, staff: int | None
    ) -> None:
        rng = self.rng
        total = min(27, max(0, round(level + rng.gauss(0, 1.3))))
        flag_chance = 0.01 + (0.10 if total >= 20 else 0.04 if total >= 15 else 0.0)
        item9 = 0
        if rng.random() < flag_chance:
            item9 = 2 if rng.random() < 0.2 else 1
        score_id = self.next_id["outcome_score"]
        self.next_id["outcome_score"] = score_id + 1
        self.rows["outcome_score"].append(
            (score_id, patient.id, session_id, PHQ9, self.stamp(taken), total, item9, staff)
        )

    def _remember_stand_in(self, patient: _Patient, start: int, *, active: bool) -> None:
        site = patient.site.index
        stand_ins = self.stand_ins[site] if active else self.returning[site]
        if start < patient.site.today and len(stand_ins) < 8 * self.chairs:
            kind = SERIES if patient.in_series else BOOSTER
            stand_ins.append((patient, kind, self._relapse_phq(patient)))

    # --- booking and writing one session ---------------------------------------------------

    def _book(
        self, patient: _Patient, day: int, kind: str, phq: float, *, tries: int
    ) -> tuple[str, int | None]:
        """Book a session from ``day``: ("attended" | "missed" | "future" | "today", day).

        ("full", None) when no chair was free within ``tries`` open days.
        """
        site = patient.site
        if day == site.today:
            self.today_pool[site.index].append((patient, kind, phq))
            patient.doses += 1
            return "today", day
        found = self.book.book(
            site=site,
            day=day,
            units=patient.units,
            preferred=patient.slot,
            tries=tries,
            last_day=site.horizon,
        )
        if found is None:
            return "full", None
        booked_day, slot, chair = found
        scheduled = site.opening(booked_day) + slot * SLOT_MINUTES * MINUTE
        chair_id = site.chair_ids[chair]
        if booked_day > site.today:
            self._emit(patient, kind, phq, chair_id, scheduled, SCHEDULED, cutoff=scheduled)
            return "future", booked_day
        rng = self.rng
        draw = rng.random()
        if draw < NO_SHOW_RATE:
            closed = scheduled + rng.randint(30, 75) * MINUTE
            self._emit(
                patient, kind, phq, chair_id, scheduled, NO_SHOW, closed=closed, cutoff=closed
            )
            return "missed", booked_day
        if draw < NO_SHOW_RATE + CANCEL_RATE:
            closed = scheduled - rng.randint(90, 48 * 60) * MINUTE
            self._emit(
                patient, kind, phq, chair_id, scheduled, CANCELLED, closed=closed, cutoff=scheduled
            )
            return "missed", booked_day
        self._attend(patient, kind, phq, chair_id, scheduled)
        return "attended", booked_day

    def _attend(
        self, patient: _Patient, kind: str, phq: float, chair_id: int, scheduled: int
    ) -> None:
        rng = self.rng
        uniform = rng.uniform
        route = patient.route
        checkin = scheduled + uniform(*ARRIVAL_MINUTES[route]) * MINUTE
        start = checkin + uniform(*WAIT_MINUTES[route]) * MINUTE
        end = start + uniform(*DOSE_MINUTES[route]) * MINUTE
        low, high = RECOVERY_MINUTES[route]
        recovery = uniform(low, high) * MINUTE
        ride_wait = 20 * rng.random() ** 2 * MINUTE
        # Discharge must fit inside the chair's block: wait less for the ride, or leave
        # sooner within the recovery range.
        limit = scheduled + (BLOCK_SLOTS[route] * SLOT_MINUTES - 1) * MINUTE
        over = end + recovery + ride_wait - limit
        if over > 0:
            cut = min(over, ride_wait)
            ride_wait -= cut
            over -= cut
            if over > 0:
                recovery = max(low * MINUTE + 30, recovery - over)
        ready = end + recovery
        self._emit(
            patient,
            kind,
            phq,
            chair_id,
            scheduled,
            DISCHARGED,
            checkin=int(checkin),
            start=int(start),
            end=int(end),
            ready=int(ready),
            discharged=int(ready + ride_wait),
            cutoff=int(ready + ride_wait) + 1,
        )

    def _emit(
        self,
        patient: _Patient,
        kind: str,
        phq: float,
        chair_id: int | None,
        scheduled: int,
        status: str,
        *,
        cutoff: int,
        checkin: int | None = None,
        start: int | None = None,
        end: int | None = None,
        ready: int | None = None,
        discharged: int | None = None,
        closed: int | None = None,
        close_reason: str | None = None,
    ) -> int:
        """Write one session with everything that happened in it before ``cutoff``."""
        rng = self.rng
        rows = self.rows
        stamp = self.stamp
        next_id = self.next_id
        site = patient.site
        route = patient.route
        nurse = rng.choice(site.nurse_ids)
        session_id = next_id["treatment_session"]
        next_id["treatment_session"] = session_id + 1

        steps: list[tuple[str, str, int]] = []
        previous = SCHEDULED
        for to_status, moment in (
            (CHECKED_IN, checkin),
            (INFUSING, start),
            (RECOVERY, end),
            (READY, ready),
            (DISCHARGED, discharged),
        ):
            if moment is None:
                break
            steps.append((previous, to_status, moment))
            previous = to_status
        reason = None
        staff_for_close = site.front_desk_id
        if status in (CANCELLED, NO_SHOW):
            reason = close_reason or (
                NO_SHOW_REASON if status == NO_SHOW else rng.choice(CANCEL_REASONS)
            )
            steps = [(SCHEDULED, status, closed)]
        change_id = next_id["status_change"]
        change_rows = rows["status_change"]
        for version, (from_status, to_status, moment) in enumerate(steps, start=2):
            by = staff_for_close if reason is not None else nurse
            change_rows.append(
                (
                    change_id,
                    session_id,
                    version,
                    from_status,
                    to_status,
                    stamp(moment),
                    by,
                    reason,
                    False,
                )
            )
            change_id += 1
        next_id["status_change"] = change_id

        if route == IV:
            per_kg, dose = 0.5, round(0.5 * patient.weight, 1)
        elif route == ESKETAMINE:
            per_kg, dose = None, 84.0 if patient.doses >= 2 else 56.0
        else:
            per_kg, dose = None, 150.0
        rows["treatment_session"].append(
            (
                session_id,
                site.id,
                chair_id,
                patient.id,
                patient.id,
                stamp(scheduled),
                PLANNED_MINUTES[route],
                route,
                kind,
                per_kg,
                dose,
                round(patient.weight, 1),
                status,
                stamp(checkin) if checkin is not None else None,
                stamp(start) if start is not None else None,
                stamp(end) if end is not None else None,
                stamp(ready) if ready is not None else None,
                stamp(discharged) if discharged is not None else None,
                stamp(closed) if closed is not None else None,
                reason,
                len(steps) + 1,
            )
        )
        if checkin is None or reason is not None:
            return session_id

        # Before the dose: a PHQ-9 and a set of vitals, before the start or before now.
        limit = start if start is not None else cutoff
        span = limit - checkin
        taken = checkin + int(span * rng.uniform(0.05, 0.3))
        if taken % 60 == 0:
            taken += 1  # home scores sit on whole minutes; keep (patient, taken_at) unique
        self._score(patient, session_id, taken, phq, nurse)
        before_at = checkin + int(span * rng.uniform(0.35, 0.8))
        self._vitals(patient, session_id, nurse, checkin, start, end, ready, before_at, cutoff)
        if start is not None:
            self._side_effects(patient, session_id, nurse, start, end, cutoff)
        patient.doses += 1

        driver_name, driver_phone, relationship = patient.driver
        if rng.random() < 0.15:
            driver_name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            driver_phone = self._phone(site)
            relationship = rng.choice(RELATIONSHIPS)
        planned_end = end if end is not None else checkin + (20 + PLANNED_MINUTES[route]) * MINUTE
        expected = planned_end + (RECOVERY_MINUTES[route][0] + rng.randint(-5, 15)) * MINUTE
        expected -= expected % (5 * MINUTE)
        arrived = None
        if discharged is not None:
            arrived = discharged - int(min(discharged - ready, 4 * MINUTE) * rng.random())
        elif ready is not None and rng.random() < 0.5:
            arrived = ready + int((cutoff - 1 - ready) * rng.random())
        ride_id = next_id["ride"]
        next_id["ride"] = ride_id + 1
        rows["ride"].append(
            (
                ride_id,
                session_id,
                driver_name,
                driver_phone,
                relationship,
                stamp(expected),
                stamp(arrived) if arrived is not None else None,
                1,
            )
        )
        return session_id

    def _vitals(
        self,
        patient: _Patient,
        session_id: int,
        nurse: int,
        checkin: int,
        start: int | None,
        end: int | None,
        ready: int | None,
        before_at: int,
        cutoff: int,
    ) -> None:
        rng = self.rng
        gauss = rng.gauss
        stamp = self.stamp
        rows = self.rows["vitals_reading"]
        vitals_id = self.next_id["vitals_reading"]
        # A resting pressure above 140/90 would have held the dose (clinic protocol).
        systolic = min(139, round(patient.systolic + gauss(0, 5)))
        diastolic = min(89, round(patient.diastolic + gauss(0, 4)), systolic - 25)
        heart_rate = round(patient.heart_rate + gauss(0, 4))
        rows.append(
            (vitals_id, session_id, stamp(before_at), BEFORE, systolic, diastolic, heart_rate,
             rng.choice((97, 98, 98, 99)), nurse)
        )  # fmt: skip
        vitals_id += 1
        if start is not None:
            # Yale 2024: mean peak +16/+11 mmHg at 30–40 min; about 1% severe, more often
            # in a patient's first three infusions.
            severe_chance = 0.022 if patient.doses < 3 else 0.005
            if rng.random() < severe_chance:
                rise_s, rise_d = gauss(62, 6), gauss(33, 4)
            else:
                rise_s, rise_d = max(0.0, gauss(16, 7)), max(0.0, gauss(11, 5))
            rise_hr = gauss(8, 4)
            peak_minutes = 30 if patient.route != ESKETAMINE else 40
            stop = end if end is not None else cutoff
            moments = list(range(start + 10 * MINUTE, stop - 30, 10 * MINUTE))
            if not moments:
                moments = [start + (stop - start) // 2]
            for moment in moments:
                share = min(1.0, (moment - start) / (peak_minutes * MINUTE))
                rows.append(
                    (vitals_id, session_id, stamp(moment), DURING,
                     round(systolic + rise_s * share + gauss(0, 3)),
                     round(diastolic + rise_d * share + gauss(0, 2)),
                     round(heart_rate + rise_hr * share + gauss(0, 3)),
                     rng.choice((95, 96, 97, 98, 98, 99)), nurse)
                )  # fmt: skip
                vitals_id += 1
            if end is not None:
                stop = ready if ready is not None else cutoff
                every = 15 if patient.route == IV else 30
                moments = list(range(end + 5 * MINUTE, stop - 2 * MINUTE, every * MINUTE))
                # The reading that says the patient is back to baseline, just before ready.
                final = max(end, stop - 2 * MINUTE)
                if ready is not None and (not moments or final - moments[-1] > 3 * MINUTE):
                    moments.append(final)
                if not moments:
                    moments = [end + (stop - end) // 2]
                for moment in moments:
                    after = (moment - end) / MINUTE
                    if patient.route == ESKETAMINE:
                        # Pressure peaks about 40 min after the spray, then settles.
                        after = abs(after - 25) + 5
                    fade = math.exp(-after / 15)
                    settled = ready is not None and moment == moments[-1]
                    share = 0.0 if settled else fade
                    rows.append(
                        (vitals_id, session_id, stamp(moment), AFTER,
                         round(systolic + rise_s * share + gauss(0, 3)),
                         round(diastolic + rise_d * share + gauss(0, 2)),
                         round(heart_rate + rise_hr * share + gauss(0, 3)),
                         rng.choice((97, 98, 98, 99)), nurse)
                    )  # fmt: skip
                    vitals_id += 1
        self.next_id["vitals_reading"] = vitals_id

    def _side_effects(
        self,
        patient: _Patient,
        session_id: int,
        nurse: int,
        start: int,
        end: int | None,
        cutoff: int,
    ) -> None:
        rng = self.rng
        random_ = rng.random
        stop = end if end is not None else cutoff - 1
        for effect, chance in SIDE_EFFECT_CHANCES[patient.route]:
            if random_() < chance:
                draw = random_()
                severity = MILD if draw < 0.76 else MODERATE if draw < 0.97 else SEVERE
                observed = start + int((stop - start) * (0.2 + 0.8 * random_()))
                effect_id = self.next_id["side_effect_observation"]
                self.next_id["side_effect_observation"] = effect_id + 1
                self.rows["side_effect_observation"].append(
                    (effect_id, session_id, self.stamp(observed), effect, severity, nurse)
                )

    # --- today, around the moment now -----------------------------------------------------

    def _lay_out_today(self, site: _SiteInfo) -> None:
        """Every chair busy and every state on the board at once, inside the local day."""
        rng = self.rng
        now = self.now_ts
        day = date.fromordinal(site.today)
        day_start = int(datetime.combine(day, clock_time.min, site.zone).timestamp())
        day_end = int(
            datetime.combine(day + timedelta(days=1), clock_time.min, site.zone).timestamp()
        )
        past, future = now - day_start, day_end - now
        seen: set[int] = set()
        queue: list[tuple[_Patient, str, float]] = []
        candidates = self.today_pool[site.index] + self.stand_ins[site.index]
        for candidate in candidates + self.returning[site.index]:
            if candidate[0].id not in seen:
                seen.add(candidate[0].id)
                queue.append(candidate)
        queue.reverse()

        # The state each chair is in now: one or two late, one not due yet.
        cycle = [INFUSING, RECOVERY, READY, CHECKED_IN, LATE, SCHEDULED, INFUSING, RECOVERY]
        cycle += [LATE, READY, CHECKED_IN, INFUSING, SCHEDULED]
        states = [cycle[n] if n < len(cycle) else cycle[n % 6] for n in range(self.chairs)]
        if past < MINUTE:
            # The day has just begun: nothing can have happened yet, only bookings.
            states = [SCHEDULED] * self.chairs
        currents: list[tuple[_TodayVisit, tuple]] = []
        for chair, state in enumerate(states):
            if not queue:
                break
            candidate = queue.pop()
            currents.append((self._current_visit(chair, state, candidate[0].route), candidate))
        # Earlier visits the board must also show: a discharge, a no-show, a cancellation.
        required: dict[int, tuple[_TodayVisit, tuple]] = {}
        hosts = {INFUSING: DISCHARGED, RECOVERY: NO_SHOW, CHECKED_IN: CANCELLED}
        for visit, _ in currents:
            status = hosts.pop(visit.status, None)
            if status is not None and queue:
                candidate = queue.pop()
                earlier = self._earlier_visit(visit.chair, status, visit.sched, candidate[0].route)
                required[visit.chair] = (earlier, candidate)

        # Near midnight the day has too little past for a lived-in board: squeeze the
        # morning into what there is, keeping every step in order.
        squeezable = [v for v, _ in currents if v.status not in (LATE, SCHEDULED)]
        squeezable += [v for v, _ in required.values()]
        reach = max((-m for v in squeezable for m in _moments(v) if m < 0), default=1.0)
        scale = min(1.0, max(0, past - 30) * 0.98 / reach)
        for visit in squeezable:
            _squeeze(visit, scale)
        for visit, _ in currents:
            if visit.status == LATE:
                visit.sched = -min(max(22 * MINUTE, -visit.sched * scale), past)
            elif visit.status == SCHEDULED:
                visit.sched = min(visit.sched, future / 2)

        visits = [*currents, *required.values()]
        for visit, candidate in currents:
            wanted = rng.choice((3, 4))
            count = 1 + (visit.chair in required)
            # One visit already over on each chair when the day allows, then the later ones.
            first = required[visit.chair][0] if visit.chair in required else visit
            earliest_allowed = 1 if visit.chair in required else 2
            if scale == 1.0:
                count, first = self._add_earlier_visits(
                    chair=visit.chair,
                    first=first,
                    count=count,
                    up_to=min(wanted, earliest_allowed + 1),
                    past=past,
                    queue=queue,
                    visits=visits,
                )
            # The next patient comes after the booking and after this one has gone home.
            free_at = max(visit.sched + _block(candidate[0].route), _leaves(visit, candidate[0]))
            next_sched = free_at + rng.randint(0, 6) * 5 * MINUTE
            while count < wanted and queue and next_sched < future - MINUTE:
                if next_sched > MINUTE:
                    later = _TodayVisit(chair=visit.chair, status=SCHEDULED, sched=next_sched)
                    candidate = queue.pop()
                    visits.append((later, candidate))
                    count += 1
                next_sched += _block(candidate[0].route) + rng.randint(0, 6) * 5 * MINUTE
            if scale == 1.0:
                count, first = self._add_earlier_visits(
                    chair=visit.chair,
                    first=first,
                    count=count,
                    up_to=wanted,
                    past=past,
                    queue=queue,
                    visits=visits,
                )
        for visit, (patient, kind, phq) in visits:
            self._emit_today(site, visit, patient, kind, phq)

    def _add_earlier_visits(
        self,
        *,
        chair: int,
        first: _TodayVisit,
        count: int,
        up_to: int,
        past: float,
        queue: list,
        visits: list,
    ) -> tuple[int, _TodayVisit]:
        """Fill the chair backwards with visits already over, while the day before allows."""
        while count < up_to and queue:
            route = queue[-1][0].route
            before = min(first.sched, -self.rng.randint(1, 10) * MINUTE)
            earlier = self._earlier_visit(chair, DISCHARGED, before, route)
            if min(_moments(earlier)) < -past:
                break
            visits.append((earlier, queue.pop()))
            count += 1
            first = earlier
        return count, first

    def _current_visit(self, chair: int, state: str, route: str) -> _TodayVisit:
        uniform = self.rng.uniform
        m = MINUTE
        if state == SCHEDULED:
            return _TodayVisit(chair=chair, status=SCHEDULED, sched=uniform(10, 75) * m)
        if state == LATE:
            return _TodayVisit(chair=chair, status=LATE, sched=-uniform(22, 40) * m)
        wait = uniform(*WAIT_MINUTES[route]) * m
        dose = uniform(*DOSE_MINUTES[route]) * m
        low, _ = RECOVERY_MINUTES[route]
        visit = _TodayVisit(chair=chair, status=state, sched=0)
        if state == CHECKED_IN:
            visit.checkin = -uniform(3, 12) * m
        elif state == INFUSING:
            longest = min(35, dose / m - 2)
            visit.start = -uniform(min(12, longest - 1), longest) * m
            visit.checkin = visit.start - wait
        elif state == RECOVERY:
            visit.end = -uniform(8, min(25, low - 3)) * m
            visit.start = visit.end - dose
            visit.checkin = visit.start - wait
        else:
            visit.ready = -uniform(2, 15) * m
            visit.end = visit.ready - uniform(low, low + 15) * m
            visit.start = visit.end - dose
            visit.checkin = visit.start - wait
        visit.sched = visit.checkin - uniform(0, 15) * m
        return visit

    def _earlier_visit(self, chair: int, status: str, before: float, route: str) -> _TodayVisit:
        uniform = self.rng.uniform
        m = MINUTE
        finished = before - uniform(5, 20) * m
        if status == NO_SHOW:
            sched = finished - uniform(30, 60) * m
            return _TodayVisit(chair=chair, status=NO_SHOW, sched=sched, closed=finished)
        if status == CANCELLED:
            sched = finished - BLOCK_SLOTS[route] * SLOT_MINUTES * m
            closed = sched - uniform(30, 120) * m
            return _TodayVisit(chair=chair, status=CANCELLED, sched=sched, closed=closed)
        low, high = RECOVERY_MINUTES[route]
        visit = _TodayVisit(chair=chair, status=DISCHARGED, sched=0, discharged=finished)
        visit.ready = finished - 20 * self.rng.random() ** 2 * m
        visit.end = visit.ready - uniform(low, high) * m
        visit.start = visit.end - uniform(*DOSE_MINUTES[route]) * m
        visit.checkin = visit.start - uniform(*WAIT_MINUTES[route]) * m
        visit.sched = visit.checkin - uniform(0, 15) * m
        return visit

    def _emit_today(
        self,
        site: _SiteInfo,
        visit: _TodayVisit,
        patient: _Patient,
        kind: str,
        phq: float,
    ) -> None:
        now = self.now_ts

        def at(offset: float | None) -> int | None:
            return None if offset is None else now + math.floor(offset)

        status = SCHEDULED if visit.status == LATE else visit.status
        self._emit(
            patient,
            kind,
            phq,
            site.chair_ids[visit.chair],
            at(visit.sched),
            status,
            cutoff=now,
            checkin=at(visit.checkin),
            start=at(visit.start),
            end=at(visit.end),
            ready=at(visit.ready),
            discharged=at(visit.discharged),
            closed=at(visit.closed),
        )


def _block(route: str) -> int:
    """Seconds a chair is held for one visit on ``route``."""
    return BLOCK_SLOTS[route] * SLOT_MINUTES * MINUTE


def _leaves(visit: _TodayVisit, patient: _Patient) -> float:
    """When a patient still in the clinic now will have gone home at the latest (offset)."""
    route = patient.route
    ride = 20 * MINUTE
    recovery = RECOVERY_MINUTES[route][1] * MINUTE
    if visit.status == READY:
        return ride
    if visit.status == RECOVERY:
        return visit.end + recovery + ride
    if visit.status == INFUSING:
        return visit.start + DOSE_MINUTES[route][1] * MINUTE + recovery + ride
    if visit.status == CHECKED_IN:
        waits = (WAIT_MINUTES[route][1] + DOSE_MINUTES[route][1]) * MINUTE
        return visit.checkin + waits + recovery + ride
    return visit.sched


def _moments(visit: _TodayVisit) -> list[float]:
    return [
        moment
        for moment in (
            visit.sched,
            visit.checkin,
            visit.start,
            visit.end,
            visit.ready,
            visit.discharged,
            visit.closed,
        )
        if moment is not None
    ]


def _squeeze(visit: _TodayVisit, scale: float) -> None:
    for name in ("sched", "checkin", "start", "end", "ready", "discharged", "closed"):
        moment = getattr(visit, name)
        if moment is not None and moment < 0:
            setattr(visit, name, moment * scale)
