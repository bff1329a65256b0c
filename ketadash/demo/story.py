"""A patient's story: a course, its series, relief episodes, boosters, scores, symptom returns.

Each patient is drawn once (route, weight, blood pressure, how they respond) and then
lived through the calendar: the series booked into free chairs, then relief that
wears off after a while (Murrough 2013: median 18 days, with a long tail). A relief
episode ends in one of three ways: the patient reports that symptoms are back, or
only their PHQ-9 from home rises (back at or above 10, or no longer 50% below their
pre-treatment score), or the next infusion comes first (a planned booster). Today's
visits are set aside for today's layout.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime
from datetime import time as clock_time

from ketadash.demo.booking import SiteQueues, VisitBooking
from ketadash.demo.calendar import DAY_SLOTS, ChairBook, SiteCalendar
from ketadash.demo.people import (
    ALIAS_NAMES,
    ALIAS_WORDS,
    CARE_FLAG_WEIGHTS,
    FIRST_NAMES,
    LAST_NAMES,
    RELATIONSHIPS,
    DemoPatient,
    fiction_phone,
)
from ketadash.demo.visit import VisitWriter
from ketadash.demo.visit_times import ESKETAMINE, IV, LOZENGE, MINUTE
from ketadash.models import CareFlag, SessionKind

SERIES, BOOSTER = SessionKind.SERIES.value, SessionKind.BOOSTER.value
SERIES_INFUSIONS = {IV: 6, LOZENGE: 6, ESKETAMINE: 8}
SERIES_WINDOW_DAYS = {IV: 21, LOZENGE: 21, ESKETAMINE: 28}
# Mon/Wed/Fri for IV; esketamine's label asks for twice weekly.
SERIES_GAP_DAYS = {IV: 2, LOZENGE: 2, ESKETAMINE: 3}

# Murrough 2013: median 18 days to relapse after the series, with a long tail.
RELIEF_MEDIAN_DAYS = 18
RELIEF_SIGMA = 0.7
RELIEF_CLIP_DAYS = (7, 180)
# One patient's episodes differ from each other (log spread), and their typical relief
# drifts from one episode to the next (a random walk on log days): relief histories as an
# independent analysis found them (issue 19), not near-copies of one length.
RELIEF_WITHIN_SIGMA = 0.35
RELIEF_DRIFT_SIGMA = 0.1
# A return of symptoms is often reported days late; a PHQ-9 from home comes about weekly,
# so a rise shows up to six days after relief ended.
LATE_REPORT_SHARE = 0.6
LATE_REPORT_DAYS = (1, 7)
HOME_PHQ_EVERY_DAYS = 7
# Some patients are booked for boosters on a schedule ("every 2–4 weeks", "every 4–6
# weeks", clinic pages), set a little shorter than their relief usually lasts.
PLANNED_BOOSTER_SHARE = 0.35
PLANNED_BOOSTER_SHARE_OF_RELIEF = (0.6, 0.9)
PLANNED_BOOSTER_MIN_DAYS = 14
# Of the episodes that end before the next infusion, how many the patient reports;
# the rest show only in the PHQ-9 the patient fills in at home.
REPORTED_SHARE = 0.65

PHQ_HOME_MINUTES = (11 * 60, 11 * 60 + 180)  # evenings, from the site's opening time


class PatientStories:
    """Tells each patient's story into the calendar and the row buffers."""

    def __init__(
        self,
        *,
        rng: random.Random,
        visits: VisitWriter,
        book: ChairBook,
        sites: list[SiteCalendar],
        history_days: int,
        chairs: int,
        now: int,
        relief_rng: random.Random | None = None,
        truth: list[tuple[int, int, int]] | None = None,
    ) -> None:
        self.rng = rng
        # The draws added for realistic relief (spread, drift, late reports) come from a
        # stream of their own, so the rest of a seed's clinic keeps its draws.
        self.relief_rng = relief_rng or random.Random(0)
        # (patient id, anchor day, true relapse day), ordinals: what a back-test judges by.
        self.truth = truth
        self.now = now
        self.visits = visits
        self.rows = visits.rows
        self.sites = sites
        self.history_days = history_days
        self.chairs = chairs
        self.today = [SiteQueues() for _ in sites]
        self.booking = VisitBooking(rng=rng, visits=visits, book=book, today=self.today)

    def tell(self, patient_id: int) -> None:
        """Draw patient ``patient_id`` and write their course, visits and scores."""
        patient, responder = self._draw_patient(patient_id)
        site, route, today = patient.site, patient.route, patient.site.today
        relief_median, shortening, stays_days, drops_out, planned_every = self._draw_relief()
        start = self._course_start(site)
        attended, last_day, active, responder, drops_out = self._series(
            patient, start=start, responder=responder, drops_out=drops_out
        )
        ended_on: int | None = None
        patient.in_series = active
        if active:
            pass
        elif last_day is None:
            # No chair was free for any of the series: the patient went elsewhere.
            ended_on = start if start < today else None
        elif not responder or attended == 0:
            ended_on = last_day if last_day < today else None
        else:
            ended_on, active = self._relief(
                patient,
                anchor=last_day,
                relief_median=relief_median,
                shortening=shortening,
                stays_until=last_day + stays_days,
                drops_out=drops_out,
                planned_every=planned_every,
            )
        if last_day is not None:
            self._remember_stand_in(patient, start, active=active or ended_on is None)
        self.rows.pending["treatment_course"].append(
            (
                patient_id,  # one course per patient
                patient_id,
                route,
                SERIES_INFUSIONS[route],
                SERIES_WINDOW_DAYS[route],
                date.fromordinal(start).isoformat(),
                date.fromordinal(ended_on).isoformat() if ended_on is not None else None,
            )
        )

    def _draw_patient(self, patient_id: int) -> tuple[DemoPatient, bool]:
        """Draw the patient, write their row; returns them and whether they respond."""
        rng = self.rng
        site = self.sites[rng.randrange(len(self.sites))]
        today = site.today
        draw = rng.random()
        route = IV if draw < 0.82 else ESKETAMINE if draw < 0.97 else LOZENGE
        units = site.times.block_slots(route)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        born = date.fromordinal(today - rng.randint(22 * 365, 75 * 365))
        alias = (
            f"{rng.choice(ALIAS_WORDS)} {rng.choice(ALIAS_NAMES)}" if rng.random() < 0.5 else None
        )
        if alias is not None and rng.random() < 0.3:
            alias = alias.split(" ")[1]
        flags = ""
        if rng.random() < 0.35:
            chosen = {
                rng.choices([f for f, _ in CARE_FLAG_WEIGHTS], [w for _, w in CARE_FLAG_WEIGHTS])[0]
                for _ in range(1 if rng.random() < 0.8 else 2)
            }
            flags = ";".join(sorted(chosen))
        self.rows.pending["patient"].append(
            (
                patient_id,
                f"KD-{patient_id:06d}",
                first,
                last,
                born.isoformat(),
                fiction_phone(rng, area_code=site.area_code),
                alias,
                flags,
                site.id,
            )
        )
        hypertensive = CareFlag.HYPERTENSION.value in flags
        responder = rng.random() < 0.70
        remitter = responder and rng.random() < 0.45
        phq_baseline = rng.uniform(15, 25.5)
        if remitter:
            phq_relief = rng.uniform(1, 4)
        elif responder:
            phq_relief = phq_baseline * rng.uniform(0.3, 0.5)
        else:
            phq_relief = phq_baseline * rng.uniform(0.7, 0.95)
        driver = (
            f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            fiction_phone(rng, area_code=site.area_code),
            rng.choice(RELATIONSHIPS),
        )
        patient = DemoPatient(
            id=patient_id,
            site=site,
            route=route,
            units=units,
            slot=rng.randrange(DAY_SLOTS - units + 1),
            weight=min(140.0, max(45.0, rng.gauss(80, 16))),
            systolic=rng.gauss(121, 9) + (9 if hypertensive else 0),
            diastolic=rng.gauss(77, 6) + (5 if hypertensive else 0),
            heart_rate=rng.gauss(74, 8),
            driver=driver,
            phq_baseline=phq_baseline,
            phq_relief=phq_relief,
            phq_rate=rng.uniform(0.35, 0.7),
            has_alias=alias is not None,
        )
        return patient, responder

    def _draw_relief(self) -> tuple[float, float, float, bool, float | None]:
        """How long relief lasts after the series and how the patient comes back for it:
        (median relief days, shortening per booster, days they keep coming, whether they
        drop out, planned booster interval or None)."""
        rng = self.rng
        relief_median = min(
            RELIEF_CLIP_DAYS[1],
            max(
                RELIEF_CLIP_DAYS[0], rng.lognormvariate(math.log(RELIEF_MEDIAN_DAYS), RELIEF_SIGMA)
            ),
        )
        # Some patients' relief wears off sooner with each booster.
        shortening = rng.uniform(0.85, 0.95) if rng.random() < 0.2 else 1.0
        # How long a responder keeps coming for boosters before stopping.
        stays_days = rng.expovariate(1 / 420)
        drops_out = rng.random() < 0.10
        planned_every = None
        if rng.random() < PLANNED_BOOSTER_SHARE:
            share = rng.uniform(*PLANNED_BOOSTER_SHARE_OF_RELIEF)
            planned_every = max(PLANNED_BOOSTER_MIN_DAYS, relief_median * share)

        return relief_median, shortening, stays_days, drops_out, planned_every

    def _course_start(self, site: SiteCalendar) -> int:
        """The day the course starts: over the history, and a few starting now."""
        rng = self.rng
        today = site.today
        # A steady flow of patients over the history, and a few starting now, so that
        # today has series infusions as well as boosters.
        if rng.random() < 0.08 or self.history_days <= 28:
            start = today + rng.randint(-min(24, self.history_days), 6)
        else:
            start = today - rng.randint(25, self.history_days)
        return site.next_open(start)

    def _series(
        self, patient: DemoPatient, *, start: int, responder: bool, drops_out: bool
    ) -> tuple[int, int | None, bool, bool, bool]:
        """Book the series; returns (attended, last day, booked ahead, responder, drops out)."""
        rng = self.rng
        site, route = patient.site, patient.route
        target = SERIES_INFUSIONS[route]
        if not responder and rng.random() < 0.35:
            target = rng.randint(3, 5)
        if drops_out and rng.random() < 0.4:
            target = rng.randint(1, 3)
            drops_out = False
            responder = False
        attended, attempts = 0, 0
        last_day: int | None = None
        active = False
        day = start
        while attended < target and attempts < target + 2:
            if day > site.horizon:
                active = True
                break
            attempts += 1
            phq = self._series_phq(patient, attended)
            # Each series visit is booked at the one before (or with the whole series at
            # its first visit); the first at intake, drawn.
            outcome, booked_day = self.booking.book(
                patient,
                day,
                SERIES,
                phq,
                tries=3,
                asked_on=last_day,
                ahead_on=None if last_day is None else start,
            )
            # The rest of the series is booked ahead too, as far as the calendar goes.
            active = active or outcome == "future"
            if booked_day is None:
                day = site.next_open(day + SERIES_GAP_DAYS[route])
                continue
            last_day = booked_day
            if outcome in ("attended", "today", "future"):
                attended += 1
            day = site.next_open(booked_day + SERIES_GAP_DAYS[route])
        return attended, last_day, active, responder, drops_out

    # --- relief after the series ------------------------------------------------------

    def _relief(
        self,
        patient: DemoPatient,
        *,
        anchor: int,
        relief_median: float,
        shortening: float,
        stays_until: float,
        drops_out: bool,
        planned_every: float | None,
    ) -> tuple[int | None, bool]:
        """Relief episodes and boosters after the series; returns (ended_on, booked ahead)."""
        rng = self.rng
        site = patient.site
        today = site.today
        dropout_episode = rng.randint(0, 5) if drops_out else -1
        episode = 0
        real = self.relief_rng
        drift = 1.0
        while True:
            drift *= real.lognormvariate(0, RELIEF_DRIFT_SIGMA)
            length = (
                relief_median * drift * shortening**episode
                * real.lognormvariate(0, RELIEF_WITHIN_SIGMA)
            )  # fmt: skip
            returned = anchor + max(5, round(length))
            planned = anchor + round(planned_every) if planned_every is not None else None
            if planned is not None and planned < returned:
                # The booster comes before relief wears off: the episode ends in it.
                if planned > stays_until:
                    return anchor, False
                ended = planned
                gap = patient.phq_baseline - patient.phq_relief
                phq = patient.phq_relief + gap * rng.uniform(0.05, 0.25)
                day = site.next_open(planned)
                # A planned booster is booked at the visit before, or nearer the time.
                asked_on, ahead_on = None, anchor
            else:
                if returned > today:
                    return None, False
                if returned > stays_until:
                    return anchor, False
                if self.truth is not None:
                    self.truth.append((patient.id, anchor, returned))
                reported = rng.random() < REPORTED_SHARE
                if reported:
                    late = real.random() < LATE_REPORT_SHARE
                    known = returned + (real.randint(*LATE_REPORT_DAYS) if late else 0)
                else:
                    known = returned + real.randrange(HOME_PHQ_EVERY_DAYS)
                if known > today:
                    return None, False  # relief has ended; nobody knows yet
                ended = known
                phq = self._relapse_phq(patient)
                if reported:
                    self._symptom_return(patient, anchor=anchor, returned=known, level=phq)
                else:
                    self._phq_rise(patient, anchor=anchor, risen=known, level=phq)
                if episode == dropout_episode:
                    return known, False
                day = site.next_open(known + rng.randint(2, 5))
                # The patient calls the day the relapse is known and is booked then.
                asked_on, ahead_on = known, None
            booked, stop = self._book_booster(
                patient, day=day, phq=phq, asked_on=asked_on, ahead_on=ahead_on, ended=ended
            )
            if booked is None:
                return stop
            anchor = booked
            episode += 1

    def _book_booster(
        self,
        patient: DemoPatient,
        *,
        day: int,
        phq: float,
        asked_on: int | None,
        ahead_on: int | None,
        ended: int,
    ) -> tuple[int | None, tuple[int | None, bool]]:
        """Book the booster (once more if the first is missed): (the day it was given, or
        None and what ``_relief`` returns then)."""
        site = patient.site
        for _ in range(2):
            if day > site.horizon:
                return None, (None, False)
            outcome, booked_day = self.booking.book(
                patient, day, BOOSTER, phq, tries=7, asked_on=asked_on, ahead_on=ahead_on
            )
            if outcome == "future":
                return None, (None, True)
            if booked_day is None:
                return None, (ended, False)
            if outcome in ("attended", "today"):
                return booked_day, (ended, False)
            # A missed booster is booked again the day it was missed.
            asked_on, ahead_on = booked_day, None
            day = site.next_open(booked_day + self.rng.randint(2, 4))
        return None, (ended, False)

    def _series_phq(self, patient: DemoPatient, attended: int) -> float:
        drop = math.exp(-patient.phq_rate * attended)
        return patient.phq_relief + (patient.phq_baseline - patient.phq_relief) * drop

    def _relapse_phq(self, patient: DemoPatient) -> float:
        gap = patient.phq_baseline - patient.phq_relief
        return patient.phq_relief + gap * self.rng.uniform(0.5, 0.8)

    def _home_score(
        self, patient: DemoPatient, day: int, level: float, *, at_least: int = 0, at_most: int = 27
    ) -> None:
        # Scores from home, in the evening, on the whole minute; tonight's is not in yet,
        # so a score from today was filled in earlier today, halfway to now (no draw of
        # its own: the rest of the demo stays as it is for a seed).
        site = patient.site
        taken = site.opening(day) + self.rng.randrange(*PHQ_HOME_MINUTES) * MINUTE
        if taken > self.now:
            day_start = int(
                datetime.combine(date.fromordinal(day), clock_time.min, site.zone).timestamp()
            )
            taken = day_start + (self.now - day_start) // 2
            taken -= (taken - day_start) % MINUTE
        self.visits.score(patient, None, taken, level, None, at_least=at_least, at_most=at_most)

    def _creeping_up(self, patient: DemoPatient, *, anchor: int, ended: int) -> None:
        """A week before relief ends the PHQ-9 is already creeping up, still under the line."""
        if ended - anchor >= 21:
            gap = patient.phq_baseline - patient.phq_relief
            level = patient.phq_relief + gap * self.rng.uniform(0.25, 0.45)
            self._home_score(patient, ended - 7, level, at_most=patient.rise_floor() - 1)

    def _symptom_return(
        self, patient: DemoPatient, *, anchor: int, returned: int, level: float
    ) -> None:
        """The patient reports symptoms are back; a PHQ-9 from home the same evening."""
        rows = self.rows
        rows.pending["symptom_return"].append(
            (
                rows.take_id("symptom_return"),
                patient.id,
                date.fromordinal(returned).isoformat(),
                None,
            )
        )
        self._creeping_up(patient, anchor=anchor, ended=returned)
        self._home_score(patient, returned, level)

    def _phq_rise(self, patient: DemoPatient, *, anchor: int, risen: int, level: float) -> None:
        """Relief ends only in the PHQ-9 from home: at the line or above, nothing reported."""
        self._creeping_up(patient, anchor=anchor, ended=risen)
        self._home_score(patient, risen, level, at_least=patient.rise_floor())

    def _remember_stand_in(self, patient: DemoPatient, start: int, *, active: bool) -> None:
        queues = self.today[patient.site.index]
        stand_ins = queues.stand_ins if active else queues.returning
        if start < patient.site.today and len(stand_ins) < 8 * self.chairs:
            kind = SERIES if patient.in_series else BOOSTER
            stand_ins.append((patient, kind, self._relapse_phq(patient)))
