"""Boosters: relief episodes, the clinic's curve, the shrunk estimate, due dates and flags.

Hand-made histories, no database: a patient's series, boosters, scores and reported
symptom returns as days after a fixed start.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest

from ketadash.boosters import (
    WORKLIST_COLUMNS,
    Booking,
    BoosterFlag,
    Infusion,
    PatientHistory,
    ReliefEpisode,
    ReliefEstimate,
    Score,
    booster_due_on,
    clinic_relief,
    conditional_relief_days,
    estimate_relief,
    is_shortening,
    kaplan_meier,
    plan_boosters,
    relief_episodes,
    worklist_frame,
)
from ketadash.settings import ClinicSettings

SETTINGS = ClinicSettings()
START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York


def at(day: float) -> datetime:
    return START + timedelta(days=day)


def day(n: int) -> date:
    return (START + timedelta(days=n)).date()


def history(
    *,
    patient_id: int = 1,
    series: int = 6,
    boosters: list[int] = (),
    returns: list[int] = (),
    scores: list[tuple[int, int]] = (),
    booked: int | None = None,
    booked_kind: str = "booster",
    ended_on: int | None = None,
) -> PatientHistory:
    """Series infusions every 2 days from day 0; boosters on the given days."""
    infusions = [
        Infusion(session_id=n, at=at(2 * n), kind="series", route="iv") for n in range(series)
    ]
    infusions += [
        Infusion(session_id=100 + n, at=at(d), kind="booster", route="iv")
        for n, d in enumerate(boosters)
    ]
    return PatientHistory(
        patient_id=patient_id,
        patient_ref=f"KD-{patient_id:06d}",
        site_id=1,
        time_zone="America/New_York",
        infusions=tuple(infusions),
        scores=tuple(Score(taken_at=at(d) - timedelta(hours=1), total=t) for d, t in scores),
        symptom_returns=tuple(day(d) for d in returns),
        booking=(
            Booking(session_id=999, scheduled_start=at(booked), kind=booked_kind)
            if booked is not None
            else None
        ),
        course_ended_on=day(ended_on) if ended_on is not None else None,
    )


def regular_patient(*, patient_id: int, relief: int, episodes: int) -> PatientHistory:
    """Series end on day 10; symptoms return after ``relief`` days, booster 3 days later."""
    boosters, returns = [], []
    anchor = 10
    for _ in range(episodes):
        returns.append(anchor + relief)
        anchor = anchor + relief + 3
        boosters.append(anchor)
    return history(patient_id=patient_id, boosters=boosters, returns=returns)


def clinic_of(histories: list[PatientHistory], as_of: datetime):
    episodes = {
        h.patient_id: relief_episodes(history=h, settings=SETTINGS, as_of=as_of) for h in histories
    }
    return clinic_relief(episodes_by_patient=episodes)


def a_clinic(as_of: datetime) -> list[PatientHistory]:
    """Forty patients whose relief lasts 12 to 40 days, steady from episode to episode."""
    rng = random.Random(3)
    return [
        regular_patient(patient_id=1000 + n, relief=rng.randint(12, 40), episodes=rng.randint(1, 6))
        for n in range(40)
    ]


# --- relief episodes ---------------------------------------------------------------


def test_episode_ends_at_the_first_reported_return_of_symptoms():
    h = history(boosters=[40], returns=[31, 35])
    episodes = relief_episodes(history=h, settings=SETTINGS, as_of=at(60))
    assert [(e.days, e.relapsed, e.ended_by) for e in episodes] == [
        (21, True, "symptom return"),
        (20, False, "still going"),
    ]
    assert episodes[-1].open


def test_planned_booster_without_relapse_is_censored_not_a_relapse():
    h = history(boosters=[38, 70])
    episodes = relief_episodes(history=h, settings=SETTINGS, as_of=at(75))
    assert [(e.days, e.relapsed, e.ended_by) for e in episodes] == [
        (28, False, "next infusion"),
        (32, False, "next infusion"),
        (5, False, "still going"),
    ]


def test_phq9_back_at_the_relapse_line_ends_relief():
    # Baseline 20 before the series: 12 is at or above 10 and no longer 50% below 20.
    h = history(boosters=[50], scores=[(0, 20), (25, 8), (32, 12)])
    episodes = relief_episodes(history=h, settings=SETTINGS, as_of=at(55))
    assert (episodes[0].days, episodes[0].relapsed, episodes[0].ended_by) == (22, True, "PHQ-9 12")


def test_phq9_of_ten_still_half_below_a_high_baseline_is_not_a_relapse():
    h = history(boosters=[50], scores=[(0, 24), (30, 11)])
    episodes = relief_episodes(history=h, settings=SETTINGS, as_of=at(55))
    assert not episodes[0].relapsed


def test_patient_in_initial_series_has_no_episodes_and_no_due_date():
    h = history(series=4)
    as_of = at(9)
    assert relief_episodes(history=h, settings=SETTINGS, as_of=as_of) == []
    plans, _ = plan_boosters(histories=[h, *a_clinic(as_of)], settings=SETTINGS, as_of=as_of)
    plan = plans[0]
    assert plan.flag is BoosterFlag.IN_SERIES
    assert plan.booster_due is None
    frame = worklist_frame(plans=plans)
    assert h.patient_ref not in set(frame["patient_ref"])


def test_six_series_infusions_with_more_series_booked_is_still_in_series():
    h = history(series=6, booked=14, booked_kind="series")
    plans, _ = plan_boosters(histories=[h], settings=SETTINGS, as_of=at(12))
    assert plans[0].flag is BoosterFlag.IN_SERIES


# --- the clinic's curve -------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Approximating using")
def test_kaplan_meier_matches_lifelines_on_the_same_episodes():
    lifelines = pytest.importorskip("lifelines")
    rng = random.Random(11)
    durations = [rng.randint(3, 90) for _ in range(300)]
    relapsed = [rng.random() < 0.7 for _ in durations]
    ours = kaplan_meier(durations=durations, relapsed=relapsed)
    theirs = lifelines.KaplanMeierFitter().fit(durations, relapsed)
    expected = theirs.survival_function_["KM_estimate"]
    for time in range(0, 95):
        assert ours.at(time) == pytest.approx(float(expected[expected.index <= time].iloc[-1]))
    assert ours.median() == theirs.median_survival_time_
    quantile = theirs.percentile(0.8)  # lifelines: the time the curve drops to 0.8
    assert ours.quantile(0.2) == quantile


def test_censored_episodes_lengthen_the_curve_unlike_a_plain_average():
    # Half the episodes ended at 10 days; half are still going at 30 days.
    curve = kaplan_meier(durations=[10] * 5 + [30] * 5, relapsed=[True] * 5 + [False] * 5)
    assert curve.at(29) == pytest.approx(0.5)
    assert curve.median() == 10
    assert curve.quantile(0.6) is None  # never seen: relief outlasts what we know


# --- the estimate ---------------------------------------------------------------------


def test_patient_with_no_history_gets_the_clinic_wide_estimate():
    as_of = at(200)
    clinic = clinic_of(a_clinic(as_of), as_of)
    estimate = estimate_relief(episodes=[], clinic=clinic, settings=SETTINGS)
    assert estimate.own_share == 0
    # The clinic's log-normal: its centre, and both spreads (any of its patients). The
    # centre is the random-effects fit's (issue 19: patients weigh alike), not the pooled
    # curve's median, where the patients with short relief and many episodes weigh most.
    assert estimate.expected_days == pytest.approx(math.exp(clinic.centre))
    assert estimate.spread == pytest.approx(math.hypot(clinic.within_sd, clinic.between_sd))


def test_one_short_episode_moves_the_due_date_less_than_five():
    as_of_one = at(10 + 8 + 3 + 1)
    as_of_five = at(10 + 5 * 11 + 1)
    one = regular_patient(patient_id=1, relief=8, episodes=1)
    five = regular_patient(patient_id=2, relief=8, episodes=5)
    clinic = clinic_of(a_clinic(as_of_five), as_of_five)
    median = clinic.curve.median()

    def expected(h, as_of):
        episodes = relief_episodes(history=h, settings=SETTINGS, as_of=as_of)
        return estimate_relief(episodes=episodes, clinic=clinic, settings=SETTINGS)

    moved_one = median - expected(one, as_of_one).expected_days
    moved_five = median - expected(five, as_of_five).expected_days
    assert 0 < moved_one < moved_five
    assert expected(one, as_of_one).own_share < expected(five, as_of_five).own_share
    # The first plan's date is the last infusion + the quantile: it moves with it.
    clinic_quantile = estimate_relief(
        episodes=[], clinic=clinic, settings=SETTINGS
    ).conservative_days
    due_moved_one = clinic_quantile - expected(one, as_of_one).conservative_days
    due_moved_five = clinic_quantile - expected(five, as_of_five).conservative_days
    assert due_moved_one < due_moved_five
    # Five steady episodes of 8 days: the patient's own history decides.
    assert expected(five, as_of_five).expected_days == pytest.approx(8, abs=1.5)


def test_recent_episodes_weigh_more():
    as_of = at(400)
    clinic = clinic_of(a_clinic(as_of), as_of)
    # Same episodes, opposite order: the one ending on short episodes expects less.
    lengths = [30, 30, 30, 12, 12, 12]

    def episodes(days):
        return [
            ReliefEpisode(start=day(0), end=day(d), days=d, relapsed=True, ended_by="", open=False)
            for d in days
        ]

    recent_short = estimate_relief(episodes=episodes(lengths), clinic=clinic, settings=SETTINGS)
    recent_long = estimate_relief(
        episodes=episodes(lengths[::-1]), clinic=clinic, settings=SETTINGS
    )
    assert recent_short.expected_days < recent_long.expected_days


def test_a_long_censored_episode_lengthens_the_estimate():
    as_of = at(400)
    clinic = clinic_of(a_clinic(as_of), as_of)
    h = regular_patient(patient_id=1, relief=15, episodes=3)
    last_booster = h.infusions[-1].at
    short_wait = relief_episodes(history=h, settings=SETTINGS, as_of=last_booster + timedelta(3))
    long_wait = relief_episodes(history=h, settings=SETTINGS, as_of=last_booster + timedelta(40))
    assert short_wait[-1].days == 3 and long_wait[-1].days == 40
    assert not long_wait[-1].relapsed
    short = estimate_relief(episodes=short_wait, clinic=clinic, settings=SETTINGS)
    long = estimate_relief(episodes=long_wait, clinic=clinic, settings=SETTINGS)
    assert long.expected_days > short.expected_days + 3


def test_shortening_relief_is_flagged_and_steady_relief_is_not():
    shrinking = history(boosters=[10 + 30 + 3, 10 + 30 + 3 + 25 + 3, 10 + 30 + 25 + 6 + 20 + 3],
                        returns=[40, 10 + 30 + 3 + 25, 10 + 30 + 25 + 6 + 20])  # fmt: skip
    episodes = relief_episodes(history=shrinking, settings=SETTINGS, as_of=at(120))
    assert [e.days for e in episodes if e.relapsed] == [30, 25, 20]
    assert is_shortening(episodes)
    steady = regular_patient(patient_id=2, relief=20, episodes=4)
    assert not is_shortening(relief_episodes(history=steady, settings=SETTINGS, as_of=at(120)))
    plans, _ = plan_boosters(histories=[shrinking], settings=SETTINGS, as_of=at(120))
    assert plans[0].estimate.shortening


# --- due dates and flags ------------------------------------------------------------------


def plan_of(h: PatientHistory, as_of: datetime):
    plans, _ = plan_boosters(histories=[h, *a_clinic(as_of)], settings=SETTINGS, as_of=as_of)
    return plans[0]


def test_planned_date_is_last_infusion_plus_the_quantile_and_now_is_conditional():
    h = regular_patient(patient_id=1, relief=20, episodes=5)
    as_of = h.infusions[-1].at + timedelta(days=2)
    plan = plan_of(h, as_of)
    # No lead days: the quantile is the one margin.
    assert plan.planned_due == plan.last_infusion + timedelta(
        days=int(plan.estimate.conservative_days)
    )
    assert plan.booster_due >= plan.planned_due
    assert plan.estimate.conservative_days < plan.estimate.expected_days
    assert plan.flag is BoosterFlag.LATER


def hand_estimate(*, median: float, spread: float) -> ReliefEstimate:
    return ReliefEstimate(
        expected_days=median,
        conservative_days=0,
        low_days=0,
        high_days=0,
        own_share=1,
        shortening=False,
        centre=math.log(median),
        spread=spread,
    )


def test_conditional_date_on_a_hand_worked_case():
    # Relief log-normal, median 20 days, log spread 0.5; q = 20%.
    estimate = hand_estimate(median=20, spread=0.5)
    # At the infusion: the plain 20% quantile, 20·exp(0.5·z(0.20)) = 20·exp(-0.4208) = 13.13.
    assert conditional_relief_days(estimate=estimate, lasted_days=0, quantile=0.2) == pytest.approx(
        13.13, abs=0.01
    )
    # Lasted 10 days: F(10) = Φ(ln(0.5)/0.5) = Φ(-1.386) = 0.0828; 0.0828 + 0.2·0.9172 = 0.2663;
    # z(0.2663) = -0.6242; 20·exp(-0.3121) = 14.64 days.
    assert conditional_relief_days(
        estimate=estimate, lasted_days=10, quantile=0.2
    ) == pytest.approx(14.64, abs=0.01)
    # Lasted 30 days, past the median: F = Φ(0.811) = 0.7913; 0.7913 + 0.2·0.2087 = 0.8330;
    # 20·exp(0.5·0.966) = 32.42 days: still after today, never a date already past.
    assert conditional_relief_days(
        estimate=estimate, lasted_days=30, quantile=0.2
    ) == pytest.approx(32.42, abs=0.01)
    settings = replace(SETTINGS, booster_quantile_percent=20)
    infused = date(2026, 3, 2)
    on = partial(booster_due_on, infusion_day=infused, estimate=estimate, settings=settings)
    assert on(today=infused) == date(2026, 3, 15)  # + 13 days: planned
    assert on(today=infused + timedelta(days=10)) == date(2026, 3, 16)  # + 14
    assert on(today=infused + timedelta(days=30)) == date(2026, 4, 3)  # + 32
    # Far in the tail the date is today, not before.
    assert on(today=infused + timedelta(days=400)) >= infused + timedelta(days=400)


def test_flags_follow_the_due_date_the_booking_and_a_reported_relapse():
    h = regular_patient(patient_id=1, relief=20, episodes=5)
    last = h.infusions[-1].at
    due = plan_of(h, last + timedelta(days=1)).booster_due
    local_noon = datetime.combine(due, datetime.min.time(), tzinfo=UTC) + timedelta(hours=17)
    assert plan_of(h, local_noon - timedelta(days=3)).flag is BoosterFlag.DUE_SOON
    assert plan_of(h, local_noon + timedelta(days=2)).flag is BoosterFlag.OVERDUE
    booked = history(
        boosters=[b.at.toordinal() - START.toordinal() for b in h.infusions[6:]],
        returns=[d.toordinal() - START.date().toordinal() for d in h.symptom_returns],
        booked=(local_noon + timedelta(days=5) - START).days,
    )
    assert plan_of(booked, local_noon + timedelta(days=2)).flag is BoosterFlag.BOOKED
    relapsed = history(
        boosters=[b.at.toordinal() - START.toordinal() for b in h.infusions[6:]],
        returns=[
            *[d.toordinal() - START.date().toordinal() for d in h.symptom_returns],
            (last - START).days + 6,
        ],
    )
    plan = plan_of(relapsed, last + timedelta(days=8))
    assert plan.flag is BoosterFlag.RELAPSED
    assert plan.booster_due == (last + timedelta(days=6)).date()


def test_no_contact_for_long_or_an_ended_course_is_no_longer_in_care():
    h = regular_patient(patient_id=1, relief=20, episodes=2)
    last = h.infusions[-1].at
    assert plan_of(h, last + timedelta(days=121)).flag is BoosterFlag.OUT_OF_CARE
    ended = history(boosters=[], ended_on=12)
    assert plan_of(ended, at(20)).flag is BoosterFlag.OUT_OF_CARE


def test_worklist_is_most_urgent_first_with_the_agreed_first_columns():
    as_of = at(200)
    patients = a_clinic(as_of)
    plans, _ = plan_boosters(histories=patients, settings=SETTINGS, as_of=as_of)
    everyone = worklist_frame(plans=plans, flags=tuple(BoosterFlag))
    assert list(everyone.columns[:6]) == list(WORKLIST_COLUMNS[:6])
    ranks = [BoosterFlag(f).rank for f in everyone["flag"]]
    assert ranks == sorted(ranks)
    worklist = worklist_frame(plans=plans)
    assert set(worklist["flag"]) <= {"relapsed", "call_now", "overdue", "due_soon", "booked"}


def test_a_phq9_rise_of_five_since_the_last_infusion_is_a_call_now_signal():
    h = regular_patient(patient_id=1, relief=20, episodes=5)
    last = h.infusions[-1].at
    at_infusion = Score(taken_at=last - timedelta(minutes=30), total=4)

    def with_score(total: int) -> PatientHistory:
        later = Score(taken_at=last + timedelta(days=3), total=total)
        scores = sorted((*h.scores, at_infusion, later), key=lambda s: s.taken_at)
        return replace(h, scores=tuple(scores))

    as_of = last + timedelta(days=4)
    # 4 -> 9: five points worse, still under the relapse line (10): call now.
    assert plan_of(with_score(9), as_of).flag is BoosterFlag.CALL_NOW
    # 4 -> 8: four points, not yet.
    assert plan_of(with_score(8), as_of).flag is BoosterFlag.LATER
    # At the relapse line it is a relapse, the more urgent flag.
    assert plan_of(with_score(14), as_of).flag is BoosterFlag.RELAPSED


# --- interval censoring: a relapse found by a PHQ-9 ---------------------------------------


def test_a_relapse_found_by_a_phq9_lies_between_the_last_score_below_the_line_and_it():
    # Baseline 22 before the series; after the series end (day 10) a 4 on day 20, a 15 on day 34.
    h = history(scores=[(-1, 22), (20, 4), (34, 15)])
    (episode,) = relief_episodes(history=h, settings=SETTINGS, as_of=at(40))
    assert episode.relapsed and episode.ended_by == "PHQ-9 15"
    assert (episode.days, episode.lower_days) == (24, 10)
    # No score below the line after the anchor: somewhere in the first 24 days.
    (no_lower,) = relief_episodes(
        history=history(scores=[(-1, 22), (34, 15)]), settings=SETTINGS, as_of=at(40)
    )
    assert (no_lower.days, no_lower.lower_days) == (24, 0)
    # A reported return of symptoms is dated: not an interval.
    (reported,) = relief_episodes(
        history=history(scores=[(-1, 22)], returns=[30]), settings=SETTINGS, as_of=at(40)
    )
    assert reported.lower_days is None


def test_an_interval_censored_relapse_counts_between_its_two_ends():
    as_of = at(400)
    clinic = clinic_of(a_clinic(as_of), as_of)

    def episode(days: int, lower: int | None):
        return ReliefEpisode(
            start=day(0), end=day(days), days=days, relapsed=True, ended_by="", open=False,
            lower_days=lower,
        )  # fmt: skip

    def expected(*episodes):
        return estimate_relief(episodes=list(episodes), clinic=clinic, settings=SETTINGS)

    between = expected(*[episode(24, 10)] * 4).expected_days
    assert expected(*[episode(10, None)] * 4).expected_days < between
    assert between < expected(*[episode(24, None)] * 4).expected_days


def test_a_reported_return_and_a_phq9_on_the_same_day_date_the_relapse_by_the_report():
    # The patient reports symptoms back on day 30 and fills in a PHQ-9 of 15 that day: the
    # report dates relief's end, not an interval from the infusion to the score.
    h = history(scores=[(-1, 22), (30, 15)], returns=[30])
    (episode,) = relief_episodes(history=h, settings=SETTINGS, as_of=at(40))
    assert (episode.days, episode.ended_by, episode.lower_days) == (20, "symptom return", None)


def test_the_first_plans_date_stays_put_while_the_running_relief_lengthens():
    # The estimate is from the episodes before the running one; how long it has lasted enters
    # the date through F(s) only, so "planned" is the same on every morning until a signal.
    h = regular_patient(patient_id=1, relief=20, episodes=5)
    last = h.infusions[-1].at
    early, late = plan_of(h, last + timedelta(days=2)), plan_of(h, last + timedelta(days=30))
    assert early.planned_due == late.planned_due
    assert late.booster_due > early.booster_due


def test_the_morning_fit_is_reused_when_given():
    as_of = at(200)
    patients = a_clinic(as_of)
    plans, fitted = plan_boosters(histories=patients, settings=SETTINGS, as_of=as_of)
    again, reused = plan_boosters(
        histories=patients, settings=SETTINGS, as_of=as_of + timedelta(hours=3), clinic=fitted
    )
    assert reused is fitted
    assert [p.planned_due for p in again] == [p.planned_due for p in plans]
