"""an index for Throughput's reads of a period: the visits' words and stamps, by site and time

Throughput reads every visit booked in a period at its sites, with its words and step
stamps (``ketadash.throughput.read_visits``), and counts the period before in the database
(``read_visit_totals``). With only ``ix_session_site_scheduled`` each of those rows is
looked up in the table, scattered over the whole file; this index holds what the reads
ask for, in site-and-time order, so a year of the large demo is read from it alone.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 16:15:00
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NAME = "ix_session_site_scheduled_figures"
COLUMNS = [
    "site_id",
    "scheduled_start",
    "status",
    "kind",
    "route",
    "planned_minutes",
    "patient_id",
    "checked_in_at",
    "infusion_started_at",
    "infusion_ended_at",
    "ready_at",
    "discharged_at",
    "closed_at",
    "booked_at",
    "escort_exception",
]


def upgrade() -> None:
    op.create_index(NAME, "treatment_session", COLUMNS)


def downgrade() -> None:
    op.drop_index(NAME, table_name="treatment_session")
