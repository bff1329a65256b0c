"""Booster flags turned into bookings: for the leads' review (the throughput page's outcomes).

The worklist's flags are computed each morning and not stored, and a booking does not
record which flag it answered. What is stored is the history the flags come from and
when each session was booked (``treatment_session.booked_at``). So the figure is
worked out looking back, with the worklist's own rule (``boosters.boosters_fell_due``):

- a booster *fell due* in the period when its due date (the day relief ended, when a
  relapse signal came first) lies in the period, up to today, and the booster had not
  come first; the patient was on the call list from ``booster_due_within_days`` before;
- it was *booked in time* when the patient's next visit after the infusion the relief
  ran from was booked (``booked_at``) by the due date or within
  ``BOOKED_WITHIN_DAYS`` after it. Booked before the patient reached the call list
  (at a visit, ahead) counts as in time too, and is shown apart.

Where a site's flags are stored for every morning of the period (``ketadash.booster_flags``:
written by the first Boosters page open of each day, or ``python -m ketadash boosters
--as-of``), they are read: a booster fell due on the date the list gave on the first stored
morning it listed the patient for that infusion (``booster_listing``, kept with the
mornings: one row a booster), a query rather than a replay. Otherwise
the flags are worked out looking back, with due dates from each site's relief curve as it
stands at the end of the period (or now); the screen of an earlier morning had a curve
with a little less history in it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from ketadash.booster_flags import stored_mornings
from ketadash.boosters import (
    FellDue,
    boosters_fell_due,
    clinic_relief,
    local_day,
    relief_episodes,
)
from ketadash.clock import utc_now
from ketadash.db import read_apart, read_session
from ketadash.histories import load_patient_histories
from ketadash.models import BoosterListing, Site, TreatmentSession, core_table
from ketadash.settings import load_clinic_settings
from ketadash.throughput import Period, load_sites

# A booster booked this many days after it fell due still counts as booked in time.
BOOKED_WITHIN_DAYS = 7

# What became of each booster that fell due, in the order the page lists them.
BEFORE_THE_LIST = "Booked before the call list"
FROM_THE_LIST = "Booked from the call list, by the due date"
IN_THE_WEEK = f"Booked within {BOOKED_WITHIN_DAYS} days after the due date"
NOT_BOOKED = f"Not booked within {BOOKED_WITHIN_DAYS} days of the due date"
STILL_OPEN = f"Due less than {BOOKED_WITHIN_DAYS} days ago, not booked yet"
NOT_RECORDED = "Booking time not recorded"
OUTCOMES = (BEFORE_THE_LIST, FROM_THE_LIST, IN_THE_WEEK, NOT_BOOKED, STILL_OPEN, NOT_RECORDED)
IN_TIME = (BEFORE_THE_LIST, FROM_THE_LIST, IN_THE_WEEK)

FELL_DUE_COLUMNS = (
    "patient_id",
    "site_id",
    "listed_on",
    "due",
    "relapsed",
    "booked_on",
    "outcome",
)

# Bound parameters per statement stay well inside every backend's limit.
_CHUNK = 5_000
# Stored flags are read from this long before the period: a booster due early in the
# period was listed up to ``booster_due_within_days`` before (or longer, while unbooked).
STORED_LOOKBACK_DAYS = 60


@dataclass(frozen=True, kw_only=True)
class BoosterFollowUp:
    """Boosters that fell due in a period and what became of each (see the module)."""

    period: Period
    # One row per booster that fell due (``FELL_DUE_COLUMNS``), by due date.
    boosters: pd.DataFrame
    # How many ended each way, every one of ``OUTCOMES``.
    counts: dict[str, int]
    # The sites whose stored morning flags were read (the others were worked out).
    stored_sites: tuple[int, ...] = ()
    # The last morning read at a stored site, when that is before the period's last day
    # because today's morning is not stored yet (None: read to the period's end).
    stored_through: date | None = None

    @property
    def fell_due(self) -> int:
        return len(self.boosters)

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    @property
    def outcomes(self) -> pd.DataFrame:
        """One row per outcome in ``OUTCOMES`` order: outcome, boosters."""
        return pd.DataFrame(
            {"outcome": list(OUTCOMES), "boosters": [self.counts[o] for o in OUTCOMES]}
        )

    @property
    def judged(self) -> int:
        """Those whose outcome is known: not still open, booking time recorded."""
        return self.fell_due - self.count(STILL_OPEN) - self.count(NOT_RECORDED)

    @property
    def booked_in_time(self) -> int:
        return sum(self.count(outcome) for outcome in IN_TIME)

    @property
    def in_time_share(self) -> float | None:
        return self.booked_in_time / self.judged if self.judged else None


def read_boosters_fell_due(
    *,
    url: str | None,
    site_ids: Sequence[int],
    first_day: date,
    last_day: date,
    ends: dict[int, datetime],
    now: datetime,
    stored: dict[int, date] | None = None,
) -> pd.DataFrame:
    """Every booster that fell due at the sites in the period, with what became of it.

    ``ends`` is each site's end of the period (aware): due dates come from what was
    known then (or ``now``, if earlier); bookings count up to ``now``, so one booked the
    week after a period counts for it. Columns: ``FELL_DUE_COLUMNS``; ``booked_on`` is
    the local day the next visit was booked (None when not booked, or not recorded).
    ``stored``: the sites to read from stored flags, each to its last morning
    (``_sites_with_stored_flags``; None finds them). Those are read at once, each a
    query the database answers; the others are worked out one after another.
    """
    rows: list[tuple] = []
    with read_session(url) as db:
        if stored is None:
            stored = _sites_with_stored_flags(
                db=db, site_ids=site_ids, first_day=first_day, last_day=last_day, ends=ends, now=now
            )
        for site_id in site_ids:
            if site_id not in stored:
                rows += _worked_out_rows(
                    db=db,
                    site_id=site_id,
                    first_day=first_day,
                    last_day=last_day,
                    as_of=min(ends[site_id], now),
                    now=now,
                )
    from_flags = read_apart(
        url,
        {
            site_id: functools.partial(
                _stored_rows, site_id=site_id, first_day=first_day, last_day=until, now=now
            )
            for site_id, until in stored.items()
        },
    )
    for site_rows in from_flags.values():
        rows += site_rows
    frame = pd.DataFrame(rows, columns=list(FELL_DUE_COLUMNS))
    return frame.sort_values(["due", "site_id", "patient_id"], kind="stable").reset_index(drop=True)


def _worked_out_rows(
    *, db: Session, site_id: int, first_day: date, last_day: date, as_of: datetime, now: datetime
) -> list[tuple]:
    """Boosters that fell due at the site, worked out from its histories (see the module)."""
    settings = load_clinic_settings(db=db, site_id=site_id)
    history_days = (last_day - first_day).days + 1 + settings.booster_history_days
    histories = load_patient_histories(
        db=db, as_of=as_of, history_days=history_days, site_id=site_id
    )
    if not histories:
        return []
    zone = histories[0].time_zone
    today = min(last_day, local_day(as_of - timedelta(microseconds=1), zone))
    episodes = {
        h.patient_id: relief_episodes(history=h, settings=settings, as_of=as_of) for h in histories
    }
    # The site's curve as the Boosters screen draws it at the end of the period: from
    # the episodes of the year it reads (the rest were read for the earlier due dates).
    since = local_day(as_of, zone) - timedelta(days=settings.booster_history_days)
    clinic = clinic_relief(
        episodes_by_patient={
            patient_id: [e for e in patient_episodes if e.start >= since]
            for patient_id, patient_episodes in episodes.items()
        }
    )
    fell: list[FellDue] = []
    for history in histories:
        fell += boosters_fell_due(
            history=history,
            episodes=episodes[history.patient_id],
            clinic=clinic,
            settings=settings,
            first_day=first_day,
            last_day=today,
        )
    visits = _visits_after(db=db, fell=fell, now=now)
    return [
        _follow_up_row(booster, visits=visits.get(booster.patient_id, []), zone=zone, now=now)
        for booster in fell
    ]


def _site_today(*, db: Session, site_id: int, end: datetime, now: datetime) -> tuple[str, date]:
    site = core_table(Site).c
    zone = db.execute(sa.select(site.time_zone).where(site.id == site_id)).scalar_one()
    return zone, local_day(min(end, now) - timedelta(microseconds=1), zone)


def _sites_with_stored_flags(
    *,
    db: Session,
    site_ids: Sequence[int],
    first_day: date,
    last_day: date,
    ends: dict[int, datetime],
    now: datetime,
) -> dict[int, date]:
    """The sites whose flags are stored for every morning of the period up to today, each
    with the last day to read (the period's last day, or today).

    Today's morning may be missing: it is written at the day's first Boosters open (or by
    the morning's ``--as-of``), and a lead who opens Throughput first should not wait for
    every site's worklist to be worked out. Such a site is read to yesterday's morning
    (``BoosterFollowUp.stored_through`` says so).
    """
    found = stored_mornings(db=db, site_ids=site_ids, first_day=first_day, last_day=last_day)
    complete = {}
    for site_id in site_ids:
        _, today = _site_today(db=db, site_id=site_id, end=ends[site_id], now=now)
        until = min(last_day, today)
        if until == today and today not in found[site_id]:
            until = today - timedelta(days=1)
        if until < first_day:
            continue
        wanted = {first_day + timedelta(days=n) for n in range((until - first_day).days + 1)}
        if wanted <= found[site_id]:
            complete[site_id] = until
    return complete


def _stored_rows(
    *, db: Session, site_id: int, first_day: date, last_day: date, now: datetime
) -> list[tuple]:
    """Boosters that fell due at the site, from its stored morning flags (see the module).

    One query: the database reads the site's stored listings (one row per infusion)
    and finds each one's next visit through the patient-and-time index; Python only
    judges the rows that come back (one per booster).
    """
    zone, _ = _site_today(db=db, site_id=site_id, end=now, now=now)
    today = local_day(now, zone)
    query = _stored_boosters_query(
        db=db, site_id=site_id, first_day=first_day, last_day=last_day, now=now
    )
    rows = []
    for patient_id, listed, due, relapsed, next_started, unrecorded, first_booked in db.execute(
        query
    ).all():
        listed, due = _known_day(listed), _known_day(due)
        if next_started is not None and local_day(next_started, zone) < due:
            continue  # the next dose came first: as the worked-out rule leaves it out
        booked_on = None if first_booked is None else local_day(first_booked, zone)
        outcome = _judge(
            listed_on=listed, due=due, recorded=not unrecorded, booked_on=booked_on, today=today
        )
        rows.append((patient_id, site_id, listed, due, bool(relapsed), outcome[0], outcome[1]))
    return rows


def _stored_boosters_query(
    *, db: Session, site_id: int, first_day: date, last_day: date, now: datetime
) -> sa.Select:
    """Per infusion the site's stored mornings listed: the first morning the list had the
    patient (a booked patient counts from the morning the date came within the window, as
    the call list would have), that morning's date (the relapse day instead when a relapse
    was flagged and came sooner), and the patient's next visit after the infusion.

    Columns: patient_id, listed_on, due, relapsed, next_started (the next dose given,
    or None), unrecorded (how many of the visits up to it have no booking time),
    first_booked (the earliest booking among them); due dates in the period only, by
    patient and infusion.
    """
    listing = core_table(BoosterListing)
    found = listing.c
    anchor = core_table(TreatmentSession).alias("anchor")
    # A relapse flagged after the period was not known in it.
    relapsed = sa.and_(found.relapsed_on.is_not(None), found.relapsed_on <= last_day)
    due = sa.case(
        (sa.and_(relapsed, found.relapsed_due < found.listed_due), found.relapsed_due),
        else_=found.listed_due,
    )
    boosters = (
        sa.select(
            found.patient_id,
            found.anchor_session_id,
            found.listed_on,
            due.label("due"),
            relapsed.label("relapsed"),
            sa.func.coalesce(anchor.c.infusion_started_at, anchor.c.scheduled_start).label(
                "anchor_at"
            ),
        )
        .select_from(listing)
        .join(anchor, anchor.c.id == found.anchor_session_id)
        .where(
            found.site_id == site_id,
            found.listed_on >= first_day - timedelta(days=STORED_LOOKBACK_DAYS),
            found.listed_on <= last_day,
        )
        .subquery("boosters")
    )
    b = boosters.c
    in_period = sa.and_(b.due >= first_day, b.due <= last_day)
    return _with_next_visit(boosters=boosters, where=in_period, now=now)


def _with_next_visit(*, boosters: sa.Subquery, where: sa.ColumnElement, now: datetime) -> sa.Select:
    """``boosters`` (patient_id, anchor_session_id, listed_on, due, relapsed, anchor_at) with
    each one's next visit, as ``_next_visit`` finds it in Python: the sessions booked for
    after the anchor's dose (booked by ``now``, or without a booking time), up to and
    including the next one in which a dose was given."""
    b = boosters.c
    table = core_table(TreatmentSession)

    def later(alias: sa.FromClause) -> sa.ColumnElement:
        return sa.and_(
            alias.c.patient_id == b.patient_id,
            alias.c.id != b.anchor_session_id,
            alias.c.scheduled_start > b.anchor_at,
            sa.or_(alias.c.booked_at.is_(None), alias.c.booked_at <= now),
        )

    dosed = table.alias("dosed")
    next_start = (
        sa.select(sa.func.min(dosed.c.scheduled_start))
        .where(later(dosed), dosed.c.infusion_started_at.is_not(None))
        .scalar_subquery()
    )
    # Each step is worked out once a booster: as plain subqueries the planner folds them
    # into the outer query and runs the next-dose search again for every use (ten times a
    # booster on SQLite, 1 s for a large site's year).
    step = (
        sa.select(boosters, next_start.label("next_start"))
        .where(where)
        .cte("step")
        .prefix_with("MATERIALIZED")
    )
    s = step.c
    tie = table.alias("tie")
    next_id = (
        sa.select(sa.func.min(tie.c.id))
        .where(
            tie.c.patient_id == s.patient_id,
            tie.c.scheduled_start == s.next_start,
            tie.c.id != s.anchor_session_id,
            tie.c.infusion_started_at.is_not(None),
            sa.or_(tie.c.booked_at.is_(None), tie.c.booked_at <= now),
        )
        .scalar_subquery()
    )
    found = sa.select(step, next_id.label("next_id")).cte("found").prefix_with("MATERIALIZED")
    n = found.c
    given = table.alias("given")
    visit = table.alias("visit")
    up_to_next = sa.and_(
        visit.c.patient_id == n.patient_id,
        visit.c.id != n.anchor_session_id,
        visit.c.scheduled_start > n.anchor_at,
        sa.or_(visit.c.booked_at.is_(None), visit.c.booked_at <= now),
        sa.or_(
            n.next_start.is_(None),
            visit.c.scheduled_start < n.next_start,
            sa.and_(visit.c.scheduled_start == n.next_start, visit.c.id <= n.next_id),
        ),
    )
    return sa.select(
        n.patient_id,
        n.listed_on,
        n.due,
        n.relapsed,
        sa.select(given.c.infusion_started_at)
        .where(given.c.id == n.next_id)
        .scalar_subquery()
        .label("next_started"),
        sa.select(sa.func.count())
        .select_from(visit)
        .where(up_to_next, visit.c.booked_at.is_(None))
        .scalar_subquery()
        .label("unrecorded"),
        sa.select(sa.func.min(visit.c.booked_at))
        .where(up_to_next)
        .scalar_subquery()
        .label("first_booked"),
    ).order_by(n.patient_id, n.anchor_session_id)


def _follow_up_row(booster: FellDue, *, visits: list[_Booking], zone: str, now: datetime) -> tuple:
    """One row of FELL_DUE_COLUMNS: the booster, and whether and when it was booked."""
    recorded, first_booked = _next_visit(booster, visits=visits)
    booked_on, outcome = _judge(
        listed_on=booster.listed_on,
        due=booster.due,
        recorded=recorded,
        booked_on=None if first_booked is None else local_day(first_booked, zone),
        today=local_day(now, zone),
    )
    return (
        booster.patient_id,
        booster.site_id,
        booster.listed_on,
        booster.due,
        booster.relapsed,
        booked_on,
        outcome,
    )


def _known_day(value: date | str) -> date:
    """A date column's value (SQLite may hand back its ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


class _Booking(NamedTuple):
    """When one later session was booked and whether a dose was given: all the follow-up reads.

    Not a visit (``ketadash.visits.Visit`` is the one visit): four columns, aware UTC.
    """

    session_id: int
    scheduled: datetime
    booked: datetime | None
    started: datetime | None


def _visits_after(*, db: Session, fell: list[FellDue], now: datetime) -> dict[int, list[_Booking]]:
    """Each patient's sessions booked for after their earliest anchor, in time order.

    Sessions booked after ``now`` (their ``booked_at``: a test or a back-dated look)
    did not exist yet and are left out; one with no ``booked_at`` is kept (its booking
    time is not recorded).
    """
    earliest: dict[int, datetime] = {}
    for booster in fell:
        known = earliest.get(booster.patient_id)
        if known is None or booster.anchor_at < known:
            earliest[booster.patient_id] = booster.anchor_at
    if not earliest:
        return {}
    t = core_table(TreatmentSession).c
    since = min(earliest.values())
    visits: dict[int, list[_Booking]] = defaultdict(list)
    patients = sorted(earliest)
    for start in range(0, len(patients), _CHUNK):
        chunk = patients[start : start + _CHUNK]
        query = (
            sa.select(t.patient_id, t.id, t.scheduled_start, t.booked_at, t.infusion_started_at)
            .where(
                t.patient_id.in_(chunk),
                t.scheduled_start > since,
                sa.or_(t.booked_at.is_(None), t.booked_at <= now),
            )
            # The (patient, scheduled) index gives this order.
            .order_by(t.patient_id, t.scheduled_start, t.id)
        )
        # The columns' type (UTCDateTime) hands back aware UTC times.
        for patient_id, session_id, scheduled, booked, started in db.execute(query).all():
            visits[patient_id].append(_Booking(session_id, scheduled, booked, started))
    return visits


def _next_visit(booster: FellDue, *, visits: list[_Booking]) -> tuple[bool, datetime | None]:
    """Whether every booking of the patient's next visit after the anchor has its time
    recorded, and the earliest of them (None: not booked).

    The next visit is any session booked for after the anchor's dose, up to and
    including the next one in which a dose was given; the earliest booking among them
    counts. (The stored flags' query, ``_with_next_visit``, finds the same in SQL.)
    """
    after = []
    for session_id, scheduled, booked, started in visits:
        if session_id == booster.anchor_session_id or scheduled <= booster.anchor_at:
            continue
        after.append(booked)
        if started is not None:
            break
    if any(booked is None for booked in after):
        return False, None
    return True, min((b for b in after if b is not None), default=None)


def _judge(
    *, listed_on: date, due: date, recorded: bool, booked_on: date | None, today: date
) -> tuple[date | None, str]:
    """What became of a booster due on ``due`` (on the call list from ``listed_on``) whose
    next visit was booked on ``booked_on`` (the site's local day; None: not booked), seen
    on ``today``. When a booking of it has no time (not ``recorded``), it is not recorded.
    """
    if not recorded:
        return None, NOT_RECORDED
    deadline = due + timedelta(days=BOOKED_WITHIN_DAYS)
    if booked_on is None or booked_on > deadline:
        if booked_on is None and today <= deadline:
            return None, STILL_OPEN
        return booked_on, NOT_BOOKED
    if booked_on < listed_on:
        return booked_on, BEFORE_THE_LIST
    if booked_on <= due:
        return booked_on, FROM_THE_LIST
    return booked_on, IN_THE_WEEK


def booster_follow_up(
    *,
    url: str,
    period: Period,
    site_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> BoosterFollowUp:
    """Boosters that fell due in ``period`` at the sites (None: all) and what became of them.

    ``now`` (default: the clock) is when they are judged: bookings made after it do
    not count. Raises DatabaseUnavailable when the database cannot be reached.
    """
    now = utc_now() if now is None else now
    with read_session(url) as db:
        sites = load_sites(db=db, site_ids=site_ids)
        ends = {site.id: site.bounds(period)[1] for site in sites}
        stored = _sites_with_stored_flags(
            db=db,
            site_ids=[site.id for site in sites],
            first_day=period.first_day,
            last_day=period.last_day,
            ends=ends,
            now=now,
        )
        short = [
            day
            for site_id, day in stored.items()
            if day < _site_today(db=db, site_id=site_id, end=ends[site_id], now=now)[1]
        ]
    boosters = read_boosters_fell_due(
        url=url,
        site_ids=[site.id for site in sites],
        first_day=period.first_day,
        last_day=period.last_day,
        ends=ends,
        now=now,
        stored=stored,
    )
    counted = boosters["outcome"].value_counts()
    counts = {outcome: int(counted.get(outcome, 0)) for outcome in OUTCOMES}
    return BoosterFollowUp(
        period=period,
        boosters=boosters,
        counts=counts,
        stored_sites=tuple(sorted(stored)),
        stored_through=min(short, default=None),
    )
