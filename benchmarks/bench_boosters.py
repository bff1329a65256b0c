"""Boosters: back-test of the booster dates on two synthetic clinics, and the worklist's timing.

Not a test: it prints numbers for docs/measured.md and docs/figures.md.

    python -m benchmarks.bench_boosters backtest            # both clinics, the defaults
    python -m benchmarks.bench_boosters backtest --quantiles 10 15 20 25 30
    python -m benchmarks.bench_boosters timing --url sqlite:////tmp/demo.db \\
        --large-url sqlite:////tmp/large.db

Back-test. Two clinics whose relief is known as it truly was:

- *demo*: the demo clinic (``ketadash.demo``, realistic relief: spread within a patient,
  drift, late reports, boosters that censor relief), built into a scratch SQLite file,
  with each relapse's true day taken from the generator (``relief_truth``);
- *second clinic*: a generator of its own, here, unlike the demo's: Weibull relief
  around a gamma-distributed patient scale, shorter for the more severe, shortening for
  some, relapses found by a fortnightly PHQ-9 for half the patients, boosters every four
  weeks for some.

Every relief episode that truly ended in a relapse before the next infusion is counted
once: mornings are replayed one by one from the day after the infusion, each with what
was known that morning (the episodes before, the clinic's curve as of the month, a
booking only if it had been made by then). The episode is judged on the first morning
the worklist lists the patient (*Due soon*: the date within ``booster_due_within_days``)
at that morning's date: *in time* when the date falls before the true relapse day, the
day relief ended (not the day anyone knew), *days early* how long before. A date
already past that morning is *not* in time and counted apart; so is an episode whose
relapse was known before the patient was listed (*Relapsed*: the booster comes after
the relapse). An episode whose next visit was booked before it was listed is not the
call list's and is left out (counted). Four ways of dating the booster are compared:
this method (each morning, from relief given it has lasted so far), the current method
(the last infusion + the 15% quantile − 3 days, fixed at the infusion), a fixed 28
days, and the patient's last gap between infusions.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import NormalDist

import sqlalchemy as sa
from sqlmodel import select

from ketadash.boosters import (
    ClinicRelief,
    Infusion,
    PatientHistory,
    ReliefEstimate,
    Score,
    booster_due_on,
    clinic_relief,
    estimate_relief,
    in_initial_series,
    local_day,
    relief_covariates,
    relief_episodes,
    series_end_index,
)
from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.histories import load_patient_histories
from ketadash.models import Site, TreatmentSession
from ketadash.settings import ClinicSettings, load_clinic_settings

ROOT = Path(__file__).resolve().parent.parent
FIXED_DAYS = 28
# The current method's margins (before issue 19): the 15% quantile less 3 lead days.
CURRENT_QUANTILE, CURRENT_LEAD_DAYS = 0.15, 3
METHODS = ("this method", "current method", f"fixed {FIXED_DAYS} days", "last gap")
# A fixed moment, so that a seed gives the same clinics and the same table every time.
BACKTEST_NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
# Episodes starting in the first months have too little clinic history behind them.
WARM_UP_DAYS = 120
# Past dates on the list are shown for a morning every this many days.
MORNING_EVERY_DAYS = 56


@dataclass(frozen=True, kw_only=True)
class ReplayPatient:
    """A patient's whole history, with the truth the back-test judges by.

    ``truth`` maps the day an episode's relief started (an infusion day) to the day it
    truly ended; ``booked_on`` each session's booking day (None: not recorded).
    """

    history: PatientHistory
    truth: dict[date, date]
    booked_on: dict[int, date | None]


@dataclass
class Tally:
    """One method's results."""

    judged: int = 0
    in_time: int = 0
    past: int = 0
    relapse_first: int = 0
    booked_ahead: int = 0
    early: list[int] = field(default_factory=list)

    def add(self, *, due: date, morning: date, relapse: date) -> None:
        self.judged += 1
        if due < morning:
            self.past += 1
        elif due < relapse:
            self.in_time += 1
            self.early.append((relapse - due).days)

    def row(self) -> tuple[str, str, str]:
        share = f"{100 * self.in_time / self.judged:.0f}%" if self.judged else "–"
        median = f"{statistics.median(self.early):.0f}" if self.early else "–"
        past = f"{100 * self.past / self.judged:.0f}%" if self.judged else "–"
        return share, median, past


@dataclass
class Result:
    tallies: dict[str, Tally]
    # Per morning: (patients on the list, of whom with a date already past) per method.
    mornings: dict[date, dict[str, list[int]]] = field(default_factory=dict)


# --- the four ways of dating a booster ----------------------------------------------------

DateRule = Callable[[date, date, ReliefEstimate, date | None], date]
_NORMAL = NormalDist()


def _this(settings: ClinicSettings) -> DateRule:
    def rule(anchor: date, morning: date, estimate: ReliefEstimate, _: date | None) -> date:
        return booster_due_on(
            infusion_day=anchor, today=morning, estimate=estimate, settings=settings
        )

    return rule


def _current(anchor: date, morning: date, estimate: ReliefEstimate, _: date | None) -> date:
    days = math.exp(estimate.centre + _NORMAL.inv_cdf(CURRENT_QUANTILE) * estimate.spread)
    return anchor + timedelta(days=math.floor(days) - CURRENT_LEAD_DAYS)


def _fixed(anchor: date, morning: date, estimate: ReliefEstimate, _: date | None) -> date:
    return anchor + timedelta(days=FIXED_DAYS)


def _last_gap(anchor: date, morning: date, estimate: ReliefEstimate, before: date | None) -> date:
    return anchor + ((anchor - before) if before is not None else timedelta(days=FIXED_DAYS))


# --- the replay -------------------------------------------------------------------------


def replay(
    *,
    patients: list[ReplayPatient],
    settings: ClinicSettings,
    now: datetime,
    fits: dict[date, ClinicRelief] | None = None,
) -> Result:
    """The back-test of the module's docstring on one clinic's patients. ``fits`` keeps the
    month's clinic fits between calls on the same patients (a sweep of the quantile)."""
    rules: dict[str, DateRule] = dict(
        zip(METHODS, (_this(settings), _current, _fixed, _last_gap), strict=True)
    )
    result = Result(tallies={name: Tally() for name in METHODS})
    if not patients:
        return result
    zone = patients[0].history.time_zone
    today = local_day(now, zone)
    everyone = {
        p.history.patient_id: relief_episodes(history=p.history, settings=settings, as_of=now)
        for p in patients
    }
    first_day = min(
        (local_day(p.history.infusions[0].at, zone) for p in patients if p.history.infusions),
        default=today,
    ) + timedelta(days=WARM_UP_DAYS)
    clinics: dict[date, ClinicRelief] = {} if fits is None else fits
    covariates = {p.history.patient_id: relief_covariates(p.history) for p in patients}

    def clinic_as_of(day: date) -> ClinicRelief:
        # The clinic's curve from the month's first day: episodes over by then.
        month = day.replace(day=1)
        if month not in clinics:
            since = month - timedelta(days=settings.booster_history_days)
            clinics[month] = clinic_relief(
                episodes_by_patient={
                    pid: [e for e in eps if since <= e.start and e.end < month and not e.open]
                    for pid, eps in everyone.items()
                },
                covariates_by_patient=covariates,
            )
        return clinics[month]

    # The same mornings at every site: counted back from the day of ``now`` in UTC.
    sample = {
        now.date() - timedelta(days=n * MORNING_EVERY_DAYS)
        for n in range(1, 1 + (now.date() - first_day).days // MORNING_EVERY_DAYS)
    }
    for name in METHODS:
        for morning in sample:
            result.mornings.setdefault(morning, {}).setdefault(name, [0, 0])
    window = settings.booster_due_within_days
    for patient in patients:
        history = patient.history
        if in_initial_series(history=history, settings=settings):
            continue
        first = series_end_index(history)
        episodes = everyone[history.patient_id]
        anchors = history.infusions[first:]
        for index, (anchor, episode) in enumerate(zip(anchors, episodes, strict=False)):
            anchor_day = local_day(anchor.at, zone)
            if anchor_day < first_day or anchor_day >= today:
                continue
            before = (
                local_day(history.infusions[first + index - 1].at, zone)
                if first + index >= 1
                else None
            )
            following = anchors[index + 1] if index + 1 < len(anchors) else None
            next_day = local_day(following.at, zone) if following is not None else None
            booked = patient.booked_on.get(following.session_id) if following else None
            known = episode.end if episode.relapsed else None  # the day the relapse was known
            since = anchor_day - timedelta(days=settings.booster_history_days)
            prior = [e for e in episodes[:index] if e.start >= since]
            estimate = estimate_relief(
                episodes=prior,
                clinic=clinic_as_of(anchor_day),
                settings=settings,
                covariates=covariates[history.patient_id],
            )
            relapse = patient.truth.get(anchor_day)
            # The list knows of a relapse only once it is reported or scored.
            last_morning = min(d for d in (today, known, next_day) if d is not None)
            # The list as it stood on the sampled mornings, nobody called: dates already past.
            for morning in sample:
                out_of_care = (morning - anchor_day).days >= settings.out_of_care_after_days
                if anchor_day < morning <= last_morning and not out_of_care:
                    for name, rule in rules.items():
                        due = rule(anchor_day, morning, estimate, before)
                        if (due - morning).days <= window:
                            counts = result.mornings[morning][name]
                            counts[0] += 1
                            counts[1] += due < morning
            if relapse is None or (next_day is not None and next_day <= relapse):
                continue  # relief outlasted the next infusion, or is still going
            for name, rule in rules.items():
                tally = result.tallies[name]
                morning = anchor_day + timedelta(days=1)
                while True:
                    if known is not None and morning > known:
                        # Relapsed: call now; the booster comes after the relapse.
                        tally.judged += 1
                        tally.relapse_first += 1
                        break
                    if booked is not None and booked < morning:
                        tally.booked_ahead += 1  # booked before the list had the patient
                        break
                    due = rule(anchor_day, morning, estimate, before)
                    if (due - morning).days <= window:
                        tally.add(due=due, morning=morning, relapse=relapse)
                        break
                    morning += timedelta(days=1)
                    if morning > today:
                        break
    return result


# --- the demo clinic, with its truth ----------------------------------------------------


def demo_patients(
    *, now: datetime, patients: int, seed: int
) -> tuple[list[list[ReplayPatient]], list[ClinicSettings]]:
    """The demo clinic built in a scratch SQLite file, per site, with the true relapse days."""
    from ketadash.demo import build_demo_clinic

    truth: list[tuple[int, int, int]] = []
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/demo.db"
        build_demo_clinic(url=url, now=now, patients=patients, seed=seed, relief_truth=truth)
        by_patient: dict[int, dict[date, date]] = {}
        for patient_id, anchor, relapse in truth:
            by_patient.setdefault(patient_id, {})[date.fromordinal(anchor)] = date.fromordinal(
                relapse
            )
        clinics, settings_by_site = [], []
        with read_session(url) as db:
            for site_id, zone in db.exec(select(Site.id, Site.time_zone)).all():
                settings = load_clinic_settings(db=db, site_id=site_id)
                histories = load_patient_histories(
                    db=db, as_of=now, history_days=5000, site_id=site_id
                )
                t = TreatmentSession.__table__.c
                booked = {
                    session_id: (local_day(at, zone) if at is not None else None)
                    for session_id, at in db.execute(
                        sa.select(t.id, t.booked_at).where(t.site_id == site_id)
                    ).all()
                }
                for session_id, at in list(booked.items()):
                    if isinstance(at, str):  # SQLite through a Core select: text
                        booked[session_id] = local_day(datetime.fromisoformat(at), zone)
                clinics.append(
                    [
                        ReplayPatient(
                            history=h, truth=by_patient.get(h.patient_id, {}), booked_on=booked
                        )
                        for h in histories
                    ]
                )
                settings_by_site.append(settings)
    return clinics, settings_by_site


# --- the second clinic: a generator unlike the demo's ----------------------------------


def second_clinic(*, now: datetime, patients: int, seed: int) -> list[ReplayPatient]:
    """Synthetic histories from a generator of their own (see the module docstring)."""
    rng = random.Random(f"{seed}:second clinic")
    today = now.date()
    out = []
    session = 0
    for patient_id in range(1, patients + 1):
        baseline = rng.randint(14, 26)
        # More severe, shorter relief; patients differ by a gamma-distributed scale.
        scale = rng.gammavariate(4.0, 8.0) * (1.25 - 0.025 * (baseline - 14))
        shape = rng.uniform(1.4, 2.6)
        shrink = rng.uniform(0.9, 0.97) if rng.random() < 0.3 else 1.0
        fortnightly = rng.random() < 0.5
        planned = rng.choice((21, 28, 35)) if rng.random() < 0.3 else None
        start = today - timedelta(days=rng.randint(60, 700))
        infusions, scores, returns = [], [], []
        truth: dict[date, date] = {}
        booked: dict[int, date | None] = {}

        def at(day: date, hour: int = 15) -> datetime:
            return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)

        scores.append(Score(taken_at=at(start - timedelta(days=1)), total=baseline, item9=0))
        for n in range(6):
            session += 1
            day = start + timedelta(days=2 * n)
            infusions.append(Infusion(session_id=session, at=at(day), kind="series", route="iv"))
            booked[session] = start
            scores.append(Score(taken_at=at(day, 16), total=max(3, baseline - 3 * n), item9=0))
        anchor = start + timedelta(days=10)
        episode = 0
        while anchor < today and rng.random() > 0.04:
            length = max(4, round(scale * shrink**episode * rng.weibullvariate(1, shape)))
            relapse = anchor + timedelta(days=length)
            if planned is not None and planned < length:
                nxt, booked_day = anchor + timedelta(days=planned), anchor
            else:
                truth[anchor] = relapse
                if fortnightly:
                    step = math.ceil(length / 14) * 14
                    known = anchor + timedelta(days=step)
                else:
                    known = relapse + timedelta(days=rng.choice((0, 0, 1, 2, 4)))
                if known >= today:
                    break
                if fortnightly:
                    scores.append(Score(taken_at=at(known, 20), total=baseline - 3, item9=0))
                else:
                    returns.append(known)
                nxt, booked_day = known + timedelta(days=rng.randint(1, 4)), known
            # Fortnightly home scores below the line while relief lasts.
            for k in range(14, (min(nxt, relapse) - anchor).days, 14):
                scores.append(Score(taken_at=at(anchor + timedelta(days=k), 20), total=5, item9=0))
            if nxt >= today:
                break
            session += 1
            infusions.append(Infusion(session_id=session, at=at(nxt), kind="booster", route="iv"))
            booked[session] = booked_day
            anchor = nxt
            episode += 1
        scores.sort(key=lambda s: s.taken_at)
        out.append(
            ReplayPatient(
                history=PatientHistory(
                    patient_id=patient_id,
                    patient_ref=f"S-{patient_id:05d}",
                    site_id=1,
                    time_zone="UTC",
                    infusions=tuple(infusions),
                    scores=tuple(scores),
                    symptom_returns=tuple(sorted(returns)),
                ),
                truth=truth,
                booked_on=booked,
            )
        )
    return out


def merge(results: list[Result]) -> Result:
    merged = Result(tallies={name: Tally() for name in METHODS})
    for result in results:
        for name, tally in result.tallies.items():
            into = merged.tallies[name]
            into.judged += tally.judged
            into.in_time += tally.in_time
            into.past += tally.past
            into.relapse_first += tally.relapse_first
            into.booked_ahead += tally.booked_ahead
            into.early += tally.early
        for morning, counts in result.mornings.items():
            for name, (listed, past) in counts.items():
                into = merged.mornings.setdefault(morning, {}).setdefault(name, [0, 0])
                into[0] += listed
                into[1] += past
    return merged


def print_result(title: str, result: Result) -> None:
    print(f"\n{title}")
    print(
        "| date from | episodes | in time | median days early | already past "
        "| relapse known first | left out: booked before listed |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, tally in result.tallies.items():
        share, median, past = tally.row()
        first = f"{100 * tally.relapse_first / tally.judged:.0f}%" if tally.judged else "–"
        print(
            f"| {name} | {tally.judged} | {share} | {median} | {past} | {first} "
            f"| {tally.booked_ahead} |"
        )
    print("\nPer morning, the list with nobody called: patients listed / with a date already past")
    print("| morning | " + " | ".join(METHODS) + " |")
    print("|---" * (len(METHODS) + 1) + "|")
    for morning in sorted(result.mornings):
        counts = result.mornings[morning]
        cells = [f"{counts[n][0]} / {counts[n][1]}" for n in METHODS]
        print(f"| {morning} | " + " | ".join(cells) + " |")


def backtest(*, now: datetime, patients: int, seed: int, overrides: dict[str, int]) -> None:
    demo, demo_settings = demo_patients(now=now, patients=patients, seed=seed)
    results = [
        replay(patients=site, settings=replace(settings, **overrides), now=now)
        for site, settings in zip(demo, demo_settings, strict=True)
    ]
    print(f"settings tried: {overrides or 'defaults'}; now {now.isoformat()}")
    print_result(f"Demo clinic ({patients} patients, seed {seed})", merge(results))
    second = second_clinic(now=now, patients=patients, seed=seed)
    print_result(
        f"Second clinic ({patients} patients, its own generator)",
        replay(patients=second, settings=replace(ClinicSettings(), **overrides), now=now),
    )


def sweep(*, now: datetime, patients: int, seed: int, quantiles: list[int]) -> None:
    """This method's in-time share and median days early for each quantile, both clinics
    (the clinic fits, which do not depend on the quantile, made once)."""
    demo, demo_settings = demo_patients(now=now, patients=patients, seed=seed)
    second = second_clinic(now=now, patients=patients, seed=seed)
    demo_fits: list[dict[date, ClinicRelief]] = [{} for _ in demo]
    second_fits: dict[date, ClinicRelief] = {}
    print(
        "| quantile % | demo in time | demo median early | second in time | second median early |"
    )
    print("|---|---|---|---|---|")
    for q in quantiles:
        cells = []
        demo_result = merge(
            [
                replay(
                    patients=site,
                    settings=replace(s, booster_quantile_percent=q),
                    now=now,
                    fits=fits,
                )
                for site, s, fits in zip(demo, demo_settings, demo_fits, strict=True)
            ]
        )
        second_result = replay(
            patients=second,
            settings=replace(ClinicSettings(), booster_quantile_percent=q),
            now=now,
            fits=second_fits,
        )
        for result in (demo_result, second_result):
            share, median, _ = result.tallies[METHODS[0]].row()
            cells += [share, median]
        print(f"| {q} | " + " | ".join(cells) + " |", flush=True)


def describe_fit(title: str, clinic: ClinicRelief) -> None:
    """The clinic's fit and its covariate checks, as docs/figures.md shows them."""
    fit = clinic.fit
    print(f"\n{title}")
    if fit is None:
        print("too little history to fit: the curve's median and spreads by moments")
        return
    print(
        f"centre {math.exp(fit.centre):.1f} days (log {fit.centre:.3f}), within-patient sd "
        f"{fit.within_sd:.3f}, between-patient sd {fit.between_sd:.3f}; {fit.patients} patients, "
        f"{fit.episodes} finished episodes; log-likelihood {fit.log_likelihood:.1f}, "
        f"{fit.iterations} iterations, converged {fit.converged}"
    )
    print("| candidate | likelihood ratio 2Δℓ | coefficient (log days per unit) | enters |")
    print("|---|---|---|---|")
    for check in clinic.checks:
        print(
            f"| {check.name} | {check.statistic:.1f} | {check.coefficient:+.4f} "
            f"| {'yes' if check.entered else 'no'} |"
        )


def model(*, now: datetime, patients: int, seed: int, url: str | None) -> None:
    """The random-effects fit each clinic's worklist uses today, with its covariate checks
    and how long the fit took: the two synthetic clinics, or a clinic's own database."""
    if url is not None:
        with read_session(url) as db:
            for site_id, code in db.exec(select(Site.id, Site.code)).all():
                settings = load_clinic_settings(db=db, site_id=site_id)
                histories = load_patient_histories(
                    db=db, as_of=utc_now(), history_days=settings.booster_history_days,
                    site_id=site_id,
                )  # fmt: skip
                _fit_and_describe(f"site {code}", histories, settings, utc_now())
        return
    demo, demo_settings = demo_patients(now=now, patients=patients, seed=seed)
    for n, (site, settings) in enumerate(zip(demo, demo_settings, strict=True), start=1):
        histories = [p.history for p in site]
        _fit_and_describe(f"demo, site {n}", histories, settings, now)
    second = [p.history for p in second_clinic(now=now, patients=patients, seed=seed)]
    _fit_and_describe("second clinic", second, ClinicSettings(), now)


def _fit_and_describe(
    title: str, histories: list[PatientHistory], settings: ClinicSettings, as_of: datetime
) -> None:
    episodes = {
        h.patient_id: relief_episodes(history=h, settings=settings, as_of=as_of) for h in histories
    }
    since = local_day(as_of, histories[0].time_zone if histories else "UTC") - timedelta(
        days=settings.booster_history_days
    )
    wall, cpu = time.perf_counter(), time.process_time()
    clinic = clinic_relief(
        episodes_by_patient={
            p: [e for e in eps if e.start >= since] for p, eps in episodes.items()
        },
        covariates_by_patient={h.patient_id: relief_covariates(h) for h in histories},
    )
    took = time.perf_counter() - wall, time.process_time() - cpu
    describe_fit(f"{title}: {len(histories)} patients", clinic)
    print(f"fit with the covariate checks: {took[0]:.2f} s wall, {took[1]:.2f} s CPU")


# --- timing -----------------------------------------------------------------------------


def timing(*, url: str, repeats: int = 5) -> dict[str, float]:
    """Median seconds for one site (the page's unit): wall clock and this process's CPU.

    On SQLite the database works inside this process, so CPU time counts database and
    pandas work alike and is steadier than wall time on a shared, loaded machine.
    """
    from ketadash.histories import boosters_worklist

    measured: dict[str, list[float]] = {"read": [], "read_cpu": [], "all": [], "all_cpu": []}
    rows = 0
    now = utc_now()
    with read_session(url) as db:
        site_id = db.exec(select(Site.id).order_by(Site.id)).first()
    for _ in range(repeats):
        with read_session(url) as db:
            wall, cpu = time.perf_counter(), time.process_time()
            settings = load_clinic_settings(db=db, site_id=site_id)
            load_patient_histories(
                db=db, as_of=now, history_days=settings.booster_history_days, site_id=site_id
            )
            measured["read"].append(time.perf_counter() - wall)
            measured["read_cpu"].append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            frame = boosters_worklist(db=db, as_of=now, site_ids=[site_id])
            measured["all"].append(time.perf_counter() - wall)
            measured["all_cpu"].append(time.process_time() - cpu)
            rows = len(frame)
    result = {name: statistics.median(values) for name, values in measured.items()}
    result["rows"] = rows
    return result


def page_timing(url: str, *, reruns: int = 5) -> dict[str, float]:
    """The Boosters page's script time through AppTest: first run and warm reruns (ms)."""
    import os as os_module

    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        # As on a warm server: navigation mode, not the legacy pages/ mode (see
        # tests/pages/conftest.py).
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    os_module.environ["KETADASH_DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=180)
    app.run()
    app.switch_page("pages/boosters.py")
    start = time.perf_counter()
    app.run()
    first = (time.perf_counter() - start) * 1000
    if app.exception:
        raise SystemExit(f"the page failed: {app.exception}")
    warm = []
    for _ in range(reruns):
        start = time.perf_counter()
        app.run()
        warm.append((time.perf_counter() - start) * 1000)
    PagesManager.__init__ = original
    return {"first": first, "warm": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="what", required=True)
    back = commands.add_parser("backtest")
    back.add_argument("--patients", type=int, default=400)
    back.add_argument("--seed", type=int, default=7)
    back.add_argument("--quantile", type=int, help="booster_quantile_percent to try")
    back.add_argument("--quantiles", type=int, nargs="+", help="sweep these quantiles")
    fitted = commands.add_parser("model")
    fitted.add_argument("--patients", type=int, default=400)
    fitted.add_argument("--seed", type=int, default=7)
    fitted.add_argument("--url", help="a clinic's database: fit each site's own history")
    timed = commands.add_parser("timing")
    timed.add_argument("--url", required=True)
    timed.add_argument("--large-url")
    timed.add_argument("--page", action="store_true", help="also time the page (AppTest)")
    args = parser.parse_args()
    if args.what == "model":
        model(now=BACKTEST_NOW, patients=args.patients, seed=args.seed, url=args.url)
        return
    if args.what == "backtest":
        if args.quantiles:
            sweep(
                now=BACKTEST_NOW, patients=args.patients, seed=args.seed, quantiles=args.quantiles
            )
            return
        overrides = {}
        if args.quantile is not None:
            overrides["booster_quantile_percent"] = args.quantile
        backtest(now=BACKTEST_NOW, patients=args.patients, seed=args.seed, overrides=overrides)
    else:
        for label, url in (("default demo", args.url), ("large demo", args.large_url)):
            if url is None:
                continue
            t = timing(url=url)
            print(
                f"{label}: one site's histories read in {t['read'] * 1000:.0f} ms "
                f"(CPU {t['read_cpu'] * 1000:.0f} ms); worklist (read + plan + frame) "
                f"{t['all'] * 1000:.0f} ms (CPU {t['all_cpu'] * 1000:.0f} ms); "
                f"{t['rows']:.0f} rows"
            )
        if args.page:
            pages = {
                label: page_timing(url)
                for label, url in (("default demo", args.url), ("large demo", args.large_url))
                if url is not None
            }
            for label, t in pages.items():
                print(f"{label}: page first run {t['first']:.0f} ms, warm {t['warm']:.0f} ms")
            if len(pages) == 2:
                default, large = pages.values()
                print(f"warm page, large ÷ default: {large['warm'] / default['warm']:.2f}×")
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
