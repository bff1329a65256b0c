"""Who may see what: staff matched to the roster by e-mail, registered wall displays,
and the access log.

Sign-in itself is the clinic's identity provider through Streamlit's ``st.login``
(``ketadash/ui/auth.py``); everything it decides is here, as plain functions: who a
signed-in e-mail is on the roster (and so their role, never taken from the page),
whether a wall display's token is valid, what each role may open, and the append-only
record of who opened which patient.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Select, select, update
from sqlmodel import col

from ketadash.db import read_session, write_session
from ketadash.models import AccessLog, Display, Patient, Site, Staff, StaffRole, stored_id
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.staff import StaffMember
from ketadash.text import clean_text

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A display token is long enough that guessing one is hopeless (256 bits).
DISPLAY_TOKEN_BYTES = 32


class AccessRefused(Exception):
    """The person or display may not see this; the message says why in plain words."""


def normalise_email(text: str | None) -> str:
    """An e-mail as stored and matched: cleaned and lower-case; ValueError if not one."""
    email = clean_text(text).lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{text!r} is not an e-mail address")
    return email


# --- sign-in mode --------------------------------------------------------------------------


class SignInMode(StrEnum):
    """How this deployment knows who is at the keyboard."""

    # A demo clinic without an identity provider: a demo nurse, switchable, with a banner.
    DEMO = "demo"
    # The clinic's identity provider through st.login.
    IDENTITY_PROVIDER = "identity_provider"
    # A real clinic without an identity provider configured: no patient data at all.
    REFUSE = "refuse"


def sign_in_mode(*, demo: bool, auth_configured: bool) -> SignInMode:
    """The identity provider when configured; the demo sign-in only on a demo database."""
    if auth_configured:
        return SignInMode.IDENTITY_PROVIDER
    return SignInMode.DEMO if demo else SignInMode.REFUSE


# --- the roster ----------------------------------------------------------------------------


def staff_for_email(*, url: str, email: str | None) -> StaffMember:
    """The active staff member the identity provider's e-mail names.

    Raises AccessRefused, saying why, for an unknown or inactive person.
    """
    try:
        address = normalise_email(email)
    except ValueError as error:
        raise AccessRefused(
            "Your sign-in did not give an e-mail address, so KetaDash cannot tell who you "
            "are. Ask the clinic lead to check the identity provider's settings."
        ) from error
    with read_session(url) as db:
        row = db.execute(
            select(col(Staff.id), col(Staff.name), col(Staff.role), col(Staff.active)).where(
                col(Staff.email) == address
            )
        ).first()
    if row is None:
        raise AccessRefused(
            f"{address} is not on this clinic's staff list, so no patient data is shown. "
            "Ask the clinic lead to add you (python -m ketadash staff … --email …)."
        )
    if not row.active:
        raise AccessRefused(
            f"{address} is marked as no longer working here, so no patient data is shown. "
            "Ask the clinic lead if this is a mistake."
        )
    return StaffMember(id=row.id, name=row.name, role=StaffRole(row.role))


def set_staff_email(*, url: str, staff_id: int, email: str) -> str:
    """Record the e-mail sign-in matches for a staff member; returns it as stored.

    Raises ValueError when it is not an e-mail or another person already has it.
    """
    address = normalise_email(email)
    with write_session(url) as db:
        taken = db.execute(
            select(col(Staff.id)).where(col(Staff.email) == address, col(Staff.id) != staff_id)
        ).first()
        if taken is not None:
            raise ValueError(f"{address} already belongs to another staff member")
        db.execute(update(Staff).where(col(Staff.id) == staff_id).values(email=address))
    return address


# --- what each role may open ---------------------------------------------------------------


def may_open(*, audience: frozenset[StaffRole] | tuple[StaffRole, ...], role: StaffRole) -> bool:
    """True when a screen declared for ``audience`` may be shown to ``role``."""
    return StaffRole(role) in set(audience)


def idle_too_long(*, last_activity: datetime, now: datetime, idle_minutes: int) -> bool:
    """True when a station has been idle past the clinic's sign-out setting."""
    return now - last_activity >= timedelta(minutes=idle_minutes)


def idle_sign_out_minutes(*, url: str) -> int:
    """The clinic's idle sign-out: the strictest of its sites' settings.

    A station signs in before anyone picks a site, and one browser moves between
    sites, so the shortest setting of any site applies everywhere.
    """
    with read_session(url) as db:
        site_ids = db.execute(select(col(Site.id))).scalars().all()
        minutes = [
            load_clinic_settings(db=db, site_id=site_id).idle_sign_out_minutes
            for site_id in site_ids
        ]
    return min(minutes, default=ClinicSettings().idle_sign_out_minutes)


def demo_staff(*, url: str, role: StaffRole) -> StaffMember | None:
    """The demo clinic's first active person with ``role`` (the demo sign-in acts as them)."""
    with read_session(url) as db:
        row = db.execute(
            select(col(Staff.id), col(Staff.name), col(Staff.role))
            .where(col(Staff.active), col(Staff.role) == StaffRole(role).value)
            .order_by(col(Staff.id))
            .limit(1)
        ).first()
    return None if row is None else StaffMember(id=row.id, name=row.name, role=StaffRole(row.role))


# --- registered wall displays --------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class DisplayEntry:
    id: int
    site_code: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class DisplayAccess:
    """What a valid display token opens: one site's wall, nothing else."""

    display_id: int
    site_id: int
    site_code: str
    name: str


def register_display(*, url: str, site_code: str, name: str, now: datetime) -> tuple[int, str]:
    """Register a wall display for a site; returns its id and its token (shown once).

    Only the token's hash is stored. Raises ValueError for an unknown site or empty name.
    """
    name = clean_text(name)
    if not name:
        raise ValueError("give the display a name, e.g. 'Recovery TV'")
    token = secrets.token_urlsafe(DISPLAY_TOKEN_BYTES)
    with write_session(url) as db:
        site_id = db.execute(select(col(Site.id)).where(col(Site.code) == site_code)).scalar()
        if site_id is None:
            raise ValueError(f"there is no site with the code {site_code!r}")
        display = Display(site_id=site_id, name=name, token_hash=_token_hash(token),
                          created_at=now)  # fmt: skip
        db.add(display)
        db.flush()
        return stored_id(display), token


def list_displays(*, url: str) -> list[DisplayEntry]:
    """Every registered display, revoked ones included, in the order they were added."""
    with read_session(url) as db:
        rows = db.execute(
            select(
                col(Display.id),
                col(Site.code),
                col(Display.name),
                col(Display.created_at),
                col(Display.revoked_at),
            )
            .join(Site, col(Site.id) == col(Display.site_id))
            .order_by(col(Display.id))
        ).all()
    return [
        DisplayEntry(
            id=r.id, site_code=r.code, name=r.name, created_at=r.created_at, revoked_at=r.revoked_at
        )
        for r in rows
    ]


def revoke_display(*, url: str, display_id: int, now: datetime) -> bool:
    """Revoke a display's token (its wall blanks at the next refresh); False if unknown.

    Idempotent: revoking twice keeps the first moment.
    """
    with write_session(url) as db:
        display = db.get(Display, display_id)
        if display is None:
            return False
        if display.revoked_at is None:
            display.revoked_at = now
        return True


def display_for_token(*, url: str, token: str | None) -> DisplayAccess | None:
    """The display a token belongs to, if it is registered and not revoked."""
    if not token:
        return None
    with read_session(url) as db:
        row = db.execute(
            select(col(Display.id), col(Display.site_id), col(Site.code), col(Display.name))
            .join(Site, col(Site.id) == col(Display.site_id))
            .where(col(Display.token_hash) == _token_hash(token), col(Display.revoked_at).is_(None))
        ).first()
    if row is None:
        return None
    return DisplayAccess(display_id=row.id, site_id=row.site_id, site_code=row.code, name=row.name)


# --- the access log ------------------------------------------------------------------------


class AccessAction(StrEnum):
    """What someone opened: a patient's panel, a patient's view, or an export."""

    OPEN_PANEL = "open_panel"
    PATIENT_VIEW = "patient_view"
    EXPORT = "export"

    @property
    def label(self) -> str:
        return {
            "open_panel": "Opened a patient's panel",
            "patient_view": "Opened a patient's view",
            "export": "Downloaded an export",
        }[self.value]


def log_access(
    *,
    url: str,
    staff_id: int,
    action: AccessAction | str,
    now: datetime,
    session_id: int | None = None,
    patient_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Append one row to the access log (never updated, never deleted)."""
    with write_session(url) as db:
        db.add(
            AccessLog(
                at=now,
                staff_id=staff_id,
                action=AccessAction(action).value,
                session_id=session_id,
                patient_id=patient_id,
                detail=clean_text(detail) or None,
            )
        )


ACCESS_LOG_COLUMNS = ["at", "staff", "role", "action", "patient", "session_id", "detail"]


def read_access_log(
    *,
    url: str,
    start: datetime,
    end: datetime,
    staff_id: int | None = None,
    action: AccessAction | str | None = None,
) -> pd.DataFrame:
    """The access log between ``start`` and ``end`` (UTC), newest first, for a lead.

    ``patient`` is the patient's reference (MRN): the log is read by leads, who look
    the person up from there.
    """
    conditions = [col(AccessLog.at) >= start, col(AccessLog.at) < end]
    if staff_id is not None:
        conditions.append(col(AccessLog.staff_id) == staff_id)
    if action is not None:
        conditions.append(col(AccessLog.action) == AccessAction(action).value)
    # Labelled columns type as Never; the rows are read by name (``_mapping``).
    query: Select[*tuple[Any, ...]] = (
        select(
            col(AccessLog.at),
            col(Staff.name).label("staff"),
            col(Staff.role),
            col(AccessLog.action),
            col(Patient.mrn).label("patient"),
            col(AccessLog.session_id),
            col(AccessLog.detail),
        )
        .join(Staff, col(Staff.id) == col(AccessLog.staff_id))
        .join(Patient, col(Patient.id) == col(AccessLog.patient_id), isouter=True)
        .where(*conditions)
        .order_by(col(AccessLog.at).desc(), col(AccessLog.id).desc())
    )
    with read_session(url) as db:
        rows = db.execute(query).all()
    return pd.DataFrame([dict(row._mapping) for row in rows], columns=ACCESS_LOG_COLUMNS)


def access_log_staff(*, url: str) -> list[StaffMember]:
    """Everyone who appears in the access log, for the lead's filter (by name)."""
    with read_session(url) as db:
        rows = db.execute(
            select(col(Staff.id), col(Staff.name), col(Staff.role))
            .where(col(Staff.id).in_(select(col(AccessLog.staff_id)).distinct()))
            .order_by(col(Staff.name))
        ).all()
    return [StaffMember(id=r.id, name=r.name, role=StaffRole(r.role)) for r in rows]
