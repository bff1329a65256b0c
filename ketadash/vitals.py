"""Vital signs: what is physically possible, and what the clinic wants to hear about.

Two different checks. A reading outside the physiological range is a typing
error and is refused before anything is stored. A possible reading outside the
clinic's thresholds is stored, because it happened, and raises an alert.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketadash.models import VitalsPhase
from ketadash.settings import ClinicSettings

# Not clinic settings: these bound what a monitor can show a living patient,
# so anything outside is a slip of the keyboard, whatever the clinic's protocol.
PHYSIOLOGICAL_RANGES: dict[str, tuple[int, int, str]] = {
    "systolic": (50, 300, "mmHg"),
    "diastolic": (20, 200, "mmHg"),
    "heart_rate": (20, 250, "bpm"),
    "spo2": (50, 100, "%"),
}

FIELD_LABELS = {
    "systolic": "Systolic",
    "diastolic": "Diastolic",
    "heart_rate": "Heart rate",
    "spo2": "SpO2",
}


@dataclass(frozen=True, kw_only=True)
class Vitals:
    systolic: int
    diastolic: int
    heart_rate: int
    spo2: int

    @property
    def blood_pressure(self) -> str:
        return f"{self.systolic}/{self.diastolic}"


@dataclass(frozen=True, kw_only=True)
class Alert:
    """Something a nurse should act on: what is wrong and what to do next."""

    level: str  # "danger" or "warning"
    what: str
    action: str


class VitalsRejected(ValueError):
    """The reading cannot be real; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems) + " Nothing was saved: check the monitor and retype.")
        self.problems = problems


def check_physiological(vitals: Vitals) -> None:
    """Raise VitalsRejected, naming every impossible value, if the reading cannot be real."""
    problems = []
    for name, (low, high, unit) in PHYSIOLOGICAL_RANGES.items():
        value = getattr(vitals, name)
        if not low <= value <= high:
            problems.append(
                f"{FIELD_LABELS[name]} {value} {unit} is not possible "
                f"(expected {low}–{high} {unit})."
            )
    if not problems and vitals.diastolic >= vitals.systolic:
        problems.append(
            f"Blood pressure {vitals.blood_pressure}: diastolic must be lower than systolic."
        )
    if problems:
        raise VitalsRejected(problems)


def above_hold(vitals: Vitals, settings: ClinicSettings) -> bool:
    """True when a pre-infusion blood pressure means no dose today without an override."""
    return vitals.systolic > settings.hold_systolic or vitals.diastolic > settings.hold_diastolic


# What a pre-infusion hold holds, as the history names it.
BP_HOLD, SPO2_HOLD = "BP", "SpO2"


@dataclass(frozen=True, kw_only=True)
class StartHold:
    """One reason pre-infusion vitals hold the dose: what is held (BP, SpO2) and why."""

    measure: str
    reason: str


def start_holds(vitals: Vitals, settings: ClinicSettings) -> list[StartHold]:
    """Why pre-infusion vitals hold the dose (empty when they do not): each needs an override."""
    holds = []
    if above_hold(vitals, settings):
        holds.append(
            StartHold(
                measure=BP_HOLD,
                reason=(
                    f"blood pressure {vitals.blood_pressure} is above the hold limit "
                    f"{settings.hold_systolic}/{settings.hold_diastolic}"
                ),
            )
        )
    if vitals.spo2 < settings.alert_spo2_below:
        holds.append(
            StartHold(
                measure=SPO2_HOLD,
                reason=f"SpO2 {vitals.spo2}% is below {settings.alert_spo2_below}%",
            )
        )
    return holds


def vitals_alerts(vitals: Vitals, *, phase: VitalsPhase, settings: ClinicSettings) -> list[Alert]:
    """The alerts a stored reading raises under the clinic's thresholds."""
    alerts = []
    if phase == VitalsPhase.BEFORE and above_hold(vitals, settings):
        alerts.append(
            Alert(
                level="warning",
                what=(
                    f"BP {vitals.blood_pressure} is above the pre-infusion hold "
                    f"{settings.hold_systolic}/{settings.hold_diastolic}"
                ),
                action=(
                    f"Recheck after {settings.recheck_after_alert_minutes} minutes' rest; "
                    "starting needs an override with a reason."
                ),
            )
        )
    if phase != VitalsPhase.BEFORE and (
        vitals.systolic >= settings.alert_systolic or vitals.diastolic >= settings.alert_diastolic
    ):
        alerts.append(
            Alert(
                level="danger",
                what=(
                    f"BP {vitals.blood_pressure} at or above the alert limit "
                    f"{settings.alert_systolic}/{settings.alert_diastolic}"
                ),
                action=(
                    "Tell the physician now and recheck in "
                    f"{settings.recheck_after_alert_minutes} minutes."
                ),
            )
        )
    if vitals.spo2 < settings.alert_spo2_below:
        alerts.append(
            Alert(
                level="danger",
                what=f"SpO2 {vitals.spo2}% below {settings.alert_spo2_below}%",
                action="Check breathing and the probe; tell the physician.",
            )
        )
    if vitals.heart_rate > settings.alert_heart_rate_high:
        alerts.append(
            Alert(
                level="warning",
                what=f"Heart rate {vitals.heart_rate} above {settings.alert_heart_rate_high}",
                action=(
                    f"Recheck in {settings.recheck_after_alert_minutes} minutes; "
                    "tell the physician if it stays high."
                ),
            )
        )
    elif vitals.heart_rate < settings.alert_heart_rate_low:
        alerts.append(
            Alert(
                level="warning",
                what=f"Heart rate {vitals.heart_rate} below {settings.alert_heart_rate_low}",
                action=(
                    f"Recheck in {settings.recheck_after_alert_minutes} minutes; "
                    "tell the physician if it stays low."
                ),
            )
        )
    return alerts


def back_to_baseline(
    latest: Vitals, baseline: Vitals, *, within_percent: int
) -> tuple[bool, list[str]]:
    """Whether recovery vitals are within ``within_percent`` of the pre-infusion ones (PADSS).

    Returns the verdict and, when not, which values are still off and by how much.
    """
    off = []
    for name in ("systolic", "diastolic", "heart_rate"):
        now_value, base_value = getattr(latest, name), getattr(baseline, name)
        change = abs(now_value - base_value) / base_value * 100
        if change > within_percent:
            off.append(
                f"{FIELD_LABELS[name]} {now_value} is {change:.0f}% from its pre-infusion "
                f"{base_value} (limit {within_percent}%)"
            )
    return not off, off
