"""settings history: every change of a clinic setting, append-only

One row per change of a site's setting: who, when, the site, the setting, the value in
force before and the value set. Written in the same transaction as the change.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 09:25:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ketadash.db_types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setting_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("old_value", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("new_value", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("changed_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["changed_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["site.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("setting_change", schema=None) as batch_op:
        batch_op.create_index("ix_setting_change_site_at", ["site_id", "changed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("setting_change", schema=None) as batch_op:
        batch_op.drop_index("ix_setting_change_site_at")

    op.drop_table("setting_change")
