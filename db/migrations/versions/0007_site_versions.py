"""site versions: each site's data version, moved by triggers in the writing transaction

``site_version`` holds one row per site: a number that moves whenever something a screen
of that site shows is written (a lifecycle step, a ride, vitals, a side effect, a score,
a booking, an import, a setting, a chair, staff, a display). Live screens redraw when
their site's version has moved instead of on a timer (ketadash.live_versions).

Triggers, not application code, move it, so every write path (the importer, the demo,
a later module) moves it without remembering to: INSERT, UPDATE and DELETE on every
table below. A write that names no one site (a patient without a home site, a clinic
fact, staff of no site, a score without a visit) moves every site's version. Not
covered, on purpose: ``access_log`` (opening a record changes nothing shown) and
``site_version`` itself. A later migration that adds a table screens show adds its
triggers too (``create_triggers``); one that rebuilds a table here (SQLite batch mode)
creates its triggers again.

SQLite runs the triggers row by row, immediately; its writers take turns anyway.
PostgreSQL runs them as constraint triggers deferred to COMMIT, so the version row is
locked last, after every row lock the transaction takes (no new lock-order deadlock
between writers), and moves once per transaction (``bumped_tx``). A rolled-back write
moves nothing on either.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
from alembic import op

from ketadash.db_types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# How a written row names its site, as an SQL expression over the row (``{row}`` is NEW
# or OLD). NULL means "every site".
_BY_SESSION = "(SELECT site_id FROM treatment_session WHERE id = {row}.session_id)"
_BY_PATIENT = "(SELECT home_site_id FROM patient WHERE id = {row}.patient_id)"
SITE_OF = {
    "site": "{row}.id",
    "chair": "{row}.site_id",
    "display": "{row}.site_id",
    "staff": "{row}.site_id",
    "patient": "{row}.home_site_id",
    "site_setting": "{row}.site_id",
    "setting_change": "{row}.site_id",
    "treatment_session": "{row}.site_id",
    "treatment_course": _BY_PATIENT,
    "symptom_return": _BY_PATIENT,
    "outcome_score": f"COALESCE({_BY_SESSION}, {_BY_PATIENT})",
    "ride": _BY_SESSION,
    "ride_change": _BY_SESSION,
    "side_effect_observation": _BY_SESSION,
    "status_change": _BY_SESSION,
    "vitals_reading": _BY_SESSION,
    "clinic_info": "NULL",
}
# The same in PL/pgSQL, chosen by the trigger's argument.
PG_MODE = {
    "site": "id",
    "chair": "site_id",
    "display": "site_id",
    "staff": "site_id",
    "patient": "home_site_id",
    "site_setting": "site_id",
    "setting_change": "site_id",
    "treatment_session": "site_id",
    "treatment_course": "patient",
    "symptom_return": "patient",
    "outcome_score": "score",
    "ride": "session",
    "ride_change": "session",
    "side_effect_observation": "session",
    "status_change": "session",
    "vitals_reading": "session",
    "clinic_info": "all",
}
FUNCTION = "ketadash_move_site_version"
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _sqlite_body(site: str) -> str:
    return (
        "INSERT INTO site_version (site_id, version, changed_at) "
        f"SELECT {site}, 1, {_SQLITE_NOW} WHERE {site} IS NOT NULL "
        "ON CONFLICT (site_id) DO UPDATE SET version = version + 1, "
        "changed_at = excluded.changed_at; "
        f"UPDATE site_version SET version = version + 1, changed_at = {_SQLITE_NOW} "
        f"WHERE {site} IS NULL; "
    )


def create_triggers(table: str) -> None:
    """The triggers that move site versions on writes to ``table`` (for this and later
    revisions; ``table`` must be in SITE_OF / PG_MODE)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_moves_site_version "
            f"AFTER INSERT OR UPDATE OR DELETE ON {table} DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}('{PG_MODE[table]}')"
        )
        return
    for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        body = _sqlite_body(SITE_OF[table].format(row=row))
        if event == "UPDATE" and table != "clinic_info" and "{row}.site_id" in SITE_OF[table]:
            # A row moved to another site: both sites' screens change.
            body += _sqlite_body(SITE_OF[table].format(row="OLD"))
        op.execute(
            f"CREATE TRIGGER {table}_{event.lower()}_moves_site_version "
            f"AFTER {event} ON {table} BEGIN {body} END"
        )


def drop_triggers(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_moves_site_version ON {table}")
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_moves_site_version")


_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rows jsonb[];
    r jsonb;
    site bigint;
    sites bigint[] := '{{}}';
    everywhere boolean := false;
BEGIN
    IF TG_OP = 'INSERT' THEN rows := ARRAY[to_jsonb(NEW)];
    ELSIF TG_OP = 'DELETE' THEN rows := ARRAY[to_jsonb(OLD)];
    ELSE rows := ARRAY[to_jsonb(NEW), to_jsonb(OLD)];
    END IF;
    FOREACH r IN ARRAY rows LOOP
        IF TG_ARGV[0] = 'all' THEN
            site := NULL;
        ELSIF TG_ARGV[0] = 'session' THEN
            SELECT s.site_id INTO site FROM treatment_session s
            WHERE s.id = (r ->> 'session_id')::bigint;
        ELSIF TG_ARGV[0] = 'patient' THEN
            SELECT p.home_site_id INTO site FROM patient p
            WHERE p.id = (r ->> 'patient_id')::bigint;
        ELSIF TG_ARGV[0] = 'score' THEN
            SELECT s.site_id INTO site FROM treatment_session s
            WHERE s.id = (r ->> 'session_id')::bigint;
            IF site IS NULL THEN
                SELECT p.home_site_id INTO site FROM patient p
                WHERE p.id = (r ->> 'patient_id')::bigint;
            END IF;
        ELSE
            site := (r ->> TG_ARGV[0])::bigint;
        END IF;
        IF site IS NULL THEN
            everywhere := true;
        ELSIF NOT site = ANY(sites) THEN
            sites := sites || site;
        END IF;
    END LOOP;
    IF everywhere THEN
        UPDATE site_version SET version = version + 1, changed_at = now(),
            bumped_tx = txid_current()
        WHERE bumped_tx IS DISTINCT FROM txid_current();
    END IF;
    FOREACH site IN ARRAY sites LOOP
        INSERT INTO site_version AS v (site_id, version, changed_at, bumped_tx)
        VALUES (site, 1, now(), txid_current())
        ON CONFLICT (site_id) DO UPDATE SET version = v.version + 1,
            changed_at = now(), bumped_tx = txid_current()
        WHERE v.bumped_tx IS DISTINCT FROM txid_current();
    END LOOP;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "site_version",
        sa.Column("site_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=True),
        sa.Column("bumped_tx", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("site_id"),
    )
    # Sites that already exist start at version 1.
    op.execute("INSERT INTO site_version (site_id, version) SELECT id, 1 FROM site")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
    for table in SITE_OF:
        create_triggers(table)


def downgrade() -> None:
    for table in SITE_OF:
        drop_triggers(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    op.drop_table("site_version")
