"""each booster as the stored mornings listed it: one row a patient and infusion

Throughput's "booster flags turned into bookings" grouped every stored morning's list into
one booster per infusion each time it was drawn: a year of the large demo is 1.8 million
``booster_flag`` rows, half of the figure's time. ``booster_listing`` keeps that grouping,
written with each morning's flags from now on; this revision fills it from the mornings
already stored, with each site's ``booster_due_within_days`` as it stands (default 7).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The flags that put a patient on the call list whatever their date (ACTION_FLAGS then),
# and the default of booster_due_within_days then.
ACTION_FLAGS = ("relapsed", "call_now", "overdue")
DEFAULT_WINDOW_DAYS = 7


def upgrade() -> None:
    op.create_table(
        "booster_listing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("anchor_session_id", sa.Integer(), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=False),
        sa.Column("listed_due", sa.Date(), nullable=False),
        sa.Column("relapsed_on", sa.Date(), nullable=True),
        sa.Column("relapsed_due", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["anchor_session_id"], ["treatment_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "site_id", "patient_id", "anchor_session_id", name="uq_booster_listing_anchor"
        ),
    )
    op.create_index("ix_booster_listing_site_listed", "booster_listing", ["site_id", "listed_on"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    window = (
        "COALESCE((SELECT CAST(s.value AS INTEGER) FROM site_setting s "
        "WHERE s.site_id = f.site_id AND s.name = 'booster_due_within_days'), "
        f"{DEFAULT_WINDOW_DAYS})"
    )
    within = (
        f"f.booster_due <= date(f.day, '+' || {window} || ' days')"
        if sqlite
        else f"f.booster_due <= f.day + {window}"
    )
    actions = ", ".join(f"'{flag}'" for flag in ACTION_FLAGS)
    op.execute(
        f"""
        INSERT INTO booster_listing (site_id, patient_id, anchor_session_id, listed_on,
                                     listed_due, relapsed_on, relapsed_due)
        SELECT g.site_id, g.patient_id, g.anchor_session_id, g.listed_on, first.booster_due,
               g.relapsed_on, relapse.booster_due
        FROM (
            SELECT f.site_id, f.patient_id, f.anchor_session_id, MIN(f.day) AS listed_on,
                   MIN(CASE WHEN f.flag = 'relapsed' THEN f.day END) AS relapsed_on
            FROM booster_flag f
            WHERE f.booster_due IS NOT NULL AND f.anchor_session_id IS NOT NULL
              AND (f.flag IN ({actions}) OR {within})
            GROUP BY f.site_id, f.patient_id, f.anchor_session_id
        ) g
        JOIN booster_flag first
          ON first.site_id = g.site_id AND first.day = g.listed_on
         AND first.patient_id = g.patient_id
        LEFT JOIN booster_flag relapse
          ON relapse.site_id = g.site_id AND relapse.day = g.relapsed_on
         AND relapse.patient_id = g.patient_id
        """
    )


def downgrade() -> None:
    op.drop_index("ix_booster_listing_site_listed", table_name="booster_listing")
    op.drop_table("booster_listing")
