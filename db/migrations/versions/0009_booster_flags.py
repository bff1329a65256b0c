"""Each morning's booster flags, stored

``booster_flag_morning`` says a site's flags were written for a morning (once);
``booster_flag`` holds the patients on that morning's worklist with their flag and dates.
The Boosters page and the throughput page's booster follow-up read them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import ketadash.db_types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booster_flag_morning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("written_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "day", name="uq_booster_flag_morning"),
    )
    op.create_table(
        "booster_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(length=20), nullable=False),
        sa.Column("booster_due", sa.Date(), nullable=True),
        sa.Column("planned_due", sa.Date(), nullable=True),
        sa.Column("anchor_session_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["anchor_session_id"], ["treatment_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "day", "patient_id", name="uq_booster_flag_day"),
    )
    op.create_index("ix_booster_flag_patient_day", "booster_flag", ["patient_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_booster_flag_patient_day", table_name="booster_flag")
    op.drop_table("booster_flag")
    op.drop_table("booster_flag_morning")
