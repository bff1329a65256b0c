"""The driver's status link; a site's address and phone

A driver's link belongs to one visit; its token is kept only as a hash
(``driver_link.token_hash``), staff can revoke it, and the first and last time the
driver opened it are kept. The page shows the site's address and phone, new
nullable columns of ``site``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ketadash.db_types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_table(
        "driver_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("revoked_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("first_opened_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_opened_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"]),
        sa.ForeignKeyConstraint(["revoked_by"], ["staff.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["treatment_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("driver_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_driver_link_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("driver_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_driver_link_session_id"))
    op.drop_table("driver_link")
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.drop_column("phone")
        batch_op.drop_column("address")
