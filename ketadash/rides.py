"""The ride home: its own small state machine, its history, and the alerts it raises.

Nobody drives themselves home after a dose: an adult collects the patient. A
ride is none (nobody arranged) → arranged (driver, phone, relationship, expected
pickup) → on the way (the driver called, with the time they gave) → arrived. The
state is derived from the ``ride`` row, never stored twice. Every change is one
conditional update on ``ride.version`` plus an append-only ``ride_change`` row
(who, when, state, why) in the same transaction; a station that saw an older
version is told and nothing is written. An arrival ticked by mistake is taken
back only with a recorded reason (a correction), because the arrival is what lets
a patient be discharged.

The alerts are pure functions of (ride, visit facts, settings, now), so a page
shows exactly what the rules say and a test needs no database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ketadash.clock import (
    FutureMoment,
    clock_text,
    refuse_future,
    utc_now,
    whole_minutes_between,
)
from ketadash.db import ROW_LOCK, read_session, rows_matched, write_session
from ketadash.lifecycle import LifecycleError, RideChanged, SessionNotFound, StepNotAllowed
from ketadash.models import Ride, RideChange, RideState, Staff, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.settings import ClinicSettings
from ketadash.text import clean_text, reason_text
from ketadash.vitals import Alert
from ketadash.vocabulary import CLOSED_STATUSES, IN_WORDS, OPEN_STATUSES

# --- what a ride is --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RideFacts:
    """A ride as read: plain data, never a live row."""

    session_id: int
    driver_name: str
    driver_phone: str | None
    relationship: str | None
    expected_pickup_at: datetime | None
    on_the_way_at: datetime | None
    eta_at: datetime | None
    arrived_at: datetime | None
    version: int

    @property
    def state(self) -> RideState:
        return ride_state(self)

    @property
    def expected_at(self) -> datetime | None:
        """When the ride should be here: the time the driver gave, else the arranged pickup."""
        if self.on_the_way_at is not None and self.eta_at is not None:
            return self.eta_at
        return self.expected_pickup_at


def ride_state(ride: RideFacts | Ride | None) -> RideState:
    """The ride's state from its row: none when there is no row or no driver named."""
    return RideState.of(ride)


def _facts(ride: Ride) -> RideFacts:
    return RideFacts(
        session_id=ride.session_id,
        driver_name=ride.driver_name,
        driver_phone=ride.driver_phone,
        relationship=ride.relationship,
        expected_pickup_at=ride.expected_pickup_at,
        on_the_way_at=ride.on_the_way_at,
        eta_at=ride.eta_at,
        arrived_at=ride.arrived_at,
        version=ride.version,
    )


def rides_of(*, db: Session, session_ids: Iterable[int]) -> dict[int, RideFacts]:
    """The rides of these sessions (one indexed query), by session id."""
    ids = sorted(set(session_ids))
    if not ids:
        return {}
    rows = db.exec(select(Ride).where(col(Ride.session_id).in_(ids))).all()
    return {row.session_id: _facts(row) for row in rows}


def load_rides(*, url: str, session_ids: Iterable[int]) -> dict[int, RideFacts]:
    """``rides_of`` with its own read session."""
    with read_session(url) as db:
        return rides_of(db=db, session_ids=session_ids)


@dataclass(frozen=True, kw_only=True)
class RideHistoryEntry:
    version: int
    state: RideState
    changed_at: datetime
    staff_name: str | None
    reason: str | None
    is_correction: bool


def ride_history(*, url: str, session_id: int) -> list[RideHistoryEntry]:
    """Every recorded change of a session's ride, oldest first."""
    with read_session(url) as db:
        rows = db.exec(
            select(RideChange, col(Staff.name))
            .join(Staff, col(Staff.id) == col(RideChange.staff_id), isouter=True)
            .where(col(RideChange.session_id) == session_id)
            .order_by(col(RideChange.version))
        ).all()
    return [
        RideHistoryEntry(
            version=change.version,
            state=RideState(change.state),
            changed_at=change.changed_at,
            staff_name=name,
            reason=change.reason,
            is_correction=change.is_correction,
        )
        for change, name in rows
    ]


# --- writes -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RideSaved:
    """What a ride write changed: the state it is in now and the ride's new version."""

    session_id: int
    from_state: RideState
    state: RideState
    version: int
    at: datetime


class RideRefused(StepNotAllowed):
    """A ride change that the ride's state does not allow; nothing was written."""


def arrange_ride(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_ride_version: int | None,
    driver_name: str,
    driver_phone: str | None = None,
    relationship: str | None = None,
    expected_pickup_at: datetime | None = None,
    arrived: bool = False,
    now: datetime | None = None,
) -> RideSaved:
    """Record who collects the patient, or change those details; any staff member may.

    Works before the patient has arrived for the day (a scheduled session) and at
    any later step until the visit is closed. Blank phone, relationship or pickup
    keep what was recorded. The state becomes arranged unless the driver is already
    on the way or here (changing the phone number does not un-arrive a driver).
    Another driver's name makes a ride on the way arranged again (the new driver has
    not called) and is refused for an arrived ride (take the arrival back first).
    With ``arrived`` the driver is also recorded as here now, in the same change.
    """
    name = clean_text(driver_name)
    if not name:
        raise LifecycleError("Give the name of the adult taking the patient home.")
    details = {
        "driver_name": name,
        "driver_phone": clean_text(driver_phone) or None,
        "relationship": clean_text(relationship) or None,
        "expected_pickup_at": expected_pickup_at,
    }
    return _change_ride(
        url=url,
        session_id=session_id,
        staff_id=staff_id,
        expected_ride_version=expected_ride_version,
        now=now,
        change=lambda ride, at: (
            _arranged_values(ride, details)
            | ({"arrived_at": at} if arrived and ride_state(ride) is not RideState.ARRIVED else {})
        ),
    )


def _arranged_values(ride: Ride | None, details: dict[str, Any]) -> dict[str, Any]:
    if ride is None:
        return details
    kept = {key: value for key, value in details.items() if value is not None}
    state = ride_state(ride)
    if state is RideState.ARRIVED and not _same_driver(ride.driver_name, details["driver_name"]):
        # The arrival is that driver's: another name has not arrived, and an arrival
        # is taken back only with a recorded reason.
        raise RideRefused(
            f"The ride is recorded as arrived with {ride.driver_name}. To name another "
            "driver, take the arrival back with a reason first."
        )
    if state is RideState.NONE:
        # A ride that fell through and is arranged again starts afresh.
        return {"on_the_way_at": None, "eta_at": None, "arrived_at": None, **details}
    if state is RideState.ON_THE_WAY and not _same_driver(ride.driver_name, details["driver_name"]):
        # The call and its time were the other driver's: the new one is arranged.
        return {"on_the_way_at": None, "eta_at": None, **kept}
    return kept


def _same_driver(recorded: str, typed: str) -> bool:
    return clean_text(recorded).casefold() == clean_text(typed).casefold()


def ride_on_the_way(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_ride_version: int | None,
    eta_at: datetime | None,
    now: datetime | None = None,
) -> RideSaved:
    """The driver called to say they are coming, and gave ``eta_at`` (None: no time given)."""

    def values(ride: Ride | None, at: datetime) -> dict[str, Any]:
        state = ride_state(ride)
        if state is RideState.NONE:
            raise RideRefused("Arrange the ride first: who is coming to take the patient home?")
        if state is RideState.ARRIVED:
            raise RideRefused(
                "The ride is recorded as arrived. If that was a mistake, take the arrival "
                "back with a reason first."
            )
        return {"on_the_way_at": at, "eta_at": eta_at}

    return _change_ride(
        url=url,
        session_id=session_id,
        staff_id=staff_id,
        expected_ride_version=expected_ride_version,
        now=now,
        change=values,
    )


def ride_arrived(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_ride_version: int | None,
    now: datetime | None = None,
) -> RideSaved:
    """The adult taking the patient home is here now."""

    def values(ride: Ride | None, at: datetime) -> dict[str, Any]:
        state = ride_state(ride)
        if state is RideState.NONE:
            raise RideRefused(
                "Record who has come first (the driver's name): discharge needs a named adult."
            )
        if state is RideState.ARRIVED:
            raise RideRefused("The ride is already recorded as arrived.")
        return {"arrived_at": at}

    return _change_ride(
        url=url,
        session_id=session_id,
        staff_id=staff_id,
        expected_ride_version=expected_ride_version,
        now=now,
        change=values,
    )


def take_back_ride_arrival(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_ride_version: int,
    reason: str,
    now: datetime | None = None,
) -> RideSaved:
    """Correct an arrival recorded by mistake, with the reason (issue 6 item 9).

    The ride goes back to on the way (if the driver had called) or arranged, the
    correction is recorded as such, and the discharge check sees no arrived adult.
    """
    why = reason_text(reason, what="Taking back the ride's arrival")

    def values(ride: Ride | None, at: datetime) -> dict[str, Any]:
        if ride_state(ride) is not RideState.ARRIVED:
            raise RideRefused("Nothing to take back: the ride is not recorded as arrived.")
        return {"arrived_at": None}

    return _change_ride(
        url=url,
        session_id=session_id,
        staff_id=staff_id,
        expected_ride_version=expected_ride_version,
        now=now,
        change=values,
        reason=why,
        is_correction=True,
    )


def cancel_ride(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_ride_version: int,
    reason: str,
    now: datetime | None = None,
) -> RideSaved:
    """The ride fell through (the driver cannot come): back to no ride, with the reason.

    The driver's details are cleared from the ride; the history keeps the change.
    """
    why = reason_text(reason, what="Cancelling the ride")

    def values(ride: Ride | None, at: datetime) -> dict[str, Any]:
        if ride_state(ride) is RideState.NONE:
            raise RideRefused("There is no ride to cancel.")
        return {
            "driver_name": "",
            "driver_phone": None,
            "relationship": None,
            "expected_pickup_at": None,
            "on_the_way_at": None,
            "eta_at": None,
            "arrived_at": None,
        }

    return _change_ride(
        url=url,
        session_id=session_id,
        staff_id=staff_id,
        expected_ride_version=expected_ride_version,
        now=now,
        change=values,
        reason=why,
    )


def _change_ride(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_ride_version: int | None,
    now: datetime | None,
    change: Callable[[Ride | None, datetime], dict[str, Any]],
    reason: str | None = None,
    is_correction: bool = False,
) -> RideSaved:
    """One ride change: the conditional update (or first insert) and its history row.

    A change dated in the future (beyond clock skew) is refused, as the lifecycle's
    steps are: an arrival recorded for later would let a discharge through now.
    An arrival cleared by this change is recorded as a correction.
    """
    if now is None:
        now = utc_now()
    else:
        try:
            refuse_future(now, what="A ride change")
        except FutureMoment as error:
            raise LifecycleError(str(error)) from error
    try:
        with write_session(url) as db:
            staff = db.get(Staff, staff_id) if staff_id is not None else None
            if staff is None or not staff.active:
                raise LifecycleError("Sign in first: every change records who made it.")
            # The session's row first, as a discharge takes it: a discharge and a change
            # of the ride it relies on queue, and the later one sees what the first did.
            session = db.get(TreatmentSession, session_id, with_for_update=ROW_LOCK)
            if session is None:
                raise SessionNotFound(f"Session {session_id} does not exist (was it removed?).")
            if S(session.status) in CLOSED_STATUSES:
                raise StepNotAllowed(
                    f"Cannot change the ride: the patient is {IN_WORDS[S(session.status)]}."
                )
            ride = db.exec(select(Ride).where(col(Ride.session_id) == session_id)).first()
            current = ride.version if ride is not None else None
            if current != expected_ride_version:
                raise _ride_changed(session)
            before = ride_state(ride)
            values = change(ride, now)
            if ride is None:
                ride = Ride(session_id=session_id, version=1, **values)
                db.add(ride)
                db.flush()
                version = 1
            else:
                # The conditional UPDATE is the lock, as for sessions: only the
                # station that saw the current version changes the ride.
                result = db.execute(
                    update(Ride)
                    .where(col(Ride.id) == ride.id, col(Ride.version) == ride.version)
                    .values(version=ride.version + 1, **values)
                    .execution_options(synchronize_session=False)
                )
                if rows_matched(result) != 1:
                    raise _ride_changed(session)
                version = ride.version + 1
                db.expire(ride)
                ride = db.get(Ride, ride.id)
            state = ride_state(ride)
            # Cancelling an arrived ride takes back its arrival: a correction, as
            # taking the arrival back is.
            corrects = is_correction or (
                before is RideState.ARRIVED and state is not RideState.ARRIVED
            )
            db.add(
                RideChange(
                    session_id=session_id,
                    version=version,
                    state=state.value,
                    changed_at=now,
                    staff_id=staff_id,
                    reason=reason,
                    is_correction=corrects,
                )
            )
            db.flush()
            return RideSaved(
                session_id=session_id, from_state=before, state=state, version=version, at=now
            )
    except IntegrityError as error:
        # Two stations added the first ride of a session at the same moment: the
        # unique session id (or history version) let one in.
        with read_session(url) as db:
            session = db.get(TreatmentSession, session_id)
            if session is None:
                # The write found the session before its insert failed; were it gone
                # since, say so rather than that the ride changed.
                raise SessionNotFound(
                    f"Session {session_id} does not exist (was it removed?)."
                ) from error
            raise _ride_changed(session) from error


def _ride_changed(session: TreatmentSession) -> RideChanged:
    return RideChanged(
        "Another station changed this patient's ride while you were working. Nothing you "
        "entered was saved; check the ride shown and save again if needed.",
        status=S(session.status),
        version=session.version,
    )


# --- alerts ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RideVisitFacts:
    """What the ride alerts need to know of the visit and its site."""

    status: S
    ready_at: datetime | None
    time_zone: str
    closes_at: time | None
    # The visit's own calendar day at the site (its booking): closing time is that day's.
    day: date


def no_ride_alert(*, ride: RideFacts | None, visit: RideVisitFacts) -> Alert | None:
    """Ready to go, and nobody is arranged to take the patient home."""
    if visit.status != S.READY or ride_state(ride) is not RideState.NONE:
        return None
    return Alert(
        level="warning",
        what="Ready to go, but no ride home is arranged",
        action="Ask the patient who can collect them and call that person; record the ride.",
    )


def ride_late_alert(
    *, ride: RideFacts | None, visit: RideVisitFacts, settings: ClinicSettings, now: datetime
) -> Alert | None:
    """The ride is later than ``ride_late_after_minutes`` past the time expected.

    The time the driver gave when they called wins over the arranged pickup. Only
    for a patient in the building: a ride for a patient not yet arrived is not late.
    """
    if visit.status not in OPEN_STATUSES or ride is None:
        return None
    if ride.state not in (RideState.ARRANGED, RideState.ON_THE_WAY):
        return None
    expected = ride.expected_at
    if expected is None:
        return None
    late = whole_minutes_between(expected, now)
    if now <= expected or late < settings.ride_late_after_minutes:
        return None
    phone = f" on {ride.driver_phone}" if ride.driver_phone else ""
    return Alert(
        level="warning",
        what=f"Ride {late} min late (expected {clock_text(expected, visit.time_zone)})",
        action=f"Call {ride.driver_name}{phone}; if they cannot come, arrange another adult.",
    )


def closing_time_alert(
    *, visit: RideVisitFacts, settings: ClinicSettings, now: datetime
) -> Alert | None:
    """The patient is still here within ``closing_time_alert_minutes`` of the site's closing.

    Also stands once closing time has passed. No alert when the site has no closing time.
    """
    if visit.status not in OPEN_STATUSES or visit.closes_at is None:
        return None
    closes = closing_moment(time_zone=visit.time_zone, closes_at=visit.closes_at, day=visit.day)
    left = (closes - now).total_seconds() / 60
    if left > settings.closing_time_alert_minutes:
        return None
    at = visit.closes_at.strftime("%H:%M")
    what = (
        f"Still here {int(-left)} min after closing time ({at})"
        if left < 0
        else f"Still here, the site closes at {at} (in {int(left)} min)"
    )
    return Alert(
        level="danger" if left < 0 else "warning",
        what=what,
        action="Make sure the ride is coming; tell the lead if the patient may stay past closing.",
    )


def closing_moment(*, time_zone: str, closes_at: time, day: date) -> datetime:
    """The site's closing time on ``day`` (the visit's own day), as an aware instant.

    A patient still here after midnight is still here after that day's closing, not
    hours before the next day's.
    """
    return datetime.combine(day, closes_at, tzinfo=ZoneInfo(time_zone))


def ride_alerts(
    *, ride: RideFacts | None, visit: RideVisitFacts, settings: ClinicSettings, now: datetime
) -> list[Alert]:
    """Every ride alert that stands for this visit now, each saying what to do."""
    found = [
        no_ride_alert(ride=ride, visit=visit),
        ride_late_alert(ride=ride, visit=visit, settings=settings, now=now),
        closing_time_alert(visit=visit, settings=settings, now=now),
    ]
    return [alert for alert in found if alert is not None]


def ride_summary(ride: RideFacts | None, *, time_zone: str) -> str:
    """One line a nurse reads: the state and what is known of it (staff screens only)."""
    state = ride_state(ride)
    if state is RideState.NONE or ride is None:
        return state.label
    who = ride.driver_name + (f" ({ride.relationship})" if ride.relationship else "")
    if state is RideState.ARRIVED:
        return f"{who} arrived at {clock_text(ride.arrived_at, time_zone)}"
    if state is RideState.ON_THE_WAY:
        eta = f", says {clock_text(ride.eta_at, time_zone)}" if ride.eta_at else ""
        return f"{who} on the way (called {clock_text(ride.on_the_way_at, time_zone)}{eta})"
    pickup = clock_text(ride.expected_pickup_at, time_zone)
    return f"{who}, pickup expected {pickup}" if pickup else f"{who}, pickup time not given"
