"""sign-in: staff e-mail, access log, registered wall displays

Staff are matched to the identity provider's sign-in by e-mail (stored lower-case);
the access log records who opened a patient's record or exported data; a wall
display is registered with a token kept only as its hash; a booking records when
it was made and by whom.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:08:30.117839
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ketadash.db_types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "display",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["site.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("display", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_display_site_id"), ["site_id"], unique=False)

    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", ketadash.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["treatment_session.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index("ix_access_log_at", ["at"], unique=False)

    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.create_unique_constraint("uq_staff_email", ["email"])

    with op.batch_alter_table("treatment_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("booked_at", ketadash.db_types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("booked_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_treatment_session_booked_by_staff", "staff", ["booked_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("treatment_session", schema=None) as batch_op:
        batch_op.drop_constraint("fk_treatment_session_booked_by_staff", type_="foreignkey")
        batch_op.drop_column("booked_by")
        batch_op.drop_column("booked_at")

    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_constraint("uq_staff_email", type_="unique")
        batch_op.drop_column("email")

    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_at")

    op.drop_table("access_log")
    with op.batch_alter_table("display", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_display_site_id"))

    op.drop_table("display")
