"""Time as the site reads it: the wall clock in the fall-back hour, and a typed time of day."""

from __future__ import annotations

from datetime import UTC, datetime, time

from ketadash.clock import clock_text, nearest_moment

NEW_YORK = "America/New_York"


def test_a_time_in_the_repeated_fall_back_hour_carries_its_zone():
    # 1 November 2026: 01:00-02:00 happens twice in New York (EDT, then EST).
    first = datetime(2026, 11, 1, 5, 20, tzinfo=UTC)  # 01:20 EDT
    fifty_min_later = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST
    assert clock_text(first, NEW_YORK) == "01:20 EDT"
    assert clock_text(fifty_min_later, NEW_YORK) == "01:10 EST"
    # Unambiguous times on that day stay plain.
    assert clock_text(datetime(2026, 11, 1, 4, 50, tzinfo=UTC), NEW_YORK) == "00:50"
    assert clock_text(datetime(2026, 11, 1, 7, 5, tzinfo=UTC), NEW_YORK) == "02:05"
    assert clock_text(datetime(2026, 11, 24, 14, 0, tzinfo=UTC), NEW_YORK) == "09:00"
    assert clock_text(None, NEW_YORK) == ""


def test_a_time_typed_near_midnight_means_its_next_occurrence():
    # 23:50 in New York on 24 November is 04:50 UTC on the 25th.
    ten_to_midnight = datetime(2026, 11, 25, 4, 50, tzinfo=UTC)
    pickup = nearest_moment(time(0, 15), time_zone=NEW_YORK, now=ten_to_midnight)
    assert pickup == datetime(2026, 11, 25, 5, 15, tzinfo=UTC)
    # In the day, a time earlier than now is today's (a ride already late), not tomorrow's.
    two_pm = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    assert nearest_moment(time(10, 0), time_zone=NEW_YORK, now=two_pm) == datetime(
        2026, 11, 24, 15, 0, tzinfo=UTC
    )
    assert nearest_moment(time(16, 30), time_zone=NEW_YORK, now=two_pm) == datetime(
        2026, 11, 24, 21, 30, tzinfo=UTC
    )
    # Just after midnight, 23:45 typed is the evening just gone.
    ten_past = datetime(2026, 11, 25, 5, 10, tzinfo=UTC)
    assert nearest_moment(time(23, 45), time_zone=NEW_YORK, now=ten_past) == datetime(
        2026, 11, 25, 4, 45, tzinfo=UTC
    )
