"""A visit's vitals: before the dose, during it and in recovery, at the site's cadence.

Readings follow the clinic settings: a resting pressure at or under the hold limit
before the dose (a higher one would have held it), readings every
``vitals_every_during_minutes`` while the dose runs and every
``vitals_every_after_minutes`` in recovery, a recheck ``recheck_after_alert_minutes``
after a reading that raised an alert, and a last reading back within
``discharge_vitals_within_percent`` of the pre-dose values before the patient is ready.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ketadash.demo.people import DemoPatient
from ketadash.demo.visit_times import ESKETAMINE, MINUTE
from ketadash.demo.writer import Rows
from ketadash.models import VitalsPhase
from ketadash.settings import ClinicSettings

BEFORE, DURING, AFTER = VitalsPhase.BEFORE.value, VitalsPhase.DURING.value, VitalsPhase.AFTER.value


def write_vitals(
    rows: Rows,
    rng: random.Random,
    *,
    patient: DemoPatient,
    session_id: int,
    nurse: int,
    start: int | None,
    end: int | None,
    ready: int | None,
    before_at: int,
    cutoff: int,
) -> None:
    """Append the visit's readings taken before ``cutoff``."""
    settings = patient.site.times.settings
    gauss = rng.gauss
    stamp = rows.stamp
    pending = rows.pending["vitals_reading"]
    vitals_id = rows.next_id["vitals_reading"]
    systolic = min(settings.hold_systolic, round(patient.systolic + gauss(0, 5)))
    diastolic = min(settings.hold_diastolic, round(patient.diastolic + gauss(0, 4)), systolic - 25)
    heart_rate = round(patient.heart_rate + gauss(0, 4))
    pending.append(
        (vitals_id, session_id, stamp(before_at), BEFORE, systolic, diastolic, heart_rate,
         rng.choice((97, 98, 98, 99)), nurse)
    )  # fmt: skip
    vitals_id += 1
    if start is None:
        rows.next_id["vitals_reading"] = vitals_id
        return
    # Yale 2024: mean peak +16/+11 mmHg at 30–40 min; about 1% severe, more often in
    # a patient's first three infusions.
    severe_chance = 0.022 if patient.doses < 3 else 0.005
    if rng.random() < severe_chance:
        rise_s, rise_d = gauss(62, 6), gauss(33, 4)
    else:
        rise_s, rise_d = max(0.0, gauss(16, 7)), max(0.0, gauss(11, 5))
    course = _Course(
        rows=rows,
        rng=rng,
        settings=settings,
        session_id=session_id,
        nurse=nurse,
        baseline=(systolic, diastolic, heart_rate),
        rise=(rise_s, rise_d, gauss(8, 4)),
        esketamine=patient.route == ESKETAMINE,
    )
    vitals_id = course.during(vitals_id, start=start, end=end, cutoff=cutoff)
    if end is not None:
        vitals_id = course.after(vitals_id, start=start, end=end, ready=ready, cutoff=cutoff)
    rows.next_id["vitals_reading"] = vitals_id


@dataclass(slots=True, kw_only=True)
class _Course:
    """One dose's readings: the baseline, the rise the dose brings, the alert limits."""

    rows: Rows
    rng: random.Random
    settings: ClinicSettings
    session_id: int
    nurse: int
    baseline: tuple[int, int, int]  # systolic, diastolic, heart rate
    rise: tuple[float, float, float]
    esketamine: bool

    def _reading(self, share: float) -> tuple[int, int, int]:
        gauss = self.rng.gauss
        (systolic, diastolic, heart_rate), (rise_s, rise_d, rise_hr) = self.baseline, self.rise
        s = round(systolic + rise_s * share + gauss(0, 3))
        d = round(diastolic + rise_d * share + gauss(0, 2))
        hr = round(heart_rate + rise_hr * share + gauss(0, 3))
        return s, d, hr

    def _alerting(self, s: int, d: int, hr: int) -> bool:
        # The alert limits in force: a reading that raises one is rechecked sooner.
        settings = self.settings
        return (
            s >= settings.alert_systolic
            or d >= settings.alert_diastolic
            or hr > settings.alert_heart_rate_high
            or hr < settings.alert_heart_rate_low
        )

    def during(self, vitals_id: int, *, start: int, end: int | None, cutoff: int) -> int:
        """The readings during the dose; returns the next id."""
        settings, rng, stamp = self.settings, self.rng, self.rows.stamp
        pending = self.rows.pending["vitals_reading"]
        recheck = settings.recheck_after_alert_minutes * MINUTE
        peak_seconds = (40 if self.esketamine else 30) * MINUTE
        every = settings.vitals_every_during_minutes * MINUTE
        stop = end if end is not None else cutoff
        moment = start + every
        if moment >= stop - 30:
            # A dose shorter than the cadence (esketamine's devices) still gets one reading.
            moment = start + (stop - start) // 2
        while moment < stop - 30 or moment == start + (stop - start) // 2:
            s, d, hr = self._reading(min(1.0, (moment - start) / peak_seconds))
            pending.append(
                (vitals_id, self.session_id, stamp(moment), DURING, s, d, hr,
                 rng.choice((95, 96, 97, 98, 98, 99)), self.nurse)
            )  # fmt: skip
            vitals_id += 1
            moment += recheck if self._alerting(s, d, hr) else every
        return vitals_id

    def after(self, vitals_id: int, *, start: int, end: int, ready: int | None, cutoff: int) -> int:
        """The readings of recovery, the last one back to baseline; returns the next id."""
        settings, rng, stamp = self.settings, self.rng, self.rows.stamp
        pending = self.rows.pending["vitals_reading"]
        recheck = settings.recheck_after_alert_minutes * MINUTE
        every = settings.vitals_every_after_minutes * MINUTE
        stop = ready if ready is not None else cutoff
        moment = end + 5 * MINUTE
        within = settings.discharge_vitals_within_percent / 100
        last = stop - 2 * MINUTE
        if moment >= last:
            moment = end + (stop - end) // 2
        while True:
            # The reading that says the patient is back to baseline comes just before ready.
            settled = ready is not None and (
                moment >= last or (moment + every >= last and last - moment < 3 * MINUTE)
            )
            s, d, hr = self._reading(0.0 if settled else self._settling(moment, start, end))
            if settled:
                s, d, hr = (
                    _within(value, base, within / 2)
                    for value, base in zip((s, d, hr), self.baseline, strict=True)
                )
            taken = min(moment, last) if settled else moment
            pending.append(
                (vitals_id, self.session_id, stamp(taken), AFTER, s, d, hr,
                 rng.choice((97, 98, 98, 99)), self.nurse)
            )  # fmt: skip
            vitals_id += 1
            if settled:
                break
            moment += recheck if self._alerting(s, d, hr) else every
            if moment >= last and ready is None:
                break
        return vitals_id

    def _settling(self, moment: int, start: int, end: int) -> float:
        after = (moment - start if self.esketamine else moment - end) / MINUTE
        if self.esketamine:
            # Pressure peaks about 40 min after the first device, then settles.
            after = abs(after - 40) + 5
        return math.exp(-after / 15)


def _within(value: int, baseline: int, share: float) -> int:
    """``value`` pulled back to within ``share`` of ``baseline``."""
    margin = int(baseline * share)
    return min(baseline + margin, max(baseline - margin, value))
