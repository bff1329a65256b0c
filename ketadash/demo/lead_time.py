"""When each demo visit was booked (``treatment_session.booked_at``).

The story says when a booking was asked for where it knows: a series visit at the
previous series visit, a booster after a relapse on the day the patient reported it, a
planned booster at the visit before, a missed visit rebooked on the day it was missed.
Where it does not (a series' first visit, today's visits) the lead time is drawn.

Visits booked far ahead are forgotten more often. ``shared/clinic-facts.md`` gives the
overall no-show rate (about 5%) but nothing by lead time, so the demo keeps its no-shows
as they are drawn and books a missed visit far ahead more often: a series visit with the
whole series at its first visit, or a longer drawn lead. The no-show rate then rises with
the lead time, as clinics commonly report, while the overall rate stays the same.

Everything here draws from a generator of its own, so adding booking times left the
rest of the demo (its patients, visits and outcomes) exactly as it was for a seed.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING

from ketadash.demo.visit_times import MINUTE

if TYPE_CHECKING:
    from ketadash.demo.calendar import SiteCalendar

# The front desk books between opening time and an hour before closing.
BOOKING_MINUTES = (0, 9 * 60)
# Lead times in days when the story does not say, and their weights: a few the same day,
# most within a week, some weeks ahead (booked at the visit before).
LEAD_DAYS = ((0, 0), (1, 2), (3, 7), (8, 14), (15, 42))
LEAD_WEIGHTS = (0.08, 0.27, 0.40, 0.17, 0.08)
# A no-show's drawn lead leans long.
NO_SHOW_LEAD_WEIGHTS = (0.03, 0.12, 0.30, 0.25, 0.30)
# How often a visit that could have been booked earlier (a series visit, with the whole
# series at its first visit) was: a no-show more often than a visit that was kept.
BOOKED_AHEAD = 0.35
NO_SHOW_BOOKED_AHEAD = 0.8
# A booking made the day of the visit is made at least this long before it.
SAME_DAY_NOTICE_MINUTES = 5


class BookingTimes:
    """Draws when each visit was booked; never after the visit's start, never after now."""

    def __init__(self, *, rng: random.Random, now: int) -> None:
        self.rng = rng
        self.now = now

    def booked_at(
        self,
        site: SiteCalendar,
        *,
        scheduled: int,
        asked_on: int | None,
        ahead_on: int | None,
        no_show: bool,
    ) -> int:
        """Epoch seconds at which the visit at ``scheduled`` was booked.

        ``asked_on`` is the day (ordinal, local) the story asked for it, ``ahead_on`` an
        earlier day it could have been booked on (the visit before); None: not known.
        """
        rng = self.rng
        day = datetime.fromtimestamp(scheduled, site.zone).date().toordinal()
        if ahead_on is not None and rng.random() < (
            NO_SHOW_BOOKED_AHEAD if no_show else BOOKED_AHEAD
        ):
            asked_on = ahead_on
        if asked_on is None:
            weights = NO_SHOW_LEAD_WEIGHTS if no_show else LEAD_WEIGHTS
            low, high = rng.choices(LEAD_DAYS, weights)[0]
            asked_on = day - rng.randint(low, high)
        asked_on = min(asked_on, day, site.today)
        moment = site.opening(asked_on) + rng.randrange(*BOOKING_MINUTES) * MINUTE
        return min(moment, scheduled - SAME_DAY_NOTICE_MINUTES * MINUTE, self.now - MINUTE)
