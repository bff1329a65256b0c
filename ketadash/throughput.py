"""Throughput: how the clinic ran over a period, and where a visit's time went.

For clinic leads, over a range of days at one site or all of them. Every figure
is computed here from the session rows (whose stamp columns are the standing
timeline: taking a step back clears its stamp, so corrections are already folded
out) and the status history (for the steps that were taken back). The database
does the filtering and the per-patient work (first series dose, the end of an
initial series, PHQ-9 before and after) with indexed, windowed queries; what comes
back is one narrow row of whole seconds per visit, and pandas does the rest.

Definitions (docs/figures.md repeats them for the leads):

- *booked*: every session whose booked time falls in the range, whatever became of it.
- *completed infusion*: a booked session whose patient went home (discharged).
- *late cancel*: a cancellation recorded less than ``LATE_CANCEL_HOURS`` before the
  booked time (or after it).
- *capacity*: open hours × active chairs, over the site's open weekdays.
- *scheduled utilisation*: booked chair time ÷ capacity; a booking holds its chair
  for the planned dose, the site's minimum recovery for the route and
  ``BOOKING_ALLOWANCE_MINUTES`` (settling in, vitals, the ride); cancellations made
  ahead of time free the chair and do not count.
- *actual utilisation*: chair time used (check-in to gone home, as on Today's chair
  strip) ÷ capacity.
- *on-time start*: the dose started within ``ON_TIME_START_MINUTES`` of the booked time.
- the visit's parts: *waiting* (check-in to dose start), *dose* (start to end),
  *recovery* (dose end to ready), *ride wait* (ready to gone home); *cycle time* is
  check-in to gone home, the four parts together.
- *lead time*: calendar days at the site from the day the booking was made
  (``booked_at``) to the day of the visit, in ``LEAD_TIMES`` bands; "Not recorded"
  when the booking time is not known (sessions imported without it).

Boosters booked in time (the outcome of the booster flags) are worked out apart, in
``ketadash.booster_follow_up``: they replay the boosters' rule over the period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, col, select

from ketadash.db import read_apart, read_session
from ketadash.models import (
    Chair,
    EscortException,
    Instrument,
    OutcomeScore,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    StatusChange,
    TreatmentCourse,
    TreatmentSession,
    core_table,
    stored_id,
)
from ketadash.settings import load_clinic_settings

# Operational definitions (not clinical thresholds, so module constants; listed in docs/figures.md).
LATE_CANCEL_HOURS = 24
ON_TIME_START_MINUTES = 30
BOOKING_ALLOWANCE_MINUTES = 30
# An initial series when the course does not say how many infusions it has.
SERIES_INFUSIONS = 6
# Response and remission by PHQ-9 (McInnes 2022).
RESPONSE_DROP = 0.5
REMISSION_BELOW = 5
HISTOGRAM_BIN_MINUTES = 10
HISTOGRAM_LAST_MINUTES = 240
# How far ahead a visit was booked, in days at the site: (label, first day, last day).
LEAD_TIMES: tuple[tuple[str, int, int | None], ...] = (
    ("Same day", 0, 0),
    ("1–2 days", 1, 2),
    ("3–7 days", 3, 7),
    ("8–14 days", 8, 14),
    ("Over 2 weeks", 15, None),
)
LEAD_TIME_NOT_RECORDED = "Not recorded"
LEAD_TIME_LABELS = (*(label for label, _, _ in LEAD_TIMES), LEAD_TIME_NOT_RECORDED)

PHASES: tuple[tuple[str, str, str], ...] = (
    # (name, from stamp, to stamp): the parts of a visit in order.
    ("Waiting", "checked_in", "started"),
    ("Dose", "started", "ended"),
    ("Recovery", "ended", "ready"),
    ("Ride wait", "ready", "discharged"),
)
PHASE_NAMES = tuple(name for name, _, _ in PHASES)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_STAMPS = {
    "scheduled": TreatmentSession.scheduled_start,
    "checked_in": TreatmentSession.checked_in_at,
    "started": TreatmentSession.infusion_started_at,
    "ended": TreatmentSession.infusion_ended_at,
    "ready": TreatmentSession.ready_at,
    "discharged": TreatmentSession.discharged_at,
    "closed": TreatmentSession.closed_at,
    "booked": TreatmentSession.booked_at,
}


# --- what a caller asks for ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Period:
    """Whole days, first and last included, each in its site's own time zone."""

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError("The period ends before it starts.")

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        last = self.first_day - timedelta(days=1)
        return Period(first_day=last - timedelta(days=self.days - 1), last_day=last)

    def dates(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range(self.days)]

    def __str__(self) -> str:
        return f"{self.first_day:%d %b %Y} – {self.last_day:%d %b %Y}"


def last_weeks(*, today: date, weeks: int = 4) -> Period:
    """The ``weeks`` weeks ending with ``today`` (the page's default range)."""
    return Period(first_day=today - timedelta(days=7 * weeks - 1), last_day=today)


@dataclass(frozen=True, kw_only=True)
class SiteHours:
    """A site as throughput sees it: where its day starts and how much chair time it offers."""

    id: int
    name: str
    time_zone: str
    opens_at: time
    closes_at: time
    open_weekdays: frozenset[int]
    chairs: int
    # Minutes a booking holds a chair, by route (planned dose + minimum recovery + allowance).
    booked_minutes: dict[str, int]

    def open_hours(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants at which the site opens and closes on ``day``."""
        zone = ZoneInfo(self.time_zone)
        return (
            datetime.combine(day, self.opens_at, tzinfo=zone).astimezone(UTC),
            datetime.combine(day, self.closes_at, tzinfo=zone).astimezone(UTC),
        )

    def capacity_minutes(self, period: Period) -> int:
        """Chair-minutes on offer over ``period``: open hours × active chairs, open days only.

        Hours are real ones: a site open through the night offers an hour less on the
        spring-forward day and an hour more on the fall-back day.
        """
        minutes = 0
        for day in period.dates():
            if day.weekday() in self.open_weekdays:
                opens, closes = self.open_hours(day)
                minutes += max(0, int((closes - opens).total_seconds() // 60))
        return minutes * self.chairs

    def bounds(self, period: Period) -> tuple[datetime, datetime]:
        """The UTC instants at which ``period`` starts and ends at this site."""
        zone = ZoneInfo(self.time_zone)
        start = datetime.combine(period.first_day, time.min, tzinfo=zone)
        end = datetime.combine(period.last_day + timedelta(days=1), time.min, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


# --- what comes back -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Headline:
    """One headline figure for the period and for the period before it."""

    name: str
    value: float | None
    previous: float | None
    # "count", "share" (0–1) or "minutes".
    unit: str
    # Whether a rise is good news ("up"), bad news ("down") or neither ("none").
    good: str
    help: str

    @property
    def change(self) -> float | None:
        """This period minus the previous one (a share's change is a fraction: 0.02 is 2 points)."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass(frozen=True, kw_only=True)
class VisitTotals:
    """What the headline figures count over a period's visits (``visit_totals`` from the
    visits read, ``read_visit_totals`` from the database: the same numbers)."""

    booked: int
    completed: int
    boosters_given: int
    no_shows: int
    late_cancels: int
    started: int
    on_time_starts: int
    booked_chair_minutes: float
    # One value per visit in the order of their ids (NaN: none), so that their sum and
    # median come out to the last bit as over the visits read.
    chair_minutes: pd.Series
    cycle_minutes: pd.Series


@dataclass(frozen=True, kw_only=True)
class Outcomes:
    """Patients who finished an initial series in the period, by PHQ-9 (McInnes 2022)."""

    finished_series: int
    # Finished with a PHQ-9 before the first and at the last infusion of the series.
    scored: int
    responding: int
    in_remission: int
    # Booster sessions booked for a day in the period.
    boosters_booked: int
    discharges: int
    escort_exceptions: pd.DataFrame  # exception, discharges

    @property
    def response_share(self) -> float | None:
        return self.responding / self.scored if self.scored else None

    @property
    def remission_share(self) -> float | None:
        return self.in_remission / self.scored if self.scored else None


@dataclass(frozen=True, kw_only=True)
class ThroughputReport:
    """Everything the throughput page shows for one period and one site or all."""

    period: Period
    previous_period: Period
    sites: tuple[SiteHours, ...]
    headlines: tuple[Headline, ...]
    # One row per booked session in the period, with its phase times (the CSV download).
    visits: pd.DataFrame
    phase_summary: pd.DataFrame  # part, visits, median, p25, p75, p90 (minutes)
    phase_histogram: pd.DataFrame  # part, minutes (bin start), visits
    completed_by_day: pd.DataFrame  # day, kind, route, kind_and_route, infusions
    occupancy: pd.DataFrame  # weekday, hour, share
    phases_by_week: pd.DataFrame  # week, part, median
    no_shows_by_weekday: pd.DataFrame  # weekday, booked, no_shows, rate
    no_shows_by_hour: pd.DataFrame  # hour, booked, no_shows, rate
    no_shows_by_lead_time: pd.DataFrame  # lead_time, booked, no_shows, rate
    outcomes: Outcomes
    # Steps taken back in the period (undone and corrected): folded out of the figures.
    steps_taken_back: int

    def headline(self, name: str) -> Headline:
        """The headline figure called ``name`` (one of ``HEADLINES``)."""
        return next(h for h in self.headlines if h.name == name)


# --- reading ------------------------------------------------------------------------------


def load_sites(*, db: Session, site_ids: Sequence[int] | None = None) -> tuple[SiteHours, ...]:
    """The chosen sites (every site when ``site_ids`` is None) with their hours and chairs."""
    query = select(Site).order_by(col(Site.id))
    if site_ids is not None:
        query = query.where(col(Site.id).in_(list(site_ids)))
    sites = db.exec(query).all()
    chairs = dict(
        db.exec(
            select(Chair.site_id, sa.func.count(col(Chair.id)))
            .where(col(Chair.active).is_(True))
            .group_by(col(Chair.site_id))
        ).all()
    )
    result = []
    for site in sites:
        site_id = stored_id(site)
        settings = load_clinic_settings(db=db, site_id=site_id)
        booked = {
            route.value: settings.min_recovery_minutes(route) + BOOKING_ALLOWANCE_MINUTES
            for route in Route
        }
        result.append(
            SiteHours(
                id=site_id,
                name=site.name,
                time_zone=site.time_zone,
                opens_at=site.opens_at,
                closes_at=site.closes_at,
                open_weekdays=frozenset(int(d) for d in site.open_weekdays if d.isdigit()),
                chairs=int(chairs.get(site_id, 0)),
                booked_minutes=booked,
            )
        )
    return tuple(result)


def _epoch(column, dialect: str):
    """Whole seconds since 1970 (UTC) of a timestamp column, computed by the database."""
    if dialect == "sqlite":
        # SQLite keeps naive UTC text; strftime('%s') reads it as UTC.
        return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


def _in_window(sites: Iterable[SiteHours], period: Period):
    """Sessions booked in ``period`` at any of ``sites``, each in its own time zone."""
    table = core_table(TreatmentSession).c
    clauses = []
    for site in sites:
        start, end = site.bounds(period)
        clauses.append(
            sa.and_(
                table.site_id == site.id,
                table.scheduled_start >= start,
                table.scheduled_start < end,
            )
        )
    return sa.or_(*clauses) if clauses else sa.false()


VISIT_COLUMNS = (
    "session_id",
    "site_id",
    "patient_id",
    "route",
    "kind",
    "status",
    "planned_minutes",
    "escort_exception",
    *(f"{name}_s" for name in _STAMPS),
)


def read_visits(*, db: Session, sites: Sequence[SiteHours], period: Period) -> pd.DataFrame:
    """One row per session booked in ``period``: its words and its stamps in whole seconds."""
    dialect = db.get_bind().dialect.name
    t = core_table(TreatmentSession).c
    query = (
        sa.select(
            t.id,
            t.site_id,
            t.patient_id,
            t.route,
            t.kind,
            t.status,
            t.planned_minutes,
            t.escort_exception,
            *(_epoch(column, dialect) for column in _STAMPS.values()),
        )
        .where(_in_window(sites, period))
        .order_by(t.id)
    )
    rows = db.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(VISIT_COLUMNS))
    for name in _STAMPS:
        frame[f"{name}_s"] = frame[f"{name}_s"].astype("Float64").astype("float64")
    return frame


def read_visit_totals(*, db: Session, sites: Sequence[SiteHours], period: Period) -> VisitTotals:
    """The headline totals of the visits booked in ``period``, counted by the database.

    The same definitions as ``with_visit_figures`` (tests hold the two equal); only the
    chair time and the cycle time come back per visit, two numbers each.
    """
    dialect = db.get_bind().dialect.name
    t = core_table(TreatmentSession).c
    seconds = {name: _epoch(column, dialect) for name, column in _STAMPS.items()}
    cancelled = t.status == SessionStatus.CANCELLED.value
    late = sa.and_(
        cancelled,
        sa.or_(
            t.closed_at.is_(None),
            seconds["scheduled"] - seconds["closed"] < LATE_CANCEL_HOURS * 3600,
        ),
    )
    on_time = sa.and_(
        t.infusion_started_at.is_not(None),
        seconds["started"] - seconds["scheduled"] <= ON_TIME_START_MINUTES * 60,
    )
    routes = [
        (sa.and_(t.site_id == site.id, t.route == route), minutes)
        for site in sites
        for route, minutes in site.booked_minutes.items()
    ]
    route_minutes = (
        sa.case(*routes, else_=BOOKING_ALLOWANCE_MINUTES)
        if routes
        else sa.literal(BOOKING_ALLOWANCE_MINUTES)
    )
    held = sa.case((sa.and_(cancelled, sa.not_(late)), 0), else_=t.planned_minutes + route_minutes)

    def count(condition) -> sa.ColumnElement:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    discharged = t.status == SessionStatus.DISCHARGED.value
    totals = db.execute(
        sa.select(
            sa.func.count(),
            count(discharged),
            count(sa.and_(discharged, t.kind == SessionKind.BOOSTER.value)),
            count(t.status == SessionStatus.NO_SHOW.value),
            count(late),
            count(t.infusion_started_at.is_not(None)),
            count(on_time),
            sa.func.coalesce(sa.func.sum(held), 0),
        ).where(_in_window(sites, period))
    ).one()
    per_visit = db.execute(
        sa.select(
            sa.func.coalesce(seconds["discharged"], seconds["closed"]) - seconds["checked_in"],
            seconds["discharged"] - seconds["checked_in"],
        )
        .where(_in_window(sites, period))
        .order_by(t.id)
    ).all()
    frame = pd.DataFrame(per_visit, columns=["used", "cycle"], dtype="float64")
    used, cycle = frame["used"] / 60, frame["cycle"] / 60
    return VisitTotals(
        booked=int(totals[0]),
        completed=int(totals[1]),
        boosters_given=int(totals[2]),
        no_shows=int(totals[3]),
        late_cancels=int(totals[4]),
        started=int(totals[5]),
        on_time_starts=int(totals[6]),
        booked_chair_minutes=float(totals[7]),
        chair_minutes=used.where(used > 0),
        cycle_minutes=cycle.where(cycle >= 0),
    )


def read_first_series_doses(
    *, db: Session, sites: Sequence[SiteHours], period: Period
) -> pd.DataFrame:
    """Sessions in ``period`` that were a patient's first series dose ever (site_id, scheduled_s).

    Uses the patient-and-time index for each candidate, never a whole-table scan.
    """
    dialect = db.get_bind().dialect.name
    t = core_table(TreatmentSession).c
    earlier = core_table(TreatmentSession).alias().c
    query = sa.select(t.site_id, _epoch(t.scheduled_start, dialect)).where(
        _in_window(sites, period),
        t.kind == SessionKind.SERIES,
        t.infusion_started_at.is_not(None),
        ~sa.exists().where(
            earlier.patient_id == t.patient_id,
            earlier.kind == SessionKind.SERIES,
            earlier.infusion_started_at.is_not(None),
            earlier.scheduled_start < t.scheduled_start,
        ),
    )
    return pd.DataFrame(db.execute(query).all(), columns=["site_id", "scheduled_s"])


def read_finished_series(
    *, db: Session, sites: Sequence[SiteHours], period: Period
) -> pd.DataFrame:
    """Patients whose initial series' last infusion was booked in ``period``, with PHQ-9s.

    A series is finished at the patient's n-th series dose, n being the course's
    ``series_target_infusions`` (``SERIES_INFUSIONS`` without a course). Baseline is
    the last PHQ-9 taken up to the first series dose; the end score the last PHQ-9
    taken up to the final dose of the series (scores are taken before the dose).
    Columns: patient_id, site_id, baseline, end_score (None when not scored).
    """
    t = core_table(TreatmentSession).c
    dosed_series = sa.and_(t.kind == SessionKind.SERIES, t.infusion_started_at.is_not(None))
    candidates = sa.select(t.patient_id).where(_in_window(sites, period), dosed_series)
    ranked = (
        sa.select(
            t.id.label("session_id"),
            t.patient_id,
            t.site_id,
            t.scheduled_start,
            t.infusion_started_at,
            sa.func.coalesce(col(TreatmentCourse.series_target_infusions), SERIES_INFUSIONS).label(
                "target"
            ),
            sa.func.row_number()
            .over(partition_by=t.patient_id, order_by=(t.infusion_started_at, t.id))
            .label("n"),
        )
        .select_from(core_table(TreatmentSession))
        .outerjoin(TreatmentCourse, col(TreatmentCourse.id) == t.course_id)
        .where(dosed_series, t.patient_id.in_(candidates))
        .subquery("ranked")
    )
    # One row per patient: the first dose, and the dose that finished the series.
    n, target = ranked.c.n, ranked.c.target
    series = (
        sa.select(
            ranked.c.patient_id,
            sa.func.max(sa.case((n == 1, ranked.c.infusion_started_at))).label("first_start"),
            sa.func.max(sa.case((n == target, ranked.c.infusion_started_at))).label("last_start"),
            sa.func.max(sa.case((n == target, ranked.c.scheduled_start))).label("last_booked"),
            sa.func.max(sa.case((n == target, ranked.c.site_id))).label("site_id"),
        )
        .group_by(ranked.c.patient_id)
        .subquery("series")
    )

    def phq9_up_to(moment):
        return (
            sa.select(col(OutcomeScore.total))
            .where(
                col(OutcomeScore.patient_id) == series.c.patient_id,
                col(OutcomeScore.instrument) == Instrument.PHQ9,
                col(OutcomeScore.taken_at) <= moment,
            )
            .order_by(col(OutcomeScore.taken_at).desc())
            .limit(1)
            .scalar_subquery()
        )

    window = []
    for site in sites:
        start, end = site.bounds(period)
        window.append(
            sa.and_(
                series.c.site_id == site.id,
                series.c.last_booked >= start,
                series.c.last_booked < end,
            )
        )
    query = (
        sa.select(
            series.c.patient_id,
            series.c.site_id,
            phq9_up_to(series.c.first_start).label("baseline"),
            phq9_up_to(series.c.last_start).label("end_score"),
        )
        .where(sa.or_(*window) if window else sa.false())
        .order_by(series.c.patient_id)
    )
    return pd.DataFrame(
        db.execute(query).all(), columns=["patient_id", "site_id", "baseline", "end_score"]
    )


def count_steps_taken_back(*, db: Session, sites: Sequence[SiteHours], period: Period) -> int:
    """Corrections in the status history of sessions booked in ``period``."""
    query = (
        sa.select(sa.func.count(col(StatusChange.id)))
        .select_from(StatusChange)
        .join(TreatmentSession, col(TreatmentSession.id) == col(StatusChange.session_id))
        .where(col(StatusChange.is_correction).is_(True), _in_window(sites, period))
    )
    return int(db.execute(query).scalar_one())


# --- computing ----------------------------------------------------------------------------


def throughput_report(
    *, url: str, period: Period, site_ids: Sequence[int] | None = None
) -> ThroughputReport:
    """The throughput page's figures for ``period`` and the period of the same length before.

    ``site_ids`` None means every site. Raises DatabaseUnavailable when the database
    cannot be reached; returns empty figures (not an error) for a period with no visits.
    The period's visits are read row by row (every figure and the CSV need them); of the
    period before, only the headline figures' totals (``read_visit_totals``).
    """
    previous = period.previous()
    span = Period(first_day=previous.first_day, last_day=period.last_day)
    with read_session(url) as db:
        sites = load_sites(db=db, site_ids=site_ids)
    # The counts of the period before and the steps taken back are the database's work;
    # they run beside the visits' read, whose rows Python builds.
    read = read_apart(
        url,
        {
            "visits": lambda db: read_visits(db=db, sites=sites, period=period),
            "before": lambda db: read_visit_totals(db=db, sites=sites, period=previous),
            "first_doses": lambda db: read_first_series_doses(db=db, sites=sites, period=span),
            "finished": lambda db: read_finished_series(db=db, sites=sites, period=period),
            "taken_back": lambda db: count_steps_taken_back(db=db, sites=sites, period=period),
        },
    )
    return build_report(
        period=period,
        sites=sites,
        visits=read["visits"],
        previous_totals=read["before"],
        first_doses=read["first_doses"],
        finished=read["finished"],
        steps_taken_back=read["taken_back"],
    )


def build_report(
    *,
    period: Period,
    sites: Sequence[SiteHours],
    visits: pd.DataFrame,
    previous_totals: VisitTotals,
    first_doses: pd.DataFrame,
    finished: pd.DataFrame,
    steps_taken_back: int,
) -> ThroughputReport:
    """The report from rows already read: the period's ``visits``, the totals of the period
    before, and first series doses over both."""
    previous = period.previous()
    visits = with_visit_figures(visits=visits, sites=sites)
    first_doses = _with_local_day(first_doses, sites=sites)
    now_visits = visits[_between(visits["day"], period)]

    def headlines_of(totals: VisitTotals, which: Period) -> dict:
        return _headline_values(
            totals,
            capacity=sum(site.capacity_minutes(which) for site in sites),
            new_patients=int(_between(first_doses["day"], which).sum()),
        )

    now = headlines_of(visit_totals(visits=now_visits), period)
    before = headlines_of(previous_totals, previous)
    headlines = tuple(
        Headline(name=name, value=now[name], previous=before[name], unit=unit, good=good, help=help)
        for name, unit, good, help in HEADLINES
    )
    return ThroughputReport(
        period=period,
        previous_period=previous,
        sites=tuple(sites),
        headlines=headlines,
        visits=now_visits.reset_index(drop=True),
        phase_summary=phase_summary(visits=now_visits),
        phase_histogram=phase_histogram(visits=now_visits),
        completed_by_day=completed_by_day(visits=now_visits),
        occupancy=chair_occupancy(visits=now_visits, sites=sites, period=period),
        phases_by_week=phases_by_week(visits=now_visits),
        no_shows_by_weekday=_no_shows_by(now_visits, "weekday", WEEKDAYS),
        no_shows_by_hour=_no_shows_by(now_visits, "hour", None),
        no_shows_by_lead_time=no_shows_by_lead_time(visits=now_visits),
        outcomes=_outcomes(now_visits, finished),
        steps_taken_back=steps_taken_back,
    )


HEADLINES: tuple[tuple[str, str, str, str], ...] = (
    ("Infusions completed", "count", "up", "Booked sessions whose patient went home."),
    (
        "New patients starting a series",
        "count",
        "up",
        "Patients whose first series dose ever was in the period.",
    ),
    ("Boosters given", "count", "up", "Completed sessions booked as boosters."),
    ("No-show rate", "share", "down", "No-shows ÷ every session booked in the period."),
    (
        "Late-cancel rate",
        "share",
        "down",
        f"Cancelled less than {LATE_CANCEL_HOURS} h before the booked time ÷ booked.",
    ),
    (
        "Scheduled chair use",
        "share",
        "up",
        "Booked chair time ÷ open hours × active chairs.",
    ),
    (
        "Actual chair use",
        "share",
        "up",
        "Check-in to gone home, summed ÷ open hours × active chairs.",
    ),
    (
        "On-time starts",
        "share",
        "up",
        f"Doses started within {ON_TIME_START_MINUTES} min of the booked time.",
    ),
    ("Median cycle time", "minutes", "down", "Check-in to gone home, the middle visit."),
)


def with_visit_figures(*, visits: pd.DataFrame, sites: Sequence[SiteHours]) -> pd.DataFrame:
    """``visits`` with local day, weekday and hour, each part's minutes and the visit's flags."""
    frame = _with_local_day(visits, sites=sites)
    if frame.empty:
        for column in (*PHASE_NAMES, "Cycle time", "chair_minutes", "booked_chair_minutes"):
            frame[column] = pd.Series(dtype="float64")
        for column in ("late_cancel", "on_time_start", "completed", "no_show"):
            frame[column] = pd.Series(dtype="bool")
        frame["lead_days"] = pd.Series(dtype="float64")
        frame["lead_time"] = pd.Series(dtype="object")
        return frame
    for name, start, end in PHASES:
        minutes = (frame[f"{end}_s"] - frame[f"{start}_s"]) / 60
        frame[name] = minutes.where(minutes >= 0)
    cycle = (frame["discharged_s"] - frame["checked_in_s"]) / 60
    frame["Cycle time"] = cycle.where(cycle >= 0)
    status = frame["status"]
    frame["completed"] = status == SessionStatus.DISCHARGED.value
    frame["no_show"] = status == SessionStatus.NO_SHOW.value
    cancelled = status == SessionStatus.CANCELLED.value
    notice = frame["scheduled_s"] - frame["closed_s"]
    frame["late_cancel"] = cancelled & (notice.isna() | (notice < LATE_CANCEL_HOURS * 3600))
    started_late = (frame["started_s"] - frame["scheduled_s"]) / 60
    frame["on_time_start"] = started_late.le(ON_TIME_START_MINUTES) & frame["started_s"].notna()
    # Chair time used: check-in until gone home (or until the visit was closed).
    left = frame["discharged_s"].fillna(frame["closed_s"])
    used = (left - frame["checked_in_s"]) / 60
    frame["chair_minutes"] = used.where(used > 0)
    booked = pd.Series(0.0, index=frame.index)
    for site in sites:
        here = frame["site_id"] == site.id
        booked[here] = frame.loc[here, "planned_minutes"] + frame.loc[here, "route"].map(
            site.booked_minutes
        ).fillna(BOOKING_ALLOWANCE_MINUTES)
    frame["booked_chair_minutes"] = booked.where(~(cancelled & ~frame["late_cancel"]), 0.0)
    frame["lead_days"] = _lead_days(frame, sites=sites)
    frame["lead_time"] = lead_time_label(lead_days=frame["lead_days"])
    return frame


def visit_totals(*, visits: pd.DataFrame) -> VisitTotals:
    """The headline totals of visits already read (``with_visit_figures``)."""
    return VisitTotals(
        booked=len(visits),
        completed=int(visits["completed"].sum()),
        boosters_given=int(
            (visits["completed"] & (visits["kind"] == SessionKind.BOOSTER.value)).sum()
        ),
        no_shows=int(visits["no_show"].sum()),
        late_cancels=int(visits["late_cancel"].sum()),
        started=int(visits["started_s"].notna().sum()),
        on_time_starts=int(visits["on_time_start"].sum()),
        booked_chair_minutes=float(visits["booked_chair_minutes"].sum()),
        chair_minutes=visits["chair_minutes"],
        cycle_minutes=visits["Cycle time"],
    )


def _lead_days(frame: pd.DataFrame, *, sites: Sequence[SiteHours]) -> pd.Series:
    """Calendar days at the site from the booking to the visit (NaN: booking time unknown)."""
    days = pd.Series(np.nan, index=frame.index, dtype="float64")
    for site in sites:
        here = (frame["site_id"] == site.id) & frame["booked_s"].notna()
        if not here.any():
            continue
        visit_day, booking_day = (
            pd.to_datetime(frame.loc[here, column], unit="s", utc=True)
            .dt.tz_convert(site.time_zone)
            .dt.tz_localize(None)
            .dt.floor("D")
            for column in ("scheduled_s", "booked_s")
        )
        lead = (visit_day - booking_day).dt.days
        # A booking recorded after the visit's day (never written by the app or the
        # import, which refuse it) counts as made the same day.
        days[here] = lead.clip(lower=0).astype("float64")
    return days


def lead_time_label(*, lead_days: pd.Series) -> pd.Series:
    """The ``LEAD_TIMES`` band of each lead time in days; "Not recorded" for NaN."""
    labels = pd.Series(LEAD_TIME_NOT_RECORDED, index=lead_days.index, dtype="object")
    for label, first, last in LEAD_TIMES:
        inside = lead_days >= first
        if last is not None:
            inside &= lead_days <= last
        labels[inside] = label
    return labels


def _with_local_day(frame: pd.DataFrame, *, sites: Sequence[SiteHours]) -> pd.DataFrame:
    frame = frame.copy()
    frame["day"] = pd.Series(dtype="object", index=frame.index)
    frame["weekday"] = pd.Series(dtype="Int64", index=frame.index)
    frame["hour"] = pd.Series(dtype="Int64", index=frame.index)
    frame["site"] = pd.Series(dtype="object", index=frame.index)
    for site in sites:
        here = frame["site_id"] == site.id
        if not here.any():
            continue
        local = pd.to_datetime(frame.loc[here, "scheduled_s"], unit="s", utc=True).dt.tz_convert(
            site.time_zone
        )
        frame.loc[here, "day"] = local.dt.date
        frame.loc[here, "weekday"] = local.dt.day_of_week
        frame.loc[here, "hour"] = local.dt.hour
        frame.loc[here, "site"] = site.name
    return frame


def _between(days: pd.Series, period: Period) -> pd.Series:
    return (days >= period.first_day) & (days <= period.last_day)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.median()) if len(values) else None


def _headline_values(totals: VisitTotals, *, capacity: int, new_patients: int) -> dict:
    return {
        "Infusions completed": totals.completed,
        "New patients starting a series": new_patients,
        "Boosters given": totals.boosters_given,
        "No-show rate": _share(totals.no_shows, totals.booked),
        "Late-cancel rate": _share(totals.late_cancels, totals.booked),
        "Scheduled chair use": _share(totals.booked_chair_minutes, capacity),
        "Actual chair use": _share(float(totals.chair_minutes.sum()), capacity),
        "On-time starts": _share(totals.on_time_starts, totals.started),
        "Median cycle time": _median(totals.cycle_minutes),
    }


def phase_summary(*, visits: pd.DataFrame) -> pd.DataFrame:
    """Each part of the visit and the whole: visits timed, median and quartiles, in minutes."""
    rows = []
    for name in (*PHASE_NAMES, "Cycle time"):
        values = visits[name].dropna() if name in visits else pd.Series(dtype="float64")
        quantiles = values.quantile([0.25, 0.5, 0.75, 0.9]).tolist() if len(values) else [None] * 4
        rows.append(
            {
                "part": name,
                "visits": len(values),
                "median": quantiles[1],
                "p25": quantiles[0],
                "p75": quantiles[2],
                "p90": quantiles[3],
            }
        )
    return pd.DataFrame(rows, columns=["part", "visits", "median", "p25", "p75", "p90"])


def phase_histogram(*, visits: pd.DataFrame) -> pd.DataFrame:
    """How many visits spent how long in each part, in bins of ``HISTOGRAM_BIN_MINUTES``.

    The last bin holds everything from ``HISTOGRAM_LAST_MINUTES`` on.
    """
    parts = []
    for name in PHASE_NAMES:
        values = visits[name].dropna() if name in visits else pd.Series(dtype="float64")
        bins = (
            np.minimum(values // HISTOGRAM_BIN_MINUTES * HISTOGRAM_BIN_MINUTES,
                       HISTOGRAM_LAST_MINUTES)
        ).astype("int64")  # fmt: skip
        counts = bins.value_counts().sort_index()
        parts.append(
            pd.DataFrame({"part": name, "minutes": counts.index, "visits": counts.to_numpy()})
        )
    return pd.concat(parts, ignore_index=True)


def completed_by_day(*, visits: pd.DataFrame) -> pd.DataFrame:
    """Completed infusions per day by kind and route (days without any are left out)."""
    done = visits[visits["completed"]]
    grouped = done.groupby(["day", "kind", "route"]).size().reset_index(name="infusions")
    grouped["kind_and_route"] = [
        f"{SessionKind(k).value.capitalize()} · {Route(r).label}"
        for k, r in zip(grouped["kind"], grouped["route"], strict=True)
    ]
    grouped["day"] = pd.to_datetime(grouped["day"])
    return grouped[["day", "kind", "route", "kind_and_route", "infusions"]]


def chair_occupancy(
    *, visits: pd.DataFrame, sites: Sequence[SiteHours], period: Period
) -> pd.DataFrame:
    """Average share of chairs in use by weekday and hour (site's local time), check-in to home.

    The share is chair-minutes used in that hour ÷ (60 × active chairs × the number of
    those weekdays in the period on which the site was open), summed over the sites.
    Only hours inside some site's opening hours are listed.
    """
    # Hours are the site's local hours, each an hour of real time (true of every zone whose
    # offset changes by whole hours), so a night when the clock jumps or repeats an hour
    # counts the chair time that really passed, in the hours that really were.
    occupied = np.zeros((7, 24))
    for site in sites:
        here = visits[(visits["site_id"] == site.id) & visits["chair_minutes"].notna()]
        if here.empty:
            continue
        begin = here["checked_in_s"].to_numpy(dtype="float64")
        end = begin + here["chair_minutes"].to_numpy(dtype="float64") * 60
        local = pd.to_datetime(begin, unit="s", utc=True).tz_convert(site.time_zone)
        hour = begin - (local.minute * 60 + local.second + local.microsecond / 1e6).to_numpy()
        longest = math.ceil(float(here["chair_minutes"].max()) / 60) + 1
        for _ in range(longest):
            upper = hour + 3600
            overlap = (np.minimum(end, upper) - np.maximum(begin, hour)) / 60
            use = overlap > 0
            if not use.any():
                break
            starts = pd.to_datetime(hour[use], unit="s", utc=True).tz_convert(site.time_zone)
            np.add.at(
                occupied, (starts.day_of_week.to_numpy(), starts.hour.to_numpy()), overlap[use]
            )
            hour = upper
    offered = np.zeros((7, 24))
    for site in sites:
        for day in period.dates():
            if day.weekday() not in site.open_weekdays:
                continue
            zone = ZoneInfo(site.time_zone)
            _, closes = site.open_hours(day)
            # From the start of the opening hour, as the chart's hours are whole hours.
            moment = datetime.combine(day, time(site.opens_at.hour), tzinfo=zone).astimezone(UTC)
            while moment < closes:
                at = moment.astimezone(zone)
                offered[at.weekday(), at.hour] += 60 * site.chairs
                moment += timedelta(hours=1)
    rows = [
        {"weekday": WEEKDAYS[d], "hour": h, "share": occupied[d, h] / offered[d, h]}
        for d in range(7)
        for h in range(24)
        if offered[d, h] > 0
    ]
    return pd.DataFrame(rows, columns=["weekday", "hour", "share"])


def phases_by_week(*, visits: pd.DataFrame) -> pd.DataFrame:
    """The median minutes of each part of the visit, by week (weeks start on Monday)."""
    timed = visits[visits["completed"]]
    if timed.empty:
        return pd.DataFrame(columns=["week", "part", "median"])
    days = pd.to_datetime(timed["day"])
    week = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    medians = timed[list(PHASE_NAMES)].groupby(week.to_numpy()).median()
    long = medians.reset_index(names="week").melt(
        id_vars="week", var_name="part", value_name="median"
    )
    return long.dropna(subset=["median"]).reset_index(drop=True)


def no_shows_by_lead_time(*, visits: pd.DataFrame) -> pd.DataFrame:
    """No-shows ÷ booked by how far ahead the visit was booked, bands in order (those with
    bookings only; "Not recorded" last)."""
    grouped = visits.groupby("lead_time").agg(
        booked=("no_show", "size"), no_shows=("no_show", "sum")
    )
    grouped = grouped.reindex([label for label in LEAD_TIME_LABELS if label in grouped.index])
    grouped = grouped.rename_axis("lead_time").reset_index()
    grouped["booked"] = grouped["booked"].astype("int64")
    grouped["no_shows"] = grouped["no_shows"].astype("int64")
    grouped["rate"] = grouped["no_shows"] / grouped["booked"]
    return grouped[["lead_time", "booked", "no_shows", "rate"]]


def _no_shows_by(visits: pd.DataFrame, column: str, labels: Sequence[str] | None) -> pd.DataFrame:
    grouped = visits.groupby(column).agg(booked=("no_show", "size"), no_shows=("no_show", "sum"))
    grouped = grouped.reset_index()
    grouped["rate"] = grouped["no_shows"] / grouped["booked"]
    grouped["no_shows"] = grouped["no_shows"].astype("int64")
    if labels is not None:
        grouped[column] = [labels[int(i)] for i in grouped[column]]
    else:
        grouped[column] = [f"{int(h):02d}:00" for h in grouped[column]]
    return grouped[[column, "booked", "no_shows", "rate"]]


def _outcomes(visits: pd.DataFrame, finished: pd.DataFrame) -> Outcomes:
    scored = finished.dropna(subset=["baseline", "end_score"])
    scored = scored[scored["baseline"] > 0]
    responding = int((scored["end_score"] <= scored["baseline"] * (1 - RESPONSE_DROP)).sum())
    remission = int((scored["end_score"] < REMISSION_BELOW).sum())
    discharged = visits[visits["completed"]]
    exceptions = discharged["escort_exception"].dropna()
    counts = exceptions.value_counts()
    table = pd.DataFrame(
        {
            "exception": [_exception_label(value) for value in counts.index],
            "discharges": counts.to_numpy(),
        }
    )
    boosters = int((visits["kind"] == SessionKind.BOOSTER.value).sum())
    return Outcomes(
        finished_series=len(finished),
        scored=len(scored),
        responding=responding,
        in_remission=remission,
        boosters_booked=boosters,
        discharges=len(discharged),
        escort_exceptions=table,
    )


def _exception_label(value: str) -> str:
    try:
        return EscortException(value).label
    except ValueError:
        return str(value)


# --- the CSV of visits --------------------------------------------------------------------

CSV_COLUMNS = {
    "session_id": "session",
    "site": "site",
    "day": "day",
    "route": "route",
    "kind": "kind",
    "status": "status",
    "scheduled": "booked at",
    "checked_in": "checked in",
    "started": "dose started",
    "ended": "dose ended",
    "ready": "ready",
    "discharged": "gone home",
    "closed": "closed",
    "booked": "booking made",
    "lead_time": "lead time",
    "Waiting": "waiting min",
    "Dose": "dose min",
    "Recovery": "recovery min",
    "Ride wait": "ride wait min",
    "Cycle time": "cycle time min",
    "on_time_start": "on-time start",
    "late_cancel": "late cancel",
    "escort_exception": "escort exception",
}


def visits_table(*, report: ThroughputReport) -> pd.DataFrame:
    """The period's visits with their phase times, local clock times and plain column names."""
    frame = report.visits
    out = pd.DataFrame(index=frame.index)
    zones = {site.id: site.time_zone for site in report.sites}
    for column, title in CSV_COLUMNS.items():
        if column in _STAMPS:
            out[title] = _local_text(frame, f"{column}_s", zones)
        elif column in (*PHASE_NAMES, "Cycle time"):
            out[title] = frame[column].round(1)
        elif column == "route":
            out[title] = frame[column].map(lambda r: Route(r).label)
        elif column == "status":
            out[title] = frame[column].map(lambda s: SessionStatus(s).label)
        else:
            out[title] = frame[column]
    return out.sort_values(["booked at", "session"]).reset_index(drop=True)


def _local_text(frame: pd.DataFrame, column: str, zones: dict[int, str]) -> pd.Series:
    text = pd.Series("", index=frame.index, dtype="object")
    for site_id, zone in zones.items():
        here = (frame["site_id"] == site_id) & frame[column].notna()
        if here.any():
            local = pd.to_datetime(frame.loc[here, column], unit="s", utc=True)
            text[here] = local.dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M")
    return text
