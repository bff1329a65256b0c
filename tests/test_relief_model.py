"""The random-effects model of log relief: its likelihood, its fit, the covariate check and
the shortening term (issue 19). Simulated and hand-worked cases, no database."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pytest
from numpy.polynomial.hermite import hermgauss

from ketadash.boosters import (
    ClinicRelief,
    ReliefEpisode,
    clinic_relief,
    confirmed_shortening,
    estimate_relief,
    is_shortening,
    kaplan_meier,
)
from ketadash.relief_model import (
    CHI2_1_AT_1_PERCENT,
    EXACT,
    INTERVAL,
    RIGHT,
    Episode,
    _centre_patients,
    _log_likelihood,
    _Params,
    choose_covariates,
    fit_relief,
    log_sf,
    patient_posterior,
    relief_data,
    theta_of,
)
from ketadash.relief_model import ReliefFit as Fit
from ketadash.settings import ClinicSettings

SETTINGS = ClinicSettings()
MU, WITHIN, BETWEEN = math.log(22), 0.35, 0.6


def simulate(
    *,
    patients: int,
    seed: int,
    effect: float = 0.0,
    intervals: bool = True,
    as_exact: bool = False,
) -> tuple[list[list[Episode]], np.ndarray]:
    """Patients with 1–8 episodes each, log-normal relief around a patient level, censored
    by a booster booked independently of relief (right), and, for some, found by a PHQ-9
    within a week (an interval; with ``as_exact``, wrongly taken as the score's day). The
    design's two columns: a covariate with ``effect`` log days per unit, and noise."""
    rng = random.Random(seed)
    rows, design = [], []
    for _ in range(patients):
        x, noise = rng.gauss(0, 1), rng.gauss(0, 1)
        level = MU + effect * x + rng.gauss(0, BETWEEN)
        episodes = []
        for _ in range(rng.randint(1, 8)):
            days = math.exp(level + rng.gauss(0, WITHIN))
            booster = math.exp(MU + rng.gauss(0.3, 0.5))
            if booster < days:
                episodes.append(Episode(kind=RIGHT, upper=math.log(booster)))
            elif intervals and rng.random() < 0.4:
                lower = max(0.0, days - rng.uniform(0, 7))
                upper = lower + 7
                if as_exact:
                    episodes.append(Episode(kind=EXACT, upper=math.log(upper)))
                else:
                    episodes.append(
                        Episode(
                            kind=INTERVAL,
                            upper=math.log(upper),
                            lower=math.log(lower) if lower > 0 else -math.inf,
                        )
                    )
            else:
                episodes.append(Episode(kind=EXACT, upper=math.log(days)))
        rows.append(episodes)
        design.append([x, noise])
    return rows, np.array(design)


# --- the normal's tails (numpy has no erf) ------------------------------------------------


def test_the_log_survival_function_matches_the_standard_library_into_the_tails():
    normal = NormalDist()
    for z in (-8.0, -3.0, -1.0, 0.0, 0.5, 2.0, 5.0):
        expected = math.log(1 - normal.cdf(z)) if z < 5 else math.log(math.erfc(z / 2**0.5) / 2)
        assert float(log_sf(np.array([z]))[0]) == pytest.approx(expected, abs=1e-6)
    # Far in the tail it neither underflows nor loses its value: −z²/2 − log(z√2π), near.
    assert float(log_sf(np.array([40.0]))[0]) == pytest.approx(
        -800 - math.log(40 * math.sqrt(2 * math.pi)), abs=1e-3
    )


# --- the likelihood on hand-worked cases ---------------------------------------------------


def one_patient(episodes: list[Episode], *, centre: float, within: float, between: float):
    """The quadrature's log-likelihood of one patient, at the given parameters."""
    data = relief_data([episodes])
    theta = theta_of(Fit(centre=centre, within_sd=within, between_sd=between))
    centres, scales = _centre_patients(data, _Params.of(theta))
    value, _ = _log_likelihood(data, theta, centres, scales, hermgauss(9))
    return value


def test_one_episode_integrates_to_the_normal_with_both_spreads():
    # Integrated over the patient's level, one episode's log days is normal(mu, √(w² + b²)).
    centre, within, between = math.log(20), 0.3, 0.5
    total = NormalDist(centre, math.hypot(within, between))
    exact = one_patient([Episode(kind=EXACT, upper=math.log(25))], centre=centre, within=within,
                        between=between)  # fmt: skip
    assert exact == pytest.approx(math.log(total.pdf(math.log(25))), abs=1e-6)
    right = one_patient([Episode(kind=RIGHT, upper=math.log(30))], centre=centre, within=within,
                        between=between)  # fmt: skip
    # Nine nodes: a censored episode's skewed posterior is integrated to about 1e-5.
    assert right == pytest.approx(math.log(1 - total.cdf(math.log(30))), abs=1e-4)


def test_an_interval_censored_relapse_counts_the_probability_of_its_interval():
    centre, within, between = math.log(20), 0.3, 0.5
    total = NormalDist(centre, math.hypot(within, between))
    # Relief ended after the score below the line on day 14 and by the score on day 21.
    interval = Episode(kind=INTERVAL, upper=math.log(21), lower=math.log(14))
    value = one_patient([interval], centre=centre, within=within, between=between)
    expected = total.cdf(math.log(21)) - total.cdf(math.log(14))
    assert value == pytest.approx(math.log(expected), abs=1e-4)
    # No score below the line since the infusion: any time in the first 21 days.
    open_below = Episode(kind=INTERVAL, upper=math.log(21))
    value = one_patient([open_below], centre=centre, within=within, between=between)
    assert value == pytest.approx(math.log(total.cdf(math.log(21))), abs=1e-4)


def test_two_episodes_of_one_patient_are_correlated_through_their_level():
    # Two exact episodes: bivariate normal, variance w² + b² each, covariance b².
    centre, within, between = math.log(20), 0.3, 0.5
    y = np.array([math.log(15), math.log(18)]) - centre
    cov = np.array([[within**2 + between**2, between**2], [between**2, within**2 + between**2]])
    expected = -math.log(2 * math.pi) - 0.5 * math.log(np.linalg.det(cov))
    expected -= 0.5 * float(y @ np.linalg.solve(cov, y))
    episodes = [Episode(kind=EXACT, upper=math.log(15)), Episode(kind=EXACT, upper=math.log(18))]
    assert one_patient(episodes, centre=centre, within=within, between=between) == pytest.approx(
        expected, abs=1e-6
    )


def test_the_gradient_is_the_likelihoods_own():
    rows, _ = simulate(patients=60, seed=5)
    data = relief_data(rows)
    theta = np.array([math.log(25), math.log(0.3), math.log(0.4)])
    centres, scales = _centre_patients(data, _Params.of(theta))
    nodes = hermgauss(9)
    _, gradient = _log_likelihood(data, theta, centres, scales, nodes)
    for k in range(3):
        step = np.zeros(3)
        step[k] = 1e-5
        up, _ = _log_likelihood(data, theta + step, centres, scales, nodes)
        down, _ = _log_likelihood(data, theta - step, centres, scales, nodes)
        assert gradient[k] == pytest.approx((up - down) / 2e-5, rel=1e-3, abs=1e-3)


# --- the fit recovers what it was simulated with -------------------------------------------


def test_the_fit_recovers_the_centre_and_both_spreads():
    rows, _ = simulate(patients=600, seed=1)
    fit = fit_relief(relief_data(rows))
    assert fit.converged
    assert math.exp(fit.centre) == pytest.approx(22, rel=0.06)
    assert fit.within_sd == pytest.approx(WITHIN, abs=0.03)
    assert fit.between_sd == pytest.approx(BETWEEN, abs=0.06)


def test_taking_a_phq9_found_relapse_as_the_scores_day_biases_relief_long():
    # The same relapses, known to a week: as intervals the centre is right; taken as if they
    # happened on the score's day it comes out longer.
    intervals = fit_relief(relief_data(simulate(patients=600, seed=2)[0]))
    as_exact = fit_relief(relief_data(simulate(patients=600, seed=2, as_exact=True)[0]))
    assert math.exp(intervals.centre) == pytest.approx(22, rel=0.06)
    assert as_exact.centre > intervals.centre + 0.04


def test_the_patients_posterior_by_quadrature_matches_the_closed_form():
    exact = [Episode(kind=EXACT, upper=math.log(d)) for d in (12, 15, 14)]
    closed = patient_posterior(exact, prior_mean=math.log(25), within_sd=0.3, between_sd=0.5)
    # A censored episode of a tenth of a day says nothing, but sends it through quadrature.
    quadrature = patient_posterior(
        [*exact, Episode(kind=RIGHT, upper=math.log(0.1))],
        prior_mean=math.log(25),
        within_sd=0.3,
        between_sd=0.5,
    )
    assert quadrature.mean == pytest.approx(closed.mean, abs=1e-4)
    assert quadrature.variance == pytest.approx(closed.variance, rel=1e-3)
    # Shrinkage: the clinic counts as (0.3 / 0.5)² = 0.36 episodes.
    own = sum(math.log(d) for d in (12, 15, 14)) / 3
    weight = 3 / (3 + 0.36)
    assert closed.mean == pytest.approx(weight * own + (1 - weight) * math.log(25), abs=1e-9)


# --- covariates: the likelihood-ratio check --------------------------------------------------


def test_a_covariate_enters_when_the_history_supports_it_and_noise_does_not():
    rows, design = simulate(patients=400, seed=3, effect=0.25)
    fit, checks = choose_covariates(relief_data(rows, design, ("severity", "noise")))
    by_name = {c.name: c for c in checks}
    assert by_name["severity"].entered
    assert by_name["severity"].statistic >= CHI2_1_AT_1_PERCENT
    assert by_name["severity"].coefficient == pytest.approx(0.25, abs=0.06)
    assert not by_name["noise"].entered
    assert fit.names == ("severity",)
    # Without the effect, neither enters: the clinic's prior stays one centre.
    rows, design = simulate(patients=400, seed=3, effect=0.0)
    fit, checks = choose_covariates(relief_data(rows, design, ("severity", "noise")))
    assert fit.names == ()
    assert not any(c.entered for c in checks)


# --- the shortening term ----------------------------------------------------------------------


def episodes_of(*days: int) -> list[ReliefEpisode]:
    start = date(2026, 1, 1)
    out, anchor = [], start
    for d in days:
        out.append(
            ReliefEpisode(start=anchor, end=anchor + timedelta(days=d), days=d, relapsed=True,
                          ended_by="symptom return", open=False)
        )  # fmt: skip
        anchor += timedelta(days=d + 3)
    return out


def clinic(within: float = 0.1, between: float = 0.5, centre: float = math.log(30)):
    curve = kaplan_meier(durations=[30], relapsed=[True])
    return ClinicRelief(curve=curve, centre=centre, within_sd=within, between_sd=between)


def test_a_confirmed_shortening_trend_moves_the_date_earlier():
    # 15% shorter each episode, the clinic's within-patient spread 0.1: slope −0.16 an episode,
    # its error 0.1/√5 = 0.045: z = −3.6, confirmed.
    shrinking = episodes_of(40, 34, 29, 25)
    trend = confirmed_shortening(shrinking, within_sd=0.1)
    assert trend is not None
    assert math.exp(trend.slope) == pytest.approx(0.85, abs=0.01)
    estimate = estimate_relief(episodes=shrinking, clinic=clinic(), settings=SETTINGS)
    assert estimate.trend_factor == pytest.approx(0.85, abs=0.01)
    # Carried along the trend, the next episode is expected near 25 × 0.85 ≈ 21 days, not near
    # the four episodes' middle (31).
    assert estimate.expected_days == pytest.approx(21.3, abs=1.5)
    steady = estimate_relief(
        episodes=episodes_of(31, 31, 31, 31), clinic=clinic(), settings=SETTINGS
    )
    assert steady.trend_factor is None
    assert estimate.conservative_days < steady.conservative_days


def test_shortening_is_confirmed_only_when_the_slope_clears_the_noise():
    # The same fall, but the clinic's episodes vary by 0.35 within a patient: z = −1.0.
    assert confirmed_shortening(episodes_of(40, 34, 29, 25), within_sd=0.35) is None
    # Three episodes are flagged as shortening (shown) but too few to confirm (in the date).
    three = episodes_of(30, 25, 20)
    assert is_shortening(three)
    assert confirmed_shortening(three, within_sd=0.05) is None
    # Lengthening is not shortening.
    assert confirmed_shortening(episodes_of(20, 24, 29, 35), within_sd=0.05) is None


def test_a_care_flag_the_history_supports_moves_a_new_patients_expected_relief():
    # Forty patients, four steady-ish episodes each; those with anxiety relapse at about 12
    # days, the others at about 24: the flag enters, and a new patient's prior follows it.
    rng = random.Random(9)
    episodes, covariates = {}, {}
    for patient in range(40):
        anxious = patient % 2 == 0
        level = math.log(12 if anxious else 24) + rng.gauss(0, 0.15)
        episodes[patient] = episodes_of(
            *(round(math.exp(level + rng.gauss(0, 0.2))) for _ in range(4))
        )
        covariates[patient] = (
            {"care flag: anxiety": 1.0, "baseline PHQ-9": 20.0 + rng.gauss(0, 3)}
            if anxious
            else {"baseline PHQ-9": 20.0 + rng.gauss(0, 3)}
        )
    fitted = clinic_relief(episodes_by_patient=episodes, covariates_by_patient=covariates)
    assert [t.name for t in fitted.terms] == ["care flag: anxiety"]
    assert {c.name: c.entered for c in fitted.checks} == {
        "baseline PHQ-9": False,
        "care flag: anxiety": True,
    }
    new_anxious = estimate_relief(
        episodes=[], clinic=fitted, settings=SETTINGS, covariates={"care flag: anxiety": 1.0}
    )
    new_calm = estimate_relief(episodes=[], clinic=fitted, settings=SETTINGS, covariates={})
    assert new_anxious.expected_days == pytest.approx(12, rel=0.12)
    assert new_calm.expected_days == pytest.approx(24, rel=0.12)


def test_the_page_says_what_the_clinics_model_is():
    from ketadash.boosters import model_summary

    rows, _ = simulate(patients=60, seed=4, intervals=False)
    small = clinic()
    assert "Too little history" in model_summary(small)
    fit = fit_relief(relief_data(rows))
    fitted = ClinicRelief(
        curve=small.curve,
        centre=fit.centre,
        within_sd=fit.within_sd,
        between_sd=fit.between_sd,
        fit=fit,
    )
    text = model_summary(fitted)
    assert f"{math.exp(fit.centre):.0f} days" in text
    assert "Covariates that entered: none." in text
