"""The database: engines, sessions for reading and writing, migrations.

SQLite is the embedded default (one file under ``db/``); PostgreSQL through
psycopg 3 is how a clinic with several sites outgrows one machine.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlmodel import Session

from ketadash import submissions
from ketadash.config import PROJECT_ROOT, load_config, normalise_url

MIGRATIONS_DIR = PROJECT_ROOT / "db" / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseUnavailable(RuntimeError):
    """The clinic database cannot be reached; nothing was read or written."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "The clinic database cannot be reached right now, so this screen cannot be "
            "shown or changed. Anything you were saving was not saved. Try again in a "
            "minute; if it keeps happening, tell the clinic lead."
        )
        self.detail = detail


class NoClinicDatabase(ValueError):
    """The URL names no clinic database: the SQLite file is missing, the PostgreSQL
    database does not exist, or it has no tables. Nothing was created."""

    def __init__(self, url: str, *, readable: bool = True) -> None:
        shown = display_url(url)
        if readable:
            message = (
                f"No clinic database at {shown}: check --url, or run "
                f"`python -m ketadash migrate --url {shown}` to create one"
            )
        else:
            message = (
                "No clinic database: the URL is not a database URL; check --url "
                "(e.g. sqlite:////srv/ketadash/clinic.sqlite or postgresql://user@host/db)"
            )
        super().__init__(message)
        self.url = url


class DatabaseBusy(DatabaseUnavailable):
    """Another writer (a large import) held the database past the busy timeout."""

    def __init__(self, detail: str = "") -> None:
        RuntimeError.__init__(
            self,
            "The clinic database is busy; try again in a moment. Anything you were saving "
            "was not saved.",
        )
        self.detail = detail


def database_url(url: str | None = None) -> str:
    """``url`` if given, else the configured one, spelt as SQLAlchemy needs it.

    The one place a URL is normalised: ``postgres://``, ``postgresql://`` and
    ``postgresql+psycopg://`` all mean PostgreSQL through psycopg 3, whether the URL
    came from the command line or ``KETADASH_DATABASE_URL``. Resolve it before any
    cache keys on it.
    """
    if url and url.strip():
        return normalise_url(url.strip())
    return load_config().database_url


def display_url(url: str) -> str:
    """The URL as it may be printed: any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unreadable database URL)"


def require_clinic_database(url: str) -> None:
    """Raise NoClinicDatabase unless ``url`` names a database that has been migrated.

    Creates nothing: a missing SQLite file is noticed before connecting (connecting
    would create it), and a PostgreSQL database that does not exist is reported as
    such, not as unreachable. Raises DatabaseUnavailable when the server is down.
    """
    url = database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise NoClinicDatabase(url, readable=False) from error
    if parsed.get_backend_name() == "sqlite":
        # A URI filename (sqlite:///file:clinic.sqlite?mode=ro&uri=true) names its file too.
        path = (parsed.database or "").removeprefix("file:").split("?", 1)[0]
        if path in ("", ":memory:") or not Path(path).is_file():
            raise NoClinicDatabase(url)
    try:
        if not inspect(get_engine(url)).has_table("treatment_session"):
            raise NoClinicDatabase(url)
    except OperationalError as error:
        if _no_such_database(error):
            raise NoClinicDatabase(url) from error
        raise DatabaseUnavailable(str(error)) from error


def _no_such_database(error: OperationalError) -> bool:
    # A database name that PostgreSQL does not know is a typo, not an outage. psycopg
    # gives no SQLSTATE (3D000) for a refused connection, only the server's message.
    if getattr(error.orig, "sqlstate", None) == "3D000":
        return True
    return bool(re.search(r'database ".*" does not exist', str(error.orig)))


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per database URL for the life of the process."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            },
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling starts transactions late and never
    # with IMMEDIATE; take it over so writers queue on the busy timeout instead
    # of failing with "database is locked" half-way through a step.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        if connection.get_execution_options().get("ketadash_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


@contextmanager
def read_session(url: str | None = None) -> Iterator[Session]:
    """A session for queries; raises DatabaseUnavailable if the server is down."""
    engine = get_engine(database_url(url))
    try:
        with Session(engine) as db:
            yield db
    except OperationalError as error:
        raise DatabaseUnavailable(str(error)) from error


# Reads run at once by ``read_apart``: two cores on the clinic's machine, and a few more
# connections than that keep a PostgreSQL server busy without crowding the pool.
READ_APART_THREADS = 4
K = TypeVar("K")


def read_apart(url: str | None, reads: Mapping[K, Callable[..., Any]]) -> dict[K, Any]:
    """Independent reads run at once, each in a session (and connection) of its own (passed
    as ``db=``); their results by the same keys. The first read to fail raises, after the
    others have ended.

    Each read's own work is done by the database, in SQLite's C code (outside Python's
    lock) or in a PostgreSQL server process of its own, so reads that count or search
    much and return little overlap on a machine with two cores. Each read sees the
    database as its own statement finds it, as every statement of a PostgreSQL read
    transaction already does: for figures of a period, not for a check before a write.
    """
    if len(reads) <= 1:
        with read_session(url) as db:
            return {name: read(db=db) for name, read in reads.items()}

    def run(read: Callable[..., Any]) -> Any:
        with read_session(url) as db:
            return read(db=db)

    with ThreadPoolExecutor(max_workers=min(READ_APART_THREADS, len(reads))) as pool:
        futures = {name: pool.submit(run, read) for name, read in reads.items()}
        wait(futures.values())
    return {name: future.result() for name, future in futures.items()}


# A write's row locks are FOR NO KEY UPDATE on PostgreSQL (nothing on SQLite, whose
# BEGIN IMMEDIATE already queues writers): they queue the app's writers on a row, but not
# an insert that only refers to it, which takes a key-share lock. With FOR UPDATE an
# import adding a booking for a patient and then a score to that patient's visit, while a
# nurse checks the visit in, would deadlock, and the nurse would lose the check-in.
ROW_LOCK: dict[str, Any] = {"key_share": True}
# PostgreSQL gave up on a transaction that met another (a deadlock, or a serialisation
# failure): nothing was written, and the same change may simply be tried again.
_TRY_AGAIN = frozenset({"40P01", "40001"})


def rows_matched(result: Result[Any]) -> int:
    """How many rows a conditional UPDATE or DELETE matched (its cursor's rowcount)."""
    return cast("CursorResult[Any]", result).rowcount


@contextmanager
def write_session(url: str | None = None) -> Iterator[Session]:
    """A session whose work commits together or not at all.

    On SQLite the transaction is taken with ``BEGIN IMMEDIATE`` so that two
    writers queue rather than both reading a state and one failing late. Inside a
    ``ketadash.submissions.submission`` block the first such transaction records the
    form's key before anything else, or raises ``AlreadySaved`` and writes nothing.
    """
    engine = get_engine(database_url(url)).execution_options(ketadash_write=True)
    try:
        with Session(engine) as db, db.begin(), submissions.claimed_in(db):
            yield db
    except OperationalError as error:
        if "database is locked" in str(error.orig) or (
            getattr(error.orig, "sqlstate", None) in _TRY_AGAIN
        ):
            raise DatabaseBusy(str(error)) from error
        raise DatabaseUnavailable(str(error)) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise DatabaseUnavailable(str(error)) from error
        raise


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str | None = None) -> None:
    """Bring the database to the current schema. Idempotent."""
    from alembic import command

    command.upgrade(alembic_config(database_url(url)), "head")


def has_schema(url: str | None = None) -> bool:
    """True when the database has been migrated at least once."""
    try:
        return inspect(get_engine(database_url(url))).has_table("treatment_session")
    except OperationalError as error:
        raise DatabaseUnavailable(str(error)) from error
