"""Small reads about the clinic as a whole: its sites, whether it is the demo, its state.

Every function takes the database URL and returns plain data, never a live ORM
object, so the pages can cache the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from ketadash.db import has_schema, read_session
from ketadash.models import ClinicInfo, Site

DEMO_KEY = "demo"
CLINIC_NAME_KEY = "clinic_name"


@dataclass(frozen=True, kw_only=True)
class SiteChoice:
    """A site as a picker shows it."""

    id: int
    name: str
    time_zone: str


class DatabaseState(StrEnum):
    NO_SCHEMA = "no_schema"
    EMPTY = "empty"
    READY = "ready"


def database_state(*, url: str) -> DatabaseState:
    """Whether the database is migrated and holds at least one site.

    Raises DatabaseUnavailable when the server cannot be reached.
    """
    if not has_schema(url):
        return DatabaseState.NO_SCHEMA
    with read_session(url) as db:
        any_site = db.exec(select(Site.id).limit(1)).first()
    return DatabaseState.READY if any_site is not None else DatabaseState.EMPTY


def list_sites(*, url: str) -> list[SiteChoice]:
    """Every site, in the order they were set up."""
    with read_session(url) as db:
        rows = db.exec(select(col(Site.id), Site.name, Site.time_zone).order_by(col(Site.id))).all()
    # A stored site always has its id.
    return [
        SiteChoice(id=id_, name=name, time_zone=time_zone)
        for id_, name, time_zone in rows
        if id_ is not None
    ]


def is_demo(*, url: str) -> bool:
    """True when the database holds the synthetic demo clinic (a ClinicInfo "demo" row)."""
    with read_session(url) as db:
        return db.get(ClinicInfo, DEMO_KEY) is not None


def stale_demo_marker(*, url: str, now: datetime) -> str | None:
    """The demo's build moment if it was laid out on an earlier day than ``now``, else None.

    The demo's "today" is fixed when it is built (at its first site's time zone); a
    screen left on overnight would otherwise show yesterday's patients as left open.
    Always None for a real clinic.
    """
    with read_session(url) as db:
        marker = db.get(ClinicInfo, DEMO_KEY)
        time_zone = db.exec(select(Site.time_zone).order_by(col(Site.id)).limit(1)).first()
    if marker is None or time_zone is None:
        return None
    zone = ZoneInfo(time_zone)
    built = datetime.fromisoformat(marker.value)
    return marker.value if built.astimezone(zone).date() < now.astimezone(zone).date() else None


def clinic_name(*, url: str) -> str | None:
    """The clinic's name if one was recorded (ClinicInfo "clinic_name"), else None."""
    with read_session(url) as db:
        row = db.get(ClinicInfo, CLINIC_NAME_KEY)
    return row.value if row is not None else None
