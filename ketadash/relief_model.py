"""A patient-level model of relief: log days with a patient random intercept, by likelihood.

    log T_ij = mu + x_i·beta + b_i + e_ij,   b_i ~ N(0, between_sd²),   e_ij ~ N(0, within_sd²)

T_ij is patient i's j-th relief episode in days, x_i the patient's covariates (centred, so mu
is the clinic's centre for a patient of average covariates). Each episode enters the
likelihood as what is known of it:

* a reported return of symptoms: its day (a density);
* relief still going, or ended by a booster before any relapse signal: at least this long
  (right-censored, the survival function);
* a relapse found by a PHQ-9: somewhere after the last score below the line and by the
  score (interval-censored, the probability of the interval).

A patient's likelihood integrates their intercept out; the integral is adaptive
Gauss–Hermite quadrature (``numpy.polynomial.hermite.hermgauss``), the nodes centred at
each patient's posterior mode and scaled by its curvature. The fit maximises the sum by
BFGS with the analytic gradient (no scipy at run time): one fit gives the centre and both
spreads. A patient's next relief is the predictive distribution from it: the intercept's
posterior given their own episodes (shrinkage), plus the within-patient spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.hermite import hermgauss

EXACT, RIGHT, INTERVAL = 0, 1, 2
# Floors of the spreads: a clinic whose patients repeat one length exactly would otherwise
# fit a within-patient spread of zero (relief is counted in whole days).
MIN_WITHIN_SD = 0.08
MIN_BETWEEN_SD = 0.05
# Quadrature nodes per patient (adaptive: a handful is plenty once centred and scaled).
FIT_NODES = 9
PATIENT_NODES = 9
NEWTON_STEPS = 8
MAX_ITERATIONS = 200
_LOG_2PI_HALF = 0.5 * math.log(2 * math.pi)
_SQRT2 = math.sqrt(2.0)


# --- the normal distribution, vectorised (numpy has no erf) -----------------------------


def _log_erfc_positive(x: np.ndarray) -> np.ndarray:
    """log erfc(x) for x >= 0 (Numerical Recipes' erfcc: relative error below 1.2e-7,
    in logs so that far tails do not underflow)."""
    t = 1.0 / (1.0 + 0.5 * x)
    poly = -1.26551223 + t * (
        1.00002368
        + t
        * (
            0.37409196
            + t
            * (
                0.09678418
                + t
                * (
                    -0.18628806
                    + t
                    * (
                        0.27886807
                        + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                    )
                )
            )
        )
    )
    return np.log(t) - x * x + poly


def log_sf(z: np.ndarray) -> np.ndarray:
    """log(1 − Φ(z)), accurate in both tails."""
    z = np.asarray(z, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        positive = _log_erfc_positive(np.abs(z) / _SQRT2)
        upper = positive - math.log(2.0)  # z >= 0: ½ erfc(x)
        lower = np.log1p(-0.5 * np.exp(positive))  # z < 0: 1 − ½ erfc(−x)
    return np.where(z >= 0, upper, lower)


def log_cdf(z: np.ndarray) -> np.ndarray:
    """log Φ(z)."""
    return log_sf(-np.asarray(z, dtype=float))


def log_pdf(z: np.ndarray) -> np.ndarray:
    return -0.5 * np.asarray(z) ** 2 - _LOG_2PI_HALF


def _log_interval(zl: np.ndarray, zu: np.ndarray) -> np.ndarray:
    """log(Φ(zu) − Φ(zl)) for zl < zu, from the tail the interval lies in."""
    upper_tail = zl > 0
    a = np.where(upper_tail, log_sf(zl), log_cdf(zu))
    b = np.where(upper_tail, log_sf(zu), log_cdf(zl))
    wide = a + np.log1p(-np.exp(np.minimum(b - a, -1e-12)))
    # A narrow interval: its width times the density at its middle.
    width = zu - zl
    narrow = log_pdf(0.5 * (zu + np.where(np.isfinite(zl), zl, zu))) + np.log(
        np.where(width > 0, width, 1e-300)
    )
    return np.where(width < 1e-4, narrow, wide)


# --- the data -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Episode:
    """One relief episode as the likelihood sees it: what kind of knowledge, in log days.

    ``kind`` EXACT: ``upper`` is the log of the day relief ended; RIGHT: relief lasted at
    least ``upper``; INTERVAL: it ended after ``lower`` (−inf: any time from the start)
    and by ``upper``.
    """

    kind: int
    upper: float
    lower: float = -math.inf


@dataclass(frozen=True)
class ReliefData:
    """Every patient's episodes, flattened and grouped by patient (``starts``)."""

    kind: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    patient: np.ndarray  # each episode's patient, 0 .. patients − 1, ascending
    starts: np.ndarray  # the first episode of each patient
    design: np.ndarray  # patients × covariates, centred
    names: tuple[str, ...]

    @property
    def patients(self) -> int:
        return len(self.starts)

    @property
    def episodes(self) -> int:
        return len(self.kind)

    def with_columns(self, columns: Sequence[int]) -> ReliefData:
        return ReliefData(
            kind=self.kind,
            upper=self.upper,
            lower=self.lower,
            patient=self.patient,
            starts=self.starts,
            design=self.design[:, list(columns)],
            names=tuple(self.names[c] for c in columns),
        )


def relief_data(
    episodes: Sequence[Sequence[Episode]],
    design: np.ndarray | None = None,
    names: tuple[str, ...] = (),
) -> ReliefData:
    """The likelihood's arrays; patients without episodes are left out (with their row)."""
    keep = [i for i, patient in enumerate(episodes) if patient]
    kinds: list[int] = []
    uppers: list[float] = []
    lowers: list[float] = []
    owners: list[int] = []
    starts: list[int] = []
    for position, i in enumerate(keep):
        starts.append(len(kinds))
        for episode in episodes[i]:
            kinds.append(episode.kind)
            uppers.append(episode.upper)
            lowers.append(episode.lower)
            owners.append(position)
    matrix = (
        np.zeros((len(keep), 0))
        if design is None or design.shape[1] == 0
        else np.asarray(design, dtype=float)[keep]
    )
    return ReliefData(
        kind=np.asarray(kinds, dtype=np.int8),
        upper=np.asarray(uppers, dtype=float),
        lower=np.asarray(lowers, dtype=float),
        patient=np.asarray(owners, dtype=np.int64),
        starts=np.asarray(starts, dtype=np.int64),
        design=matrix,
        names=names if matrix.shape[1] else (),
    )


# --- one episode's log-likelihood and its derivatives in the mean --------------------------


@dataclass
class _Terms:
    value: np.ndarray  # log f
    d_mean: np.ndarray  # ∂ log f / ∂ mean
    d_log_sd: np.ndarray  # ∂ log f / ∂ log sd
    d2_mean: np.ndarray | None = field(default=None)  # ∂² log f / ∂ mean²


def _episode_terms(
    data: ReliefData, mean: np.ndarray, sd: float, *, curvature: bool = False
) -> _Terms:
    """log f of each episode (rows) at each mean (same shape as ``mean``, rows episodes)."""
    shape = mean.shape
    extra = (slice(None),) + (None,) * (len(shape) - 1)
    kind = data.kind[extra]
    upper = data.upper[extra]
    lower = data.lower[extra]
    zu = (upper - mean) / sd
    value = np.empty(shape)
    d_mean = np.empty(shape)
    d_log_sd = np.empty(shape)
    d2 = np.empty(shape) if curvature else None
    exact = np.broadcast_to(kind == EXACT, shape)
    right = np.broadcast_to(kind == RIGHT, shape)
    interval = np.broadcast_to(kind == INTERVAL, shape)
    if exact.any():
        z = zu[exact]
        value[exact] = log_pdf(z) - math.log(sd)
        d_mean[exact] = z / sd
        d_log_sd[exact] = z * z - 1
        if d2 is not None:
            d2[exact] = -1 / sd**2
    if right.any():
        z = zu[right]
        log_s = log_sf(z)
        hazard = np.exp(log_pdf(z) - log_s)
        value[right] = log_s
        d_mean[right] = hazard / sd
        d_log_sd[right] = hazard * z
        if d2 is not None:
            d2[right] = -hazard * (hazard - z) / sd**2
    if interval.any():
        z_up = zu[interval]
        z_low = np.broadcast_to((lower - mean) / sd, shape)[interval]
        log_d = _log_interval(z_low, z_up)
        r_up = np.exp(log_pdf(z_up) - log_d)
        finite = np.isfinite(z_low)
        r_low = np.where(finite, np.exp(log_pdf(np.where(finite, z_low, 0.0)) - log_d), 0.0)
        zr_low = np.where(finite, np.where(finite, z_low, 0.0) * r_low, 0.0)
        value[interval] = log_d
        first = -(r_up - r_low) / sd
        d_mean[interval] = first
        d_log_sd[interval] = -(z_up * r_up - zr_low)
        if d2 is not None:
            d2[interval] = -(z_up * r_up - zr_low) / sd**2 - first**2
    return _Terms(value=value, d_mean=d_mean, d_log_sd=d_log_sd, d2_mean=d2)


# --- the marginal likelihood ----------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    centre: float
    within_sd: float
    between_sd: float
    beta: np.ndarray

    @staticmethod
    def of(theta: np.ndarray) -> _Params:
        # Spreads above the floors, as exp of a bounded parameter (a wild trial step of the
        # line search cannot overflow).
        return _Params(
            centre=float(theta[0]),
            within_sd=MIN_WITHIN_SD + math.exp(min(max(theta[1], -20.0), 3.0)),
            between_sd=MIN_BETWEEN_SD + math.exp(min(max(theta[2], -20.0), 3.0)),
            beta=theta[3:],
        )


def _fixed_part(data: ReliefData, params: _Params) -> np.ndarray:
    """Each episode's mean without the patient's intercept: mu + x·beta."""
    per_patient = params.centre + (data.design @ params.beta if params.beta.size else 0.0)
    return np.broadcast_to(per_patient, (data.patients,))[data.patient]


def _centre_patients(
    data: ReliefData, params: _Params, start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's posterior mode of the intercept and the sd its curvature gives (Newton;
    every term is log-concave in the mean, so it converges)."""
    fixed = _fixed_part(data, params)
    b = np.zeros(data.patients) if start is None else start.copy()
    prior = 1 / params.between_sd**2
    curvature = np.full(data.patients, prior)
    for _ in range(NEWTON_STEPS):
        with np.errstate(all="ignore"):
            terms = _episode_terms(data, fixed + b[data.patient], params.within_sd, curvature=True)
        assert terms.d2_mean is not None
        slope = np.add.reduceat(terms.d_mean, data.starts) - b * prior
        curvature = prior - np.add.reduceat(terms.d2_mean, data.starts)
        step = np.clip(slope / curvature, -1.0, 1.0)
        b = b + step
        if np.max(np.abs(step)) < 1e-7:
            break
    return b, 1 / np.sqrt(curvature)


def _log_likelihood(
    data: ReliefData,
    theta: np.ndarray,
    centres: np.ndarray,
    scales: np.ndarray,
    nodes: tuple[np.ndarray, np.ndarray],
) -> tuple[float, np.ndarray]:
    """The quadrature's log-likelihood and its gradient in ``theta`` (nodes held)."""
    params = _Params.of(theta)
    x, w = nodes
    b = centres[:, None] + _SQRT2 * scales[:, None] * x[None, :]  # patients × nodes
    fixed = _fixed_part(data, params)
    terms = _episode_terms(data, fixed[:, None] + b[data.patient], params.within_sd)
    sb = params.between_sd
    g = (
        np.add.reduceat(terms.value, data.starts, axis=0)
        + log_pdf(b / sb)
        - math.log(sb)
        + (np.log(w) + x**2)[None, :]
        + np.log(_SQRT2 * scales)[:, None]
    )
    top = g.max(axis=1, keepdims=True)
    weights = np.exp(g - top)
    total = weights.sum(axis=1, keepdims=True)
    value = float(np.sum(np.log(total[:, 0]) + top[:, 0]))
    p = weights / total  # each patient's posterior weight on each node
    pe = p[data.patient]
    d_mean = np.sum(pe * terms.d_mean, axis=1)
    grad = np.empty_like(theta)
    grad[0] = d_mean.sum()
    grad[1] = np.sum(pe * terms.d_log_sd) * (params.within_sd - MIN_WITHIN_SD) / params.within_sd
    grad[2] = (
        np.sum(p * ((b / sb) ** 2 - 1)) * (params.between_sd - MIN_BETWEEN_SD) / params.between_sd
    )
    if theta.size > 3:
        grad[3:] = data.design.T @ np.add.reduceat(d_mean, data.starts)
    return value, grad


# --- the fit ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReliefFit:
    """The fitted model: centre (log days, a patient of average covariates), the spreads
    (log days) and each covariate's coefficient (log days per unit of the covariate)."""

    centre: float
    within_sd: float
    between_sd: float
    names: tuple[str, ...] = ()
    coefficients: tuple[float, ...] = ()
    log_likelihood: float = 0.0
    patients: int = 0
    episodes: int = 0
    iterations: int = 0
    converged: bool = True


def _start(data: ReliefData) -> np.ndarray:
    ended = data.upper[data.kind == EXACT]
    if ended.size == 0:
        ended = data.upper
    centre = float(np.median(ended)) if ended.size else math.log(28)
    return np.concatenate([[centre, math.log(0.3), math.log(0.4)], np.zeros(data.design.shape[1])])


def _line_search(
    objective, theta: np.ndarray, value: float, grad: np.ndarray, direction: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Backtracking (Armijo) on the negative log-likelihood; None when no step helps."""
    slope = float(grad @ direction)
    if slope >= 0:
        direction, slope = -grad, -float(grad @ grad)
    # No step moves a parameter by more than 1 (log days, log spreads) at once.
    step = min(1.0, 1.0 / max(float(np.max(np.abs(direction))), 1e-12))
    for _ in range(40):
        trial = theta + step * direction
        trial_value, trial_grad = objective(trial)
        if np.isfinite(trial_value) and trial_value <= value + 1e-4 * step * slope:
            return trial, trial_value, trial_grad
        step *= 0.5
    return None


def fit_relief(data: ReliefData, *, start: np.ndarray | None = None) -> ReliefFit:
    """Maximum likelihood by BFGS, re-centring the quadrature at every iteration."""
    nodes = hermgauss(FIT_NODES)
    theta = _start(data) if start is None else np.asarray(start, dtype=float)
    centres, scales = _centre_patients(data, _Params.of(theta))

    def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            value, grad = _log_likelihood(data, t, centres, scales, nodes)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return math.inf, grad
        return -value, -grad

    value, grad = objective(theta)
    inverse = np.eye(theta.size)
    converged = False
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):  # noqa: B007 (reported)
        found = _line_search(objective, theta, value, grad, -inverse @ grad)
        if found is None:
            converged = np.max(np.abs(grad)) < 1e-3 * max(1.0, data.episodes / 1000)
            break
        new_theta, _, new_grad = found
        s, y = new_theta - theta, new_grad - grad
        theta = new_theta
        # The nodes follow the patients' posteriors (the quadrature barely moves: re-centring
        # changes the value by far less than the tolerance).
        centres, scales = _centre_patients(data, _Params.of(theta), centres)
        value, grad = objective(theta)
        if abs(float(s @ y)) > 1e-12:
            rho = 1.0 / float(s @ y)
            if rho > 0:
                eye = np.eye(theta.size)
                inverse = (eye - rho * np.outer(s, y)) @ inverse @ (
                    eye - rho * np.outer(y, s)
                ) + rho * np.outer(s, s)
        if np.max(np.abs(s)) < 1e-7 or np.max(np.abs(grad)) < 1e-6 * max(1.0, data.episodes):
            converged = True
            break
    params = _Params.of(theta)
    return ReliefFit(
        centre=params.centre,
        within_sd=params.within_sd,
        between_sd=params.between_sd,
        names=data.names,
        coefficients=tuple(float(c) for c in params.beta),
        log_likelihood=-value,
        patients=data.patients,
        episodes=data.episodes,
        iterations=iterations,
        converged=converged,
    )


def theta_of(fit: ReliefFit) -> np.ndarray:
    """The optimiser's parameters of a fit (a warm start for a larger model)."""
    return np.concatenate(
        [
            [
                fit.centre,
                math.log(max(fit.within_sd - MIN_WITHIN_SD, 1e-9)),
                math.log(max(fit.between_sd - MIN_BETWEEN_SD, 1e-9)),
            ],
            np.asarray(fit.coefficients, dtype=float),
        ]
    )


# --- choosing the covariates: a likelihood-ratio check ------------------------------------

# χ² with one degree of freedom at 1%: a covariate enters only when the clinic's own history
# says so this clearly (a 1% test, and one test per candidate, so chance rarely adds one).
CHI2_1_AT_1_PERCENT = 6.635


@dataclass(frozen=True, kw_only=True)
class CovariateCheck:
    """One candidate's likelihood-ratio check against the model chosen before it."""

    name: str
    statistic: float
    coefficient: float
    entered: bool


def choose_covariates(
    data: ReliefData, *, critical: float = CHI2_1_AT_1_PERCENT
) -> tuple[ReliefFit, tuple[CovariateCheck, ...]]:
    """Forward selection: the candidate with the largest likelihood ratio enters while its
    statistic 2(ℓ₁ − ℓ₀) is at least ``critical``; returns the chosen fit and each
    candidate's last check."""
    chosen: list[int] = []
    fit = fit_relief(data.with_columns(chosen))
    checks: dict[int, CovariateCheck] = {}
    remaining = list(range(len(data.names)))
    while remaining:
        best: tuple[float, int, ReliefFit] | None = None
        for column in remaining:
            start = np.concatenate([theta_of(fit), [0.0]])
            trial = fit_relief(data.with_columns([*chosen, column]), start=start)
            statistic = max(0.0, 2 * (trial.log_likelihood - fit.log_likelihood))
            checks[column] = CovariateCheck(
                name=data.names[column],
                statistic=statistic,
                coefficient=trial.coefficients[-1],
                entered=False,
            )
            if best is None or statistic > best[0]:
                best = (statistic, column, trial)
        assert best is not None
        if best[0] < critical:
            break
        chosen.append(best[1])
        remaining.remove(best[1])
        fit = best[2]
        checks[best[1]] = CovariateCheck(
            name=data.names[best[1]],
            statistic=best[0],
            coefficient=fit.coefficients[-1],
            entered=True,
        )
    return fit, tuple(checks[c] for c in range(len(data.names)))


# --- one patient's predictive distribution (pure Python: called per patient and anchor) ----

_PATIENT_X, _PATIENT_W = hermgauss(PATIENT_NODES)
_PX = [float(v) for v in _PATIENT_X]
_PLOGW = [math.log(float(v)) + float(x) ** 2 for v, x in zip(_PATIENT_W, _PATIENT_X, strict=True)]


def _py_log_sf(z: float) -> float:
    if z < 5:
        return math.log(0.5 * math.erfc(z / _SQRT2))
    # Far tail: erfc underflows long before its log does (asymptotic series).
    return -0.5 * z * z - math.log(z) - _LOG_2PI_HALF + math.log1p(-1 / z**2 + 3 / z**4)


def _py_log_cdf(z: float) -> float:
    return _py_log_sf(-z)


def _py_log_episode(episode: Episode, mean: float, sd: float) -> float:
    zu = (episode.upper - mean) / sd
    if episode.kind == EXACT:
        return -0.5 * zu * zu - _LOG_2PI_HALF - math.log(sd)
    if episode.kind == RIGHT:
        return _py_log_sf(zu)
    zl = (episode.lower - mean) / sd
    if zl > 0:
        a, b = _py_log_sf(zl), _py_log_sf(zu)
    else:
        a, b = _py_log_cdf(zu), (_py_log_cdf(zl) if math.isfinite(zl) else -math.inf)
    return a + math.log1p(-math.exp(min(b - a, -1e-300))) if b > -math.inf else a


def _py_slopes(episode: Episode, mean: float, sd: float) -> tuple[float, float]:
    """∂ log f/∂ mean and ∂²/∂ mean² for one episode (Newton on the intercept)."""
    zu = (episode.upper - mean) / sd
    if episode.kind == EXACT:
        return zu / sd, -1 / sd**2
    if episode.kind == RIGHT:
        hazard = math.exp(-0.5 * zu * zu - _LOG_2PI_HALF - _py_log_sf(zu))
        return hazard / sd, -hazard * (hazard - zu) / sd**2
    log_d = _py_log_episode(episode, mean, sd)
    r_up = math.exp(-0.5 * zu * zu - _LOG_2PI_HALF - log_d)
    zl = (episode.lower - mean) / sd
    if math.isfinite(zl):
        r_low = math.exp(-0.5 * zl * zl - _LOG_2PI_HALF - log_d)
        zr_low = zl * r_low
    else:
        r_low = zr_low = 0.0
    first = -(r_up - r_low) / sd
    return first, -(zu * r_up - zr_low) / sd**2 - first**2


@dataclass(frozen=True, kw_only=True)
class Posterior:
    """A patient's intercept given their episodes: its mean and variance (log days)."""

    mean: float
    variance: float


def patient_posterior(
    episodes: Sequence[Episode], *, prior_mean: float, within_sd: float, between_sd: float
) -> Posterior:
    """The posterior of the patient's relief level mu + x·beta + b given their episodes:
    closed form when every episode's end is known, else adaptive Gauss–Hermite."""
    prior = 1 / between_sd**2
    if all(e.kind == EXACT for e in episodes):
        precision = prior + len(episodes) / within_sd**2
        total = prior * prior_mean + sum(e.upper for e in episodes) / within_sd**2
        return Posterior(mean=total / precision, variance=1 / precision)
    level = prior_mean
    curvature = prior
    for _ in range(NEWTON_STEPS):
        slope, curvature = -(level - prior_mean) * prior, prior
        for episode in episodes:
            first, second = _py_slopes(episode, level, within_sd)
            slope += first
            curvature -= second
        step = max(-1.0, min(1.0, slope / curvature))
        level += step
        if abs(step) < 1e-8:
            break
    scale = _SQRT2 / math.sqrt(curvature)
    points = [level + scale * x for x in _PX]
    logs = [
        log_w
        - 0.5 * ((point - prior_mean) / between_sd) ** 2
        + sum(_py_log_episode(e, point, within_sd) for e in episodes)
        for point, log_w in zip(points, _PLOGW, strict=True)
    ]
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = sum(weights)
    mean = sum(w * p for w, p in zip(weights, points, strict=True)) / total
    second = sum(w * p * p for w, p in zip(weights, points, strict=True)) / total
    return Posterior(mean=mean, variance=max(second - mean * mean, 1e-12))
