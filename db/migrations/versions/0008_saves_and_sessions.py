"""saves that cannot be lost, and sign-ins shared by several server processes

``submitted_form`` holds one row per saved form, under the key the screen drew the
form with, written in the same transaction as the save: a retried click, or a rerun
that replays the submit, finds its key and writes nothing twice.

``sign_in`` holds each browser's sign-in (a hash of its identity cookie): when it was
last used and when it was signed out, so every server process behind one address
keeps one idle clock and honours a sign-out made through another.
``display.last_checked_at`` is when a wall last showed its token.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

from ketadash.db_types import UTCDateTime

revision = "0008"
down_revision = "0007"
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
    op.create_table(
        "sign_in",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("last_active_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("sign_in", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_last_active_at"), ["last_active_at"], unique=False
        )
    with op.batch_alter_table("display", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_checked_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("display", schema=None) as batch_op:
        batch_op.drop_column("last_checked_at")
    with op.batch_alter_table("sign_in", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_last_active_at"))
    op.drop_table("sign_in")
    op.drop_table("submitted_form")
