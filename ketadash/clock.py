"""Time: stored as aware UTC, shown in the site's time zone."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, time, timedelta
from typing import overload
from zoneinfo import ZoneInfo

from ketadash.limits import beyond_clock_skew

# The test suite runs the clinic's clock at a moment of its choosing (a Monday morning,
# or the edge of a day it tests) whatever the machine's clock says, in its own process and
# in the servers it starts, which inherit the variable. A real clinic never sets it.
CLOCK_OFFSET_VARIABLE = "KETADASH_CLOCK_OFFSET_SECONDS"
_offset = timedelta(seconds=float(os.environ.get(CLOCK_OFFSET_VARIABLE, "") or 0))
if _offset:
    # Said where an operator looks: a clinic whose clock is off would date every step wrong.
    logging.getLogger(__name__).warning(
        "%s is set: the clinic's clock runs %s from this machine's. It is for tests only.",
        CLOCK_OFFSET_VARIABLE,
        _offset,
    )


def utc_now() -> datetime:
    """The current moment, aware, in UTC. Pages and commands take it once and pass it down."""
    return datetime.now(UTC) + _offset


def clock_offset() -> timedelta:
    """How far this process's clock runs from the machine's (zero in a clinic)."""
    return _offset


def set_clock_offset(offset: timedelta) -> None:
    """Run this process's clock, and that of the processes it starts, ``offset`` from the
    machine's. For tests: the clock keeps running at real speed from where it is put."""
    global _offset
    _offset = offset
    os.environ[CLOCK_OFFSET_VARIABLE] = repr(offset.total_seconds())


class FutureMoment(ValueError):
    """A reading or a step dated in the future; nothing was stored."""


def refuse_future(moment: datetime, *, what: str) -> None:
    """Raise FutureMoment when ``moment`` is later than the real clock allows (plus skew)."""
    if beyond_clock_skew(as_utc(moment), now=utc_now()):
        raise FutureMoment(
            f"{what} cannot be dated in the future ({moment:%Y-%m-%d %H:%M} UTC). "
            "Check the date and time. Nothing was saved."
        )


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is refused rather than guessed at."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: say which time zone it is in")
    return moment.astimezone(UTC)


def local_day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants at which ``day`` starts and ends at the site (DST-safe)."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_today(time_zone: str, *, now: datetime | None = None) -> date:
    """The site's calendar date at ``now``."""
    return (now or utc_now()).astimezone(ZoneInfo(time_zone)).date()


@overload
def to_local(moment: datetime, time_zone: str) -> datetime: ...
@overload
def to_local(moment: None, time_zone: str) -> None: ...
def to_local(moment: datetime | None, time_zone: str) -> datetime | None:
    """``moment`` in the site's time zone, for display."""
    if moment is None:
        return None
    return as_utc(moment).astimezone(ZoneInfo(time_zone))


def clock_text(moment: datetime | None, time_zone: str) -> str:
    """``14:05`` in the site's time zone, or an empty string.

    A time the site's clock shows twice (the hour repeated when summer time ends)
    carries its zone, ``01:20 EDT`` or ``01:10 EST``: without it a 50-minute dose
    would read as ending before it began.
    """
    local = to_local(moment, time_zone)
    if local is None:
        return ""
    if _shown_twice(local):
        return local.strftime("%H:%M %Z")
    return local.strftime("%H:%M")


def _shown_twice(local: datetime) -> bool:
    """True when the wall-clock reading of ``local`` also names another instant."""
    other = local.replace(fold=1 - local.fold)
    return other.utcoffset() != local.utcoffset()


def nearest_moment(clock: time, *, time_zone: str, now: datetime) -> datetime:
    """A time of day typed at the site, as the instant it means at ``now``, in UTC.

    Its next occurrence when that is within about 12 hours, else the one just gone: at
    23:50 a pickup typed as 00:15 is in 25 minutes (tomorrow's date), while at 14:00
    a pickup typed as 10:00 was this morning (the ride is late), not tomorrow.
    """
    zone = ZoneInfo(time_zone)
    today = as_utc(now).astimezone(zone).date()
    candidates = [
        datetime.combine(today + timedelta(days=days), clock, tzinfo=zone).astimezone(UTC)
        for days in (-1, 0, 1)
    ]
    # The nearest of the three; at an equal distance, the one still to come.
    return min(candidates, key=lambda c: (abs(c - now), c < now))


def whole_minutes_between(start: datetime, end: datetime) -> int:
    """Minutes elapsed from ``start`` to ``end``, rounded down, never negative."""
    return max(0, int((end - start).total_seconds() // 60))
