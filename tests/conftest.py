"""Fixtures shared by every kind of test: databases on SQLite and PostgreSQL.

PostgreSQL tests run when ``KETADASH_TEST_POSTGRES_URL`` is set and skip with a
reason otherwise; under CI (``CI`` set) a test that cannot run fails instead of
skipping, so a green CI always means every backend and the browser were tested.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ketadash import clock
from ketadash.db import get_engine, migrate
from tests.utils.clock import ClinicClock, suite_offset

POSTGRES_URL_VARIABLE = "KETADASH_TEST_POSTGRES_URL"


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail under CI, where nothing may be skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def pytest_configure(config):
    """Put the clinic's clock at the suite's moment before any test module is imported, so
    that every test, page run and started server reads the same, machine-independent time."""
    clock.set_clock_offset(suite_offset())


@pytest.fixture
def clinic_clock() -> Iterator[ClinicClock]:
    """Move the clinic's clock for one test (``clinic_clock.set(moment)``); the suite's
    clock, where it would be by now, comes back after it."""
    saved = clock.clock_offset()
    yield ClinicClock()
    clock.set_clock_offset(saved)


def pytest_sessionfinish(session, exitstatus):
    """Under CI nothing may be skipped: a run with any skipped test fails."""
    if not os.environ.get("CI") or exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        reporter.write_sep(
            "=", f"CI: {len(skipped)} test(s) skipped; under CI every test must run.", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    migrate(f"sqlite:///{path}")
    get_engine(f"sqlite:///{path}").dispose()
    return path


def _postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if not url:
        skip_or_fail(
            f"{POSTGRES_URL_VARIABLE} is not set (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    from ketadash.config import normalise_url

    url = normalise_url(url)
    try:
        with sa.create_engine(url).connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as error:
        skip_or_fail(f"PostgreSQL at {url} is not answering: {error.orig}")
    return url


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[str, str]]:
    """A migrated schema of its own in the test database, dropped at the end."""
    server = _postgres_server_url()
    schema = f"ketadash_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = with_search_path(server, schema)
    migrate(url)
    yield url, schema
    get_engine(url).dispose()
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


def _truncate_postgres(url: str) -> None:
    from sqlmodel import SQLModel

    import ketadash.models  # noqa: F401

    names = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    # TRUNCATE takes every table's exclusive lock one by one; autovacuum (or ANALYZE) on
    # one of them can deadlock with it, and PostgreSQL then cancels one side: try again.
    for attempt in range(5):
        try:
            with get_engine(url).begin() as connection:
                connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            return
        except sa.exc.OperationalError as error:
            if "deadlock detected" not in str(error) or attempt == 4:
                raise


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty clinic database on each backend, fresh for every test."""
    if request.param == "sqlite":
        path = tmp_path / "clinic.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        get_engine(url).dispose()
    else:
        url, _schema = request.getfixturevalue("postgres_template")
        _truncate_postgres(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> Iterator[str]:
    """A migrated, empty SQLite clinic database (for tests about SQLite itself)."""
    path = tmp_path / "clinic.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    yield url
    get_engine(url).dispose()
