"""Saves that cannot be lost: each form's save is written once, under the key its screen
drew it with.

A screen draws each form with a fresh key (``new_key``) and keeps it until the save is
confirmed. The save runs inside ``submission(key=..., what=..., staff_id=...)``: the
first write transaction in that block (``ketadash.db.write_session``) records the key in
``submitted_form`` before anything else, in the same transaction as the save. So

* a save that commits leaves its key behind, and a retried click, or a rerun that
  replays the submit, with the same key raises ``AlreadySaved`` and writes nothing;
* a save that is refused, or that never reached the database, leaves no key, and the
  same key may be sent again.

Two processes sending one key at once queue on the key (SQLite's ``BEGIN IMMEDIATE``,
PostgreSQL's unique index): the second finds the first's row and writes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from ketadash.clock import utc_now
from ketadash.models import SubmittedForm

KEY_LENGTH = 32


class AlreadySaved(RuntimeError):
    """This form's save is already in the database (an earlier click of the same form):
    nothing was written again."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"Already saved: this {what} was saved by an earlier click, and is not saved twice."
        )
        self.what = what


@dataclass(kw_only=True)
class _Pending:
    key: str
    what: str
    staff_id: int | None
    claimed: bool = False


_PENDING: ContextVar[_Pending | None] = ContextVar("kd_pending_submission", default=None)


def new_key() -> str:
    """A key for one drawn form: random, so two stations never draw the same one."""
    return secrets.token_hex(KEY_LENGTH // 2)


@contextmanager
def submission(*, key: str, what: str, staff_id: int | None) -> Iterator[None]:
    """Within this block, the first write transaction records ``key`` with its write, or
    raises ``AlreadySaved`` (writing nothing) when ``key`` was saved before.

    ``what`` names the form in words ("vitals", "ride"): the row keeps it, and the
    ``AlreadySaved`` message says it. Refused writes roll the key back with them.
    """
    if not key or len(key) > KEY_LENGTH * 2:
        raise ValueError(f"a submission key is 1 to {KEY_LENGTH * 2} characters")
    token = _PENDING.set(_Pending(key=key, what=what, staff_id=staff_id))
    try:
        yield
    finally:
        _PENDING.reset(token)


@contextmanager
def claimed_in(db: Session) -> Iterator[None]:
    """Wrap one write transaction (``write_session``): record the pending key first, if
    there is one not yet recorded; forget that it was recorded if the transaction fails."""
    pending = _PENDING.get()
    if pending is None or pending.claimed:
        yield
        return
    _claim(db, pending)
    pending.claimed = True
    try:
        yield
    except BaseException:
        pending.claimed = False
        raise


def _claim(db: Session, pending: _Pending) -> None:
    values = {
        "key": pending.key,
        "what": pending.what,
        "staff_id": pending.staff_id,
        "saved_at": utc_now(),
    }
    dialect = db.get_bind().dialect.name
    insert = postgres_insert if dialect == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING, not a caught unique violation: PostgreSQL would abort the
    # transaction at the violation. A concurrent writer of the same key waits here for
    # the first to commit (or roll back, and then this one writes).
    # RETURNING, not the row count: psycopg reports none for this statement.
    inserted = db.execute(
        insert(SubmittedForm)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(col(SubmittedForm.key))
    ).first()
    if inserted is None:
        raise AlreadySaved(pending.what)


def was_saved(*, db: Session, key: str) -> bool:
    """Whether a save under ``key`` is in the database."""
    query = select(col(SubmittedForm.key)).where(col(SubmittedForm.key) == key)
    return db.execute(query).first() is not None
