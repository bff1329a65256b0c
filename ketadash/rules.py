"""What a visit means at a moment: its route's phases, its clocks, vitals due and alerts.

Plain functions of ``(visit, settings, now)``: no database, no Streamlit. Every
screen (Today, Recovery, the wall) and every write reads the same answers here.

Each route has its own phases (issue 6): an IV infusion runs for its planned
minutes and recovery counts from its end; esketamine is a few 28 mg nasal devices
a few minutes apart and its observation of at least two hours counts from the
first device (REMS form); a lozenge is held for a while and observation counts
from its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from ketadash.clock import to_local, whole_minutes_between
from ketadash.limits import ESKETAMINE_DEVICE_MG
from ketadash.models import Route, Severity, SideEffect, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.settings import ClinicSettings
from ketadash.visits import Visit
from ketadash.vitals import Alert, vitals_alerts

DEFAULT_SETTINGS = ClinicSettings()


@dataclass(frozen=True, kw_only=True)
class RouteProtocol:
    """The phases of one route: the dose and the observation after it."""

    dose_label: str
    dose_minutes: int
    observation_label: str
    observation_minutes: int
    # Esketamine's observation is timed from the first device, not from the last.
    observation_from_dose_start: bool


def esketamine_devices(mg: float | None) -> int:
    """Whole 28 mg devices in a dose (at least one)."""
    return max(1, round((mg or ESKETAMINE_DEVICE_MG) / ESKETAMINE_DEVICE_MG))


class RouteFacts(Protocol):
    """What ``route_protocol`` reads of a visit (a ``Visit``, or the driver link's
    route-only facts, which have no dose)."""

    @property
    def route(self) -> Route: ...
    @property
    def planned_minutes(self) -> int | None: ...
    @property
    def dose_mg(self) -> float | None: ...
    @property
    def given_dose_mg(self) -> float | None: ...


def route_protocol(visit: RouteFacts, settings: ClinicSettings) -> RouteProtocol:
    """The phases and their minutes for the visit's route, from the clinic settings."""
    observation = settings.min_recovery_minutes(visit.route)
    if visit.route == Route.ESKETAMINE:
        devices = esketamine_devices(visit.given_dose_mg or visit.dose_mg)
        return RouteProtocol(
            dose_label="Devices",
            dose_minutes=(devices - 1) * settings.esketamine_device_interval_minutes,
            observation_label="Observation",
            observation_minutes=observation,
            observation_from_dose_start=True,
        )
    if visit.route == Route.LOZENGE:
        return RouteProtocol(
            dose_label="Lozenge",
            dose_minutes=settings.lozenge_dose_minutes,
            observation_label="Observation",
            observation_minutes=observation,
            observation_from_dose_start=False,
        )
    return RouteProtocol(
        dose_label="Dose",
        dose_minutes=visit.planned_minutes or settings.planned_infusion_minutes,
        observation_label="Recovery",
        observation_minutes=observation,
        observation_from_dose_start=False,
    )


def observation_start(visit: Visit, settings: ClinicSettings) -> datetime | None:
    """When the route's observation clock starts: the first device, or the dose's end."""
    if route_protocol(visit, settings).observation_from_dose_start:
        return visit.infusion_started_at
    return visit.infusion_ended_at


# --- clocks --------------------------------------------------------------------------------


class Passing(StrEnum):
    """What passing a clock's target means: "good" (may go home) or "bad" (dose over plan)."""

    GOOD = "good"
    BAD = "bad"


@dataclass(frozen=True, kw_only=True)
class Timer:
    """A phase clock: minutes so far against the target; frozen once the phase ends."""

    label: str
    minutes: int
    target: int | None
    running: bool
    passing: Passing | None = None

    @property
    def over(self) -> bool:
        return self.target is not None and self.minutes > self.target

    @property
    def reached(self) -> bool:
        return self.target is not None and self.minutes >= self.target

    @property
    def overdue(self) -> bool:
        """Past a target that should not be passed (a dose over its plan), still running."""
        return self.passing == Passing.BAD and self.running and self.over

    @property
    def done(self) -> bool:
        """A target that is good to reach (the minimum observation) has been reached."""
        return self.passing == Passing.GOOD and self.reached

    @property
    def text(self) -> str:
        target = f" / {self.target}" if self.target is not None else ""
        return f"{self.label} {self.minutes}{target} min"


def dose_timer(visit: Visit, now: datetime, settings: ClinicSettings | None = None) -> Timer | None:
    """Minutes of the dose phase against the route's plan; stops when the dose ends."""
    if visit.infusion_started_at is None:
        return None
    protocol = route_protocol(visit, settings or DEFAULT_SETTINGS)
    end = visit.infusion_ended_at or now
    return Timer(
        label=protocol.dose_label,
        minutes=whole_minutes_between(visit.infusion_started_at, end),
        target=protocol.dose_minutes,
        running=visit.infusion_ended_at is None,
        passing=Passing.BAD,
    )


def recovery_timer(visit: Visit, settings: ClinicSettings, now: datetime) -> Timer | None:
    """Minutes of observation against the route's minimum; stops when marked ready."""
    start = observation_start(visit, settings)
    if start is None:
        return None
    protocol = route_protocol(visit, settings)
    end = visit.ready_at or visit.discharged_at or now
    return Timer(
        label=protocol.observation_label,
        minutes=whole_minutes_between(start, end),
        target=protocol.observation_minutes,
        running=visit.ready_at is None and visit.discharged_at is None,
        passing=Passing.GOOD,
    )


def waiting_timer(visit: Visit, now: datetime) -> Timer | None:
    """Minutes since ready to go: how long the patient has waited for the ride."""
    if visit.ready_at is None:
        return None
    end = visit.discharged_at or now
    return Timer(
        label="Waiting",
        minutes=whole_minutes_between(visit.ready_at, end),
        target=None,
        running=visit.discharged_at is None,
    )


def visit_timers(visit: Visit, settings: ClinicSettings, now: datetime) -> tuple[Timer, ...]:
    """The clocks that apply to the visit, in phase order."""
    return tuple(
        t
        for t in (
            dose_timer(visit, now, settings),
            recovery_timer(visit, settings, now),
            waiting_timer(visit, now),
        )
        if t is not None
    )


# --- vitals due ----------------------------------------------------------------------------


def vitals_due_in(visit: Visit, settings: ClinicSettings, now: datetime) -> int | None:
    """Minutes until the next vitals check (negative when overdue); None when none is due.

    A visit under way keeps its clock whatever day it was booked (issue 6: a patient
    still infusing after midnight is still watched). A latest reading that raised an
    alert (during or after the dose) is due again ``recheck_after_alert_minutes`` after
    it was taken, across the end of the dose too.
    """
    if visit.status == S.CHECKED_IN:
        if visit.baseline is None and visit.checked_in_at is not None:
            # Pre-infusion vitals are due once the patient has settled in the chair.
            due = visit.checked_in_at + timedelta(minutes=settings.vitals_every_during_minutes)
            return _minutes_until(due, now)
        return None
    if visit.status == S.INFUSING:
        phase, since, every = (
            VitalsPhase.DURING,
            visit.infusion_started_at,
            settings.vitals_every_during_minutes,
        )
    elif visit.status in (S.RECOVERY, S.READY):
        phase, since, every = (
            VitalsPhase.AFTER,
            visit.infusion_ended_at,
            settings.vitals_every_after_minutes,
        )
    else:
        return None
    if since is None:
        return None
    last = since
    latest = visit.latest
    if latest is not None and latest.phase == phase:
        last = max(since, latest.taken_at)
    due = last + timedelta(minutes=every)
    # A reading that raised an alert is rechecked as soon as the alert says, even when
    # the phase changed since (BP 188/112 a minute before End dose is still rechecked
    # five minutes after it was taken, not an interval after the end).
    if (
        latest is not None
        and latest.phase != VitalsPhase.BEFORE
        and vitals_alerts(latest.vitals, phase=latest.phase, settings=settings)
    ):
        due = min(due, latest.taken_at + timedelta(minutes=settings.recheck_after_alert_minutes))
    bp_check = esketamine_bp_due_at(visit, settings)
    if bp_check is not None:
        due = min(due, bp_check)
    return _minutes_until(due, now)


# A reading this many minutes before the esketamine BP check's time counts as that check:
# the label asks for a blood pressure "about" 40 minutes after dosing.
ESKETAMINE_BP_EARLY_MINUTES = 5


def esketamine_bp_window(
    first_device_at: datetime, settings: ClinicSettings
) -> tuple[datetime, datetime]:
    """When a reading counts as the esketamine BP check: from ``ESKETAMINE_BP_EARLY_MINUTES``
    before ``esketamine_bp_check_minutes`` after the first device, to twice that after it."""
    minutes = settings.esketamine_bp_check_minutes
    return (
        first_device_at + timedelta(minutes=minutes - ESKETAMINE_BP_EARLY_MINUTES),
        first_device_at + timedelta(minutes=2 * minutes),
    )


def esketamine_bp_due_at(visit: Visit, settings: ClinicSettings) -> datetime | None:
    """When the esketamine blood pressure check (about 40 min after the first device;
    Spravato label, REMS form) is due, while it is still to take; None for other routes,
    before the first device, once a reading counts for it, or once the patient has left."""
    if visit.route != Route.ESKETAMINE or visit.infusion_started_at is None:
        return None
    if visit.status not in (S.INFUSING, S.RECOVERY, S.READY):
        return None
    earliest, _ = esketamine_bp_window(visit.infusion_started_at, settings)
    latest = visit.latest
    if latest is not None and latest.taken_at >= earliest:
        # Readings only move forward: the latest counts if any one does.
        return None
    return visit.infusion_started_at + timedelta(minutes=settings.esketamine_bp_check_minutes)


def esketamine_bp_due_in(visit: Visit, settings: ClinicSettings, now: datetime) -> int | None:
    """Minutes until the esketamine BP check (negative when overdue), None when not due."""
    due = esketamine_bp_due_at(visit, settings)
    return None if due is None else _minutes_until(due, now)


def _minutes_until(due: datetime, now: datetime) -> int:
    """Whole minutes until ``due``: rounded up while ahead, down (negative) once past."""
    seconds = (due - now).total_seconds()
    return int(seconds // 60) if seconds < 0 else int(-(-seconds // 60))


# --- alerts --------------------------------------------------------------------------------


def item9_answer(visit: Visit) -> int | None:
    """The highest PHQ-9 item 9 answered at this visit (None: no PHQ-9 yet).

    The highest, not the latest: a second score at the same visit (a correction) keeps
    both in the history and cannot take a positive answer out of sight.
    """
    answers = [a for a in (visit.phq9_item9_highest, visit.phq9_item9) if a is not None]
    return max(answers) if answers else None


def item9_flagged(visit: Visit, settings: ClinicSettings) -> bool:
    """PHQ-9 item 9 at or above the clinic's flag (self-harm thoughts) at this visit."""
    answer = item9_answer(visit)
    return answer is not None and answer >= settings.phq9_item9_flag_at


def weight_change_percent(visit: Visit, weight_kg: float | None = None) -> float | None:
    """How far ``weight_kg`` (or the visit's weight) is from the last recorded one, in %."""
    weight = weight_kg if weight_kg is not None else visit.weight_kg
    if weight is None or not visit.previous_weight_kg:
        return None
    return abs(weight - visit.previous_weight_kg) / visit.previous_weight_kg * 100


def session_alerts(
    visit: Visit, settings: ClinicSettings, now: datetime, *, time_zone: str
) -> list[Alert]:
    """The few alerts that matter for one visit now, each with what to do next."""
    alerts: list[Alert] = []
    if visit.earlier_day:
        day = to_local(visit.scheduled_start, time_zone).strftime("%a %d %b")
        alerts.append(
            Alert(
                level="warning",
                what=f"Left open from {day} ({visit.status.label.lower()})",
                action=(
                    "If the patient is still here, carry on as usual; otherwise close the "
                    "record: finish the visit, mark a no-show, or take back the step."
                ),
            )
        )
    before_dose = visit.status in (S.SCHEDULED, S.CHECKED_IN)
    # After the dose the flag stays on the card; the alert is for before it.
    if before_dose and item9_flagged(visit, settings):
        alerts.append(
            Alert(
                level="danger",
                what=f"PHQ-9 item 9 answered {item9_answer(visit)} (self-harm thoughts)",
                action="Do the C-SSRS screen and tell the physician before the dose.",
            )
        )
    if visit.status == S.SCHEDULED and not visit.earlier_day:
        late = whole_minutes_between(visit.scheduled_start, now)
        if now > visit.scheduled_start and late >= settings.late_arrival_minutes:
            alerts.append(
                Alert(
                    level="warning",
                    what=f"Not arrived, {late} min late",
                    action="Call the patient; mark a no-show if they are not coming.",
                )
            )
    if visit.status == S.CHECKED_IN and visit.baseline is not None:
        alerts.extend(
            vitals_alerts(visit.baseline.vitals, phase=VitalsPhase.BEFORE, settings=settings)
        )
    latest = visit.latest
    watching = visit.status in (S.INFUSING, S.RECOVERY, S.READY)
    if watching and latest is not None and latest.phase != VitalsPhase.BEFORE:
        alerts.extend(vitals_alerts(latest.vitals, phase=latest.phase, settings=settings))
    if watching:
        alerts.extend(severe_side_effect_alerts(visit))
    dose = dose_timer(visit, now, settings)
    if dose is not None and dose.overdue:
        alerts.append(
            Alert(
                level="warning",
                what=f"Dose running {dose.minutes} min, planned {dose.target}",
                action="End the dose now, or note why it continues.",
            )
        )
    due = vitals_due_in(visit, settings, now)
    if due is not None and due < 0:
        alerts.append(
            Alert(
                level="warning",
                what=f"Vitals overdue by {-due} min",
                action="Take a set of vitals now.",
            )
        )
    return alerts


def severe_side_effect_alerts(visit: Visit) -> list[Alert]:
    """A side effect whose last recording is severe, from the dose on: the card shows it in
    small print, the whole room should see it (for sedation, "moderate or worse" is MOAA/S 3
    or lower in the esketamine trials; severe is the nurse's own top grade)."""
    return [
        Alert(
            level="danger",
            what=f"Severe {SideEffect(effect).label.lower()} recorded",
            action=(
                "Stay with the patient, check breathing and SpO2, and tell the physician; "
                "record it again as it settles."
            ),
        )
        for effect, severity in visit.side_effects
        if severity == Severity.SEVERE
    ]
