"""A PostgreSQL schema of a test's own with nothing in it (for migrate and refusals)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from ketadash.db import get_engine
from tests.conftest import _postgres_server_url, with_search_path


@contextmanager
def empty_postgres_schema() -> Iterator[str]:
    """Yield the URL of a new, empty schema in the test database; drop it afterwards.

    Skips (fails under CI) without ``KETADASH_TEST_POSTGRES_URL``, as tests/conftest.py does.
    """
    server = _postgres_server_url()
    schema = f"ketadash_empty_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = with_search_path(server, schema)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def tables_in(url: str) -> list[str]:
    """The tables in the URL's schema (its search path), by name."""
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
