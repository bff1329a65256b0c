"""The clinic's calendar: each site's open days and hours, and the chairs booked in it.

Days are date ordinals local to the site; moments are epoch seconds. A chair is
held from the booked time for the whole visit, in half-hour slots, and is never
booked twice for the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from ketadash.demo.visit_times import SLOT_MINUTES, VisitTimes

OPENS_AT = clock_time(8, 0)
CLOSES_AT = clock_time(18, 0)
DAY_SLOTS = (CLOSES_AT.hour - OPENS_AT.hour) * 60 // SLOT_MINUTES
BOOK_AHEAD_DAYS = 14


@dataclass(slots=True)
class SiteCalendar:
    """One site: when it is open, its chairs and staff, and its visit timings."""

    index: int
    id: int
    time_zone: str
    zone: ZoneInfo
    open_weekdays: frozenset[int]
    today: int  # date ordinal, local to the site
    horizon: int  # the last day bookings reach
    chair_ids: list[int]
    nurse_ids: list[int]
    front_desk_id: int
    area_code: str
    times: VisitTimes
    openings: dict[int, int] = field(default_factory=dict)

    def is_open(self, day: int) -> bool:
        # date.fromordinal(1) is a Monday.
        return (day - 1) % 7 in self.open_weekdays

    def next_open(self, day: int) -> int:
        """``day`` if the site is open then, else the next day it opens."""
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


def _nearest_first(last: int, preferred: int) -> list[int]:
    """The slots before ``last``, nearest ``preferred`` first (the earlier of two as near)."""
    return sorted(range(last), key=lambda s: (abs(s - preferred), s))


class ChairBook:
    """Which half-hours of which chair are taken, per site and day; never double-books."""

    def __init__(self, *, chairs: int) -> None:
        self.chairs = chairs
        self.capacity = chairs * DAY_SLOTS
        self.taken: dict[tuple[int, int], list[int]] = {}
        self.used: dict[tuple[int, int], int] = {}
        self.orders: dict[int, list[list[int]]] = {}

    def _order(self, units: int, preferred: int) -> list[int]:
        # Slots nearest the patient's preferred time first.
        orders = self.orders.get(units)
        if orders is None:
            last = DAY_SLOTS - units + 1
            orders = self.orders[units] = [_nearest_first(last, p) for p in range(last)]
        return orders[min(preferred, len(orders) - 1)]

    def book(
        self,
        *,
        site: SiteCalendar,
        day: int,
        units: int,
        preferred: int,
        tries: int,
        last_day: int,
    ) -> tuple[int, int, int] | None:
        """(day, slot, chair index) of the first free block from ``day``, or None.

        Looks at up to ``tries`` open days; the site's today is left to today's layout.
        """
        need_base = (1 << units) - 1
        order = self._order(units, preferred)
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
