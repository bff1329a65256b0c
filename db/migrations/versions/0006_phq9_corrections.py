"""PHQ-9 corrections keep both scores; a lead's reason for a non-standard dose plan

A second PHQ-9 at the same visit is a correction with its reason in words
(``outcome_score.correction_reason``); the first score stays. An esketamine plan other
than 56 or 84 mg is booked or imported only with a clinic lead's reason
(``treatment_session.plan_reason``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcome_score", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("correction_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    with op.batch_alter_table("treatment_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("plan_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("treatment_session", schema=None) as batch_op:
        batch_op.drop_column("plan_reason")
    with op.batch_alter_table("outcome_score", schema=None) as batch_op:
        batch_op.drop_column("correction_reason")
