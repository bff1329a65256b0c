"""esketamine REMS Patient Monitoring Form records and their append-only history

One ``rems_record`` per esketamine session holds what the session cannot know (the
device lot, concomitant medications that may cause sedation or blood pressure
changes, when the patient would have been ready to leave without the 2-hour rule,
the monitoring provider) and its submission; ``rems_record_change`` is its history,
append-only like the other histories (0005's triggers, the same words).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ketadash.db_types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HISTORY = "rems_record_change"
# The demo clinic's mark and 0005's trigger function, as they were when this revision landed.
DEMO_MARK = "SELECT 1 FROM clinic_info WHERE key = 'demo'"
FUNCTION = "ketadash_refuse_history_change"
WORDS = f"{HISTORY} is append-only: its rows are never changed or deleted"


def upgrade() -> None:
    op.create_table(
        "rems_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("started_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("device_lot", sa.String(length=40), nullable=True),
        sa.Column("benzodiazepines", sa.Boolean(), nullable=True),
        sa.Column("non_benzo_sedative_hypnotics", sa.Boolean(), nullable=True),
        sa.Column("psychostimulants", sa.Boolean(), nullable=True),
        sa.Column("maois", sa.Boolean(), nullable=True),
        sa.Column("ready_to_leave_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("monitoring_provider_id", sa.Integer(), nullable=True),
        sa.Column("notes", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("submitted_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.Column("submitted_form", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["monitoring_provider_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["treatment_session.id"]),
        sa.ForeignKeyConstraint(["started_by"], ["staff.id"]),
        sa.ForeignKeyConstraint(["submitted_by"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id"),
    )
    op.create_table(
        HISTORY,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("changed_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["treatment_session.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "version", name="uq_rems_record_change_version"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {HISTORY}_append_only BEFORE UPDATE OR DELETE ON {HISTORY} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )
        return
    op.execute(
        f"CREATE TRIGGER {HISTORY}_no_update BEFORE UPDATE ON {HISTORY} "
        f"BEGIN SELECT RAISE(ABORT, '{WORDS}'); END"
    )
    op.execute(
        f"CREATE TRIGGER {HISTORY}_no_delete BEFORE DELETE ON {HISTORY} "
        f"WHEN NOT EXISTS ({DEMO_MARK}) BEGIN SELECT RAISE(ABORT, '{WORDS}'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {HISTORY}_append_only ON {HISTORY}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {HISTORY}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {HISTORY}_no_delete")
    op.drop_table(HISTORY)
    op.drop_table("rems_record")
