"""One visit's rows: the session, its status history, the PHQ-9 before the dose,
vitals, side effects and the ride home, with everything that happened before ``cutoff``.

The session row and its history always agree (``lifecycle.history_agrees``): each
step is one history row, versions count from 2, and a step taken back is a row going
back with ``is_correction`` and a reason, followed by the step taken again.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ketadash.demo.lead_time import BookingTimes
from ketadash.demo.monitoring import write_vitals
from ketadash.demo.people import (
    CANCEL_REASONS,
    CORRECTION_REASONS,
    NO_SHOW_REASON,
    SIDE_EFFECT_CHANCES,
    DemoPatient,
)
from ketadash.demo.rems_forms import write_rems_form
from ketadash.demo.ride_home import write_ride
from ketadash.demo.visit_times import (
    ESKETAMINE,
    IV,
    IV_MG_PER_KG,
    LOZENGE_MG,
    MINUTE,
    esketamine_devices,
)
from ketadash.demo.writer import Rows
from ketadash.gates import ITEM9_ACKNOWLEDGEMENT
from ketadash.limits import ESKETAMINE_DEVICE_MG
from ketadash.models import Instrument, SessionStatus, Severity

if TYPE_CHECKING:
    from ketadash.demo.calendar import SiteCalendar

PHQ9 = Instrument.PHQ9.value
SCHEDULED = SessionStatus.SCHEDULED.value
CHECKED_IN = SessionStatus.CHECKED_IN.value
INFUSING = SessionStatus.INFUSING.value
RECOVERY = SessionStatus.RECOVERY.value
READY = SessionStatus.READY.value
DISCHARGED = SessionStatus.DISCHARGED.value
CANCELLED = SessionStatus.CANCELLED.value
NO_SHOW = SessionStatus.NO_SHOW.value
MILD, MODERATE, SEVERE = Severity.MILD.value, Severity.MODERATE.value, Severity.SEVERE.value
# Steps that may be taken back in the demo, and taken again later.
CORRECTABLE = tuple(CORRECTION_REASONS)


class VisitWriter:
    """Appends one visit's rows at a time to the demo's row buffers."""

    def __init__(self, *, rows: Rows, rng: random.Random, booking_times: BookingTimes) -> None:
        self.rows = rows
        self.rng = rng
        self.booking_times = booking_times

    def write(
        self,
        patient: DemoPatient,
        *,
        kind: str,
        phq: float,
        chair_id: int | None,
        scheduled: int,
        status: str,
        cutoff: int,
        checkin: int | None = None,
        start: int | None = None,
        end: int | None = None,
        ready: int | None = None,
        discharged: int | None = None,
        closed: int | None = None,
        taken_back: str | None = None,
        ride_state: str | None = None,
        earliest: int | None = None,
        asked_on: int | None = None,
        ahead_on: int | None = None,
    ) -> int:
        """Write one session with everything that happened in it before ``cutoff``.

        ``taken_back`` names a status whose step was first taken by mistake, taken back
        and taken again at its stamp (when the visit leaves room for it, no earlier than
        ``earliest``); ``ride_state`` is the ride's state now for a visit still open.
        ``asked_on`` and ``ahead_on`` say when it was booked (see ``lead_time``).
        Returns the session's id.
        """
        rng = self.rng
        rows = self.rows
        stamp = rows.stamp
        site = patient.site
        route = patient.route
        nurse = rng.choice(site.nurse_ids)
        session_id = rows.take_id("treatment_session")

        reached = [
            (to_status, moment)
            for to_status, moment in (
                (CHECKED_IN, checkin),
                (INFUSING, start),
                (RECOVERY, end),
                (READY, ready),
                (DISCHARGED, discharged),
            )
            if moment is not None
        ]
        reason, steps = self._steps(
            patient,
            status=status,
            reached=reached,
            nurse=nurse,
            scheduled=scheduled,
            closed=closed,
            taken_back=taken_back,
            earliest=earliest,
        )
        change_rows = rows.pending["status_change"]
        first_change = len(change_rows)
        change_id = rows.next_id["status_change"]
        for version, (from_status, to_status, moment, by, why, correction) in enumerate(
            steps, start=2
        ):
            change_id += 1
            change_rows.append(
                (
                    change_id - 1,
                    session_id,
                    version,
                    from_status,
                    to_status,
                    stamp(moment),
                    by,
                    why,
                    correction,
                )
            )
        rows.next_id["status_change"] = change_id

        devices = esketamine_devices(doses_before=patient.doses)
        weight = round(patient.weight + rng.gauss(0, 0.5), 1)
        per_kg, planned_mg, given = _dose(
            route, devices=devices, weight=weight, site=site, start=start
        )
        booked = self.booking_times.booked_at(
            site,
            scheduled=scheduled,
            asked_on=asked_on,
            ahead_on=ahead_on,
            no_show=status == NO_SHOW,
        )
        rows.pending["treatment_session"].append(
            (
                session_id,
                site.id,
                chair_id,
                patient.id,
                patient.id,  # one course per patient, numbered as the patient
                stamp(scheduled),
                site.times.planned_minutes(route, devices=devices),
                route,
                kind,
                per_kg,
                planned_mg,
                given,
                weight,
                status,
                stamp.maybe(checkin),
                stamp.maybe(start),
                stamp.maybe(end),
                stamp.maybe(ready),
                stamp.maybe(discharged),
                stamp.maybe(closed),
                reason,
                stamp(booked),
                len(steps) + 1,
            )
        )
        if checkin is None or reason is not None:
            return session_id

        # Before the dose: a PHQ-9 and a set of vitals, before the start or before now.
        limit = start if start is not None else cutoff
        span = limit - checkin
        taken = checkin + int(span * rng.uniform(0.05, 0.3))
        if taken % 60 == 0:
            taken += 1  # home scores sit on whole minutes; keep (patient, taken_at) unique
        total, item9 = self.score(patient, session_id, taken, phq, nurse)
        if item9 and start is not None:
            # As the start gate asks, the nurse did the C-SSRS screen before the dose, and
            # the start's history says so in the lifecycle's words.
            note = f"PHQ-9 item 9 answered {item9}: {ITEM9_ACKNOWLEDGEMENT}"
            for index in range(first_change, len(change_rows)):
                row = change_rows[index]
                if row[4] == INFUSING and not row[8]:
                    change_rows[index] = (*row[:7], note, row[8])
        if patient.baseline_total is None:
            patient.baseline_total = total
        before_at = checkin + int(span * rng.uniform(0.35, 0.8))
        write_vitals(
            rows,
            rng,
            patient=patient,
            session_id=session_id,
            nurse=nurse,
            start=start,
            end=end,
            ready=ready,
            before_at=before_at,
            cutoff=cutoff,
        )
        if start is not None:
            self._side_effects(patient, session_id, nurse, start, end, ready, cutoff)
            patient.doses += 1
        write_ride(
            rows,
            rng,
            patient=patient,
            session_id=session_id,
            nurse=nurse,
            checkin=checkin,
            start=start,
            end=end,
            ready=ready,
            discharged=discharged,
            cutoff=cutoff,
            state=ride_state,
        )
        if route == ESKETAMINE and start is not None:
            write_rems_form(rows, session_id=session_id, nurse=nurse, start=start, ready=ready,
                            discharged=discharged, cutoff=cutoff)  # fmt: skip
        return session_id

    def _steps(
        self,
        patient: DemoPatient,
        *,
        status: str,
        reached: list[tuple[str, int]],
        nurse: int,
        scheduled: int,
        closed: int | None,
        taken_back: str | None,
        earliest: int | None,
    ) -> tuple[str | None, list[tuple]]:
        """The visit's steps (from, to, moment, by, reason, correction) and the reason it
        closed: a cancel or no-show, or each status reached, with a step taken back."""
        rng = self.rng
        site = patient.site
        moments = dict(reached)
        checkin, start, end, ready = (
            moments.get(CHECKED_IN),
            moments.get(INFUSING),
            moments.get(RECOVERY),
            moments.get(READY),
        )
        reason = None
        steps: list[tuple[str, str, int | None, int, str | None, bool]]
        if status in (CANCELLED, NO_SHOW):
            reason = NO_SHOW_REASON if status == NO_SHOW else rng.choice(CANCEL_REASONS)
            steps = [(SCHEDULED, status, closed, site.front_desk_id, reason, False)]
        else:
            mistake = None
            if taken_back is not None:
                mistake = self._mistake(
                    patient,
                    taken_back,
                    scheduled=scheduled,
                    checkin=checkin,
                    start=start,
                    end=end,
                    ready=ready,
                    earliest=earliest,
                )
            steps = []
            previous = SCHEDULED
            for to_status, moment in reached:
                if mistake is not None and to_status == taken_back:
                    mistaken_at, taken_back_at = mistake
                    steps.append((previous, to_status, mistaken_at, nurse, None, False))
                    steps.append(
                        (
                            to_status,
                            previous,
                            taken_back_at,
                            nurse,
                            CORRECTION_REASONS[to_status],
                            True,
                        )
                    )
                steps.append((previous, to_status, moment, nurse, None, False))
                previous = to_status
        return reason, steps

    def _mistake(
        self,
        patient: DemoPatient,
        status: str,
        *,
        scheduled: int,
        checkin: int | None,
        start: int | None,
        end: int | None,
        ready: int | None,
        earliest: int | None,
    ) -> tuple[int, int] | None:
        """(mistaken step, taken back) moments before the step's real moment, or None."""
        times = patient.site.times
        if status == CHECKED_IN and checkin is not None:
            low = max(checkin - 15 * MINUTE, scheduled - 30 * MINUTE)
            high = checkin - 2 * MINUTE
            real = checkin
        elif status == RECOVERY and start is not None and end is not None:
            low, high, real = start + (end - start) // 2, end - 90, end
        elif status == READY and end is not None and ready is not None:
            # A nurse can only mark ready once the minimum recovery has passed.
            anchor = start if times.recovery_counts_from_start(patient.route) else end
            if anchor is None:
                raise ValueError(
                    "A visit marked ready was dosed first: its recovery counts from its dose."
                )
            low = max(end, anchor + times.min_recovery(patient.route) * MINUTE)
            high, real = ready - 2 * MINUTE, ready
        else:
            return None
        if earliest is not None:
            low = max(low, earliest)
        if high - low < MINUTE:
            return None
        mistaken_at = self.rng.randint(low, high)
        room = min(3 * MINUTE, (real - mistaken_at) // 2)
        return mistaken_at, mistaken_at + self.rng.randint(min(30, room), room)

    def score(
        self,
        patient: DemoPatient,
        session_id: int | None,
        taken: int,
        level: float,
        staff: int | None,
        *,
        at_least: int = 0,
        at_most: int = 27,
    ) -> tuple[int, int]:
        """Write a PHQ-9 near ``level`` (within ``at_least``..``at_most``); returns its total
        and its item 9."""
        rng = self.rng
        total = min(27, max(0, round(level + rng.gauss(0, 1.3))))
        total = min(at_most, max(at_least, total))
        flag_chance = 0.01 + (0.10 if total >= 20 else 0.04 if total >= 15 else 0.0)
        item9 = 0
        if rng.random() < flag_chance:
            item9 = 2 if rng.random() < 0.2 else 1
        rows = self.rows
        rows.pending["outcome_score"].append(
            (
                rows.take_id("outcome_score"),
                patient.id,
                session_id,
                PHQ9,
                rows.stamp(taken),
                total,
                item9,
                staff,
            )
        )
        return total, item9

    def _side_effects(
        self,
        patient: DemoPatient,
        session_id: int,
        nurse: int,
        start: int,
        end: int | None,
        ready: int | None,
        cutoff: int,
    ) -> None:
        rng = self.rng
        random_ = rng.random
        rows = self.rows
        stop = end if end is not None else cutoff - 1
        if patient.route == ESKETAMINE and end is not None:
            # Dissociation and sedation after a spray peak around 40 min (J&J, S16).
            stop = min(start + 45 * MINUTE, ready if ready is not None else cutoff - 1)
        for effect, chance in SIDE_EFFECT_CHANCES[patient.route]:
            if random_() < chance:
                draw = random_()
                severity = MILD if draw < 0.76 else MODERATE if draw < 0.97 else SEVERE
                observed = start + int((stop - start) * (0.2 + 0.8 * random_()))
                rows.pending["side_effect_observation"].append(
                    (
                        rows.take_id("side_effect_observation"),
                        session_id,
                        rows.stamp(observed),
                        effect,
                        severity,
                        nurse,
                    )
                )
                if severity != MILD and ready is not None and observed < ready:
                    # The ready gate wants side effects no worse than mild: the nurse
                    # recorded this one settling before the patient was marked ready.
                    rows.pending["side_effect_observation"].append(
                        (
                            rows.take_id("side_effect_observation"),
                            session_id,
                            rows.stamp(observed + (ready - observed) // 2),
                            effect,
                            MILD,
                            nurse,
                        )
                    )


def _dose(
    route: str, *, devices: int, weight: float, site: SiteCalendar, start: int | None
) -> tuple[float | None, float | None, float | None]:
    """The plan (mg/kg, fixed mg) of the patient's route, and the mg given once started."""
    if route == IV:
        return (
            IV_MG_PER_KG,
            None,
            (_drawn_up(IV_MG_PER_KG * weight, site) if start is not None else None),
        )
    planned_mg = LOZENGE_MG
    if route == ESKETAMINE:
        planned_mg = float(devices * ESKETAMINE_DEVICE_MG)
    return None, planned_mg, planned_mg if start is not None else None


def _drawn_up(planned_mg: float, site: SiteCalendar) -> float:
    """The IV dose a nurse draws up: the whole mg (10 mg/mL, to 0.1 mL), or the tenth of
    a mg when the site's dose tolerance is too tight for whole mg."""
    whole = float(round(planned_mg))
    tolerance = site.times.settings.dose_tolerance_percent
    if abs(whole - planned_mg) / planned_mg * 100 <= tolerance:
        return whole
    return round(planned_mg, 1)
