"""Sign-ins shared by every server process, on SQLite and PostgreSQL: the idle clock, the
sign-outs and the walls' last checks live in the database, not in one process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ketadash.auth import register_display
from ketadash.db import read_session
from ketadash.models import Display, SignIn
from ketadash.sign_ins import (
    DISPLAY_CHECK_SECONDS,
    FORGET_AFTER,
    TOUCH_SECONDS,
    end,
    note_display_check,
    shared_sign_in,
    touch,
)
from tests.utils.factories import make_clinic

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
KEY = "a" * 64


def test_an_unknown_sign_in_is_neither_used_nor_ended(db_url):
    assert shared_sign_in(url=db_url, key=KEY).last_active_at is None
    assert not shared_sign_in(url=db_url, key=KEY).ended


def test_a_use_is_recorded_for_every_process(db_url):
    touch(url=db_url, key=KEY, now=NINE)
    assert shared_sign_in(url=db_url, key=KEY).last_active_at == NINE
    later = NINE + timedelta(seconds=TOUCH_SECONDS)
    touch(url=db_url, key=KEY, now=later)
    assert shared_sign_in(url=db_url, key=KEY).last_active_at == later


def test_a_use_soon_after_the_last_is_not_written(db_url):
    touch(url=db_url, key=KEY, now=NINE)
    touch(url=db_url, key=KEY, now=NINE + timedelta(seconds=TOUCH_SECONDS - 1))
    assert shared_sign_in(url=db_url, key=KEY).last_active_at == NINE


def test_an_older_use_never_moves_the_clock_back(db_url):
    # Two processes: the one that writes last may have the earlier moment.
    touch(url=db_url, key=KEY, now=NINE)
    touch(url=db_url, key=KEY, now=NINE - timedelta(minutes=5))
    assert shared_sign_in(url=db_url, key=KEY).last_active_at == NINE


def test_a_sign_out_ends_the_sign_in_for_every_process(db_url):
    touch(url=db_url, key=KEY, now=NINE)
    end(url=db_url, key=KEY, now=NINE + timedelta(minutes=1))
    assert shared_sign_in(url=db_url, key=KEY).ended
    # A later use (a tab that had not heard yet) does not sign it back in.
    touch(url=db_url, key=KEY, now=NINE + timedelta(minutes=2))
    assert shared_sign_in(url=db_url, key=KEY).ended
    # Another browser's sign-in is untouched.
    assert not shared_sign_in(url=db_url, key="b" * 64).ended


def test_a_sign_out_never_used_before_is_ended_too(db_url):
    end(url=db_url, key=KEY, now=NINE)
    assert shared_sign_in(url=db_url, key=KEY).ended


def test_sign_ins_older_than_the_cookie_are_forgotten(db_url):
    touch(url=db_url, key="old" + "0" * 61, now=NINE - FORGET_AFTER - timedelta(days=1))
    touch(url=db_url, key=KEY, now=NINE - timedelta(days=1))
    end(url=db_url, key="c" * 64, now=NINE)
    with read_session(db_url) as db:
        keys = {row.key for row in db.query(SignIn).all()}
    assert keys == {KEY, "c" * 64}


def test_a_walls_last_check_is_kept_at_most_once_a_minute(db_url):
    make_clinic(url=db_url)
    display_id, _token = register_display(url=db_url, site_code="main", name="TV", now=NINE)
    note_display_check(url=db_url, display_id=display_id, now=NINE)
    note_display_check(url=db_url, display_id=display_id, now=NINE + timedelta(seconds=10))
    with read_session(db_url) as db:
        assert db.get(Display, display_id).last_checked_at == NINE
    later = NINE + timedelta(seconds=DISPLAY_CHECK_SECONDS)
    note_display_check(url=db_url, display_id=display_id, now=later)
    with read_session(db_url) as db:
        assert db.get(Display, display_id).last_checked_at == later
