"""The ride home: who is taking the patient, when they are expected, and its history.

Nobody drives after a dose: an adult collects the patient. A ride is arranged when
the patient checks in, may call to say it is on the way (with an arrival time), and
arrives; each state is a ``ride_change`` row (``models.RideState``), version 1 the
arrangement, and the ride row's version is the number of its changes. "Late" is not
a state of its own: an arranged ride whose expected pickup has passed.
"""

from __future__ import annotations

import random

from ketadash.demo.people import FIRST_NAMES, LAST_NAMES, RELATIONSHIPS, DemoPatient, fiction_phone
from ketadash.demo.visit_times import MINUTE, VisitTimes
from ketadash.demo.writer import Rows
from ketadash.models import RideState

NONE = RideState.NONE.value
ARRANGED = RideState.ARRANGED.value
ON_THE_WAY = RideState.ON_THE_WAY.value
ARRIVED = RideState.ARRIVED.value
LATE = "late"  # arranged, expected pickup passed, not arrived: a layout word only
# Called to say it was on the way, then arrived: how half the history's rides went.
CALLED_THEN_ARRIVED = "called_then_arrived"
FIVE_MINUTES = 5 * MINUTE


def _usual_state(rng: random.Random, *, ready: int | None, discharged: int | None) -> str:
    """A discharged patient's ride arrived (sometimes after a call); a patient ready to go
    has theirs half the time; otherwise it is arranged."""
    if discharged is not None:
        return CALLED_THEN_ARRIVED if rng.random() < 0.4 else ARRIVED
    if ready is not None and rng.random() < 0.5:
        return ARRIVED
    return ARRANGED


def _driver(rng: random.Random, *, patient: DemoPatient) -> tuple[str, str, str]:
    """The patient's usual driver, or now and then somebody else."""
    driver_name, driver_phone, relationship = patient.driver
    if rng.random() < 0.15:
        driver_name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        driver_phone = fiction_phone(rng, area_code=patient.site.area_code)
        relationship = rng.choice(RELATIONSHIPS)
    return driver_name, driver_phone, relationship


def _recovery_anchor(
    times: VisitTimes, *, route: str, checkin: int, start: int | None, end: int | None
) -> int:
    """What the minimum recovery is counted from: the dose's start or its end."""
    if times.recovery_counts_from_start(route):
        return start if start is not None else checkin + 20 * MINUTE
    if end is not None:
        return end
    began = start if start is not None else checkin + 20 * MINUTE
    return began + times.planned_minutes(route) * MINUTE


def _arrived_at(
    rng: random.Random,
    *,
    arranged_at: int,
    ready: int | None,
    discharged: int | None,
    cutoff: int,
) -> int:
    """When the driver arrived: just before the discharge, after ready, or lately."""
    if discharged is not None:
        if ready is None:
            raise ValueError("A discharged visit was marked ready first: its ride arrived between.")
        arrived_at = discharged - int(min(discharged - ready, 4 * MINUTE) * rng.random())
    elif ready is not None:
        arrived_at = ready + int((cutoff - 1 - ready) * rng.random())
    else:
        arrived_at = _between(rng, max(arranged_at, cutoff - 20 * MINUTE), cutoff - 1)
    return max(arrived_at, arranged_at)


def write_ride(
    rows: Rows,
    rng: random.Random,
    *,
    patient: DemoPatient,
    session_id: int,
    nurse: int,
    checkin: int,
    start: int | None,
    end: int | None,
    ready: int | None,
    discharged: int | None,
    cutoff: int,
    state: str | None,
) -> None:
    """Append the visit's ride and its changes before ``cutoff``, ending in ``state``.

    Without ``state``: a discharged patient's ride arrived (sometimes after a call to
    say it was on the way); a patient ready to go has theirs half the time.
    """
    if state is None:
        state = _usual_state(rng, ready=ready, discharged=discharged)
    if state == NONE:
        return
    site = patient.site
    times = site.times
    driver_name, driver_phone, relationship = _driver(rng, patient=patient)

    arranged_at = min(checkin + rng.randint(1, 6) * MINUTE, cutoff - 30)
    arranged_at = max(checkin, arranged_at)
    # Expected when the minimum recovery is over, give or take.
    route = patient.route
    anchor = _recovery_anchor(times, route=route, checkin=checkin, start=start, end=end)
    expected = anchor + (times.min_recovery(route) + rng.randint(-5, 15)) * MINUTE
    expected -= expected % FIVE_MINUTES
    on_the_way_at = eta_at = arrived_at = None

    if state == LATE:
        expected = max(arranged_at, cutoff - rng.randint(2, 12) * MINUTE)
    elif state == ARRANGED and discharged is None:
        soonest = cutoff + FIVE_MINUTES
        expected = max(expected, soonest - soonest % FIVE_MINUTES + FIVE_MINUTES)
    elif state == ON_THE_WAY:
        on_the_way_at = _between(rng, max(arranged_at + 30, cutoff - 12 * MINUTE), cutoff - 20)
        on_the_way_at = min(max(on_the_way_at, arranged_at), cutoff - 1)
        eta_at = cutoff + rng.randint(5, 25) * MINUTE
        eta_at -= eta_at % MINUTE
    elif state in (ARRIVED, CALLED_THEN_ARRIVED):
        arrived_at = _arrived_at(
            rng, arranged_at=arranged_at, ready=ready, discharged=discharged, cutoff=cutoff
        )
        if state != ARRIVED:
            on_the_way_at = max(arranged_at, arrived_at - rng.randint(10, 35) * MINUTE)
            eta_at = arrived_at + rng.randint(-4, 4) * MINUTE
            eta_at = max(on_the_way_at, eta_at - eta_at % MINUTE)

    stamp = rows.stamp
    changes = [(ARRANGED, arranged_at, site.front_desk_id)]
    if on_the_way_at is not None:
        changes.append((ON_THE_WAY, on_the_way_at, site.front_desk_id))
    if arrived_at is not None:
        changes.append((ARRIVED, arrived_at, nurse))
    pending = rows.pending["ride_change"]
    change_id = rows.next_id["ride_change"]
    rows.next_id["ride_change"] = change_id + len(changes)
    for version, (ride_state, moment, staff_id) in enumerate(changes, start=1):
        pending.append(
            (
                change_id + version - 1,
                session_id,
                version,
                ride_state,
                stamp(moment),
                staff_id,
                None,
                False,
            )
        )
    rows.pending["ride"].append(
        (
            rows.take_id("ride"),
            session_id,
            driver_name,
            driver_phone,
            relationship,
            stamp(expected),
            stamp.maybe(on_the_way_at),
            stamp.maybe(eta_at),
            stamp.maybe(arrived_at),
            len(changes),
        )
    )


def _between(rng: random.Random, low: int, high: int) -> int:
    """A moment from ``low`` to ``high``; ``high`` when the day left no room between them."""
    return rng.randint(low, high) if low < high else high
