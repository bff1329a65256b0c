"""Booking a booster: a free chair at an open time, on that day's board, the flag turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from ketadash.board import load_board
from ketadash.booking import BookingRefused, book_booster, first_free_start
from ketadash.boosters import BoosterFlag, plan_boosters
from ketadash.db import read_session
from ketadash.histories import load_patient_histories
from ketadash.models import SessionKind, SessionStatus, TreatmentSession
from ketadash.settings import ClinicSettings
from tests.test_histories import a_patient
from tests.utils.factories import make_clinic, make_session

# Friday 27 Nov 2026, 09:00 in New York; the booster goes on Tuesday 1 Dec at 10:00.
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
TUESDAY_TEN = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def clinic_with_patient(db_url):
    clinic = make_clinic(url=db_url, chairs=2)
    patient_id = a_patient(url=db_url, clinic=clinic, mrn="A", relief=20, boosters=2)
    return db_url, clinic, patient_id


def test_booked_booster_is_on_that_days_board_in_a_free_chair(clinic_with_patient):
    url, clinic, patient_id = clinic_with_patient
    booked = book_booster(
        url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
        staff_id=clinic.nurse_id, now=NOW,
    )  # fmt: skip
    assert booked.booked_by_name == "Dana Reyes"
    assert booked.chair_id == clinic.chair_ids[0]
    board = load_board(url=url, site_id=clinic.site_id, day=TUESDAY_TEN.date())
    (session,) = board.sessions
    assert session.session_id == booked.session_id
    assert session.status is SessionStatus.SCHEDULED
    assert session.kind is SessionKind.BOOSTER
    assert session.scheduled_start == TUESDAY_TEN
    with read_session(url) as db:
        row = db.get(TreatmentSession, booked.session_id)
        assert (row.booked_by, row.booked_at) == (clinic.nurse_id, NOW)


def test_booking_makes_the_flag_booked(clinic_with_patient):
    url, clinic, patient_id = clinic_with_patient
    settings = ClinicSettings()

    def flag():
        with read_session(url) as db:
            histories = load_patient_histories(db=db, as_of=NOW, history_days=3650)
        plans, _ = plan_boosters(histories=histories, settings=settings, as_of=NOW)
        return plans[0].flag

    assert flag() is not BoosterFlag.BOOKED
    book_booster(
        url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
        staff_id=clinic.nurse_id, now=NOW,
    )  # fmt: skip
    assert flag() is BoosterFlag.BOOKED


def test_a_chair_in_use_is_skipped_and_a_full_site_is_refused(clinic_with_patient):
    url, clinic, patient_id = clinic_with_patient
    other = a_patient(url=url, clinic=clinic, mrn="B", relief=15, boosters=1)
    third = a_patient(url=url, clinic=clinic, mrn="C", relief=15, boosters=1)
    # Chair 1 is taken from 09:30 to 10:40 (40 min dose + 30 min recovery).
    make_session(
        url=url, clinic=clinic, patient_id=other,
        scheduled_start=TUESDAY_TEN - timedelta(minutes=30), chair_index=0,
    )  # fmt: skip
    booked = book_booster(
        url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
        staff_id=clinic.nurse_id, now=NOW,
    )  # fmt: skip
    assert booked.chair_id == clinic.chair_ids[1]
    with pytest.raises(BookingRefused, match="No chair is free"):
        book_booster(
            url=url, patient_id=third, site_id=clinic.site_id, start=TUESDAY_TEN,
            staff_id=clinic.nurse_id, now=NOW,
        )  # fmt: skip
    # 10:40 frees chair 1 again.
    suggested = first_free_start(
        url=url, site_id=clinic.site_id, day_start=TUESDAY_TEN, patient_id=third
    )
    assert suggested == TUESDAY_TEN + timedelta(minutes=60)


@pytest.mark.parametrize(
    ("start", "staff", "message"),
    [
        (TUESDAY_TEN, None, "Sign in first"),
        (NOW - timedelta(hours=1), "nurse", "already passed"),
        (datetime(2026, 11, 29, 15, 0, tzinfo=UTC), "nurse", "not open"),  # a Sunday
        (datetime(2026, 12, 1, 22, 30, tzinfo=UTC), "nurse", "not open"),  # 17:30, ends late
    ],
)
def test_refusals_say_why_and_write_nothing(clinic_with_patient, start, staff, message):
    url, clinic, patient_id = clinic_with_patient
    with read_session(url) as db:
        before = db.exec(select(func.count(TreatmentSession.id))).one()
    with pytest.raises(BookingRefused, match=message):
        book_booster(
            url=url, patient_id=patient_id, site_id=clinic.site_id, start=start,
            staff_id=clinic.nurse_id if staff else 999_999, now=NOW,
        )  # fmt: skip
    with read_session(url) as db:
        assert db.exec(select(func.count(TreatmentSession.id))).one() == before


def test_a_second_booking_on_the_same_day_is_refused(clinic_with_patient):
    url, clinic, patient_id = clinic_with_patient
    book_booster(
        url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
        staff_id=clinic.nurse_id, now=NOW,
    )  # fmt: skip
    with pytest.raises(BookingRefused, match="already has a session"):
        book_booster(
            url=url, patient_id=patient_id, site_id=clinic.site_id,
            start=TUESDAY_TEN + timedelta(hours=3), staff_id=clinic.nurse_id, now=NOW,
        )  # fmt: skip


def test_two_stations_booking_the_last_chair_at_once_get_one_booking(db_url):
    import threading

    clinic = make_clinic(url=db_url, chairs=1)
    first = a_patient(url=db_url, clinic=clinic, mrn="A", relief=20, boosters=1)
    second = a_patient(url=db_url, clinic=clinic, mrn="B", relief=20, boosters=1)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def book(patient_id: int) -> None:
        barrier.wait()
        try:
            booked = book_booster(
                url=db_url, patient_id=patient_id, site_id=clinic.site_id,
                start=TUESDAY_TEN, staff_id=clinic.nurse_id, now=NOW,
            )  # fmt: skip
            outcomes.append(booked)
        except BookingRefused as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=book, args=(p,)) for p in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["BookingRefused", "BoosterBooked"]
    with read_session(db_url) as db:
        booked = db.exec(
            select(func.count(TreatmentSession.id)).where(
                TreatmentSession.status == SessionStatus.SCHEDULED
            )
        ).one()
    assert booked == 1


def test_one_patient_booked_twice_on_one_day_at_once_gets_one_booking(db_url, monkeypatch):
    """Two stations book the same patient on the same day (other times, other chairs); the
    first pauses inside its booking after checking the patient's day, the second tries."""
    import ketadash.booking
    from tests.utils.interleave import interleave

    clinic = make_clinic(url=db_url, chairs=2)
    patient_id = a_patient(url=db_url, clinic=clinic, mrn="A", relief=20, boosters=1)

    def book(start, chair_index):
        return lambda: book_booster(
            url=db_url, patient_id=patient_id, site_id=clinic.site_id, start=start,
            staff_id=clinic.nurse_id, now=NOW, chair_id=clinic.chair_ids[chair_index],
        )  # fmt: skip

    first, second = interleave(
        monkeypatch=monkeypatch,
        pause_in=(ketadash.booking, "free_chairs"),
        first=book(TUESDAY_TEN, 0),
        second=book(TUESDAY_TEN + timedelta(hours=3), 1),
    )
    assert first.accepted
    assert isinstance(second.error, BookingRefused), second.error
    with read_session(db_url) as db:
        booked = db.exec(
            select(func.count(TreatmentSession.id)).where(
                TreatmentSession.patient_id == patient_id,
                TreatmentSession.status == SessionStatus.SCHEDULED,
            )
        ).one()
    assert booked == 1


def test_a_second_booster_the_next_day_is_refused_while_one_is_booked(clinic_with_patient):
    """The worklist hides its form once a booster is booked; the booking says no itself."""
    url, clinic, patient_id = clinic_with_patient
    book_booster(
        url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
        staff_id=clinic.nurse_id, now=NOW,
    )  # fmt: skip
    with pytest.raises(BookingRefused, match="already has a visit booked for Tue 01 Dec at 10:00"):
        book_booster(
            url=url, patient_id=patient_id, site_id=clinic.site_id,
            start=TUESDAY_TEN + timedelta(days=1), staff_id=clinic.nurse_id, now=NOW,
        )  # fmt: skip
    with read_session(url) as db:
        booked = db.exec(
            select(func.count(TreatmentSession.id)).where(
                TreatmentSession.patient_id == patient_id,
                TreatmentSession.status == SessionStatus.SCHEDULED,
            )
        ).one()
    assert booked == 1


def test_a_booster_is_refused_once_the_patients_course_has_ended(clinic_with_patient):
    """A course that ended months ago is out of care (the worklist's own rule): no booster."""
    from datetime import date

    from ketadash.db import write_session
    from ketadash.models import Route, TreatmentCourse

    url, clinic, patient_id = clinic_with_patient
    with write_session(url) as db:
        db.add(
            TreatmentCourse(
                patient_id=patient_id,
                route=Route.IV,
                started_on=date(2026, 1, 5),
                ended_on=date(2026, 6, 30),
            )
        )
    with pytest.raises(BookingRefused, match="course ended on Tue 30 Jun 2026"):
        book_booster(
            url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
            staff_id=clinic.nurse_id, now=NOW,
        )  # fmt: skip
    # A new course started since: in care again, the booster is booked.
    with write_session(url) as db:
        db.add(TreatmentCourse(patient_id=patient_id, route=Route.IV, started_on=date(2026, 11, 2)))
    assert book_booster(
        url=url, patient_id=patient_id, site_id=clinic.site_id, start=TUESDAY_TEN,
        staff_id=clinic.nurse_id, now=NOW,
    ).scheduled_start == TUESDAY_TEN  # fmt: skip


def test_the_plan_problems_shown_are_those_of_the_plan_the_chosen_start_copies(db_url):
    # The form states the esketamine-plan rule in the words the booking refuses with,
    # for the plan before the time chosen (not the first free time).
    from ketadash.booking import booster_plan_problems
    from ketadash.gates import plan_problems
    from ketadash.models import Route
    from tests.utils.factories import make_patient

    clinic = make_clinic(url=db_url, chairs=2)
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    make_session(url=db_url, clinic=clinic, patient_id=patient, route=Route.ESKETAMINE,
                 dose_mg=112, scheduled_start=NOW - timedelta(days=7))  # fmt: skip
    make_session(url=db_url, clinic=clinic, patient_id=patient, route=Route.ESKETAMINE,
                 dose_mg=56, scheduled_start=TUESDAY_TEN)  # fmt: skip
    expected = plan_problems(route=Route.ESKETAMINE, dose_mg=112, plan_reason=None, staff_role=None)
    assert expected
    problems = booster_plan_problems(url=db_url, patient_id=patient, start=NOW + timedelta(days=1))
    assert problems == expected
    after = booster_plan_problems(
        url=db_url, patient_id=patient, start=TUESDAY_TEN + timedelta(days=1)
    )
    assert after == []
