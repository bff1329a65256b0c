"""The migrations and the models describe the same schema.

A fresh database migrated to head is compared with ``SQLModel.metadata`` by
Alembic's autogenerate, configured as ``db/migrations/env.py`` configures it: if
autogenerate would write anything, a model changed without a migration (or a
migration was edited after it landed). Released revisions are never edited: a
change to the schema is a new revision (see db/migrations/README).
"""

from __future__ import annotations

import pprint
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import ketadash.models  # noqa: F401  (registers every table on SQLModel.metadata)
from ketadash.db import alembic_config, get_engine, migrate
from tests.utils.postgres import empty_postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_migrated_url(request, tmp_path):
    """A brand-new database migrated from nothing to head, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        migrate(url)
        yield url
        get_engine(url).dispose()
    else:
        with empty_postgres_schema() as url:
            migrate(url)
            yield url


def differences(url: str, metadata: sa.MetaData = SQLModel.metadata) -> list:
    """What autogenerate would write to bring the database to ``metadata`` (the models)."""
    with get_engine(url).connect() as connection:
        # The options of db/migrations/env.py's online run.
        context = MigrationContext.configure(
            connection, opts={"target_metadata": metadata, "render_as_batch": True}
        )
        return compare_metadata(context, metadata)


def test_models_and_migrations_agree(fresh_migrated_url):
    found = differences(fresh_migrated_url)
    assert not found, "autogenerate finds differences:\n" + pprint.pformat(found)


def test_the_comparison_sees_a_model_change_without_a_migration(fresh_migrated_url):
    changed = sa.MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["ride"].append_column(sa.Column("driver_licence", sa.String(20)))
    changed.tables["site"].c["name"].type = sa.Integer()
    found = differences(fresh_migrated_url, changed)
    assert found[0][:3] == ("add_column", None, "ride")
    assert any(change[0][0] == "modify_type" for change in found[1:]), found


def test_revisions_form_one_line_to_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    heads = script.get_heads()
    assert len(heads) == 1, f"more than one head: {heads}"
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    for revision in revisions:
        # Files are named after their revision id, so the order reads off the listing.
        assert Path(revision.path).name.startswith(f"{revision.revision}_"), revision.path


def test_a_populated_clinic_upgrades_through_every_revision(tmp_path):
    """A clinic's SQLite file with staff and history at 0002 reaches head.

    SQLite rebuilds a table to alter it (batch mode: copy, drop, rename); with foreign
    keys enforced, dropping ``staff`` while ``status_change`` rows name its people
    failed. The migration environment turns enforcement off for the rebuild and checks
    every reference afterwards instead.
    """
    from alembic import command

    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    command.upgrade(alembic_config(url), "0002")
    with get_engine(url).begin() as connection:
        insert = _inserter(connection)
        insert("site", id=1, code="main", name="Main", time_zone="UTC")
        insert("chair", id=1, site_id=1, name="Chair 1", position=1)
        insert("staff", id=1, name="Dana", role="nurse", site_id=1, active=1)
        insert("patient", id=1, mrn="A1", first_name="Alex", last_name="Morgan")
        insert("treatment_session", id=1, site_id=1, chair_id=1, patient_id=1, route="iv",
               kind="series", status="checked_in", version=2)  # fmt: skip
        insert("status_change", session_id=1, version=2, from_status="scheduled",
               to_status="checked_in", staff_id=1)  # fmt: skip
    migrate(url)
    with get_engine(url).connect() as connection:
        assert connection.exec_driver_sql("SELECT name FROM staff").scalar() == "Dana"
        assert connection.exec_driver_sql("SELECT staff_id FROM status_change").scalar() == 1
        # Enforcement is back on for the application's connections.
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert differences(url) == []
    get_engine(url).dispose()


def _inserter(connection):
    """Insert a row at an old revision, filling its other required columns with a value."""

    def insert(table: str, **values) -> None:
        for column in connection.exec_driver_sql(f"PRAGMA table_info({table})").mappings():
            name = column["name"]
            if name in values or not column["notnull"] or column["pk"]:
                continue
            kind = column["type"].upper()
            if "DATE" in kind or "TIME" in kind:
                values[name] = "2026-11-27 14:00:00.000000"
            elif "INT" in kind or "FLOAT" in kind or "NUMERIC" in kind or "BOOL" in kind:
                values[name] = 0
            else:
                values[name] = ""
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        connection.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values)

    return insert


def test_a_migration_that_would_break_references_changes_nothing(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    command.upgrade(alembic_config(url), "0002")
    with get_engine(url).connect() as connection:
        # A chair of a site that is not there: the kind of row an old bug could leave.
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        _inserter(connection)("chair", id=1, site_id=999, name="Chair 1", position=1)
        connection.commit()
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(RuntimeError, match="nothing was changed"):
        migrate(url)
    with get_engine(url).connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == (
            "0002"
        )
        assert not sa.inspect(connection).has_table("access_log")
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    get_engine(url).dispose()
