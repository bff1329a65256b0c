"""The demo's sites: their chairs, staff, opening days and the clinic settings they work by."""

from __future__ import annotations

import random
from dataclasses import fields
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from ketadash.demo.calendar import BOOK_AHEAD_DAYS, CLOSES_AT, OPENS_AT, SiteCalendar
from ketadash.demo.people import AREA_CODES, FIRST_NAMES, LAST_NAMES, SITE_PLACES
from ketadash.demo.visit_times import VisitTimes
from ketadash.demo.writer import Rows
from ketadash.models import Chair, Site, SiteSetting, Staff, StaffRole, core_table
from ketadash.settings import ClinicSettings


def write_sites(
    *,
    connection: Connection,
    rows: Rows,
    rng: random.Random,
    now: datetime,
    sites: int,
    chairs: int,
    settings: ClinicSettings,
) -> list[SiteCalendar]:
    """Write the sites, chairs and staff; returns each site's calendar.

    A setting that differs from its default is written as each site's override, so
    the screens enforce the same rules the demo's visits were laid out by.
    """
    site_rows: list[dict[str, object]] = []
    chair_rows: list[dict[str, object]] = []
    staff_rows: list[dict[str, object]] = []
    setting_rows: list[dict[str, object]] = []
    names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    staff_names = iter(names)
    nurses_per_site = max(4, (chairs + 1) // 2)
    defaults = ClinicSettings()
    overrides = {
        f.name: getattr(settings, f.name)
        for f in fields(ClinicSettings)
        if getattr(settings, f.name) != getattr(defaults, f.name)
    }
    calendars = []
    for index in range(sites):
        code, name, time_zone = SITE_PLACES[index % len(SITE_PLACES)]
        if index >= len(SITE_PLACES):
            round_ = index // len(SITE_PLACES) + 1
            code, name = f"{code}-{round_}", f"{name} {round_}"
        # One site also opens on Saturdays.
        open_weekdays = "012345" if index == 1 else "01234"
        site_id = index + 1
        site_rows.append(
            {
                "id": site_id,
                "code": code,
                "name": name,
                "time_zone": time_zone,
                "opens_at": OPENS_AT,
                "closes_at": CLOSES_AT,
                "open_weekdays": open_weekdays,
                # Fiction: a made-up street, and the phone range set aside for fiction.
                "address": f"{120 + 40 * index} {name} Avenue (demo address)",
                "phone": f"{AREA_CODES.get(time_zone, '555')}-555-{100 + index % 100:04d}",
            }
        )
        chair_ids = []
        for position in range(1, chairs + 1):
            chair_id = len(chair_rows) + 1
            chair_ids.append(chair_id)
            chair_rows.append(
                {
                    "id": chair_id,
                    "site_id": site_id,
                    "name": f"Chair {position}",
                    "position": position,
                    "active": True,
                }
            )
        roles = [StaffRole.NURSE] * nurses_per_site + [StaffRole.LEAD, StaffRole.FRONT_DESK]
        nurse_ids, front_desk_id = [], 0
        for role in roles:
            staff_id = len(staff_rows) + 1
            staff_rows.append(
                {
                    "id": staff_id,
                    "name": next(staff_names, f"Staff {staff_id}"),
                    "role": role.value,
                    "site_id": site_id,
                    "active": True,
                }
            )
            if role == StaffRole.NURSE:
                nurse_ids.append(staff_id)
            elif role == StaffRole.FRONT_DESK:
                front_desk_id = staff_id
        for setting_name, value in overrides.items():
            setting_rows.append(
                {"site_id": site_id, "name": setting_name, "value": str(value), "updated_at": now}
            )
        zone = ZoneInfo(time_zone)
        today = now.astimezone(zone).date().toordinal()
        calendars.append(
            SiteCalendar(
                index=index,
                id=site_id,
                time_zone=time_zone,
                zone=zone,
                open_weekdays=frozenset(int(d) for d in open_weekdays),
                today=today,
                horizon=today + BOOK_AHEAD_DAYS,
                chair_ids=chair_ids,
                nurse_ids=nurse_ids,
                front_desk_id=front_desk_id,
                area_code=AREA_CODES.get(time_zone, "555"),
                times=VisitTimes(settings=settings),
            )
        )
    connection.execute(core_table(Site).insert(), site_rows)
    connection.execute(core_table(Chair).insert(), chair_rows)
    connection.execute(core_table(Staff).insert(), staff_rows)
    if setting_rows:
        connection.execute(core_table(SiteSetting).insert(), setting_rows)
    rows.counts["site"] = len(site_rows)
    rows.counts["chair"] = len(chair_rows)
    rows.counts["staff"] = len(staff_rows)
    return calendars
