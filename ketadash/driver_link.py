"""The driver's status link: one visit's "ready around 14:35" for the person driving home.

Staff make a link for a visit and text it (or print it on a card) to the driver. The
link's token is unguessable (``secrets.token_urlsafe``) and kept only as its hash; it
opens a page that needs no sign-in and shows the clinic's name, the site's address
and phone, and where the visit is as a driver needs it, read from the public
projection (``ketadash.public``): no name, no chair, nothing clinical.

A link works for its visit only; it ends when the patient goes home (or after
``LINK_MAX_HOURS``), when staff revoke it, or when staff make a new one for the same
visit. A visit cancelled or missed keeps its link, which asks the driver to call.
Staff see when the driver first and last opened it.

The words and the estimate are pure functions of (the visit's clock, settings, now);
the estimate is the route's own clock (``ketadash.rules.route_protocol``): the planned
or actual end of the dose (the first device for esketamine) plus the route's
minimum recovery from the clinic settings, plus how the site's visits of the route
typically went over the last ``HISTORY_DAYS`` (medians of the wait from arrival to the
dose and of the stay past the minimum; the route's clock alone until there are
``HISTORY_MIN_VISITS`` of them). Measured against the
demo's history by ``benchmarks/bench_driver_link.py``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import or_, select, update
from sqlmodel import col

from ketadash.clock import clock_text
from ketadash.db import ROW_LOCK, read_session, write_session
from ketadash.models import DriverLink, Route, Staff, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.public import (
    DriverState,
    LinkState,
    PublicDriverStatus,
    PublicSiteContact,
    PublicVisitClock,
    public_recent_ready_query,
    public_site_contact,
    public_visit_clock,
)
from ketadash.rules import route_protocol
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.vocabulary import CLOSED_STATUSES, IN_WORDS

# 256 bits, as a display's token: guessing one is hopeless.
DRIVER_TOKEN_BYTES = 32
LINK_QUERY_PARAM = "link"
RIDE_PATH = "/ride"
# Not clinical: how the page behaves. A link left over from a visit nobody closed
# stops showing anything after a day.
LINK_MAX_HOURS = 24
# "Ready around" is said to the next five minutes: a driver plans by it, not by the minute.
READY_AROUND_STEP_MINUTES = 5
# Still not under way this long after the booked time and the arrival (a dose on hold),
# or still not ready this long after the estimate: the driver is asked to call, not
# given a time that keeps slipping.
CALL_US_AFTER_MINUTES = 30
# "Ready around" adds the typical stay past the minimum of the site's visits of the route
# over these days, once there are enough of them to say (fewer: the minimum alone).
HISTORY_DAYS = 28
HISTORY_MIN_VISITS = 10
# Opening the page records the moment at most this often (the page refreshes itself).
OPENED_RECORDED_EVERY = timedelta(minutes=2)


class DriverLinkRefused(ValueError):
    """A link that cannot be made or revoked; the message says why, nothing was written."""


# --- pure: the estimate and the words ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _RouteOnly:
    # What ``route_protocol`` reads of a visit, and nothing more: the public clock has
    # no dose, and the estimate needs none (esketamine's observation counts from the
    # first device, whatever the number of devices).
    route: Route
    planned_minutes: int | None
    dose_mg: float | None = None
    given_dose_mg: float | None = None


@dataclass(frozen=True, kw_only=True)
class SiteTypical:
    """How the site's recent visits of a route went (medians, see ``site_typical``): the
    wait from the arrival (or the booked time, when later) to the dose's start, and the
    stay past the route's minimum recovery before being marked ready."""

    wait: timedelta = timedelta(0)
    past_minimum: timedelta = timedelta(0)


# Without enough history: the route's clock alone.
NO_HISTORY = SiteTypical()


def ready_estimate(
    *,
    clock: PublicVisitClock,
    settings: ClinicSettings,
    now: datetime,
    typical: SiteTypical = NO_HISTORY,
) -> datetime | None:
    """When the visit should be ready on the route's clock, with the site's ``typical``
    wait and stay past the minimum; unrounded.

    In recovery: the observation's start (the dose's end; esketamine's first device)
    plus the route's minimum. Dosing: the planned end of the dose, or now when it runs
    over, plus the minimum. Checked in: the arrival (or the booked time, when later)
    plus the typical wait, or now when later, as the dose's start. The typical stay
    past the minimum is added to each. None when the visit is not on that path (not
    arrived, ready, closed) or a step time is missing.
    """
    protocol = route_protocol(
        _RouteOnly(route=clock.route, planned_minutes=clock.planned_minutes), settings
    )
    observe = timedelta(minutes=protocol.observation_minutes) + typical.past_minimum
    dose = timedelta(minutes=protocol.dose_minutes)
    status = S(clock.status)
    if status == S.RECOVERY:
        start = (
            clock.infusion_started_at
            if protocol.observation_from_dose_start
            else clock.infusion_ended_at
        )
        return None if start is None else start + observe
    if status == S.INFUSING:
        if clock.infusion_started_at is None:
            return None
        if protocol.observation_from_dose_start:
            return clock.infusion_started_at + observe
        return max(clock.infusion_started_at + dose, now) + observe
    if status == S.CHECKED_IN:
        start = max(_waiting_since(clock) + typical.wait, now)
        return start + observe + (timedelta(0) if protocol.observation_from_dose_start else dose)
    return None


def _waiting_since(clock: PublicVisitClock) -> datetime:
    # An early arrival waits for the booked time; a late one from its arrival.
    return max(clock.scheduled_start, clock.checked_in_at or clock.scheduled_start)


def _observation(route: Route, settings: ClinicSettings) -> tuple[bool, timedelta]:
    protocol = route_protocol(_RouteOnly(route=route, planned_minutes=None), settings)
    return protocol.observation_from_dose_start, timedelta(minutes=protocol.observation_minutes)


def past_minimum(
    *,
    route: Route,
    settings: ClinicSettings,
    started_at: datetime | None,
    ended_at: datetime | None,
    ready_at: datetime | None,
) -> timedelta | None:
    """How long past the route's minimum recovery a past visit was marked ready (never
    below zero); None when a step time is missing."""
    from_start, minimum = _observation(route, settings)
    start = started_at if from_start else ended_at
    if start is None or ready_at is None:
        return None
    return max(timedelta(0), ready_at - (start + minimum))


def past_wait(
    *, scheduled_start: datetime, checked_in_at: datetime | None, started_at: datetime | None
) -> timedelta | None:
    """How long a past visit waited from its arrival (or booked time, when later) to the
    dose's start (never below zero); None when a step time is missing."""
    if checked_in_at is None or started_at is None:
        return None
    return max(timedelta(0), started_at - max(scheduled_start, checked_in_at))


def typical(durations: Iterable[timedelta | None]) -> timedelta:
    """The median of the known durations, to the minute (half up); zero below
    ``HISTORY_MIN_VISITS`` of them."""
    known = sorted(value for value in durations if value is not None)
    if len(known) < HISTORY_MIN_VISITS:
        return timedelta(0)
    middle = len(known) // 2
    median = known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2
    return timedelta(minutes=math.floor(median.total_seconds() / 60 + 0.5))


def round_up(moment: datetime, *, minutes: int = READY_AROUND_STEP_MINUTES) -> datetime:
    """``moment`` rounded up to a whole ``minutes`` (every zone's offset is whole 5 minutes)."""
    step = minutes * 60
    seconds = math.ceil(moment.timestamp() / step) * step
    return datetime.fromtimestamp(seconds, tz=UTC)


def driver_state(
    *,
    clock: PublicVisitClock,
    settings: ClinicSettings,
    now: datetime,
    typical: SiteTypical = NO_HISTORY,
) -> tuple[DriverState, datetime | None]:
    """What the driver is told, and the "ready around" time while in treatment.

    Ready to go: ready now. Checked in, dosing or in recovery: in treatment, ready
    around the estimate (never earlier than now, to the next five minutes). Anything
    else asks the driver to call: not arrived yet, a visit that ended without a
    discharge, a dose not started ``CALL_US_AFTER_MINUTES`` after the booked time and
    the arrival and the typical wait (a hold), a recovery that long past its estimate,
    a missing time.
    """
    status = S(clock.status)
    if status == S.READY:
        return DriverState.READY, None
    estimate = ready_estimate(clock=clock, settings=settings, now=now, typical=typical)
    if estimate is None:
        return DriverState.CALL_US, None
    late = timedelta(minutes=CALL_US_AFTER_MINUTES)
    if status == S.CHECKED_IN:
        if now > _waiting_since(clock) + typical.wait + late:
            return DriverState.CALL_US, None
    elif now > estimate + late:
        return DriverState.CALL_US, None
    return DriverState.IN_TREATMENT, round_up(max(estimate, now))


@dataclass(frozen=True, kw_only=True)
class DriverWords:
    """The page's words: a big line and what to do."""

    headline: str
    detail: str


def driver_words(status: PublicDriverStatus) -> DriverWords:
    """The driver's page in words, times in the clinic's zone."""
    contact = status.contact
    phone = contact.site_phone if contact is not None else None
    call = f"call us on {phone}" if phone else "call the clinic"
    if status.link is LinkState.UNKNOWN:
        return DriverWords(
            headline="This link does not work",
            detail="Check the address in the message you were sent, or call the clinic.",
        )
    if status.link is LinkState.REVOKED:
        return DriverWords(
            headline="This link has been withdrawn",
            detail=f"It no longer shows updates. For news, {call}.",
        )
    if status.link is LinkState.EXPIRED:
        return DriverWords(
            headline="This link has expired",
            detail=f"The visit is over. If you need anything, {call}.",
        )
    if status.state is DriverState.READY:
        return DriverWords(headline="Ready now", detail="Please come to the front desk.")
    if (
        status.state is DriverState.IN_TREATMENT
        and status.ready_around is not None
        and contact is not None
    ):
        around = clock_text(status.ready_around, contact.time_zone)
        return DriverWords(
            headline=f"In treatment, ready around {around}",
            detail="This page updates itself. Please come in when it says ready.",
        )
    return DriverWords(
        headline="Please call us",
        detail=f"We cannot give a time here just now. Please {call}.",
    )


def driver_link_url(*, base: str, token: str) -> str:
    """The driver's address: ``base`` (the server as staff reach it) + ``/ride?link=TOKEN``."""
    return f"{base.rstrip('/')}{RIDE_PATH}?{urlencode({LINK_QUERY_PARAM: token})}"


def text_message(*, contact: PublicSiteContact, link: str) -> str:
    """The message staff send the driver: who it is from, the link, the phone. No name."""
    phone = f" Questions: call {contact.site_phone}." if contact.site_phone else ""
    where = f" ({contact.site_address})" if contact.site_address else ""
    return (
        f"{contact.clinic_name}, {contact.site_name}{where}: you can see when the person you "
        f"are collecting is ready to go home here: {link} The page shows no personal "
        f"details and stops working once they have left.{phone}"
    )


# --- the links ---------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class DriverLinkFacts:
    """A visit's latest driver link, as staff see it (never its token)."""

    session_id: int
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    first_opened_at: datetime | None
    last_opened_at: datetime | None

    def live(self, *, now: datetime) -> bool:
        """Not revoked and not too old (the visit's own state is the page's to judge)."""
        return self.revoked_at is None and now - self.created_at < timedelta(hours=LINK_MAX_HOURS)


def link_state(
    *, created_at: datetime, revoked_at: datetime | None, clock: PublicVisitClock | None,
    now: datetime,
) -> LinkState:  # fmt: skip
    """Whether a link shows anything at ``now``: revoked, expired (gone home, no such
    visit any more, or older than ``LINK_MAX_HOURS``) or live. A cancelled or missed
    visit stays live: its driver is asked to call (``driver_state``)."""
    if revoked_at is not None:
        return LinkState.REVOKED
    if clock is None or now - created_at >= timedelta(hours=LINK_MAX_HOURS):
        return LinkState.EXPIRED
    if S(clock.status) == S.DISCHARGED:
        return LinkState.EXPIRED
    return LinkState.LIVE


def make_driver_link(*, url: str, session_id: int, staff_id: int, now: datetime) -> str:
    """A new link for the visit; returns its token (shown once: only its hash is kept).

    A live link of the same visit is revoked in the same transaction: one visit has
    one working link. Refused (DriverLinkRefused, nothing written) for an unknown
    visit, a visit that has ended, or nobody signed in.
    """
    token = secrets.token_urlsafe(DRIVER_TOKEN_BYTES)
    with write_session(url) as db:
        _active_staff(db, staff_id)
        session = db.get(TreatmentSession, session_id, with_for_update=ROW_LOCK)
        if session is None:
            raise DriverLinkRefused(f"Visit {session_id} does not exist (was it removed?).")
        if S(session.status) in CLOSED_STATUSES:
            raise DriverLinkRefused(
                f"No driver's link: the patient is {IN_WORDS[S(session.status)]}."
            )
        _revoke_live(db, session_id=session_id, staff_id=staff_id, now=now)
        db.add(
            DriverLink(
                session_id=session_id,
                token_hash=_token_hash(token),
                created_at=now,
                created_by=staff_id,
            )
        )
    return token


def revoke_driver_link(*, url: str, session_id: int, staff_id: int, now: datetime) -> int:
    """Revoke the visit's live link (its page says so at its next refresh); returns how
    many were revoked. DriverLinkRefused when there is none."""
    with write_session(url) as db:
        _active_staff(db, staff_id)
        revoked = _revoke_live(db, session_id=session_id, staff_id=staff_id, now=now)
        if not revoked:
            raise DriverLinkRefused("This visit has no working driver's link to revoke.")
        return revoked


def _active_staff(db, staff_id: int | None) -> None:
    staff = db.get(Staff, staff_id) if staff_id is not None else None
    if staff is None or not staff.active:
        raise DriverLinkRefused("Sign in first: every link records who made or revoked it.")


def _revoke_live(db, *, session_id: int, staff_id: int, now: datetime) -> int:
    result = db.execute(
        update(DriverLink)
        .where(col(DriverLink.session_id) == session_id, col(DriverLink.revoked_at).is_(None))
        .values(revoked_at=now, revoked_by=staff_id)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def driver_links_of(*, db, session_ids: Iterable[int]) -> dict[int, DriverLinkFacts]:
    """Each visit's latest link (one query), by session id; visits without one are absent."""
    ids = sorted(set(session_ids))
    if not ids:
        return {}
    rows = db.execute(
        select(
            col(DriverLink.session_id),
            col(DriverLink.created_at),
            col(Staff.name),
            col(DriverLink.revoked_at),
            col(DriverLink.first_opened_at),
            col(DriverLink.last_opened_at),
        )
        .join(Staff, col(Staff.id) == col(DriverLink.created_by), isouter=True)
        .where(col(DriverLink.session_id).in_(ids))
        .order_by(col(DriverLink.id))
    ).all()
    return {
        row.session_id: DriverLinkFacts(
            session_id=row.session_id,
            created_at=row.created_at,
            created_by=row.name,
            revoked_at=row.revoked_at,
            first_opened_at=row.first_opened_at,
            last_opened_at=row.last_opened_at,
        )
        for row in rows  # in id order: the latest link of a visit wins
    }


def load_driver_link(*, url: str, session_id: int) -> DriverLinkFacts | None:
    """``driver_links_of`` for one visit, with its own read session."""
    with read_session(url) as db:
        return driver_links_of(db=db, session_ids=[session_id]).get(session_id)


def driver_link_summary(facts: DriverLinkFacts | None, *, time_zone: str, now: datetime) -> str:
    """One line for staff: when the link was made, and when the driver opened it."""
    if facts is None:
        return "No driver's link yet."
    made = f"Driver's link made {clock_text(facts.created_at, time_zone)}"
    if facts.created_by:
        made += f" by {facts.created_by}"
    if facts.revoked_at is not None:
        return f"{made}, revoked {clock_text(facts.revoked_at, time_zone)}."
    if not facts.live(now=now):
        return f"{made}, expired."
    if facts.first_opened_at is None:
        return f"{made} · not opened yet."
    first = clock_text(facts.first_opened_at, time_zone)
    last = clock_text(facts.last_opened_at, time_zone)
    seen = f"driver opened at {first}" + (f", last at {last}" if last != first else "")
    return f"{made} · {seen}."


# --- the page's read ---------------------------------------------------------------------------


def open_driver_link(*, url: str, token: str | None, now: datetime) -> PublicDriverStatus:
    """What the driver's page shows for ``token`` at ``now``; records the opening.

    Everything about the visit comes from the public projection. A live link's first
    opening is kept, and its latest at most every ``OPENED_RECORDED_EVERY``.
    """
    unknown = PublicDriverStatus(
        link=LinkState.UNKNOWN, contact=None, state=None, ready_around=None, read_at=now
    )
    if not token or len(token) > 200:
        return unknown
    with read_session(url) as db:
        link = db.execute(
            select(
                col(DriverLink.id),
                col(DriverLink.session_id),
                col(DriverLink.created_at),
                col(DriverLink.revoked_at),
                col(DriverLink.last_opened_at),
            ).where(col(DriverLink.token_hash) == _token_hash(token))
        ).first()
        if link is None:
            return unknown
        clock = public_visit_clock(db=db, session_id=link.session_id)
        contact = public_site_contact(db=db, site_id=clock.site_id) if clock else None
        state = link_state(
            created_at=link.created_at, revoked_at=link.revoked_at, clock=clock, now=now
        )
        words, around = None, None
        if state is LinkState.LIVE and clock is not None:
            settings = load_clinic_settings(db=db, site_id=clock.site_id)
            usual = site_typical(db=db, clock=clock, settings=settings)
            words, around = driver_state(clock=clock, settings=settings, now=now, typical=usual)
    if state is LinkState.LIVE and (
        link.last_opened_at is None or now - link.last_opened_at >= OPENED_RECORDED_EVERY
    ):
        _note_opened(url=url, link_id=link.id, now=now)
    return PublicDriverStatus(
        link=state, contact=contact, state=words, ready_around=around, read_at=now
    )


def site_typical(*, db, clock: PublicVisitClock, settings: ClinicSettings) -> SiteTypical:
    """The site's typical wait and stay past the minimum for the visit's route, from its
    visits booked in the ``HISTORY_DAYS`` before this one (public step times only)."""
    rows = db.execute(
        public_recent_ready_query(
            site_id=clock.site_id,
            route=clock.route,
            since=clock.scheduled_start - timedelta(days=HISTORY_DAYS),
            until=clock.scheduled_start,
        )
    ).all()
    return site_typical_of(rows=rows, route=clock.route, settings=settings)


def site_typical_of(*, rows: Iterable, route: Route, settings: ClinicSettings) -> SiteTypical:
    """``SiteTypical`` from past visits' step times (rows of ``public_recent_ready_query``)."""
    rows = list(rows)
    return SiteTypical(
        wait=typical(
            past_wait(
                scheduled_start=row.scheduled_start,
                checked_in_at=row.checked_in_at,
                started_at=row.infusion_started_at,
            )
            for row in rows
        ),
        past_minimum=typical(
            past_minimum(
                route=route,
                settings=settings,
                started_at=row.infusion_started_at,
                ended_at=row.infusion_ended_at,
                ready_at=row.ready_at,
            )
            for row in rows
        ),
    )


def _note_opened(*, url: str, link_id: int, now: datetime) -> None:
    # One conditional update: two refreshes at once record one moment, and an
    # earlier first opening is never overwritten.
    with write_session(url) as db:
        db.execute(
            update(DriverLink)
            .where(
                col(DriverLink.id) == link_id,
                or_(
                    col(DriverLink.last_opened_at).is_(None),
                    col(DriverLink.last_opened_at) <= now - OPENED_RECORDED_EVERY,
                ),
            )
            .values(last_opened_at=now)
            .execution_options(synchronize_session=False)
        )
        db.execute(
            update(DriverLink)
            .where(col(DriverLink.id) == link_id, col(DriverLink.first_opened_at).is_(None))
            .values(first_opened_at=now)
            .execution_options(synchronize_session=False)
        )


def load_site_contact(*, url: str, site_id: int) -> PublicSiteContact | None:
    """``public_site_contact`` with its own read session (the staff panel's message)."""
    with read_session(url) as db:
        return public_site_contact(db=db, site_id=site_id)
