"""Saves that cannot be lost: a form's key is recorded with its save, so a repeated
submit (a retried click, a replayed rerun) writes once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlmodel import func, select

from ketadash.db import read_session
from ketadash.lifecycle import (
    SessionChanged,
    StepNotAllowed,
    record_phq9,
    record_vitals,
    take_step,
)
from ketadash.models import OutcomeScore, Ride, StatusChange, SubmittedForm, VitalsReading
from ketadash.rides import arrange_ride
from ketadash.submissions import AlreadySaved, new_key, submission, was_saved
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.steps import current_version, step_at
from tests.utils.visits import CALM

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York, a Tuesday


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


@pytest.fixture
def visit(db_url, clinic):
    patient = make_patient(url=db_url)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    step_at(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    return session_id


def _count(url, column, **where) -> int:
    query = select(func.count(column))
    for name, value in where.items():
        query = query.where(getattr(column.class_, name) == value)
    with read_session(url) as db:
        return db.exec(query).one()


def _vitals(url, clinic, session_id, *, key):
    with submission(key=key, what="vitals", staff_id=clinic.nurse_id):
        return record_vitals(
            url=url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
            now=NINE + minutes(2),
        )  # fmt: skip


def test_a_repeated_key_saves_vitals_once(db_url, clinic, visit):
    key = new_key()
    _vitals(db_url, clinic, visit, key=key)
    with pytest.raises(AlreadySaved, match="Already saved: this vitals was saved"):
        _vitals(db_url, clinic, visit, key=key)
    assert _count(db_url, VitalsReading.id, session_id=visit) == 1
    with read_session(db_url) as db:
        assert was_saved(db=db, key=key)
        row = db.get(SubmittedForm, key)
        assert (row.what, row.staff_id) == ("vitals", clinic.nurse_id)


def test_a_new_key_is_a_new_save(db_url, clinic, visit):
    _vitals(db_url, clinic, visit, key=new_key())
    _vitals(db_url, clinic, visit, key=new_key())
    assert _count(db_url, VitalsReading.id, session_id=visit) == 2


def test_a_repeated_key_saves_a_phq9_once(db_url, clinic, visit):
    key = new_key()
    for _ in range(2):
        try:
            with submission(key=key, what="PHQ-9", staff_id=clinic.nurse_id):
                record_phq9(url=db_url, session_id=visit, staff_id=clinic.nurse_id, total=12,
                            item9=0, now=NINE + minutes(3))  # fmt: skip
        except AlreadySaved:
            pass
    assert _count(db_url, OutcomeScore.id, session_id=visit) == 1


def test_a_repeated_step_is_already_saved_not_changed_elsewhere(db_url, clinic):
    # Without the key, the replayed check-in would meet its own new version and say
    # "changed at another station"; with it, the nurse hears it is already saved.
    patient = make_patient(url=db_url)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    version = current_version(db_url, session_id)
    key = new_key()

    def check_in():
        with submission(key=key, what="check-in", staff_id=clinic.nurse_id):
            take_step(url=db_url, session_id=session_id, step=Step.CHECK_IN,
                      staff_id=clinic.nurse_id, expected_version=version, now=NINE)  # fmt: skip

    check_in()
    with pytest.raises(AlreadySaved):
        check_in()
    assert _count(db_url, StatusChange.id, session_id=session_id) == 1


def test_a_refused_save_leaves_no_key_and_may_be_sent_again(db_url, clinic):
    patient = make_patient(url=db_url)
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    key = new_key()
    with (
        pytest.raises(StepNotAllowed),
        submission(key=key, what="start", staff_id=clinic.nurse_id),
    ):
        take_step(url=db_url, session_id=session_id, step=Step.START_INFUSION,
                  staff_id=clinic.nurse_id, expected_version=current_version(db_url, session_id),
                  now=NINE)  # fmt: skip
    with read_session(db_url) as db:
        assert not was_saved(db=db, key=key)
    # The same key then saves the check-in the nurse meant.
    with submission(key=key, what="check-in", staff_id=clinic.nurse_id):
        step_at(db_url, clinic, session_id, Step.CHECK_IN, NINE)
    with read_session(db_url) as db:
        assert was_saved(db=db, key=key)


def test_a_stale_version_with_a_new_key_is_still_changed_elsewhere(db_url, clinic, visit):
    # The key does not hide a real conflict: a different form on an old version is refused.
    with (
        pytest.raises(SessionChanged),
        submission(key=new_key(), what="cancel", staff_id=clinic.nurse_id),
    ):
        take_step(url=db_url, session_id=visit, step=Step.CANCEL, staff_id=clinic.nurse_id,
                  expected_version=1, reason="wrong", now=NINE + minutes(1))  # fmt: skip


def test_a_ride_saved_twice_at_once_is_written_once(db_url, clinic, visit):
    # Two threads (two servers' worth of connections) send one key together.
    key = new_key()
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def save():
        start.wait()
        try:
            with submission(key=key, what="ride", staff_id=clinic.nurse_id):
                arrange_ride(url=db_url, session_id=visit, staff_id=clinic.nurse_id,
                             expected_ride_version=None, driver_name="Jo Morgan",
                             driver_phone=None, relationship=None, expected_pickup_at=None,
                             now=NINE + minutes(5))  # fmt: skip
            outcomes.append("saved")
        except AlreadySaved:
            outcomes.append("already")
        except Exception as error:  # the other's ride meanwhile: refused, nothing written
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=save) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already", "saved"]
    assert _count(db_url, Ride.id, session_id=visit) == 1


def test_a_key_is_bounded():
    with pytest.raises(ValueError), submission(key="", what="vitals", staff_id=None):
        pass
