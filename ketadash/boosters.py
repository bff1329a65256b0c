"""Upcoming boosters, flagged from each patient's own past relief.

Pure functions of patient histories (``ketadash.histories``), the clinic settings
and the moment the worklist is for (``as_of``). Nothing here reads the database.

The model, in the clinic's words (docs/figures.md has the same text):

* A **relief episode** runs from the end of the initial series, or from a booster,
  until the first relapse signal: a reported return of symptoms, or a PHQ-9 back at
  or above the relapse line (``relapse_phq9_at`` or more *and* no longer
  ``relapse_drop_percent`` below the patient's pre-treatment baseline). An episode
  with no signal yet is *censored* (relief lasted at least this long so far); so is
  one that ends at the next infusion without a signal: a planned booster is not a
  relapse.
* The **clinic's curve** is the Kaplan–Meier estimate over every episode, censoring
  respected.
* A **patient's expected relief** is a log-normal whose centre is shrunk from the
  clinic's median towards the patient's own episodes in proportion to how much they
  say (a normal–normal model on log days: one episode moves it a little, eight a lot).
  Recent episodes weigh more; censored ones count as "at least this long".
* The **booster date** is worked out each morning from that relief given it has lasted
  until today: the last infusion + F^-1(F(s) + q(1 - F(s))) days, s the days so far and q
  ``booster_quantile_percent`` (the one margin). The date on the infusion day is the
  first plan's ("planned").
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from statistics import NormalDist
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ketadash.models import SessionKind
from ketadash.relief_model import (
    EXACT,
    INTERVAL,
    MIN_BETWEEN_SD,
    MIN_WITHIN_SD,
    RIGHT,
    CovariateCheck,
    Episode,
    ReliefFit,
    choose_covariates,
    fit_relief,
    patient_posterior,
    relief_data,
)
from ketadash.settings import ClinicSettings

# Statistical choices, not clinical thresholds, so not clinic settings.
# Shortening: the last few finished episodes fall by at least 5% each on average (shown);
# confirmed (in the date) when a one-sided 5% test of the slope agrees.
SHORTENING_WINDOW_EPISODES = 6
SHORTENING_MIN_EPISODES = 3
SHORTENING_FACTOR_PER_EPISODE = 0.95
SHORTENING_CONFIRM_Z = 1.645
# When the clinic has too little history to fit (fewer than this many relapses, or patients
# with one, or with two episodes), its spreads are measured by moments, else these.
DEFAULT_WITHIN_SD = 0.25
DEFAULT_BETWEEN_SD = 0.6
MIN_FIT_RELAPSES = 20
MIN_FIT_PATIENTS = 5
# A care flag (or a measure) is a candidate covariate when at least this many of the
# patients with relief have it (and, for a flag, as many have not).
MIN_FLAG_PATIENTS = 10
# The worklist writes out this many of a patient's latest episodes.
EPISODES_SHOWN = 8
# The band drawn around the forecast: the middle 80% of the expected relief.
BAND_LOW, BAND_HIGH = 0.10, 0.90

_NORMAL = NormalDist()


# --- what comes in ----------------------------------------------------------------------


class Infusion(NamedTuple):
    """A session in which a dose was given (a named tuple: a clinic reads tens of thousands)."""

    session_id: int
    at: datetime
    kind: str
    route: str


class Score(NamedTuple):
    """A PHQ-9 total, its item 9 when recorded, and the visit it was recorded at."""

    taken_at: datetime
    total: int
    item9: int | None = None
    session_id: int | None = None


def _visit_of(scores: tuple[Score, ...] | list[Score], last: Score) -> list[Score]:
    """The scores recorded at ``last``'s visit (only ``last`` when it has no visit)."""
    return [s for s in scores if s.session_id == last.session_id] if last.session_id else [last]


def latest_item9(scores: tuple[Score, ...] | list[Score]) -> int | None:
    """PHQ-9 item 9 at the patient's latest PHQ-9 that recorded it (None: never recorded).

    A home or imported score may leave item 9 empty: it does not hide the answer
    recorded before it. The highest answer of that score's visit (scores ordered by
    time), so a correction at the visit cannot take a positive answer out of sight,
    as on Today.
    """
    recorded = [s for s in scores if s.item9 is not None]
    if not recorded:
        return None
    return max(s.item9 for s in _visit_of(recorded, recorded[-1]) if s.item9 is not None)


def item9_not_in_latest(scores: tuple[Score, ...] | list[Score]) -> bool:
    """True when an earlier PHQ-9 recorded item 9 but the latest one (its visit) did not."""
    if not scores:
        return False
    latest_visit = _visit_of(scores, scores[-1])
    return all(s.item9 is None for s in latest_visit) and latest_item9(scores) is not None


@dataclass(frozen=True, kw_only=True)
class Booking:
    """A session booked for after ``as_of`` and still expected."""

    session_id: int
    scheduled_start: datetime
    kind: str


@dataclass(frozen=True, kw_only=True)
class PatientHistory:
    """One patient's infusions, PHQ-9 scores and symptom returns up to ``as_of``."""

    patient_id: int
    patient_ref: str
    site_id: int
    time_zone: str
    care_flags: tuple[str, ...] = ()
    infusions: tuple[Infusion, ...] = ()
    scores: tuple[Score, ...] = ()
    symptom_returns: tuple[date, ...] = ()
    booking: Booking | None = None
    course_ended_on: date | None = None
    # The first PHQ-9 on record when it is older than the scores read (None: use them).
    baseline_phq9: int | None = None


# --- relief episodes --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReliefEpisode:
    """Relief after one series end or booster.

    ``relapsed`` False means censored: relief lasted at least ``days``.
    ``open`` is the episode still running at ``as_of``.
    """

    start: date
    end: date
    days: int
    relapsed: bool
    ended_by: str
    open: bool
    # A relapse found by a PHQ-9 happened after the last score below the line (this many
    # days in; 0 without one) and by the score: interval-censored. None: the day is known
    # (a reported return of symptoms) or the episode is censored.
    lower_days: int | None = None


def as_of_morning(*, day: date, time_zone: str) -> datetime:
    """The start of ``day`` at the site: the worklist as the clinic saw it that morning."""
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(time_zone))


def local_day(moment: datetime, time_zone: str) -> date:
    return moment.astimezone(ZoneInfo(time_zone)).date()


def pre_treatment_baseline(history: PatientHistory) -> int | None:
    """The PHQ-9 before the first infusion (else the first one on record), or None."""
    if history.baseline_phq9 is not None:
        return history.baseline_phq9
    if not history.scores:
        return None
    first_infusion = history.infusions[0].at if history.infusions else None
    before = [s for s in history.scores if first_infusion is None or s.taken_at <= first_infusion]
    return (before[-1] if before else history.scores[0]).total


def is_relapse_score(*, total: int, baseline: int | None, settings: ClinicSettings) -> bool:
    """A PHQ-9 back at the relapse line: at or above ``relapse_phq9_at`` and no longer
    ``relapse_drop_percent`` below baseline (the higher of the two lines)."""
    if total < settings.relapse_phq9_at:
        return False
    if baseline is None:
        return True
    return total > baseline * (1 - settings.relapse_drop_percent / 100)


def series_end_index(history: PatientHistory) -> int | None:
    """The index of the infusion that ends the initial series; None while there is none.

    The initial series is the run of series infusions the history starts with. A
    history that starts with a booster (imported mid-treatment) has its first
    infusion as the first anchor.
    """
    infusions = history.infusions
    if not infusions:
        return None
    run = 0
    while run < len(infusions) and infusions[run].kind == SessionKind.SERIES:
        run += 1
    if run == 0:
        return 0
    return run - 1


def in_initial_series(*, history: PatientHistory, settings: ClinicSettings) -> bool:
    """Not yet eligible for a booster: no infusion yet, or only series infusions so far
    and fewer than ``series_min_infusions`` of them or more of the series booked."""
    infusions = history.infusions
    if not infusions:
        return True
    if any(i.kind != SessionKind.SERIES for i in infusions):
        return False
    booked_series = history.booking is not None and history.booking.kind == SessionKind.SERIES
    return len(infusions) < settings.series_min_infusions or booked_series


def relief_episodes(
    *, history: PatientHistory, settings: ClinicSettings, as_of: datetime
) -> list[ReliefEpisode]:
    """The patient's relief episodes up to ``as_of``, oldest first.

    Empty while the patient is in the initial series. Each series end or booster
    opens one; the first relapse signal before the next infusion ends it; without a
    signal it is censored at the next infusion or, for the last one, at ``as_of``.
    """
    if in_initial_series(history=history, settings=settings):
        return []
    first = series_end_index(history)
    if first is None:
        return []
    zone = history.time_zone
    anchors = history.infusions[first:]
    baseline = pre_treatment_baseline(history)
    returns = sorted(history.symptom_returns)
    scores = history.scores
    score_times = [s.taken_at for s in scores]
    as_of_day = local_day(as_of, zone)
    episodes: list[ReliefEpisode] = []
    for index, anchor in enumerate(anchors):
        start = local_day(anchor.at, zone)
        is_last = index == len(anchors) - 1
        limit_at = as_of if is_last else anchors[index + 1].at
        limit_day = as_of_day if is_last else local_day(limit_at, zone)
        signals: list[tuple[date, str]] = []
        # The first return reported after the day of the anchor; one reported on the day
        # of the next infusion still ends relief before it.
        first_return = bisect_right(returns, start)
        if first_return < len(returns):
            reported = returns[first_return]
            if reported <= limit_day and (not is_last or reported < as_of_day):
                signals.append((reported, "symptom return"))
        below = start  # the last day a PHQ-9 said relief was still on
        for position in range(bisect_right(score_times, anchor.at), len(scores)):
            score = scores[position]
            if score.taken_at >= limit_at:
                break
            day = local_day(score.taken_at, zone)
            if is_relapse_score(total=score.total, baseline=baseline, settings=settings):
                if day > start:
                    signals.append((day, f"PHQ-9 {score.total}"))
                    break
            else:
                below = day
        if signals:
            # On a tie the reported return wins: the patient's own word dates it (a PHQ-9
            # filled in the evening of the report says the same, less exactly).
            end, why = min(signals, key=lambda signal: (signal[0], signal[1].startswith("PHQ")))
            found_by_score = why.startswith("PHQ-9")
            episodes.append(
                ReliefEpisode(
                    start=start,
                    end=end,
                    days=(end - start).days,
                    relapsed=True,
                    ended_by=why,
                    open=is_last,
                    lower_days=(below - start).days if found_by_score else None,
                )
            )
        else:
            episodes.append(
                ReliefEpisode(
                    start=start,
                    end=limit_day,
                    days=max(0, (limit_day - start).days),
                    relapsed=False,
                    ended_by="still going" if is_last else "next infusion",
                    open=is_last,
                )
            )
    return episodes


# --- the clinic's curve -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SurvivalCurve:
    """Kaplan–Meier: the share of episodes still in relief after each event time."""

    times: tuple[float, ...]
    survival: tuple[float, ...]
    episodes: int
    relapses: int

    def at(self, days: float) -> float:
        """The share still in relief after ``days``."""
        share = 1.0
        for time, value in zip(self.times, self.survival, strict=True):
            if time > days:
                break
            share = value
        return share

    def quantile(self, share_ended: float) -> float | None:
        """The first time by which at least ``share_ended`` of relief has ended (None if never)."""
        for time, value in zip(self.times, self.survival, strict=True):
            if value <= 1 - share_ended + 1e-12:
                return time
        return None

    def median(self) -> float | None:
        return self.quantile(0.5)


def kaplan_meier(*, durations: list[float], relapsed: list[bool]) -> SurvivalCurve:
    """The Kaplan–Meier estimate; an episode censored at t is still at risk at t."""
    pairs = sorted(zip(durations, relapsed, strict=True))
    at_risk = len(pairs)
    share = 1.0
    times: list[float] = []
    survival: list[float] = []
    i = 0
    while i < len(pairs):
        time = pairs[i][0]
        ended = left = 0
        while i < len(pairs) and pairs[i][0] == time:
            ended += pairs[i][1]
            left += 1
            i += 1
        if ended:
            share *= 1 - ended / at_risk
            times.append(float(time))
            survival.append(share)
        at_risk -= left
    return SurvivalCurve(
        times=tuple(times),
        survival=tuple(survival),
        episodes=len(pairs),
        relapses=sum(r for _, r in pairs),
    )


@dataclass(frozen=True, kw_only=True)
class CovariateTerm:
    """A covariate the clinic's history supports: log days per unit above the clinic's mean."""

    name: str
    # The clinic's mean (a patient without a value counts as this; a care flag's mean is
    # the share of patients with it).
    mean: float
    coefficient: float


@dataclass(frozen=True, kw_only=True)
class ClinicRelief:
    """What the clinic's whole history says about relief, the prior for every patient.

    ``centre`` is the fitted log relief of a patient of average covariates (the random-
    effects fit, ``ketadash.relief_model``); ``within_sd`` how much one patient's episodes
    vary (log days); ``between_sd`` how much patients differ from each other, beyond the
    covariates in ``terms``. ``checks`` are the likelihood-ratio checks that chose them.
    ``fit`` is None when the clinic has too little history: the curve's median and
    fallback spreads stand in.
    """

    curve: SurvivalCurve
    centre: float
    within_sd: float
    between_sd: float
    terms: tuple[CovariateTerm, ...] = ()
    checks: tuple[CovariateCheck, ...] = ()
    fit: ReliefFit | None = None

    def prior_mean(self, covariates: Mapping[str, float] | None = None) -> float:
        """The log relief the clinic expects of a patient with these covariates (None: not
        known, the centre; a care flag missing from them is 0, a measure its mean)."""
        if covariates is None:
            return self.centre
        return self.centre + sum(
            t.coefficient * (_covariate_value(covariates, t.name, t.mean) - t.mean)
            for t in self.terms
        )


def model_summary(clinic: ClinicRelief) -> str:
    """The clinic's model in a sentence, for the page: what every patient is shrunk towards."""
    if clinic.fit is None:
        return (
            "Too little history for the patient-level model yet: dates use the clinic's "
            "median and spreads measured by moments."
        )
    entered = ", ".join(t.name for t in clinic.terms) or "none"
    return (
        f"Patient-level model over {clinic.fit.episodes} finished episodes of "
        f"{clinic.fit.patients} patients: a typical patient's relief {math.exp(clinic.centre):.0f}"
        f" days; episodes of one patient vary by ×{math.exp(clinic.within_sd):.2f}, patients "
        f"by ×{math.exp(clinic.between_sd):.2f} (one standard deviation). Covariates that "
        f"entered: {entered}."
    )


BASELINE_COVARIATE = "baseline PHQ-9"
RESPONSE_COVARIATE = "series response %"
CARE_FLAG_COVARIATE = "care flag: "


def relief_covariates(history: PatientHistory) -> dict[str, float]:
    """The patient's candidate covariates: baseline PHQ-9, series response and care flags
    (absent: not known; a care flag absent is 0)."""
    values: dict[str, float] = {}
    if (baseline := pre_treatment_baseline(history)) is not None:
        values[BASELINE_COVARIATE] = float(baseline)
    if (response := series_response_percent(history)) is not None:
        values[RESPONSE_COVARIATE] = float(response)
    for flag in history.care_flags:
        values[CARE_FLAG_COVARIATE + flag] = 1.0
    return values


def _covariate_value(covariates: Mapping[str, float], name: str, mean: float) -> float:
    if name.startswith(CARE_FLAG_COVARIATE):
        return covariates.get(name, 0.0)
    return covariates.get(name, mean)


def model_episode(episode: ReliefEpisode, shift: float = 0.0) -> Episode | None:
    """What the likelihood knows of an episode, in log days (moved by ``shift``); None for
    an episode censored on its first day (it says nothing)."""
    days = max(episode.days, 0.5)
    if not episode.relapsed:
        return Episode(kind=RIGHT, upper=math.log(episode.days) + shift) if episode.days else None
    lower = episode.lower_days
    if lower is None or lower >= episode.days:
        return Episode(kind=EXACT, upper=math.log(days) + shift)
    return Episode(
        kind=INTERVAL,
        upper=math.log(days) + shift,
        lower=math.log(lower) + shift if lower > 0 else -math.inf,
    )


def _candidates(
    patients: list[int], covariates_by_patient: Mapping[int, Mapping[str, float]]
) -> list[tuple[str, float]]:
    """The candidate covariates with enough patients behind them, each with its mean."""
    counts: dict[str, list[float]] = {}
    for patient_id in patients:
        for name, value in covariates_by_patient.get(patient_id, {}).items():
            counts.setdefault(name, []).append(value)
    found = []
    for name in sorted(counts):
        values = counts[name]
        if name.startswith(CARE_FLAG_COVARIATE):
            if MIN_FLAG_PATIENTS <= len(values) <= len(patients) - MIN_FLAG_PATIENTS:
                found.append((name, len(values) / len(patients)))
        elif len(values) >= MIN_FLAG_PATIENTS and len(set(values)) > 1:
            found.append((name, sum(values) / len(values)))
    return found


def _model_rows(
    episodes_by_patient: Mapping[int, list[ReliefEpisode]],
) -> tuple[list[int], list[list[Episode]]]:
    """The patients with a finished episode, and those episodes as the likelihood sees them.

    Finished episodes only (a relapse, or the next infusion): the relief running now is
    what the date is for, and a patient who stopped coming would count as relief "still
    going" for months.
    """
    patients, rows = [], []
    for patient_id, episodes in episodes_by_patient.items():
        closed = (e for e in episodes if not e.open)
        known = [m for m in map(model_episode, closed) if m is not None]
        if known:
            patients.append(patient_id)
            rows.append(known)
    return patients, rows


def _design(
    patients: list[int],
    candidates: list[tuple[str, float]],
    covariates_by_patient: Mapping[int, Mapping[str, float]],
) -> np.ndarray:
    """Patients × candidates, each centred on the clinic's mean (missing: the mean)."""
    if not candidates:
        return np.zeros((len(patients), 0))
    return np.array(
        [
            [
                _covariate_value(covariates_by_patient.get(p, {}), name, mean) - mean
                for name, mean in candidates
            ]
            for p in patients
        ]
    )


# The last few fits, by the exact data they were fitted to: the page's worklist and the
# morning's stored flags read the same history on the day's first open, and fit it once.
_FIT_MEMO: dict[tuple[object, ...], tuple[ReliefFit, tuple[CovariateCheck, ...]]] = {}
_FIT_MEMO_SIZE = 16


def _fitted(
    rows: list[list[Episode]], design: np.ndarray, names: tuple[str, ...]
) -> tuple[ReliefFit, tuple[CovariateCheck, ...]]:
    """The fit (and covariate checks) of these episodes, from the memo when the very same
    data were fitted before in this process."""
    key = (tuple(map(tuple, rows)), names, design.shape, design.tobytes())
    if (kept := _FIT_MEMO.get(key)) is not None:
        return kept
    data = relief_data(rows, design, names)
    found = choose_covariates(data) if names else (fit_relief(data), ())
    if len(_FIT_MEMO) >= _FIT_MEMO_SIZE:
        _FIT_MEMO.pop(next(iter(_FIT_MEMO)))
    _FIT_MEMO[key] = found
    return found


def clinic_relief(
    *,
    episodes_by_patient: Mapping[int, list[ReliefEpisode]],
    covariates_by_patient: Mapping[int, Mapping[str, float]] | None = None,
) -> ClinicRelief:
    """The clinic's curve over all episodes, and the random-effects fit of log relief over
    the finished ones: the centre and the spreads within and between patients in one fit,
    with the covariates (``relief_covariates``) its likelihood-ratio checks let in (none
    without ``covariates_by_patient``)."""
    all_episodes = [e for episodes in episodes_by_patient.values() for e in episodes]
    curve = kaplan_meier(
        durations=[max(e.days, 0.5) for e in all_episodes],
        relapsed=[e.relapsed for e in all_episodes],
    )
    patients, rows = _model_rows(episodes_by_patient)
    with_relapse = sum(any(m.kind != RIGHT for m in row) for row in rows)
    repeated = sum(len(row) >= 2 for row in rows)
    relapses = sum(e.relapsed for e in all_episodes)
    if relapses < MIN_FIT_RELAPSES or min(with_relapse, repeated) < MIN_FIT_PATIENTS:
        # Too little to fit (the two spreads need patients with two episodes or more).
        return _fallback_relief(curve=curve, episodes_by_patient=episodes_by_patient)
    candidates = _candidates(patients, covariates_by_patient or {})
    design = _design(patients, candidates, covariates_by_patient or {})
    fit, checks = _fitted(rows, design, tuple(name for name, _ in candidates))
    means = dict(candidates)
    return ClinicRelief(
        curve=curve,
        centre=fit.centre,
        within_sd=fit.within_sd,
        between_sd=fit.between_sd,
        terms=tuple(
            CovariateTerm(name=name, mean=means[name], coefficient=coefficient)
            for name, coefficient in zip(fit.names, fit.coefficients, strict=True)
        ),
        checks=checks,
        fit=fit,
    )


def _fallback_relief(
    *, curve: SurvivalCurve, episodes_by_patient: Mapping[int, list[ReliefEpisode]]
) -> ClinicRelief:
    """Too little history to fit: the curve's median and the spreads by moments (each
    patient's relapses about their mean; the patients' means about theirs, less noise), or
    the fallbacks when even these are too few."""
    median = curve.median()
    if median is None:
        days = [e.days for episodes in episodes_by_patient.values() for e in episodes]
        median = max(days, default=28) or 28
    squares, degrees = 0.0, 0
    means: list[tuple[float, int]] = []
    for episodes in episodes_by_patient.values():
        logs = [math.log(max(e.days, 1)) for e in episodes if e.relapsed]
        if not logs:
            continue
        mean = sum(logs) / len(logs)
        means.append((mean, len(logs)))
        squares += sum((y - mean) ** 2 for y in logs)
        degrees += len(logs) - 1
    within = math.sqrt(squares / degrees) if degrees >= 5 else DEFAULT_WITHIN_SD
    within = max(within, MIN_WITHIN_SD)
    if len(means) >= 5:
        grand = sum(m for m, _ in means) / len(means)
        spread = sum((m - grand) ** 2 for m, _ in means) / (len(means) - 1)
        noise = sum(within**2 / n for _, n in means) / len(means)
        between = math.sqrt(max(spread - noise, MIN_BETWEEN_SD**2))
    else:
        between = DEFAULT_BETWEEN_SD
    return ClinicRelief(
        curve=curve, centre=math.log(max(median, 1)), within_sd=within, between_sd=between
    )


# --- one patient's estimate -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReliefEstimate:
    """A patient's expected relief in days, with its conservative quantile and band.

    ``own_share`` is how much of the centre comes from the patient's own episodes
    (0: the clinic's curve alone; near 1: their history decides).
    """

    expected_days: float
    # The relief to plan for at the infusion: the ``booster_quantile_percent`` quantile.
    conservative_days: float
    low_days: float
    high_days: float
    own_share: float
    shortening: bool
    # The log-normal itself: log days' mean and spread (the predictive one).
    centre: float
    spread: float
    # A confirmed shortening trend (``confirmed_shortening``), in the date: relief's factor
    # per episode (0.9: each episode 10% shorter); None when none is confirmed.
    trend_factor: float | None = None


def is_shortening(episodes: list[ReliefEpisode]) -> bool:
    """True when the last few finished episodes fall by 5% or more each, on average."""
    finished = [e for e in episodes if e.relapsed and e.days > 0][-SHORTENING_WINDOW_EPISODES:]
    if len(finished) < SHORTENING_MIN_EPISODES:
        return False
    xs = [float(x) for x in range(len(finished))]
    ys = [math.log(e.days) for e in finished]
    return _slope(xs, ys) <= math.log(SHORTENING_FACTOR_PER_EPISODE)


def _slope(xs: list[float], ys: list[float]) -> float:
    x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - x_mean) ** 2 for x in xs
    )


@dataclass(frozen=True, kw_only=True)
class ShorteningTrend:
    """A confirmed within-patient trend: log days per episode, its standard error, and the
    mean episode number it was measured at."""

    slope: float
    error: float
    centre_index: float


def confirmed_shortening(
    episodes: list[ReliefEpisode], *, within_sd: float
) -> ShorteningTrend | None:
    """The patient's shortening, when confirmed: over their last ``SHORTENING_WINDOW_EPISODES``
    finished episodes (at least ``SHORTENING_MIN_EPISODES`` + 1), the least-squares slope of
    log relief on the episode's number falls by at least 5% an episode **and** is below zero
    by a one-sided test at 5% (slope ÷ its standard error ≤ −1.645), the standard error from
    the clinic's within-patient spread (within_sd ÷ √Σ(x − x̄)²). Episodes found by a PHQ-9
    count at their interval's middle; one with no score below the line before it is left out.
    """
    points = [
        (float(i), math.log((e.days + e.lower_days) / 2 if e.lower_days else e.days))
        for i, e in enumerate(episodes)
        if e.relapsed and e.days > 0 and e.lower_days != 0
    ][-SHORTENING_WINDOW_EPISODES:]
    if len(points) < SHORTENING_MIN_EPISODES + 1:
        return None
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_mean = sum(xs) / len(xs)
    spread = sum((x - x_mean) ** 2 for x in xs)
    slope = _slope(xs, ys)
    error = within_sd / math.sqrt(spread)
    if slope > math.log(SHORTENING_FACTOR_PER_EPISODE) or slope / error > -SHORTENING_CONFIRM_Z:
        return None
    return ShorteningTrend(slope=slope, error=error, centre_index=x_mean)


def estimate_relief(
    *,
    episodes: list[ReliefEpisode],
    clinic: ClinicRelief,
    settings: ClinicSettings,
    covariates: Mapping[str, float] | None = None,
) -> ReliefEstimate:
    """The patient's next relief: the predictive distribution of the clinic's random-effects
    model given their own episodes.

    The patient's level (log days) has the clinic's prior (its centre, moved by the
    covariates that entered, spread ``between_sd``); their episodes update it by the model's
    likelihood (reported relapses by their day, censored ones as "at least", PHQ-9-found
    ones as an interval): proper shrinkage, the clinic counting as (within ÷ between)²
    episodes. The next relief is log-normal around the posterior level with the within-
    patient spread and the posterior's uncertainty. With a confirmed shortening trend each
    episode is first carried to the next episode along it (and the slope's uncertainty
    widens the spread). ``episodes`` are those before the relief to plan for.
    """
    quantile = settings.booster_quantile_percent / 100
    within, between = clinic.within_sd, clinic.between_sd
    prior_mean = clinic.prior_mean(covariates)
    shortening = is_shortening([e for e in episodes if e.days > 0])
    trend = confirmed_shortening(episodes, within_sd=within)
    following = len(episodes)
    model = [
        m
        for i, e in enumerate(episodes)
        if (m := model_episode(e, trend.slope * (following - i) if trend else 0.0)) is not None
    ]
    if not model:
        # No episode yet: a new patient is any of the clinic's patients (of these covariates).
        return _lognormal(
            centre=prior_mean,
            spread=math.hypot(within, between),
            quantile=quantile,
            own_share=0.0,
            shortening=shortening,
        )
    posterior = patient_posterior(
        model, prior_mean=prior_mean, within_sd=within, between_sd=between
    )
    slope_variance = (trend.error * (following - trend.centre_index)) ** 2 if trend else 0.0
    return _lognormal(
        centre=posterior.mean,
        spread=math.sqrt(within**2 + posterior.variance + slope_variance),
        quantile=quantile,
        own_share=max(0.0, 1 - posterior.variance / between**2),
        shortening=shortening,
        trend_factor=math.exp(trend.slope) if trend else None,
    )


def _lognormal(
    *,
    centre: float,
    spread: float,
    quantile: float,
    own_share: float,
    shortening: bool,
    trend_factor: float | None = None,
) -> ReliefEstimate:
    def days_at(share: float) -> float:
        return math.exp(centre + _NORMAL.inv_cdf(share) * spread)

    return ReliefEstimate(
        expected_days=math.exp(centre),
        conservative_days=days_at(quantile),
        low_days=days_at(BAND_LOW),
        high_days=days_at(BAND_HIGH),
        own_share=own_share,
        shortening=shortening,
        centre=centre,
        spread=spread,
        trend_factor=trend_factor,
    )


def share_ended_by(*, estimate: ReliefEstimate, days: float) -> float:
    """F(days): the share of the patient's expected episodes over within ``days``."""
    if days <= 0:
        return 0.0
    return _NORMAL.cdf((math.log(days) - estimate.centre) / estimate.spread)


def conditional_relief_days(
    *, estimate: ReliefEstimate, lasted_days: float, quantile: float
) -> float:
    """The relief to plan for, given it has lasted ``lasted_days`` so far.

    F^-1(F(s) + q(1 - F(s))): the day by which relief ends in only ``quantile`` of the
    episodes that last at least ``s``. At s = 0 it is the plain quantile; it is always
    later than ``s``, so a date worked out from it is never already past.
    """
    ended = share_ended_by(estimate=estimate, days=lasted_days)
    share = ended + quantile * (1 - ended)
    # Far in the tail (a patient whose relief long outlived the estimate) share rounds to 1.
    share = min(share, 1 - 1e-12)
    days = math.exp(estimate.centre + _NORMAL.inv_cdf(share) * estimate.spread)
    return max(days, lasted_days)


# --- flags and the worklist -------------------------------------------------------------


class BoosterFlag(StrEnum):
    """What the clinic should do about a patient now, most urgent first."""

    RELAPSED = "relapsed"
    CALL_NOW = "call_now"
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    BOOKED = "booked"
    LATER = "later"
    IN_SERIES = "in_series"
    OUT_OF_CARE = "out_of_care"

    @property
    def label(self) -> str:
        return {
            "relapsed": "Relapsed: call now",
            "call_now": "PHQ-9 up: call now",
            "overdue": "Overdue",
            "due_soon": "Due soon",
            "booked": "Booked",
            "later": "Not due yet",
            "in_series": "In initial series",
            "out_of_care": "No longer in care",
        }[self.value]

    @property
    def rank(self) -> int:
        return list(BoosterFlag).index(self)


# Flags that ask for a call; a booked patient stays on the list so the booking shows.
ACTION_FLAGS = (
    BoosterFlag.RELAPSED,
    BoosterFlag.CALL_NOW,
    BoosterFlag.OVERDUE,
    BoosterFlag.DUE_SOON,
)
WORKLIST_FLAGS = (*ACTION_FLAGS, BoosterFlag.BOOKED)
IN_CARE_FLAGS = tuple(f for f in BoosterFlag if f is not BoosterFlag.OUT_OF_CARE)


@dataclass(frozen=True, kw_only=True)
class BoosterPlan:
    """One patient's line on the worklist, with the factors beside the decision."""

    patient_id: int
    patient_ref: str
    site_id: int
    last_infusion: date | None
    # The session of that infusion: the relief the plan is about runs from it.
    anchor_session_id: int | None
    episodes: tuple[ReliefEpisode, ...]
    estimate: ReliefEstimate | None
    # "Now": the date as worked out this morning (relief lasted until today);
    # "planned": the first plan's date, worked out on the day of the last infusion.
    booster_due: date | None
    planned_due: date | None
    flag: BoosterFlag
    booked_for: datetime | None
    last_phq9: int | None
    # Item 9 at the latest PHQ-9 recording it (``latest_item9``), flagged at
    # ``phq9_item9_flag_at``; ``item9_not_in_latest``: the latest PHQ-9 left it empty.
    last_item9: int | None
    item9_flagged: bool
    item9_not_in_latest: bool
    phq9_trend: int | None
    baseline_phq9: int | None
    series_response_percent: int | None
    care_flags: tuple[str, ...]
    last_contact: date | None


def last_contact_day(history: PatientHistory) -> date | None:
    """The last day the clinic heard from the patient: an infusion, a score or a report."""
    zone = history.time_zone
    days = [local_day(i.at, zone) for i in history.infusions[-1:]]
    days += [local_day(s.taken_at, zone) for s in history.scores[-1:]]
    days += list(history.symptom_returns[-1:])
    return max(days, default=None)


def phq9_rise_since_infusion(history: PatientHistory) -> int | None:
    """The latest PHQ-9 after the last infusion less the last one up to it (its visit's
    score included); None without both."""
    if not history.infusions or not history.scores:
        return None
    last = history.infusions[-1]
    before = [s for s in history.scores if s.taken_at <= last.at or s.session_id == last.session_id]
    after = [s for s in history.scores if s.taken_at > last.at and s.session_id != last.session_id]
    if not before or not after:
        return None
    return after[-1].total - before[-1].total


def series_response_percent(history: PatientHistory) -> int | None:
    """How far the PHQ-9 fell from baseline by the end of the series (best score in it)."""
    baseline = pre_treatment_baseline(history)
    end = series_end_index(history)
    if baseline is None or end is None or baseline == 0 or not history.infusions:
        return None
    first = history.infusions[0].at
    # Scores after the first infusion up to a week after the series end.
    until = history.infusions[end].at + timedelta(days=7)
    during = [s.total for s in history.scores if first < s.taken_at <= until]
    if not during:
        return None
    return round(100 * (baseline - min(during)) / baseline)


def booster_due_on(
    *, infusion_day: date, today: date, estimate: ReliefEstimate, settings: ClinicSettings
) -> date:
    """The booster's date as worked out on the morning of ``today`` (before any relapse
    signal): the infusion day + the relief to plan for given it has lasted until today
    (``conditional_relief_days`` at ``booster_quantile_percent``). The one margin is the
    quantile; the call list's ``booster_due_within_days`` is the time to book, not a margin.
    Never before ``today``. On the infusion day itself it is the first plan's date.
    """
    lasted = max(0, (today - infusion_day).days)
    days = conditional_relief_days(
        estimate=estimate,
        lasted_days=lasted,
        quantile=settings.booster_quantile_percent / 100,
    )
    return infusion_day + timedelta(days=max(lasted, math.floor(days)))


def first_listing(
    *, infusion_day: date, estimate: ReliefEstimate, settings: ClinicSettings
) -> tuple[date, date]:
    """The first morning the patient is on the call list (*Due soon*) after an infusion,
    and the date the worklist gives that morning, with no relapse signal and no booking:
    the first day whose date is within ``booster_due_within_days``."""
    window = settings.booster_due_within_days
    today = infusion_day + timedelta(days=1)
    # The date moves on by less than a day each morning, so this ends; bounded anyway.
    for _ in range(3650):
        due = booster_due_on(
            infusion_day=infusion_day, today=today, estimate=estimate, settings=settings
        )
        if (due - today).days <= window:
            return today, due
        today += timedelta(days=1)
    return today, due


def _booster_dates(
    *,
    episodes: list[ReliefEpisode],
    clinic: ClinicRelief,
    settings: ClinicSettings,
    last_infusion: date | None,
    today: date,
    series: bool,
    covariates: Mapping[str, float] | None = None,
) -> tuple[ReliefEstimate | None, date | None, date | None]:
    """(estimate, due date as of today, the first plan's date) after the series; all
    None while the series runs or before any infusion. The estimate is of the relief
    running now, from the episodes before it: how long it has lasted so far enters the
    date (conditionally), not the estimate a second time."""
    if series or last_infusion is None:
        return None, None, None
    before = episodes[:-1] if episodes and episodes[-1].open else episodes
    estimate = estimate_relief(
        episodes=before, clinic=clinic, settings=settings, covariates=covariates
    )
    due = booster_due_on(
        infusion_day=last_infusion, today=today, estimate=estimate, settings=settings
    )
    planned = booster_due_on(
        infusion_day=last_infusion, today=last_infusion, estimate=estimate, settings=settings
    )
    return estimate, due, planned


def _out_of_care(
    *,
    history: PatientHistory,
    booked: datetime | None,
    contact: date | None,
    today: date,
    settings: ClinicSettings,
) -> bool:
    """The course ended with nothing booked, or no booking and no contact for too long."""
    return (history.course_ended_on is not None and history.booking is None) or (
        booked is None
        and (contact is None or (today - contact).days >= settings.out_of_care_after_days)
    )


def _booster_flag(
    *,
    history: PatientHistory,
    episodes: list[ReliefEpisode],
    settings: ClinicSettings,
    today: date,
    out_of_care: bool,
    series: bool,
    booked: datetime | None,
    due: date | None,
    planned: date | None,
) -> tuple[BoosterFlag, date | None]:
    """The worklist flag, most urgent reason first, and the due date it shows (the day
    relief ended, when that came first, for a relapse)."""
    relapsed_now = bool(episodes) and episodes[-1].open and episodes[-1].relapsed
    if out_of_care:
        return BoosterFlag.OUT_OF_CARE, due
    if series:
        return BoosterFlag.IN_SERIES, due
    if booked is not None:
        return BoosterFlag.BOOKED, due
    if relapsed_now:
        return BoosterFlag.RELAPSED, min(due, episodes[-1].end) if due else episodes[-1].end
    if (rise := phq9_rise_since_infusion(history)) is not None and (
        rise >= settings.booster_call_now_rise_points
    ):
        # Worse by a clinically meaningful step, though not yet at the relapse line.
        return BoosterFlag.CALL_NOW, due
    if due is not None and (due - today).days <= settings.booster_due_within_days:
        # Overdue: relief has outlasted the first plan's date; the date now still stands.
        overdue = planned is not None and planned < today
        return (BoosterFlag.OVERDUE if overdue else BoosterFlag.DUE_SOON), due
    return BoosterFlag.LATER, due


def plan_booster(
    *,
    history: PatientHistory,
    clinic: ClinicRelief,
    settings: ClinicSettings,
    as_of: datetime,
    episodes: list[ReliefEpisode] | None = None,
) -> BoosterPlan:
    """The patient's episodes, estimate, due date and flag as of ``as_of``."""
    if episodes is None:
        episodes = relief_episodes(history=history, settings=settings, as_of=as_of)
    zone = history.time_zone
    today = local_day(as_of, zone)
    last_infusion = local_day(history.infusions[-1].at, zone) if history.infusions else None
    contact = last_contact_day(history)
    booked = history.booking.scheduled_start if history.booking else None
    series = in_initial_series(history=history, settings=settings)
    estimate, due, planned = _booster_dates(
        episodes=episodes,
        clinic=clinic,
        settings=settings,
        last_infusion=last_infusion,
        today=today,
        series=series,
        covariates=relief_covariates(history),
    )
    flag, due = _booster_flag(
        history=history,
        episodes=episodes,
        settings=settings,
        today=today,
        out_of_care=_out_of_care(
            history=history, booked=booked, contact=contact, today=today, settings=settings
        ),
        series=series,
        booked=booked,
        due=due,
        planned=planned,
    )
    scores = history.scores
    return BoosterPlan(
        patient_id=history.patient_id,
        patient_ref=history.patient_ref,
        site_id=history.site_id,
        last_infusion=last_infusion,
        anchor_session_id=history.infusions[-1].session_id if history.infusions else None,
        episodes=tuple(episodes),
        estimate=estimate,
        booster_due=due,
        planned_due=planned,
        flag=flag,
        booked_for=booked,
        last_phq9=scores[-1].total if scores else None,
        last_item9=(item9 := latest_item9(scores)),
        item9_flagged=item9 is not None and item9 >= settings.phq9_item9_flag_at,
        item9_not_in_latest=item9_not_in_latest(scores),
        phq9_trend=scores[-1].total - scores[-2].total if len(scores) >= 2 else None,
        baseline_phq9=pre_treatment_baseline(history),
        series_response_percent=series_response_percent(history),
        care_flags=history.care_flags,
        last_contact=contact,
    )


def plan_boosters(
    *,
    histories: list[PatientHistory],
    settings: ClinicSettings,
    as_of: datetime,
    clinic: ClinicRelief | None = None,
) -> tuple[list[BoosterPlan], ClinicRelief]:
    """Every patient's plan and the clinic's relief model they were shrunk towards.

    ``clinic``: the site's model already fitted this morning (the fit takes seconds on a
    large site and changes little within a day); None fits it now.
    """
    episodes = {
        h.patient_id: relief_episodes(history=h, settings=settings, as_of=as_of) for h in histories
    }
    if clinic is None:
        clinic = clinic_relief(
            episodes_by_patient=episodes,
            covariates_by_patient={h.patient_id: relief_covariates(h) for h in histories},
        )
    plans = [
        plan_booster(
            history=h,
            clinic=clinic,
            settings=settings,
            as_of=as_of,
            episodes=episodes[h.patient_id],
        )
        for h in histories
    ]
    return plans, clinic


# --- boosters that fell due (looking back) ---------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FellDue:
    """A relief episode whose booster fell due, as the worklist flagged it.

    ``due`` is the booster due date, or the day relief ended when a relapse signal came
    first (``relapsed``); ``listed_on`` the first day the patient was on the call list
    (*Due soon*: the first morning its date was within ``booster_due_within_days``, or
    *Relapsed*).
    """

    patient_id: int
    site_id: int
    anchor_session_id: int
    anchor_at: datetime
    listed_on: date
    due: date
    relapsed: bool


def _anchor_due(
    *,
    anchor_day: date,
    episode: ReliefEpisode,
    before: list[ReliefEpisode],
    clinic: ClinicRelief,
    settings: ClinicSettings,
    covariates: Mapping[str, float] | None = None,
) -> tuple[date, date, bool]:
    """(first listed, due, relapsed) for one anchor: the date its first listing gives,
    with relief expected from the episodes ``before`` it, or the day relief ended when a
    relapse signal came first."""
    estimate = estimate_relief(
        episodes=before, clinic=clinic, settings=settings, covariates=covariates
    )
    listed, due = first_listing(infusion_day=anchor_day, estimate=estimate, settings=settings)
    relapsed = episode.relapsed and episode.end < due
    if relapsed:
        due = episode.end
        listed = min(listed, due)
    return listed, due, relapsed


def _falls_due_in(
    *,
    due: date,
    first_day: date,
    last_day: date,
    following: Infusion | None,
    time_zone: str,
    course_ended: date | None,
) -> bool:
    """``due`` is in the period, the next infusion did not come before it (the booster
    came first), and the course had not ended by then."""
    if not first_day <= due <= last_day:
        return False
    if following is not None and local_day(following.at, time_zone) < due:
        return False  # the booster came first
    return course_ended is None or due <= course_ended


def _lost_contact_by(
    *, due: date, anchor_day: date, contact_days: list[date], settings: ClinicSettings
) -> bool:
    """No contact (the anchor, a score, a symptom return) for ``out_of_care_after_days``
    before ``due``: the worklist no longer lists the patient then."""
    contact = max([anchor_day] + [day for day in contact_days if day < due])
    return (due - contact).days >= settings.out_of_care_after_days


def boosters_fell_due(
    *,
    history: PatientHistory,
    episodes: list[ReliefEpisode],
    clinic: ClinicRelief,
    settings: ClinicSettings,
    first_day: date,
    last_day: date,
) -> list[FellDue]:
    """The patient's boosters that fell due from ``first_day`` to ``last_day`` (local days).

    Each series end or booster (an anchor) has the date ``plan_booster`` gives on the
    first morning it lists the patient (``first_listing``, with the relief expected from
    the episodes before it, those of the ``booster_history_days`` the worklist reads); a
    relapse signal before that date makes the day relief
    ended the due date. ``episodes`` are the patient's relief episodes
    (``relief_episodes``), which must reach at least to ``last_day``. Left out,
    as the worklist leaves them off the call list: an episode whose next infusion came
    before its due date (the booster came first), and a patient no longer in care by
    then (the course ended, or no contact for ``out_of_care_after_days``).
    """
    if not episodes:
        return []
    first = series_end_index(history)
    if first is None:
        return []
    zone = history.time_zone
    anchors = history.infusions[first:]
    period_starts = as_of_morning(day=first_day, time_zone=zone)
    ended = history.course_ended_on
    if ended is not None and ended < first_day:
        return []  # out of care before anything could fall due in the period
    starts = [episode.start for episode in episodes]
    covariates = relief_covariates(history) if clinic.terms else None
    score_days: list[date] | None = None
    fell = []
    for index, (anchor, episode) in enumerate(zip(anchors, episodes, strict=False)):
        following = anchors[index + 1] if index + 1 < len(anchors) else None
        # Cheap tests first (most anchors are long past): a due date falls on or before
        # the next infusion and on or before the day relief ended.
        if following is not None and following.at < period_starts:
            continue
        if episode.relapsed and episode.end < first_day:
            continue
        anchor_day = local_day(anchor.at, zone)
        if anchor_day > last_day:
            break
        oldest = bisect_left(starts, anchor_day - timedelta(days=settings.booster_history_days))
        listed, due, relapsed = _anchor_due(
            anchor_day=anchor_day,
            episode=episode,
            before=episodes[oldest:index],
            clinic=clinic,
            settings=settings,
            covariates=covariates,
        )
        if not _falls_due_in(
            due=due,
            first_day=first_day,
            last_day=last_day,
            following=following,
            time_zone=zone,
            course_ended=ended,
        ):
            continue
        if score_days is None:
            score_days = [local_day(s.taken_at, zone) for s in history.scores]
        if _lost_contact_by(
            due=due,
            anchor_day=anchor_day,
            contact_days=score_days + list(history.symptom_returns),
            settings=settings,
        ):
            continue
        fell.append(
            FellDue(
                patient_id=history.patient_id,
                site_id=history.site_id,
                anchor_session_id=anchor.session_id,
                anchor_at=anchor.at,
                listed_on=listed,
                due=due,
                relapsed=relapsed,
            )
        )
    return fell


WORKLIST_COLUMNS = (
    "patient_ref",
    "last_infusion",
    "episodes",
    "expected_relief_days",
    "booster_due",
    "flag",
    "planned_due",
    "booked_for",
    "last_phq9",
    "last_item9",
    "item9_flagged",
    "item9_not_in_latest",
    "phq9_trend",
    "baseline_phq9",
    "series_response_percent",
    "care_flags",
    "relief_shortening",
    "own_history_share",
    "patient_id",
    "site_id",
)


def episodes_text(episodes: tuple[ReliefEpisode, ...] | list[ReliefEpisode]) -> str:
    """Past relief in days, oldest first: "21, 18, 14+" (+ = censored, at least).

    Only the last ``EPISODES_SHOWN`` are written out, after "…".
    """
    text = ", ".join(f"{e.days}{'' if e.relapsed else '+'}" for e in episodes[-EPISODES_SHOWN:])
    return f"…, {text}" if len(episodes) > EPISODES_SHOWN else text


def worklist_frame(
    *,
    plans: list[BoosterPlan],
    flags: tuple[BoosterFlag, ...] = WORKLIST_FLAGS,
    time_zone: str = "UTC",
) -> pd.DataFrame:
    """The worklist, most urgent first: one row per plan whose flag is in ``flags``."""
    chosen = sorted(
        (p for p in plans if p.flag in flags),
        key=lambda p: (p.flag.rank, p.booster_due or date.max, p.patient_ref),
    )
    rows = [
        {
            "patient_ref": p.patient_ref,
            "last_infusion": p.last_infusion,
            "episodes": episodes_text(p.episodes),
            "expected_relief_days": round(p.estimate.expected_days) if p.estimate else None,
            "booster_due": p.booster_due,
            "flag": p.flag.value,
            "planned_due": p.planned_due,
            "booked_for": (
                p.booked_for.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M")
                if p.booked_for
                else None
            ),
            "last_phq9": p.last_phq9,
            "last_item9": p.last_item9,
            "item9_flagged": p.item9_flagged,
            "item9_not_in_latest": p.item9_not_in_latest,
            "phq9_trend": p.phq9_trend,
            "baseline_phq9": p.baseline_phq9,
            "series_response_percent": p.series_response_percent,
            "care_flags": ";".join(p.care_flags),
            "relief_shortening": bool(p.estimate and p.estimate.shortening),
            "own_history_share": round(p.estimate.own_share, 2) if p.estimate else None,
            "patient_id": p.patient_id,
            "site_id": p.site_id,
        }
        for p in chosen
    ]
    frame = pd.DataFrame(rows, columns=list(WORKLIST_COLUMNS))
    frame["_rank"] = [p.flag.rank for p in chosen]
    for column in (
        "expected_relief_days",
        "last_phq9",
        "last_item9",
        "phq9_trend",
        "baseline_phq9",
    ):
        frame[column] = frame[column].astype("Int64")
    frame["series_response_percent"] = frame["series_response_percent"].astype("Int64")
    frame["own_history_share"] = frame["own_history_share"].astype("Float64")
    return sort_worklist(frame)


def sort_worklist(frame: pd.DataFrame) -> pd.DataFrame:
    """Most urgent first: by flag, then the earliest due date, then the patient reference."""
    if "_rank" not in frame:
        frame = frame.assign(_rank=[BoosterFlag(f).rank for f in frame["flag"]])
    ordered = frame.assign(_due=pd.to_datetime(frame["booster_due"])).sort_values(
        ["_rank", "_due", "patient_ref"], kind="stable", na_position="last"
    )
    return ordered.drop(columns=["_rank", "_due"]).reset_index(drop=True)
