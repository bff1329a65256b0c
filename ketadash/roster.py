"""The clinic as a deployment sets it up: sites, their chairs, and the staff who act.

The demo clinic makes its own; a real clinic runs ``python -m ketadash site`` and
``python -m ketadash staff`` once per site and person. Each function is idempotent:
running it again with the same values changes nothing.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlmodel import col, func, select

from ketadash.config import normalise_url
from ketadash.db import write_session
from ketadash.models import Chair, Site, Staff, StaffRole, stored_id
from ketadash.text import clean_text


def ensure_site(*, url: str, code: str, name: str, time_zone: str) -> int:
    """The id of the site with ``code``, creating it if new. Never changes an existing site;
    raises ValueError for an unknown time zone or one that disagrees with the stored site."""
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {time_zone!r} (e.g. America/New_York)") from error
    url = normalise_url(url)
    with write_session(url) as db:
        site = db.exec(select(Site).where(Site.code == code)).first()
        if site is None:
            site = Site(code=code, name=name, time_zone=time_zone)
            db.add(site)
            db.flush()
        elif site.time_zone != time_zone:
            raise ValueError(
                f"site {code!r} already exists with time zone {site.time_zone}, not {time_zone}"
            )
        return stored_id(site)


def site_contact_values(*, address: str | None, phone: str | None) -> dict[str, str]:
    """The site's address and phone as they are stored (cleaned), those given only.

    Raises ValueError for a value that is empty once cleaned: check before writing.
    """
    values = {}
    for field, given in (("address", address), ("phone", phone)):
        if given is None:
            continue
        cleaned = clean_text(given)
        if not cleaned:
            raise ValueError(f"the site's {field} is empty; give it in words or leave it out")
        values[field] = cleaned
    return values


def set_site_contact(*, url: str, site_id: int, values: dict[str, str]) -> None:
    """Record the site's address and/or phone (``site_contact_values``; the driver's link
    shows them). Idempotent; a value not given is left as it is."""
    if values:
        with write_session(normalise_url(url)) as db:
            db.execute(update(Site).where(col(Site.id) == site_id).values(**values))


def ensure_chairs(*, url: str, site_id: int, count: int) -> int:
    """Make sure the site has at least ``count`` chairs (``Chair 1`` …); returns how many it has."""
    with write_session(normalise_url(url)) as db:
        names = set(db.exec(select(Chair.name).where(Chair.site_id == site_id)))
        position = db.exec(select(func.max(Chair.position)).where(Chair.site_id == site_id)).one()
        position = position or 0
        for number in range(1, count + 1):
            if f"Chair {number}" not in names and len(names) < count:
                position += 1
                db.add(Chair(site_id=site_id, name=f"Chair {number}", position=position))
                names.add(f"Chair {number}")
        return len(names)


def ensure_staff(*, url: str, name: str, role: StaffRole | str, site_code: str | None) -> int:
    """The id of the staff member ``name`` at the site (or every site), added if new.

    Raises ValueError for an unknown role or site code.
    """
    try:
        role = StaffRole(role)
    except ValueError as error:
        roles = ", ".join(r.value for r in StaffRole)
        raise ValueError(f"unknown role {role!r} (one of: {roles})") from error
    with write_session(normalise_url(url)) as db:
        site_id = None
        if site_code is not None:
            site_id = db.exec(select(Site.id).where(Site.code == site_code)).first()
            if site_id is None:
                raise ValueError(f"there is no site with the code {site_code!r}")
        staff = db.exec(
            select(Staff).where(Staff.name == name.strip(), Staff.site_id == site_id)
        ).first()
        if staff is None:
            staff = Staff(name=name.strip(), role=role, site_id=site_id)
            db.add(staff)
            db.flush()
        return stored_id(staff)
