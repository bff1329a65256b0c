"""The database module: one spelling of every URL, and no database made by a typo."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from ketadash import config as deployment_config
from ketadash.config import DATABASE_URL_VARIABLE
from ketadash.db import (
    NoClinicDatabase,
    database_url,
    display_url,
    get_engine,
    read_session,
    require_clinic_database,
)
from tests.utils.postgres import empty_postgres_schema, tables_in

POSTGRES_SPELLINGS = ["postgres", "postgresql", "postgresql+psycopg"]


@pytest.fixture
def empty_schema_url():
    with empty_postgres_schema() as url:
        yield url


def spelt(url: str, scheme: str) -> str:
    """The same PostgreSQL URL written with another scheme."""
    return f"{scheme}://{url.split('://', 1)[1]}"


@pytest.mark.parametrize("scheme", POSTGRES_SPELLINGS)
def test_every_postgres_spelling_means_psycopg_3(scheme):
    url = f"{scheme}://clinic:secret@db.example.org:5432/ketadash?sslmode=require"
    assert database_url(url) == (
        "postgresql+psycopg://clinic:secret@db.example.org:5432/ketadash?sslmode=require"
    )


def test_sqlite_urls_are_kept_as_written():
    assert database_url(" sqlite:////srv/clinic.sqlite ") == "sqlite:////srv/clinic.sqlite"


def test_without_a_url_the_configured_one_is_used(monkeypatch):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, "postgres://clinic@db/ketadash")
    assert database_url(None) == "postgresql+psycopg://clinic@db/ketadash"
    assert database_url("") == "postgresql+psycopg://clinic@db/ketadash"
    monkeypatch.delenv(DATABASE_URL_VARIABLE)
    assert database_url(None) == f"sqlite:///{deployment_config.DEFAULT_SQLITE_PATH}"


def test_a_printed_url_hides_its_password():
    shown = display_url("postgresql+psycopg://clinic:secret@db/ketadash")
    assert "secret" not in shown
    assert shown.startswith("postgresql+psycopg://clinic:")


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", POSTGRES_SPELLINGS)
def test_every_postgres_spelling_reaches_the_same_database(postgres_template, scheme):
    url, schema = postgres_template
    require_clinic_database(spelt(url, scheme))
    with read_session(spelt(url, scheme)) as db:
        assert db.exec(sa.text("SELECT current_schema()")).scalar_one() == schema


def test_a_migrated_database_is_a_clinic_database(db_url):
    require_clinic_database(db_url)


def test_a_missing_sqlite_file_is_refused_and_not_created(tmp_path):
    path = tmp_path / "typo" / "clinic.sqlite"
    with pytest.raises(NoClinicDatabase, match="No clinic database at sqlite:///"):
        require_clinic_database(f"sqlite:///{path}")
    assert not path.exists()
    assert not path.parent.exists()


def test_an_sqlite_file_without_tables_is_refused_and_left_empty(tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    with pytest.raises(NoClinicDatabase, match="python -m ketadash migrate --url"):
        require_clinic_database(url)
    get_engine(url).dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_an_in_memory_database_is_not_a_clinic_database():
    with pytest.raises(NoClinicDatabase):
        require_clinic_database("sqlite://")


def test_an_unreadable_url_is_not_a_clinic_database():
    with pytest.raises(NoClinicDatabase, match="not a database URL; check --url"):
        require_clinic_database("clinic.sqlite")


@pytest.mark.postgres
def test_a_postgres_database_that_does_not_exist_is_refused(postgres_template):
    url, _schema = postgres_template
    server = url.split("?", 1)[0].rsplit("/", 1)[0]
    missing = f"{server}/ketadash_no_such_database"
    with pytest.raises(NoClinicDatabase, match="ketadash_no_such_database"):
        require_clinic_database(missing)
    get_engine(missing).dispose()


@pytest.mark.postgres
def test_a_postgres_schema_without_tables_is_refused_and_left_empty(empty_schema_url):
    with pytest.raises(NoClinicDatabase):
        require_clinic_database(empty_schema_url)
    assert tables_in(empty_schema_url) == []


def test_reads_apart_each_have_a_connection_of_their_own_and_come_back_by_key(db_url):
    import threading

    from ketadash.db import read_apart

    # Both reads must be open at once to pass the barrier: they run side by side.
    together = threading.Barrier(2, timeout=30)

    def read(*, db, value: int) -> tuple[int, int]:
        together.wait()
        return value, db.execute(sa.text("SELECT 1")).scalar_one()

    import functools

    found = read_apart(
        db_url, {"a": functools.partial(read, value=1), 7: functools.partial(read, value=2)}
    )

    assert found == {"a": (1, 1), 7: (2, 1)}


def test_a_read_apart_that_fails_raises_after_the_others_end(db_url):
    from ketadash.db import read_apart

    ended = []

    def slow(*, db) -> str:
        db.execute(sa.text("SELECT 1"))
        ended.append("slow")
        return "slow"

    def broken(*, db) -> str:
        raise LookupError("this read failed")

    with pytest.raises(LookupError, match="this read failed"):
        read_apart(db_url, {"slow": slow, "broken": broken})
    assert ended == ["slow"]
