"""The clinic's day at its edges, tested on purpose: the clinic's midnight, the two US
daylight-saving nights (a 23-hour and a 25-hour day) and a zone with a half-hour offset.

In 2026 New York's clocks jump from 02:00 EST to 03:00 EDT on Sunday 8 March, and go
back from 02:00 EDT to 01:00 EST on Sunday 1 November, so 01:00–02:00 happens twice.
"""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from ketadash.board import load_board, view_board
from ketadash.boosters import local_day
from ketadash.clock import clock_text, local_day_bounds, local_today
from ketadash.db import write_session
from ketadash.gates import start_checklist
from ketadash.lifecycle import record_phq9, record_vitals, take_step
from ketadash.models import SessionStatus as S
from ketadash.models import Site, VitalsPhase
from ketadash.public import public_place
from ketadash.rules import dose_timer, recovery_timer, session_alerts, vitals_due_in
from ketadash.settings import ClinicSettings
from ketadash.throughput import Period, chair_occupancy, throughput_report
from ketadash.visits import load_visit
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.test_throughput import Clinic
from tests.utils.clock import local_moment
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.visits import a_visit, reading

NY = "America/New_York"
SETTINGS = ClinicSettings()
CALM = Vitals(systolic=120, diastolic=80, heart_rate=70, spo2=98)
SPRING, FALL = date(2026, 3, 8), date(2026, 11, 1)


def _whats(alerts) -> str:
    return " | ".join(a.what for a in alerts)


# --- the days themselves ------------------------------------------------------------------


def test_the_spring_forward_day_is_23_hours_and_the_fall_back_day_25():
    for day, hours in ((SPRING, 23), (FALL, 25), (date(2026, 12, 7), 24)):
        start, end = local_day_bounds(day, NY)
        assert end - start == timedelta(hours=hours)


# --- timers count real minutes, whatever the wall clock does ------------------------------


def test_a_dose_through_the_spring_forward_jump_is_40_minutes_not_100():
    start = local_moment("2026-03-08 01:40")  # EST
    visit = a_visit(
        status=S.INFUSING,
        scheduled_start=start - minutes(20),
        checked_in_at=start - minutes(15),
        infusion_started_at=start,
        baseline=reading(start - minutes(10), VitalsPhase.BEFORE),
        latest=reading(start + minutes(30), VitalsPhase.DURING),
    )
    now = start + minutes(40)
    assert (clock_text(start, NY), clock_text(now, NY)) == ("01:40", "03:20")
    timer = dose_timer(visit, now)
    assert (timer.minutes, timer.over) == (40, False)
    assert "Dose running" not in _whats(session_alerts(visit, SETTINGS, now, time_zone=NY))
    # Vitals due ten minutes after the 02:10-that-is-03:10 reading: at 03:20, now.
    assert vitals_due_in(visit, SETTINGS, now) == 0


def test_a_dose_through_the_repeated_hour_is_50_minutes_not_minus_10():
    start = local_moment("2026-11-01 01:20")  # the first 01:20, EDT
    end = start + minutes(50)  # 01:10 the second time round, EST
    visit = a_visit(
        status=S.RECOVERY,
        scheduled_start=start - minutes(20),
        checked_in_at=start - minutes(15),
        infusion_started_at=start,
        infusion_ended_at=end,
        baseline=reading(start - minutes(10), VitalsPhase.BEFORE),
    )
    assert dose_timer(visit, end + minutes(5)).minutes == 50
    recovery = recovery_timer(visit, SETTINGS, end + minutes(30))
    assert (recovery.minutes, recovery.reached) == (30, True)


def test_a_late_arrival_across_the_jump_counts_real_minutes():
    booked = local_moment("2026-03-08 01:50")
    visit = a_visit(scheduled_start=booked)
    late = session_alerts(visit, SETTINGS, booked + minutes(22), time_zone=NY)
    assert _whats(late) == "Not arrived, 22 min late"


def test_the_walls_since_is_the_moment_itself_shown_on_the_sites_clock():
    ready = local_moment("2026-03-08 03:05")
    _, since = public_place(
        status=S.READY, ready_at=ready, ride_arrived_at=None, ended_at=ready - minutes(40)
    )
    assert since == ready
    assert clock_text(since, NY) == "03:05"


def test_a_booster_due_date_is_the_sites_calendar_date_never_a_time():
    # 23:30 on Saturday 7 March in New York is already the 8th in UTC.
    late_evening = local_moment("2026-03-07 23:30")
    assert local_day(late_evening, NY) == date(2026, 3, 7)
    assert local_day(local_moment("2026-11-01 01:30", fold=1), NY) == FALL


def test_a_half_hour_zone_has_its_own_midnight():
    # Kolkata is UTC+05:30: 00:15 there on 25 November is 18:45 UTC on the 24th.
    after_midnight = local_moment("2026-11-25 00:15", "Asia/Kolkata")
    assert (after_midnight.hour, after_midnight.minute) == (18, 45)
    assert local_today("Asia/Kolkata", now=after_midnight) == date(2026, 11, 25)
    assert clock_text(after_midnight, "Asia/Kolkata") == "00:15"


# --- the board's day ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (NY, SPRING),
        (NY, FALL),
        ("Asia/Kolkata", date(2026, 11, 24)),
        ("America/St_Johns", date(2026, 11, 1)),
    ],
)
def test_the_boards_day_is_the_sites_calendar_day(db_url, zone, day):
    clinic = make_clinic(url=db_url, chairs=3, time_zone=zone)
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    start, end = local_day_bounds(day, zone)
    just_in = make_session(url=db_url, clinic=clinic, patient_id=patient,
                           scheduled_start=start + minutes(10))  # fmt: skip
    last = make_session(url=db_url, clinic=clinic, patient_id=patient,
                        scheduled_start=end - minutes(10))  # fmt: skip
    make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=end + minutes(10))
    make_session(url=db_url, clinic=clinic, patient_id=patient,
                 scheduled_start=start - minutes(10), status=S.CANCELLED)  # fmt: skip
    board = load_board(url=db_url, site_id=clinic.site_id, day=day, now=start + minutes(5))
    assert [s.session_id for s in board.sessions] == [just_in, last]
    assert clock_text(board.sessions[0].scheduled_start, zone) == "00:10"
    assert clock_text(board.sessions[1].scheduled_start, zone) == "23:50"


# --- a visit open across midnight, and a save at 23:59:59 -----------------------------------


def test_a_nurse_saving_at_23_59_59_keeps_the_readings_for_the_dose_after_midnight(
    db_url, clinic_clock
):
    clinic = make_clinic(url=db_url, chairs=2)
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    evening = date(2026, 12, 7)
    booked = local_moment("2026-12-07 23:30")
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient,
                              scheduled_start=booked)  # fmt: skip
    clinic_clock.set(local_moment("2026-12-07 23:40"))
    checked_in = take_step(url=db_url, session_id=session_id, step=Step.CHECK_IN,
                           staff_id=clinic.nurse_id, expected_version=1)  # fmt: skip
    record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=14, item9=0)
    clinic_clock.set(local_moment("2026-12-07 23:59:59"))
    saved = record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                          vitals=CALM)  # fmt: skip
    assert saved is not None
    now = clinic_clock.set(local_moment("2026-12-08 00:00:02"))
    assert local_today(NY, now=now) == date(2026, 12, 8)
    from ketadash.db import read_session

    with read_session(db_url) as db:
        visit = load_visit(db=db, session_id=session_id, now=now)
    checklist = start_checklist(visit=visit, settings=SETTINGS)
    assert checklist.allowed, checklist.reasons
    started = take_step(url=db_url, session_id=session_id, step=Step.START_INFUSION,
                        staff_id=clinic.nurse_id, expected_version=checked_in.version, now=now,
                        dose_mg=35, weight_kg=70)  # fmt: skip
    assert started.to_status == S.INFUSING
    # The new day's board keeps the visit booked yesterday, its chair and its clock.
    now = clinic_clock.set(local_moment("2026-12-08 00:30:02"))
    board = load_board(url=db_url, site_id=clinic.site_id, day=date(2026, 12, 8), now=now)
    (view,) = view_board(board, now)
    assert view.session.session_id == session_id
    assert dose_timer(view.session, now).minutes == 30
    assert "Left open from" in _whats(view.alerts)
    # Yesterday's board, read after midnight, still has it too.
    yesterday = load_board(url=db_url, site_id=clinic.site_id, day=evening, now=now)
    assert session_id in [s.session_id for s in yesterday.sessions]


# --- throughput on a 23-hour and a 25-hour day ----------------------------------------------


def _open_all_day_every_day(url: str, site_id: int) -> None:
    with write_session(url) as db:
        site = db.get(Site, site_id)
        site.opens_at, site.closes_at, site.open_weekdays = time(0, 0), time(23, 59), "0123456"


def test_throughput_days_and_hours_on_the_daylight_saving_sundays(db_url):
    clinic = Clinic(db_url)
    _open_all_day_every_day(db_url, clinic.site_id)
    # Through the repeated hour: 01:30 EDT to 01:30 EST is one real hour in the chair.
    repeated = clinic.patient()
    first, second = local_moment("2026-11-01 01:30"), local_moment("2026-11-01 01:30", fold=1)
    clinic.visit(repeated, first, planned=20,
                 stamps=(first, first + minutes(5), first + minutes(25), first + minutes(55),
                         second))  # fmt: skip
    # Late on the 25-hour day and early the next: each counts on its own local day.
    evening = local_moment("2026-11-01 23:00")
    clinic.visit(clinic.patient(), evening, planned=20,
                 stamps=(evening, evening + minutes(5), evening + minutes(25),
                         evening + minutes(50), evening + minutes(55)))  # fmt: skip
    week = Period(first_day=date(2026, 10, 26), last_day=date(2026, 11, 1))
    report = throughput_report(url=db_url, period=week)
    by_day = report.completed_by_day.groupby("day")["infusions"].sum()
    assert {d.date(): n for d, n in by_day.items()} == {FALL: 2}
    assert report.headline("Median cycle time").value == pytest.approx((60 + 55) / 2)
    # The week offers its chairs for 7 days of 23:59 and the extra hour of the 1st.
    assert report.headline("Actual chair use").value == pytest.approx(
        (60 + 55) / ((7 * 1439 + 60) * 2)
    )
    share = report.occupancy.set_index(["weekday", "hour"])["share"]
    # Sunday 01:00–02:00 happened twice: 60 chair-minutes of 2 × 2 × 60 on offer.
    assert share[("Sun", 1)] == pytest.approx(60 / (2 * 2 * 60))


def test_chair_use_on_the_spring_forward_night_counts_no_hour_that_never_was(db_url):
    clinic = Clinic(db_url)
    _open_all_day_every_day(db_url, clinic.site_id)
    # 01:30 EST to 03:30 EDT is one real hour: half in hour 1, half in hour 3.
    start = local_moment("2026-03-08 01:30")
    clinic.visit(clinic.patient(), start, planned=20,
                 stamps=(start, start + minutes(5), start + minutes(25), start + minutes(55),
                         start + minutes(60)))  # fmt: skip
    week = Period(first_day=date(2026, 3, 2), last_day=date(2026, 3, 8))
    report = throughput_report(url=db_url, period=week)
    share = report.occupancy.set_index(["weekday", "hour"])["share"]
    assert share[("Sun", 1)] == pytest.approx(30 / (2 * 60))
    assert share[("Sun", 3)] == pytest.approx(30 / (2 * 60))
    # Sunday's 02:00 never happened that week: nothing used, nothing on offer.
    assert ("Sun", 2) not in share.index
    assert report.headline("Actual chair use").value == pytest.approx(60 / ((7 * 1439 - 60) * 2))


def test_chair_occupancy_of_a_half_hour_zone_buckets_by_its_own_hours():
    import pandas as pd

    from ketadash.throughput import SiteHours

    site = SiteHours(id=1, name="Kolkata", time_zone="Asia/Kolkata", opens_at=time(8, 0),
                     closes_at=time(18, 0), open_weekdays=frozenset(range(7)), chairs=1,
                     booked_minutes={})  # fmt: skip
    checked_in = local_moment("2026-11-24 09:00", "Asia/Kolkata")
    visits = pd.DataFrame(
        {"site_id": [1], "checked_in_s": [checked_in.timestamp()], "chair_minutes": [60.0]}
    )
    period = Period(first_day=date(2026, 11, 24), last_day=date(2026, 11, 24))
    share = chair_occupancy(visits=visits, sites=[site], period=period)
    used = share[share["share"] > 0]
    assert used[["weekday", "hour"]].values.tolist() == [["Tue", 9]]
    assert used["share"].tolist() == [pytest.approx(1.0)]
