"""The clinic's staff: who can be named as the one acting on a session."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, or_, select

from ketadash.db import read_session
from ketadash.models import Staff, StaffRole


@dataclass(frozen=True, kw_only=True)
class StaffMember:
    id: int
    name: str
    role: StaffRole

    @property
    def label(self) -> str:
        return f"{self.name} ({self.role.value.replace('_', ' ')})"


def list_staff(*, url: str, site_id: int) -> list[StaffMember]:
    """Active staff of the site and those who work at every site, nurses first."""
    with read_session(url) as db:
        rows = db.exec(
            select(col(Staff.id), Staff.name, Staff.role)
            .where(Staff.active, or_(col(Staff.site_id) == site_id, col(Staff.site_id).is_(None)))
            .order_by(Staff.name)
        ).all()
    order = {StaffRole.NURSE: 0, StaffRole.LEAD: 1, StaffRole.FRONT_DESK: 2}
    # A stored staff row always has its id.
    members = [StaffMember(id=i, name=n, role=StaffRole(r)) for i, n, r in rows if i is not None]
    return sorted(members, key=lambda m: (order[m.role], m.name))


def leads_on_the_roster(*, url: str, site_id: int) -> list[StaffMember]:
    """The site's active clinic leads (those who may approve what a nurse may not)."""
    return [m for m in list_staff(url=url, site_id=site_id) if m.role == StaffRole.LEAD]
