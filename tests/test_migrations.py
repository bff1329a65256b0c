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
