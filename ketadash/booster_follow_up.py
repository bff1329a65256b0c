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
morning it listed the patient for that infusion, a query rather than a replay. Otherwise
the flags are worked out looking back, with due dates from each site's relief curve as it
stands at the end of the period (or now); the screen of an earlier morning had a curve
with a little less history in it.
"""

from __future__ import annotations

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
    ACTION_FLAGS,
    BoosterFlag,
    FellDue,
    boosters_fell_due,
    clinic_relief,
    local_day,
    relief_episodes,
)
from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.histories import load_patient_histories
from ketadash.models import BoosterFlagRow, Site, TreatmentSession
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
    db: Session,
    site_ids: Sequence[int],
    first_day: date,
    last_day: date,
    ends: dict[int, datetime],
    now: datetime,
) -> pd.DataFrame:
    """Every booster that fell due at the sites in the period, with what became of it.

    ``ends`` is each site's end of the period (aware): due dates come from what was
    known then (or ``now``, if earlier); bookings count up to ``now``, so one booked the
    week after a period counts for it. Columns: ``FELL_DUE_COLUMNS``; ``booked_on`` is
    the local day the next visit was booked (None when not booked, or not recorded).
    """
    rows = []
    stored = _sites_with_stored_flags(
        db=db, site_ids=site_ids, first_day=first_day, last_day=last_day, ends=ends, now=now
    )
    for site_id in site_ids:
        settings = load_clinic_settings(db=db, site_id=site_id)
        as_of = min(ends[site_id], now)
        if site_id in stored:
            rows += _stored_rows(
                db=db, site_id=site_id, first_day=first_day, last_day=stored[site_id], now=now
            )
            continue
        history_days = (last_day - first_day).days + 1 + settings.booster_history_days
        histories = load_patient_histories(
            db=db, as_of=as_of, history_days=history_days, site_id=site_id
        )
        if not histories:
            continue
        zone = histories[0].time_zone
        today = min(last_day, local_day(as_of - timedelta(microseconds=1), zone))
        episodes = {
            h.patient_id: relief_episodes(history=h, settings=settings, as_of=as_of)
            for h in histories
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
        rows += [
            _follow_up_row(booster, visits=visits.get(booster.patient_id, []), zone=zone, now=now)
            for booster in fell
        ]
    frame = pd.DataFrame(rows, columns=list(FELL_DUE_COLUMNS))
    return frame.sort_values(["due", "site_id", "patient_id"], kind="stable").reset_index(drop=True)


def _site_today(*, db: Session, site_id: int, end: datetime, now: datetime) -> tuple[str, date]:
    zone = db.execute(sa.select(Site.time_zone).where(Site.id == site_id)).scalar_one()
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
    with the last day to read (the period's last day, or today)."""
    found = stored_mornings(db=db, site_ids=site_ids, first_day=first_day, last_day=last_day)
    complete = {}
    for site_id in site_ids:
        _, today = _site_today(db=db, site_id=site_id, end=ends[site_id], now=now)
        until = min(last_day, today)
        if until < first_day:
            continue
        wanted = {first_day + timedelta(days=n) for n in range((until - first_day).days + 1)}
        if wanted <= found[site_id]:
            complete[site_id] = until
    return complete


def _stored_rows(
    *, db: Session, site_id: int, first_day: date, last_day: date, now: datetime
) -> list[tuple]:
    """Boosters that fell due at the site, from its stored morning flags (see the module)."""
    window = load_clinic_settings(db=db, site_id=site_id).booster_due_within_days
    f = BoosterFlagRow.__table__.c
    query = (
        sa.select(f.patient_id, f.anchor_session_id, f.day, f.flag, f.booster_due)
        .where(
            f.site_id == site_id,
            f.day >= first_day - timedelta(days=STORED_LOOKBACK_DAYS),
            f.day <= last_day,
            f.booster_due.is_not(None),
        )
        .order_by(f.patient_id, f.anchor_session_id, f.day)
    )
    # Per infusion: the first morning the list had the patient (a booked patient counts
    # from the morning the date came within the window, as the call list would have),
    # that morning's date, and the relapse day instead when a relapse was flagged.
    first: dict[tuple[int, int | None], list] = {}
    action = {flag.value for flag in ACTION_FLAGS}
    for patient_id, anchor_id, day, flag, due in db.execute(query).all():
        day, due = _day(day), _day(due)
        if flag not in action and (due - day).days > window:
            continue
        known = first.setdefault((patient_id, anchor_id), [day, due, False])
        if flag == BoosterFlag.RELAPSED.value and not known[2]:
            known[1], known[2] = min(due, known[1]), True
    t = TreatmentSession.__table__.c
    anchors = {}
    ids = sorted({anchor for _, anchor in first if anchor is not None})
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for session_id, started, scheduled in db.execute(
            sa.select(t.id, t.infusion_started_at, t.scheduled_start).where(t.id.in_(chunk))
        ).all():
            anchors[session_id] = started or scheduled
    fell = [
        FellDue(
            patient_id=patient_id,
            site_id=site_id,
            anchor_session_id=anchor_id,
            anchor_at=anchors[anchor_id],
            listed_on=listed,
            due=due,
            relapsed=relapsed,
        )
        for (patient_id, anchor_id), (listed, due, relapsed) in first.items()
        if anchor_id in anchors and first_day <= due <= last_day
    ]
    zone, _ = _site_today(db=db, site_id=site_id, end=now, now=now)
    visits = _visits_after(db=db, fell=fell, now=now)
    rows = []
    for booster in fell:
        patient_visits = visits.get(booster.patient_id, [])
        if _booster_came_first(booster, visits=patient_visits, zone=zone):
            continue  # as the worked-out rule leaves it out
        rows.append(_follow_up_row(booster, visits=patient_visits, zone=zone, now=now))
    return rows


def _follow_up_row(booster: FellDue, *, visits: list[_Booking], zone: str, now: datetime) -> tuple:
    """One row of FELL_DUE_COLUMNS: the booster, and whether and when it was booked."""
    booked_on, outcome = _outcome(booster, visits=visits, zone=zone, today=local_day(now, zone))
    return (
        booster.patient_id,
        booster.site_id,
        booster.listed_on,
        booster.due,
        booster.relapsed,
        booked_on,
        outcome,
    )


def _booster_came_first(booster: FellDue, *, visits: list[_Booking], zone: str) -> bool:
    """The next dose after the anchor was given before the booster's due date."""
    for session_id, scheduled, _, started in visits:
        if session_id == booster.anchor_session_id or scheduled <= booster.anchor_at:
            continue
        if started is not None:
            return local_day(started, zone) < booster.due
    return False


def _day(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


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
    t = TreatmentSession
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


def _outcome(
    booster: FellDue, *, visits: list[_Booking], zone: str, today: date
) -> tuple[date | None, str]:
    """When the patient's next visit after the anchor was booked, and what that makes it.

    The next visit is any session booked for after the anchor's dose, up to and
    including the next one in which a dose was given; the earliest booking among them
    counts. When one of them has no booking time, the outcome is not recorded.
    """
    after = []
    for session_id, scheduled, booked, started in visits:
        if session_id == booster.anchor_session_id or scheduled <= booster.anchor_at:
            continue
        after.append(booked)
        if started is not None:
            break
    if any(booked is None for booked in after):
        return None, NOT_RECORDED
    booked_on = min((local_day(b, zone) for b in after), default=None)
    deadline = booster.due + timedelta(days=BOOKED_WITHIN_DAYS)
    if booked_on is None or booked_on > deadline:
        if booked_on is None and today <= deadline:
            return None, STILL_OPEN
        return booked_on, NOT_BOOKED
    if booked_on < booster.listed_on:
        return booked_on, BEFORE_THE_LIST
    if booked_on <= booster.due:
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
        boosters = read_boosters_fell_due(
            db=db,
            site_ids=[site.id for site in sites],
            first_day=period.first_day,
            last_day=period.last_day,
            ends=ends,
            now=now,
        )
    counted = boosters["outcome"].value_counts()
    counts = {outcome: int(counted.get(outcome, 0)) for outcome in OUTCOMES}
    return BoosterFollowUp(
        period=period, boosters=boosters, counts=counts, stored_sites=tuple(sorted(stored))
    )
