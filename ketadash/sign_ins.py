"""Sign-ins shared by every server process: the idle clock and the sign-outs.

A clinic that outgrows one server runs several ``streamlit run`` processes behind one
address; a browser's tabs may then be served by different processes. What they must
agree on lives here, in the database, keyed by one browser's sign-in (a hash of its
identity cookie, ``ketadash.ui.auth``):

* when the sign-in was last used (``touch``), so the idle sign-out counts use in any
  tab on any process; a touch is written at most once every ``TOUCH_SECONDS`` per
  sign-in (the screens also skip the call between touches), so a click costs no write;
* whether it was signed out (``end``), so a sign-out through one process signs out
  the tabs another process serves.

And when each wall display last showed its token (``note_display_check``), at most
once a minute, for whoever looks after the displays. Nothing here is per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from ketadash.db import read_session, write_session
from ketadash.models import Display, SignIn

# The idle sign-out is minutes long: a clock a few seconds coarse changes nothing.
TOUCH_SECONDS = 30
DISPLAY_CHECK_SECONDS = 60
# Streamlit's identity cookie lasts 30 days: a sign-in older than that is gone anyway.
FORGET_AFTER = timedelta(days=31)


@dataclass(frozen=True, kw_only=True)
class SharedSignIn:
    """What every process knows of one sign-in: its last use (None: never recorded)
    and whether it was signed out."""

    last_active_at: datetime | None
    ended: bool


def _insert(db):
    return postgres_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


def shared_sign_in(*, url: str, key: str) -> SharedSignIn:
    """The sign-in ``key`` as every process sees it."""
    with read_session(url) as db:
        row = db.execute(
            select(col(SignIn.last_active_at), col(SignIn.ended_at)).where(col(SignIn.key) == key)
        ).first()
    if row is None:
        return SharedSignIn(last_active_at=None, ended=False)
    return SharedSignIn(last_active_at=row.last_active_at, ended=row.ended_at is not None)


def touch(*, url: str, key: str, now: datetime) -> None:
    """Record a use of sign-in ``key`` at ``now``; a later use already recorded stands,
    and a use within ``TOUCH_SECONDS`` of the last recorded one is not written."""
    with write_session(url) as db:
        insert = _insert(db)
        statement = insert(SignIn).values(key=key, last_active_at=now)
        db.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={"last_active_at": now},
                where=SignIn.last_active_at <= now - timedelta(seconds=TOUCH_SECONDS),
            )
        )


def end(*, url: str, key: str, now: datetime) -> None:
    """Sign-in ``key`` is signed out, for every process; sign-ins unused for longer than
    the identity cookie lasts are forgotten at the same time."""
    with write_session(url) as db:
        insert = _insert(db)
        db.execute(
            insert(SignIn)
            .values(key=key, last_active_at=now, ended_at=now)
            .on_conflict_do_update(index_elements=["key"], set_={"ended_at": now})
        )
        db.execute(delete(SignIn).where(col(SignIn.last_active_at) < now - FORGET_AFTER))


def note_display_check(*, url: str, display_id: int, now: datetime) -> None:
    """A wall showed display ``display_id``'s token at ``now`` (written at most once per
    ``DISPLAY_CHECK_SECONDS``)."""
    with write_session(url) as db:
        db.execute(
            update(Display)
            .where(
                col(Display.id) == display_id,
                or_(
                    col(Display.last_checked_at).is_(None),
                    col(Display.last_checked_at) <= now - timedelta(seconds=DISPLAY_CHECK_SECONDS),
                ),
            )
            .values(last_checked_at=now)
        )
