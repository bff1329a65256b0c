"""Today's layout: every chair busy and every state on the board, around the moment now.

Laid out inside the site's local day, even at night, and only as the gates allow: a
visit keeps every interval a rule sets (the dose, the route's minimum observation,
the readings before the start), and only the free parts (how long a patient waited,
stayed on after the minimum, waited for the ride) are shortened to fit the part of
the day that has passed. A visit that still does not fit is shown one step earlier
(at 00:03 nobody can have been in recovery for 30 minutes yet), and the visits that
were over before it are left out. Patients still here have their ride home in
every state (none yet, arranged, on the way, late, arrived), one of them had a step
taken back and taken again, and the recovery area shows patients with and without
a display alias.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from ketadash.demo.booking import TodayCandidate
from ketadash.demo.calendar import SiteCalendar
from ketadash.demo.people import DemoPatient
from ketadash.demo.ride_home import ARRANGED, ARRIVED, LATE, NONE, ON_THE_WAY
from ketadash.demo.visit import (
    CANCELLED,
    CHECKED_IN,
    DISCHARGED,
    INFUSING,
    NO_SHOW,
    READY,
    RECOVERY,
    SCHEDULED,
    VisitWriter,
)
from ketadash.demo.visit_times import (
    ESKETAMINE,
    MINUTE,
    RIDE_WAIT_MINUTES,
    WAIT_MINUTES,
    esketamine_devices,
)

NOT_ARRIVED = "late"  # a booking whose patient is late: a layout word only
# The state each chair is in now: one or two late, one not due yet.
CHAIR_STATES = [INFUSING, RECOVERY, READY, CHECKED_IN, NOT_ARRIVED, SCHEDULED, INFUSING, RECOVERY]
CHAIR_STATES += [NOT_ARRIVED, READY, CHECKED_IN, INFUSING, SCHEDULED]
# The ride home of patients still here, in turn per state: all five states at six chairs
# (with the rides of those already gone home, which arrived).
RIDE_TURNS = {
    READY: (LATE, ARRIVED, ON_THE_WAY),
    RECOVERY: (ON_THE_WAY, ARRANGED, NONE),
    INFUSING: (ARRANGED, NONE),
    CHECKED_IN: (NONE, ARRANGED),
}
# The steps taken back today, on the first patient in each of these states.
TAKEN_BACK_TODAY = {RECOVERY: RECOVERY, CHECKED_IN: CHECKED_IN, DISCHARGED: READY}
OPEN = (CHECKED_IN, INFUSING, RECOVERY, READY)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of a visit before a moment: as drawn, and the least it may be shortened to.

    The least is what a rule needs (the minimum observation, the dose itself): fitting a
    visit into a short day shortens only what lies above it.
    """

    drawn: float
    least: float

    @classmethod
    def fixed(cls, seconds: float) -> Span:
        return cls(drawn=seconds, least=seconds)

    @classmethod
    def free(cls, seconds: float, *, least: float = 0.0) -> Span:
        return cls(drawn=seconds, least=min(least, seconds))


# A visit on today's board, one step earlier when the day is too young for it.
EARLIER_STATE = {
    READY: RECOVERY,
    RECOVERY: INFUSING,
    INFUSING: CHECKED_IN,
    CHECKED_IN: NOT_ARRIVED,
    NOT_ARRIVED: SCHEDULED,
}
# The least wait from check-in to the dose: the PHQ-9 and a set of vitals come first.
LEAST_WAIT_MINUTES = 3
# Seconds kept free at the start of the local day, so nothing is stamped before it.
DAY_START_MARGIN = 30
# Minutes into the day before anybody is shown past their dose.
YOUNG_DAY_MINUTES = 30


def _fit(
    visit: TodayVisit, spans: list[tuple[str, Span]], *, at: float, room: float | None
) -> TodayVisit | None:
    """Stamp ``visit`` back from offset ``at`` along ``spans`` (moment name, span before it).

    With ``room`` (seconds of the day before now), the free parts are shortened evenly
    to fit; None when even the least of every span does not fit.
    """
    drawn = sum(span.drawn for _, span in spans)
    least = sum(span.least for _, span in spans)
    share = 1.0
    if room is not None:
        room_before = room + at
        if least > room_before:
            return None
        if drawn > room_before:
            share = (room_before - least) / (drawn - least)
    moment = at
    for name, span in spans:
        moment -= span.least + (span.drawn - span.least) * share
        setattr(visit, name, moment)
    return visit


def _reached(moment: float | None, step: str, visit: TodayVisit) -> float:
    """The moment of a step the visit's status says it has reached (laid out with it)."""
    if moment is None:
        raise ValueError(f"A {visit.status} visit has its {step} laid out: its status reached it.")
    return moment


@dataclass(slots=True)
class TodayVisit:
    """One of today's sessions, before its patient is known: offsets from now, in seconds."""

    chair: int
    status: str
    sched: float
    checkin: float | None = None
    start: float | None = None
    end: float | None = None
    ready: float | None = None
    discharged: float | None = None
    closed: float | None = None
    route: str | None = None

    def moments(self) -> list[float]:
        return [
            moment
            for moment in (
                self.sched,
                self.checkin,
                self.start,
                self.end,
                self.ready,
                self.discharged,
                self.closed,
            )
            if moment is not None
        ]


class TodayLayout:
    """Lays out one site's day around ``now`` (epoch seconds)."""

    def __init__(self, *, rng: random.Random, visits: VisitWriter, now: int, chairs: int) -> None:
        self.rng = rng
        self.visits = visits
        self.now = now
        self.chairs = chairs

    def lay_out(self, site: SiteCalendar, *, due: list[TodayCandidate]) -> None:
        """Write the site's day: visits already over, under way now, and still to come."""
        rng = self.rng
        now = self.now
        times = site.times
        day = date.fromordinal(site.today)
        day_start = int(datetime.combine(day, clock_time.min, site.zone).timestamp())
        day_end = int(
            datetime.combine(day + timedelta(days=1), clock_time.min, site.zone).timestamp()
        )
        past, future = now - day_start, day_end - now
        queue = _queue(due)
        # What each visit may reach back to: the start of the local day.
        room = max(0.0, past - DAY_START_MARGIN)
        currents = self._current_visits(site, queue=queue, room=room)
        required = self._required_visits(site, currents=currents, queue=queue, room=room)
        for visit, _ in currents:
            if visit.status == SCHEDULED:
                visit.sched = min(visit.sched, future / 2)

        visits = [*currents, *required.values()]
        for visit, candidate in currents:
            wanted = rng.choice((3, 4))
            count = 1 + (visit.chair in required)
            # One visit already over on each chair when the day allows, then the later ones.
            first = required[visit.chair][0] if visit.chair in required else visit
            earliest_allowed = 1 if visit.chair in required else 2
            count, first = self._add_earlier_visits(
                site,
                chair=visit.chair,
                first=first,
                count=count,
                up_to=min(wanted, earliest_allowed + 1),
                room=room,
                queue=queue,
                visits=visits,
            )
            # The next patient comes after the booking and after this one has gone home.
            free_at = max(
                visit.sched + times.block_minutes(candidate[0].route) * MINUTE,
                self._leaves(site, visit, candidate[0]),
            )
            next_sched = free_at + rng.randint(0, 6) * 5 * MINUTE
            while count < wanted and queue and next_sched < future - MINUTE:
                if next_sched > MINUTE:
                    later = TodayVisit(chair=visit.chair, status=SCHEDULED, sched=next_sched)
                    candidate = queue.pop()
                    visits.append((later, candidate))
                    count += 1
                block = times.block_minutes(candidate[0].route) * MINUTE
                next_sched += block + rng.randint(0, 6) * 5 * MINUTE
            count, first = self._add_earlier_visits(
                site,
                chair=visit.chair,
                first=first,
                count=count,
                up_to=wanted,
                room=room,
                queue=queue,
                visits=visits,
            )
        ride_turns = {status: 0 for status in RIDE_TURNS}
        taken_back = dict(TAKEN_BACK_TODAY)
        for visit, (patient, kind, phq) in visits:
            ride_state = None
            if visit.status in RIDE_TURNS:
                turns = RIDE_TURNS[visit.status]
                ride_state = turns[ride_turns[visit.status] % len(turns)]
                ride_turns[visit.status] += 1
            self._write(
                site,
                visit,
                patient,
                kind,
                phq,
                ride_state=ride_state,
                taken_back=taken_back.pop(visit.status, None),
                earliest=day_start,
            )

    def _add_earlier_visits(
        self,
        site: SiteCalendar,
        *,
        chair: int,
        first: TodayVisit,
        count: int,
        up_to: int,
        room: float,
        queue: list[TodayCandidate],
        visits: list[tuple[TodayVisit, TodayCandidate]],
    ) -> tuple[int, TodayVisit]:
        """Fill the chair backwards with visits already over, while the day before allows
        them as long as they were drawn (only the visits the board needs are shortened)."""
        while count < up_to and queue:
            patient = queue[-1][0]
            before = min(first.sched, -self.rng.randint(1, 10) * MINUTE)
            earlier = self._earlier_visit(site, chair, DISCHARGED, before, patient)
            if earlier is None:
                raise ValueError("A visit laid out as drawn (without a room to fit) always fits.")
            if min(earlier.moments()) < -room:
                break
            visits.append((earlier, queue.pop()))
            count += 1
            first = earlier
        return count, first

    def _current_visits(
        self, site: SiteCalendar, *, queue: list[TodayCandidate], room: float
    ) -> list[tuple[TodayVisit, TodayCandidate]]:
        """The visit in each chair now, in the chair's state, taken from ``queue``."""
        states = [
            CHAIR_STATES[n] if n < len(CHAIR_STATES) else CHAIR_STATES[n % 6]
            for n in range(self.chairs)
        ]
        currents: list[tuple[TodayVisit, TodayCandidate]] = []
        open_count = 0
        for chair, state in enumerate(states):
            if not queue:
                break
            want_alias = None
            if state in OPEN:
                # The wall shows aliases and chairs: patients here alternate between them.
                want_alias = open_count % 2 == 0
                open_count += 1
            candidate = _pop(queue, want_alias=want_alias)
            visit = self._current_visit(site, chair, state, candidate[0], room=room)
            currents.append((visit, candidate))
        return currents

    def _required_visits(
        self,
        site: SiteCalendar,
        *,
        currents: list[tuple[TodayVisit, TodayCandidate]],
        queue: list[TodayCandidate],
        room: float,
    ) -> dict[int, tuple[TodayVisit, TodayCandidate]]:
        """Earlier visits by chair: one discharge, one no-show, one cancellation."""
        # Earlier visits the board must also show: a discharge, a no-show, a cancellation.
        required: dict[int, tuple[TodayVisit, TodayCandidate]] = {}
        hosts = {INFUSING: DISCHARGED, RECOVERY: NO_SHOW, CHECKED_IN: CANCELLED}
        for visit, _ in currents:
            status = hosts.pop(visit.status, None)
            if status is not None and queue:
                earlier = self._earlier_visit(
                    site, visit.chair, status, visit.sched, queue[-1][0], room=room
                )
                if earlier is not None:
                    # Near midnight there may be no room for it: the board goes without.
                    required[visit.chair] = (earlier, queue.pop())
        return required

    def _dose_seconds(self, site: SiteCalendar, patient: DemoPatient) -> tuple[float, float]:
        devices = esketamine_devices(doses_before=patient.doses)
        low, high = site.times.dose_minutes(patient.route, devices=devices)
        return low * MINUTE, high * MINUTE

    def _current_visit(
        self, site: SiteCalendar, chair: int, state: str, patient: DemoPatient, *, room: float
    ) -> TodayVisit:
        """A visit in ``state`` now, or as far along as ``room`` seconds of the day allow."""
        if room < YOUNG_DAY_MINUTES * MINUTE and state in (RECOVERY, READY):
            # A short dose (esketamine) could fit, but a day this young shows nobody past
            # their dose: the board the demo promises (tests/test_demo.py).
            state = INFUSING
        while True:
            visit = self._visit_now(site, chair, state, patient, room=room)
            if visit is not None:
                return visit
            state = EARLIER_STATE[state]

    def _visit_now(
        self, site: SiteCalendar, chair: int, state: str, patient: DemoPatient, *, room: float
    ) -> TodayVisit | None:
        uniform = self.rng.uniform
        m = MINUTE
        route = patient.route
        times = site.times
        if state == SCHEDULED:
            return TodayVisit(chair=chair, status=SCHEDULED, sched=uniform(10, 75) * m)
        if state == NOT_ARRIVED:
            late_after = times.settings.late_arrival_minutes
            late = Span.free(
                uniform(late_after + 7, late_after + 25) * m, least=(late_after + 2) * m
            )
            visit = TodayVisit(chair=chair, status=NOT_ARRIVED, sched=0)
            return _fit(visit, [("sched", late)], at=0, room=room)
        wait = Span.free(uniform(*WAIT_MINUTES[route]) * m, least=LEAST_WAIT_MINUTES * m)
        dose = uniform(*self._dose_seconds(site, patient))
        low, _ = times.recovery_minutes(route)
        from_start = times.recovery_counts_from_start(route)
        arrived_early = Span.free(uniform(0, 15) * m)
        visit = TodayVisit(chair=chair, status=state, sched=0, route=route)
        if state == CHECKED_IN:
            spans = [("checkin", Span.free(uniform(3, 12) * m, least=2 * m))]
        elif state == INFUSING:
            longest = min(35, dose / m - 2)
            running = uniform(max(0.5, min(12, longest - 1)), max(1, longest)) * m
            spans = [("start", Span.free(running, least=0.5 * m)), ("checkin", wait)]
        elif state == RECOVERY:
            # Still short of the minimum recovery, wherever the route counts it from.
            shortest = low - 3 - (dose / m if from_start else 0)
            since_end = Span.free(uniform(8, max(9, min(25, shortest))) * m, least=m)
            spans = [("end", since_end), ("start", Span.fixed(dose)), ("checkin", wait)]
        else:
            since_ready = Span.free(uniform(2, 15) * m, least=m)
            observed = Span.free(
                uniform(low, low + 15) * m, least=self._least_observation(low, dose)
            )
            if from_start:
                spans = [("ready", since_ready), ("start", observed), ("checkin", wait)]
            else:
                spans = [
                    ("ready", since_ready),
                    ("end", observed),
                    ("start", Span.fixed(dose)),
                    ("checkin", wait),
                ]
        fitted = _fit(visit, [*spans, ("sched", arrived_early)], at=0, room=room)
        if fitted is not None and state == READY and from_start:
            fitted.end = _reached(fitted.start, "start", fitted) + dose
        return fitted

    @staticmethod
    def _least_observation(minimum: float, dose: float) -> float:
        # A minute over the route's minimum, so whole minutes on the clock reach it; and
        # never shorter than the dose (esketamine is observed from its first device).
        return max((minimum + 1) * MINUTE, dose + MINUTE)

    def _earlier_visit(
        self,
        site: SiteCalendar,
        chair: int,
        status: str,
        before: float,
        patient: DemoPatient,
        *,
        room: float | None = None,
    ) -> TodayVisit | None:
        """A visit over before offset ``before``: as drawn, or fitted into ``room`` seconds
        of the day before now (None when it does not fit even at the rules' minimum)."""
        rng = self.rng
        uniform = rng.uniform
        m = MINUTE
        route = patient.route
        times = site.times
        gap = Span.free(uniform(5, 20) * m, least=m)
        if status == NO_SHOW:
            late_after = times.settings.late_arrival_minutes
            waited = Span.free(uniform(30, 60) * m, least=(late_after + 5) * m)
            visit = TodayVisit(chair=chair, status=NO_SHOW, sched=0)
            return _fit(visit, [("closed", gap), ("sched", waited)], at=before, room=room)
        if status == CANCELLED:
            visit = TodayVisit(chair=chair, status=CANCELLED, sched=0)
            booked = Span.fixed(gap.drawn + times.block_minutes(route) * m)
            called = Span.free(uniform(30, 120) * m, least=2 * m)
            return _fit(visit, [("sched", booked), ("closed", called)], at=before, room=room)
        low, high = times.recovery_minutes(route)
        visit = TodayVisit(chair=chair, status=DISCHARGED, sched=0)
        ride_wait = Span.free(RIDE_WAIT_MINUTES * rng.random() ** 2 * m, least=0.5 * m)
        dose = uniform(*self._dose_seconds(site, patient))
        observed = Span.free(uniform(low, high) * m, least=self._least_observation(low, dose))
        wait = Span.free(uniform(*WAIT_MINUTES[route]) * m, least=LEAST_WAIT_MINUTES * m)
        arrived_early = Span.free(uniform(0, 15) * m)
        if times.recovery_counts_from_start(route):
            spans = [("ready", ride_wait), ("start", observed)]
        else:
            spans = [("ready", ride_wait), ("end", observed), ("start", Span.fixed(dose))]
        spans = [("discharged", gap), *spans, ("checkin", wait), ("sched", arrived_early)]
        fitted = _fit(visit, spans, at=before, room=room)
        if fitted is not None and fitted.end is None:
            fitted.end = _reached(fitted.start, "start", fitted) + dose
        return fitted

    def _leaves(self, site: SiteCalendar, visit: TodayVisit, patient: DemoPatient) -> float:
        """When a patient still in the clinic now will have gone home at the latest (offset)."""
        route = patient.route
        times = site.times
        ride = RIDE_WAIT_MINUTES * MINUTE
        recovery = times.recovery_minutes(route)[1] * MINUTE
        dose = self._dose_seconds(site, patient)[1]
        # From the start of the dose to ready, at the longest.
        if times.recovery_counts_from_start(route):
            start_to_ready = max(dose, recovery)
        else:
            start_to_ready = dose + recovery
        if visit.status == READY:
            return ride
        if visit.status == RECOVERY:
            if route == ESKETAMINE:
                return _reached(visit.start, "start", visit) + start_to_ready + ride
            return _reached(visit.end, "end", visit) + recovery + ride
        if visit.status == INFUSING:
            return _reached(visit.start, "start", visit) + start_to_ready + ride
        if visit.status == CHECKED_IN:
            checkin = _reached(visit.checkin, "check-in", visit)
            return checkin + WAIT_MINUTES[route][1] * MINUTE + start_to_ready + ride
        return visit.sched

    def _write(
        self,
        site: SiteCalendar,
        visit: TodayVisit,
        patient: DemoPatient,
        kind: str,
        phq: float,
        *,
        ride_state: str | None,
        taken_back: str | None,
        earliest: int,
    ) -> None:
        now = self.now

        def at(offset: float | None) -> int | None:
            return None if offset is None else now + math.floor(offset)

        self.visits.write(
            patient,
            kind=kind,
            phq=phq,
            chair_id=site.chair_ids[visit.chair],
            scheduled=now + math.floor(visit.sched),
            status=SCHEDULED if visit.status == NOT_ARRIVED else visit.status,
            cutoff=now,
            checkin=at(visit.checkin),
            start=at(visit.start),
            end=at(visit.end),
            ready=at(visit.ready),
            discharged=at(visit.discharged),
            closed=at(visit.closed),
            taken_back=taken_back,
            ride_state=ride_state,
            earliest=earliest,
        )


def _queue(due: list[TodayCandidate]) -> list[TodayCandidate]:
    """The day's candidates, each patient once, first due last (the queue pops)."""
    seen: set[int] = set()
    queue: list[TodayCandidate] = []
    for candidate in due:
        if candidate[0].id not in seen:
            seen.add(candidate[0].id)
            queue.append(candidate)
    queue.reverse()
    return queue


def _pop(queue: list[TodayCandidate], *, want_alias: bool | None) -> TodayCandidate:
    """The next candidate, preferring one with (or without) a display alias when asked."""
    if want_alias is not None:
        for position in range(len(queue) - 1, max(-1, len(queue) - 13), -1):
            if queue[position][0].has_alias == want_alias:
                return queue.pop(position)
    return queue.pop()
