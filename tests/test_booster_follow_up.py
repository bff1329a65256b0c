"""Booster flags turned into bookings, on a small clinic whose figure is worked out by hand.

The clinic is the throughput tests' "Main Street" (New York). Its past: ten patients
finished a series of six in September 2025 and reported their symptoms back 20 days
later, so the clinic's relief curve (Kaplan–Meier) stays at 100% until day 20 and
then falls below 85% (one other relapse, F's at day 8, takes it only to about 95%).
A patient with no relief episode of their own gets that curve, so the boosters' rule
gives them: due = series end + 20 days (the 15% quantile) − 3 days (lead) = + 17
days, and they are on the call list ("Due soon") 7 days before that.

The period is February 2026. The patients who finish a series in January:

======  ==========  =======  ==========================================  ================
patient series end  due      next visit booked on                        outcome
======  ==========  =======  ==========================================  ================
A       20 Jan      6 Feb    20 Jan, at the last infusion               before the list
B       21 Jan      7 Feb    3 Feb (on the list since 31 Jan)           from the list
C       22 Jan      8 Feb    12 Feb                                      within the week
D       23 Jan      9 Feb    20 Feb                                      too late
E       24 Jan      10 Feb   never                                       not booked
F       26 Jan      3 Feb    4 Feb (symptoms back 3 Feb: due that day)   within the week
G       25 Jan      11 Feb   not recorded (no booked_at)                 not recorded
H       5 Jan       22 Jan   2 Feb                                       not in February
I       10 Feb      27 Feb   10 Feb, for 24 Feb, and given then          never fell due
J       27 Jan      13 Feb   course ended 1 Feb                          not in care
======  ==========  =======  ==========================================  ================

I's planned booster came before its due date, so it never fell due, and the relief
after it runs into March. Seen on 20 March: 7 fell due, 6 with a known outcome, 4
booked in time (A, B, C, F). Seen on 14 February: D's booking (made 20 Feb) does not
exist yet and D and E are still inside their week, so 4 of 4 known were in time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ketadash.booster_follow_up import (
    BEFORE_THE_LIST,
    FROM_THE_LIST,
    IN_THE_WEEK,
    NOT_BOOKED,
    NOT_RECORDED,
    STILL_OPEN,
    booster_follow_up,
)
from ketadash.db import write_session
from ketadash.models import SessionKind, SiteSetting
from ketadash.throughput import Period
from tests.test_throughput import Clinic, at

FEBRUARY = Period(first_day=date(2026, 2, 1), last_day=date(2026, 2, 28))


def feb(day: int) -> date:
    return date(2026, 2, day)


def series_ending(clinic: Clinic, patient, last: date) -> None:
    """Six series infusions two days apart, the last on ``last``, each 09:00–10:40."""
    for n in range(5, -1, -1):
        day = last - timedelta(days=2 * n)
        clinic.visit(
            patient,
            at(day, "09:00"),
            stamps=(at(day, "09:00"), at(day, "09:10"), at(day, "09:50"), at(day, "10:30"),
                    at(day, "10:40")),
        )  # fmt: skip


def booster_booked(
    clinic: Clinic, patient, *, on: date | None, for_day: date, given: bool = False
) -> None:
    """A booster booked on ``on`` (None: time not recorded) for ``for_day`` at 11:00."""
    stamps = ()
    if given:
        stamps = tuple(
            at(for_day, clock) for clock in ("11:00", "11:10", "11:50", "12:30", "12:40")
        )
    clinic.visit(
        patient,
        at(for_day, "11:00"),
        kind=SessionKind.BOOSTER,
        stamps=stamps,
        booked_at=at(on, "10:30") if on is not None else None,
    )


def the_clinic(url: str) -> Clinic:
    clinic = Clinic(url)
    # The dates below were worked out at a 15% quantile: the follow-up's rules, not the
    # quantile's default, are under test here.
    with write_session(url) as db:
        db.add(SiteSetting(site_id=clinic.site_id, name="booster_quantile_percent", value="15",
                               updated_at=datetime(2025, 1, 1, tzinfo=UTC)))  # fmt: skip
    for n in range(10):
        past = clinic.patient()
        end = date(2025, 9, 10) + timedelta(days=n)
        series_ending(clinic, past, end)
        clinic.symptoms_back(past, end + timedelta(days=20))
    a, b, c, d, e, f, g, h, i, j = (clinic.patient() for _ in range(10))
    series_ending(clinic, a, date(2026, 1, 20))
    booster_booked(clinic, a, on=date(2026, 1, 20), for_day=date(2026, 2, 9))
    series_ending(clinic, b, date(2026, 1, 21))
    booster_booked(clinic, b, on=date(2026, 2, 3), for_day=date(2026, 2, 9))
    series_ending(clinic, c, date(2026, 1, 22))
    booster_booked(clinic, c, on=date(2026, 2, 12), for_day=date(2026, 2, 16))
    series_ending(clinic, d, date(2026, 1, 23))
    booster_booked(clinic, d, on=date(2026, 2, 20), for_day=date(2026, 2, 23))
    series_ending(clinic, e, date(2026, 1, 24))
    series_ending(clinic, f, date(2026, 1, 26))
    clinic.symptoms_back(f, date(2026, 2, 3))
    booster_booked(clinic, f, on=date(2026, 2, 4), for_day=date(2026, 2, 6))
    series_ending(clinic, g, date(2026, 1, 25))
    booster_booked(clinic, g, on=None, for_day=date(2026, 2, 12))
    series_ending(clinic, h, date(2026, 1, 5))
    booster_booked(clinic, h, on=date(2026, 2, 2), for_day=date(2026, 2, 5))
    series_ending(clinic, i, date(2026, 2, 10))
    booster_booked(clinic, i, on=date(2026, 2, 10), for_day=date(2026, 2, 24), given=True)
    series_ending(clinic, j, date(2026, 1, 27))
    clinic.course_ended(j, date(2026, 2, 1))
    clinic.named = dict(zip((a, b, c, d, e, f, g, h, i, j), "ABCDEFGHIJ", strict=True))
    return clinic


def by_patient(clinic: Clinic, follow_up) -> dict[str, tuple]:
    names = {patient[0]: name for patient, name in clinic.named.items()}
    return {
        names[row.patient_id]: (row.due, row.listed_on, row.outcome)
        for row in follow_up.boosters.itertuples()
    }


def test_boosters_that_fell_due_in_february_seen_in_march(db_url):
    clinic = the_clinic(db_url)
    now = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)

    follow_up = booster_follow_up(url=db_url, period=FEBRUARY, now=now)

    # (due, on the call list from, outcome)
    assert by_patient(clinic, follow_up) == {
        "A": (feb(4), date(2026, 1, 28), BEFORE_THE_LIST),
        "B": (feb(5), date(2026, 1, 29), FROM_THE_LIST),
        "C": (feb(6), date(2026, 1, 30), IN_THE_WEEK),
        "D": (feb(7), date(2026, 1, 31), NOT_BOOKED),
        "E": (feb(8), feb(1), NOT_BOOKED),
        "F": (feb(3), feb(3), IN_THE_WEEK),
        "G": (feb(9), feb(2), NOT_RECORDED),
    }
    assert follow_up.fell_due == 7
    assert follow_up.judged == 6
    assert follow_up.booked_in_time == 4
    assert follow_up.in_time_share == pytest.approx(4 / 6)
    assert follow_up.count(STILL_OPEN) == 0
    relapsed = follow_up.boosters.set_index("due")["relapsed"]
    assert relapsed[feb(3)] and not relapsed[feb(4)]


def test_while_the_week_is_not_over_the_booster_is_still_open(db_url):
    clinic = the_clinic(db_url)
    now = datetime(2026, 2, 14, 20, 0, tzinfo=UTC)  # 15:00 in New York

    follow_up = booster_follow_up(url=db_url, period=FEBRUARY, now=now)

    outcomes = {name: outcome for name, (_, _, outcome) in by_patient(clinic, follow_up).items()}
    assert outcomes == {
        "A": BEFORE_THE_LIST,
        "B": FROM_THE_LIST,
        "C": IN_THE_WEEK,
        "D": STILL_OPEN,  # booked on 20 February: not yet
        "E": STILL_OPEN,
        "F": IN_THE_WEEK,
        "G": NOT_RECORDED,
    }
    assert (follow_up.judged, follow_up.booked_in_time) == (4, 4)
    assert follow_up.in_time_share == 1.0


def test_a_period_with_nothing_due(db_url):
    the_clinic(db_url)
    june = Period(first_day=date(2026, 6, 1), last_day=date(2026, 6, 7))
    follow_up = booster_follow_up(url=db_url, period=june, now=datetime(2026, 6, 30, tzinfo=UTC))
    assert follow_up.fell_due == 0
    assert follow_up.in_time_share is None
    assert follow_up.outcomes["boosters"].sum() == 0


def test_stored_morning_flags_give_the_same_follow_up_as_working_them_out(db_url):
    from ketadash.booster_flags import write_morning_flags

    clinic = the_clinic(db_url)
    now = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
    worked_out = booster_follow_up(url=db_url, period=FEBRUARY, now=now)
    assert worked_out.stored_sites == ()
    day = date(2026, 1, 15)
    while day <= date(2026, 2, 28):
        write_morning_flags(url=db_url, site_id=clinic.site_id, day=day, now=now)
        day += timedelta(days=1)

    stored = booster_follow_up(url=db_url, period=FEBRUARY, now=now)

    assert stored.stored_sites == (clinic.site_id,)
    assert by_patient(clinic, stored) == by_patient(clinic, worked_out)
    assert stored.counts == worked_out.counts


def test_today_s_morning_not_yet_stored_reads_the_stored_flags_to_yesterday(db_url):
    from ketadash.booster_flags import write_morning_flags

    clinic = the_clinic(db_url)
    # 10:00 in New York on 28 February: today's morning has come, nobody opened Boosters.
    now = datetime(2026, 2, 28, 15, 0, tzinfo=UTC)
    day = date(2026, 1, 15)
    while day < date(2026, 2, 28):
        write_morning_flags(url=db_url, site_id=clinic.site_id, day=day, now=now)
        day += timedelta(days=1)

    follow_up = booster_follow_up(url=db_url, period=FEBRUARY, now=now)

    assert follow_up.stored_sites == (clinic.site_id,)
    assert follow_up.stored_through == date(2026, 2, 27)
    write_morning_flags(url=db_url, site_id=clinic.site_id, day=date(2026, 2, 28), now=now)
    assert booster_follow_up(url=db_url, period=FEBRUARY, now=now).stored_through is None


def test_a_period_with_a_morning_not_stored_is_worked_out(db_url):
    from ketadash.booster_flags import write_morning_flags

    clinic = the_clinic(db_url)
    now = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
    write_morning_flags(url=db_url, site_id=clinic.site_id, day=feb(1), now=now)
    follow_up = booster_follow_up(url=db_url, period=FEBRUARY, now=now)
    assert follow_up.stored_sites == ()
    assert follow_up.fell_due == 7
