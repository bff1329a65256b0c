"""Booking a visit: a free chair from a given day, and what became of the booking.

A booking on the site's today is set aside for today's layout; one after today stays
booked; an earlier one was attended, missed (about 5% no-shows, 3% cancelled, the
benchmarks in clinic-facts) or, now and then, had a step taken back and taken again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TypedDict

from ketadash.demo.calendar import ChairBook
from ketadash.demo.people import DemoPatient
from ketadash.demo.visit import (
    CANCELLED,
    CORRECTABLE,
    DISCHARGED,
    NO_SHOW,
    SCHEDULED,
    VisitWriter,
)
from ketadash.demo.visit_times import (
    ARRIVAL_MINUTES,
    MINUTE,
    RIDE_WAIT_MINUTES,
    SLOT_MINUTES,
    WAIT_MINUTES,
    esketamine_devices,
)

NO_SHOW_RATE = 0.05
CANCEL_RATE = 0.03
# Taken-back steps are rare: a wrong patient checked in, a dose ended too soon.
TAKEN_BACK_RATE = 0.006

TodayCandidate = tuple[DemoPatient, str, float]


class Asked(TypedDict):
    """The days a booking was asked for and could have been made on (``lead_time``)."""

    asked_on: int | None
    ahead_on: int | None


@dataclass(slots=True)
class SiteQueues:
    """Patients who could come today at one site, in the order they are asked."""

    due: list[TodayCandidate] = field(default_factory=list)
    # When too few were due: active courses first, then patients back after a break.
    stand_ins: list[TodayCandidate] = field(default_factory=list)
    returning: list[TodayCandidate] = field(default_factory=list)


class VisitBooking:
    """Books visits into the chair book and writes what became of each."""

    def __init__(
        self,
        *,
        rng: random.Random,
        visits: VisitWriter,
        book: ChairBook,
        today: list[SiteQueues],
    ) -> None:
        self.rng = rng
        self.visits = visits
        self.chairs = book
        self.today = today

    def book(
        self,
        patient: DemoPatient,
        day: int,
        kind: str,
        phq: float,
        *,
        tries: int,
        asked_on: int | None = None,
        ahead_on: int | None = None,
    ) -> tuple[str, int | None]:
        """Book a session from ``day``: ("attended" | "missed" | "future" | "today", day).

        ("full", None) when no chair was free within ``tries`` open days. ``asked_on`` is
        the day the booking was asked for, ``ahead_on`` an earlier day it could have been
        made on (the visit before); both may be None (``lead_time`` draws one).
        """
        site = patient.site
        if day == site.today:
            self.today[site.index].due.append((patient, kind, phq))
            patient.doses += 1
            return "today", day
        found = self.chairs.book(
            site=site,
            day=day,
            units=patient.units,
            preferred=patient.slot,
            tries=tries,
            last_day=site.horizon,
        )
        if found is None:
            return "full", None
        booked_day, slot, chair = found
        scheduled = site.opening(booked_day) + slot * SLOT_MINUTES * MINUTE
        chair_id = site.chair_ids[chair]
        visits = self.visits
        asked: Asked = {"asked_on": asked_on, "ahead_on": ahead_on}
        if booked_day > site.today:
            visits.write(
                patient,
                kind=kind,
                phq=phq,
                chair_id=chair_id,
                scheduled=scheduled,
                status=SCHEDULED,
                cutoff=scheduled,
                **asked,
            )
            return "future", booked_day
        rng = self.rng
        draw = rng.random()
        if draw < NO_SHOW_RATE:
            closed = scheduled + rng.randint(30, 75) * MINUTE
            visits.write(
                patient,
                kind=kind,
                phq=phq,
                chair_id=chair_id,
                scheduled=scheduled,
                status=NO_SHOW,
                closed=closed,
                cutoff=closed,
                **asked,
            )
            return "missed", booked_day
        if draw < NO_SHOW_RATE + CANCEL_RATE:
            closed = scheduled - rng.randint(90, 48 * 60) * MINUTE
            visits.write(
                patient,
                kind=kind,
                phq=phq,
                chair_id=chair_id,
                scheduled=scheduled,
                status=CANCELLED,
                closed=closed,
                cutoff=scheduled,
                **asked,
            )
            return "missed", booked_day
        self._attend(patient, kind, phq, chair_id, scheduled, asked)
        return "attended", booked_day

    def _attend(
        self,
        patient: DemoPatient,
        kind: str,
        phq: float,
        chair_id: int,
        scheduled: int,
        asked: Asked,
    ) -> None:
        rng = self.rng
        uniform = rng.uniform
        route = patient.route
        times = patient.site.times
        checkin = scheduled + uniform(*ARRIVAL_MINUTES[route]) * MINUTE
        start = checkin + uniform(*WAIT_MINUTES[route]) * MINUTE
        devices = esketamine_devices(doses_before=patient.doses)
        end = start + uniform(*times.dose_minutes(route, devices=devices)) * MINUTE
        low, high = times.recovery_minutes(route)
        recovery = uniform(low, high) * MINUTE
        observed_from = start if times.recovery_counts_from_start(route) else end
        ride_wait = RIDE_WAIT_MINUTES * rng.random() ** 2 * MINUTE
        # Discharge must fit inside the chair's block: wait less for the ride, or leave
        # sooner within the recovery range.
        limit = scheduled + (times.block_minutes(route) - 1) * MINUTE
        over = observed_from + recovery + ride_wait - limit
        if over > 0:
            # Those who must leave by the block's end go at scattered minutes, not all on its last.
            over += rng.randint(0, 10 * MINUTE)
            cut = min(over, ride_wait)
            ride_wait -= cut
            over -= cut
            if over > 0:
                recovery = max(low * MINUTE + 30, recovery - over)
        ready = observed_from + recovery
        taken_back = None
        if rng.random() < TAKEN_BACK_RATE:
            taken_back = rng.choice(CORRECTABLE)
        self.visits.write(
            patient,
            kind=kind,
            phq=phq,
            chair_id=chair_id,
            scheduled=scheduled,
            status=DISCHARGED,
            checkin=int(checkin),
            start=int(start),
            end=int(end),
            ready=int(ready),
            discharged=int(ready + ride_wait),
            cutoff=int(ready + ride_wait) + 1,
            taken_back=taken_back,
            **asked,
        )
