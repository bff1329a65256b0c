"""The one clock of the test suite.

Every test reads "now" from ``ketadash.clock.utc_now``, and the suite puts that clock at
``SUITE_MOMENT`` when it starts, whatever the machine's clock says: a Monday at 10:00 in
New York, far from the clinic's midnight and from a daylight-saving change, and after every
fixed date the tests write. It then runs
at real speed, in the test process and in every server or command a test starts (they
inherit the offset), so a browser test's server and the test agree on the time.

A test about a particular moment (the clinic's midnight, a daylight-saving night) moves
the clock there with the ``clinic_clock`` fixture; the suite's clock comes back after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ketadash import clock

NEW_YORK = ZoneInfo("America/New_York")
# Monday 7 December 2026, 10:00 in New York (EST, UTC-5).
SUITE_MOMENT = datetime(2026, 12, 7, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)


class ClinicClock:
    """Puts the clinic's clock (``ketadash.clock.utc_now``) at a chosen moment."""

    def set(self, moment: datetime) -> datetime:
        """Make ``utc_now()`` read ``moment`` now (then run on); returns it in UTC."""
        moment = clock.as_utc(moment)
        clock.set_clock_offset(moment - datetime.now(UTC))
        return moment

    def now(self) -> datetime:
        return clock.utc_now()

    def local(self, time_zone: str = "America/New_York") -> datetime:
        return self.now().astimezone(ZoneInfo(time_zone))


def local_moment(text: str, time_zone: str = "America/New_York", *, fold: int = 0) -> datetime:
    """``"2026-11-01 01:30"`` at the site, as aware UTC; ``fold=1`` is the repeated hour's
    second pass."""
    naive = datetime.fromisoformat(text)
    return naive.replace(tzinfo=ZoneInfo(time_zone), fold=fold).astimezone(UTC)


def suite_offset() -> timedelta:
    return SUITE_MOMENT - datetime.now(UTC)
