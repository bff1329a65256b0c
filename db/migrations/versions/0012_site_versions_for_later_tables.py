"""site versions for the tables after 0007: REMS forms and drivers' links move them; a wall's
token check does not

Revision 0007 moves a site's data version on every write a screen of the site shows. The
tables added since then that Recovery and Today show (``rems_record``: the REMS form's
state; ``driver_link``: "driver opened at") move it the same way, by their session's site.
A wall's own token check (``display.last_checked_at``, once a minute per wall, revision
0008) changes nothing on any screen, so the display triggers now fire only when a column a
screen depends on changes; otherwise every wall would redraw every screen of its site each
minute.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:00:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FUNCTION = "ketadash_move_site_version"
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_BY_SESSION = "(SELECT site_id FROM treatment_session WHERE id = {row}.session_id)"
NEW_TABLES = ("rems_record", "driver_link")
# Every display column but the token check's stamp.
DISPLAY_SHOWN = ("id", "site_id", "name", "token_hash", "created_at", "revoked_at")


def _sqlite_body(site: str) -> str:
    # As revision 0007's: a site's row moves, or every site's when the row names none.
    return (
        "INSERT INTO site_version (site_id, version, changed_at) "
        f"SELECT {site}, 1, {_SQLITE_NOW} WHERE {site} IS NOT NULL "
        "ON CONFLICT (site_id) DO UPDATE SET version = version + 1, "
        "changed_at = excluded.changed_at; "
        f"UPDATE site_version SET version = version + 1, changed_at = {_SQLITE_NOW} "
        f"WHERE {site} IS NULL; "
    )


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _create_session_triggers(table: str) -> None:
    if _postgres():
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_moves_site_version "
            f"AFTER INSERT OR UPDATE OR DELETE ON {table} DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}('session')"
        )
        return
    for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER {table}_{event.lower()}_moves_site_version "
            f"AFTER {event} ON {table} BEGIN {_sqlite_body(_BY_SESSION.format(row=row))} END"
        )


def _drop_triggers(table: str) -> None:
    if _postgres():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_moves_site_version ON {table}")
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_moves_site_version")


def _display_update_trigger(columns: tuple[str, ...] | None) -> None:
    """The display's update trigger, on ``columns`` only (None: any column, as in 0007)."""
    of = f" OF {', '.join(columns)}" if columns else ""
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS display_moves_site_version ON display")
        op.execute(
            "CREATE CONSTRAINT TRIGGER display_moves_site_version "
            f"AFTER INSERT OR UPDATE{of} OR DELETE ON display DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}('site_id')"
        )
        return
    op.execute("DROP TRIGGER IF EXISTS display_update_moves_site_version")
    body = _sqlite_body("NEW.site_id") + _sqlite_body("OLD.site_id")
    op.execute(
        f"CREATE TRIGGER display_update_moves_site_version AFTER UPDATE{of} ON display "
        f"BEGIN {body} END"
    )


def upgrade() -> None:
    for table in NEW_TABLES:
        _create_session_triggers(table)
    _display_update_trigger(DISPLAY_SHOWN)


def downgrade() -> None:
    _display_update_trigger(None)
    for table in NEW_TABLES:
        _drop_triggers(table)
