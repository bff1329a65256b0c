"""append-only: the access log and the histories (status, ride, settings) refuse UPDATE
and DELETE

Until now ``access_log``, ``status_change``, ``ride_change`` and ``setting_change`` were
append-only by convention: the application only inserts, but any UPDATE or DELETE went
through. Triggers now refuse both on SQLite and PostgreSQL, with the words "<table> is
append-only".

One exception, for DELETE only: a database marked as the demo clinic (the ``demo``
row of ``clinic_info``, ketadash.clinic.DEMO_KEY) may be emptied, because the demo's
daily rebuild replaces every table of a synthetic clinic (ketadash.demo._clear_demo,
which deletes ``clinic_info`` last). A real clinic has no such row.

Not covered, on purpose: PostgreSQL's TRUNCATE (the test suite empties its schemas
with it) and DROP TABLE. A later migration that rebuilds either table (SQLite batch
mode: copy, drop, rename) drops its triggers and must create them again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 09:20:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("access_log", "status_change", "ride_change", "setting_change")
# The demo clinic's mark, as ketadash.clinic.DEMO_KEY spells it when this revision landed.
DEMO_MARK = "SELECT 1 FROM clinic_info WHERE key = 'demo'"
FUNCTION = "ketadash_refuse_history_change"


def _words(table: str) -> str:
    return f"{table} is append-only: its rows are never changed or deleted"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' AND EXISTS ({DEMO_MARK}) THEN
                    RETURN NULL;
                END IF;
                RAISE EXCEPTION '% is append-only: its rows are never changed or deleted',
                    TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
            END
            $$
        """)  # fmt: skip
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
        return
    for table in TABLES:
        # RAISE(ABORT) is SQLite's constraint failure: the statement and its changes are undone.
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{_words(table)}'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"WHEN NOT EXISTS ({DEMO_MARK}) "
            f"BEGIN SELECT RAISE(ABORT, '{_words(table)}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
