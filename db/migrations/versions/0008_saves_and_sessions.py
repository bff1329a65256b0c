"""saves that cannot be lost: each saved form's key, kept with what it saved

``submitted_form`` holds one row per saved form, under the key the screen drew the
form with, written in the same transaction as the save: a retried click, or a rerun
that replays the submit, finds its key and writes nothing twice.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 11:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

from ketadash.db_types import UTCDateTime

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submitted_form",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("what", sa.String(length=40), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("saved_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("submitted_form")
