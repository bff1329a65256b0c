"""Each morning's booster flags, stored: written once a morning, read by the pages.

The worklist is worked out from the histories (``ketadash.boosters``); what it said on
a morning is kept in ``booster_flag`` (the patients on the list, with their flag and
dates) under a ``booster_flag_morning`` row that says the morning was written. The
first to ask for a morning writes it (``python -m ketadash boosters --as-of``, or the
first Boosters page open of the day); everyone after reads it. Written once: a second
writer, even at the same instant, finds the morning row (or trips its unique key) and
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ketadash.boosters import (
    ACTION_FLAGS,
    WORKLIST_FLAGS,
    BoosterFlag,
    BoosterPlan,
    ClinicRelief,
    as_of_morning,
    local_day,
    sort_worklist,
)
from ketadash.clock import utc_now
from ketadash.db import read_session, write_session
from ketadash.histories import site_boosters
from ketadash.models import BoosterFlagMorning, BoosterFlagRow, BoosterListing, Site, core_table

FLAG_COLUMNS = ("patient_id", "flag", "booster_due", "planned_due", "anchor_session_id")
# A back-fill of many mornings (``python -m ketadash boosters --as-of … --until …``) refits
# a site's relief model this often: the fit takes seconds on a large site, and four weeks
# of history move it little.
BACKFILL_REFIT_DAYS = 28


class MorningNotYetCome(ValueError):
    """Flags were asked for a morning after now: nothing is known of it yet."""


@dataclass(frozen=True, kw_only=True)
class MorningFlags:
    """A site's stored flags for one morning (``rows``: ``FLAG_COLUMNS``)."""

    site_id: int
    day: date
    written_at: datetime
    # True when this call wrote them; False when they were there already.
    wrote: bool
    rows: pd.DataFrame
    # The relief model the flags were worked out with, when this call wrote them.
    clinic: ClinicRelief | None = None


def write_morning_flags(
    *,
    url: str | None,
    site_id: int,
    day: date,
    now: datetime | None = None,
    clinic: ClinicRelief | None = None,
) -> MorningFlags:
    """The site's flags for the morning of ``day`` (its local day), written if not yet.

    The flags are the worklist as of the start of ``day`` at the site (``as_of_morning``):
    the patients flagged relapsed, overdue, due soon or booked. Idempotent: a morning
    already written is read back, never written twice. Raises MorningNotYetCome for a
    day whose morning is after ``now`` (default: the clock). ``clinic``: a relief model
    fitted earlier to work them out with (a back-fill of many mornings); None fits the
    morning's own.
    """
    now = utc_now() if now is None else now
    with read_session(url) as db:
        stored = _read(db=db, site_id=site_id, day=day)
        if stored is not None:
            return stored
        zone = _zone(db=db, site_id=site_id)
        as_of = as_of_morning(day=day, time_zone=zone)
        if as_of > now:
            raise MorningNotYetCome(
                f"The morning of {day:%d %B %Y} has not come yet at the site; "
                "flags are written for today or a day before."
            )
        site = site_boosters(db=db, site_id=site_id, as_of=as_of, clinic=clinic)
    plans = site.plans
    listed = [p for p in plans if p.flag in WORKLIST_FLAGS]
    wrote = False
    try:
        with write_session(url) as db:
            # Read again inside the write: another writer may have come first.
            stored = _read(db=db, site_id=site_id, day=day)
            if stored is not None:
                return stored
            db.add(BoosterFlagMorning(site_id=site_id, day=day, written_at=now, listed=len(listed)))
            db.flush()
            if listed:
                db.execute(
                    sa.insert(BoosterFlagRow),
                    [
                        {
                            "site_id": site_id,
                            "day": day,
                            "patient_id": p.patient_id,
                            "flag": p.flag.value,
                            "booster_due": p.booster_due,
                            "planned_due": p.planned_due,
                            "anchor_session_id": p.anchor_session_id,
                        }
                        for p in listed
                    ],
                )
                _keep_listings(
                    db=db,
                    site_id=site_id,
                    day=day,
                    listed=listed,
                    window_days=site.settings.booster_due_within_days,
                )
            wrote = True
    except IntegrityError:
        # Two first opens at once: the other's morning row won; read theirs.
        wrote = False
    with read_session(url) as db:
        stored = _read(db=db, site_id=site_id, day=day)
    assert stored is not None
    return MorningFlags(
        site_id=site_id,
        day=day,
        written_at=stored.written_at,
        wrote=wrote,
        rows=stored.rows,
        clinic=site.clinic if wrote else None,
    )


def _keep_listings(
    *, db: Session, site_id: int, day: date, listed: Sequence[BoosterPlan], window_days: int
) -> None:
    """Keep ``booster_listing`` (see its model) with this morning's list: a booster first on
    the call list this morning gets its row; one listed before keeps its first morning,
    unless this one comes earlier (a back-fill of older mornings), and takes this
    morning's relapse if it is the first."""
    on_the_list = [
        p
        for p in listed
        if p.booster_due is not None
        and p.anchor_session_id is not None
        and (p.flag in ACTION_FLAGS or p.booster_due <= day + timedelta(days=window_days))
    ]
    if not on_the_list:
        return
    table = core_table(BoosterListing)
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else postgres_insert
    statement = insert(table)
    new, old = statement.excluded, table.c
    earlier = new.listed_on < old.listed_on
    relapse_earlier = sa.and_(
        new.relapsed_on.is_not(None),
        sa.or_(old.relapsed_on.is_(None), new.relapsed_on < old.relapsed_on),
    )
    db.execute(
        statement.on_conflict_do_update(
            index_elements=["site_id", "patient_id", "anchor_session_id"],
            set_={
                "listed_on": sa.case((earlier, new.listed_on), else_=old.listed_on),
                "listed_due": sa.case((earlier, new.listed_due), else_=old.listed_due),
                "relapsed_on": sa.case((relapse_earlier, new.relapsed_on), else_=old.relapsed_on),
                "relapsed_due": sa.case(
                    (relapse_earlier, new.relapsed_due), else_=old.relapsed_due
                ),
            },
        ),
        [
            {
                "site_id": site_id,
                "patient_id": p.patient_id,
                "anchor_session_id": p.anchor_session_id,
                "listed_on": day,
                "listed_due": p.booster_due,
                "relapsed_on": day if p.flag is BoosterFlag.RELAPSED else None,
                "relapsed_due": p.booster_due if p.flag is BoosterFlag.RELAPSED else None,
            }
            for p in on_the_list
        ],
    )


def todays_flags(*, url: str | None, site_id: int, now: datetime | None = None) -> MorningFlags:
    """This morning's flags at the site, written now if this is the day's first look."""
    now = utc_now() if now is None else now
    with read_session(url) as db:
        zone = _zone(db=db, site_id=site_id)
    return write_morning_flags(url=url, site_id=site_id, day=local_day(now, zone), now=now)


def read_morning_flags(*, db: Session, site_id: int, day: date) -> MorningFlags | None:
    """The site's stored flags for the morning of ``day``; None when not written."""
    return _read(db=db, site_id=site_id, day=day)


def stored_mornings(
    *, db: Session, site_ids: Sequence[int], first_day: date, last_day: date
) -> dict[int, set[date]]:
    """For each site, the mornings from ``first_day`` to ``last_day`` whose flags are stored."""
    m = core_table(BoosterFlagMorning).c
    found: dict[int, set[date]] = {site_id: set() for site_id in site_ids}
    rows = db.execute(
        sa.select(m.site_id, m.day).where(
            m.site_id.in_(list(site_ids)), m.day >= first_day, m.day <= last_day
        )
    ).all()
    for site_id, day in rows:
        found[site_id].add(day if isinstance(day, date) else date.fromisoformat(day))
    return found


def _zone(*, db: Session, site_id: int) -> str:
    zone = db.exec(select(Site.time_zone).where(Site.id == site_id)).first()
    if zone is None:
        raise ValueError(f"No site {site_id}.")
    return zone


def _read(*, db: Session, site_id: int, day: date) -> MorningFlags | None:
    morning = db.exec(
        select(BoosterFlagMorning).where(
            BoosterFlagMorning.site_id == site_id, BoosterFlagMorning.day == day
        )
    ).first()
    if morning is None:
        return None
    f = core_table(BoosterFlagRow).c
    rows = db.execute(
        sa.select(*(f[c] for c in FLAG_COLUMNS))
        .where(f.site_id == site_id, f.day == day)
        .order_by(f.patient_id)
    ).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(FLAG_COLUMNS))
    return MorningFlags(
        site_id=site_id, day=day, written_at=morning.written_at, wrote=False, rows=frame
    )


def with_morning_flags(*, frame: pd.DataFrame, morning: pd.DataFrame) -> pd.DataFrame:
    """The worklist (``boosters.worklist_frame``) with this morning's stored flag and dates
    for each patient on the morning's list; news since the morning (a booking made, a
    relapse reported: *Booked*, *Relapsed*) shows as it is now. Most urgent first."""
    if frame.empty or morning.empty:
        return frame
    stored = morning.set_index("patient_id")
    news = {BoosterFlag.BOOKED.value, BoosterFlag.RELAPSED.value}
    frame = frame.copy()
    for position, (patient_id, flag) in enumerate(
        zip(frame["patient_id"], frame["flag"], strict=True)
    ):
        if patient_id not in stored.index or flag in news:
            continue
        row = stored.loc[patient_id]
        frame.iloc[position, frame.columns.get_loc("flag")] = row["flag"]
        frame.iloc[position, frame.columns.get_loc("booster_due")] = row["booster_due"]
        frame.iloc[position, frame.columns.get_loc("planned_due")] = row["planned_due"]
    return sort_worklist(frame)
