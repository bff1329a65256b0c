"""Route phases and clocks: each timer knows which side of its target is good."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ketadash.models import Route, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.rules import (
    Passing,
    dose_timer,
    recovery_timer,
    route_protocol,
    session_alerts,
    visit_timers,
    vitals_due_in,
    waiting_timer,
)
from ketadash.settings import ClinicSettings
from ketadash.vitals import Vitals
from tests.utils.factories import minutes
from tests.utils.visits import NINE, a_visit, reading

SETTINGS = ClinicSettings()
STARTED = a_visit(status=S.INFUSING, checked_in_at=NINE, infusion_started_at=NINE + minutes(10))


@pytest.mark.parametrize(
    ("route", "fixed", "label", "dose_minutes", "observation", "from_start"),
    [
        (Route.IV, None, "Dose", 40, 30, False),
        (Route.ESKETAMINE, 56, "Devices", 5, 120, True),
        (Route.ESKETAMINE, 84, "Devices", 10, 120, True),
        (Route.LOZENGE, 100, "Lozenge", 15, 60, False),
    ],
)
def test_each_route_has_its_own_phases(route, fixed, label, dose_minutes, observation, from_start):
    visit = replace(STARTED, route=route, dose_mg=fixed,
                    dose_mg_per_kg=None if fixed else 0.5)  # fmt: skip
    protocol = route_protocol(visit, SETTINGS)
    assert (protocol.dose_label, protocol.dose_minutes) == (label, dose_minutes)
    assert (protocol.observation_minutes, protocol.observation_from_dose_start) == (
        observation,
        from_start,
    )


def test_route_phases_follow_the_settings():
    settings = replace(SETTINGS, esketamine_device_interval_minutes=7, min_recovery_iv_minutes=45)
    esketamine = replace(STARTED, route=Route.ESKETAMINE, dose_mg=84, dose_mg_per_kg=None)
    assert route_protocol(esketamine, settings).dose_minutes == 14
    assert route_protocol(STARTED, settings).observation_minutes == 45


def test_a_dose_past_its_plan_is_bad():
    timer = dose_timer(STARTED, NINE + minutes(55), SETTINGS)
    assert timer.passing == Passing.BAD
    assert (timer.overdue, timer.done) == (True, False)
    assert not dose_timer(STARTED, NINE + minutes(30), SETTINGS).overdue


def test_recovery_past_its_minimum_is_good():
    recovering = replace(STARTED, status=S.RECOVERY, infusion_ended_at=NINE + minutes(50))
    timer = recovery_timer(recovering, SETTINGS, NINE + minutes(85))
    assert timer.passing == Passing.GOOD
    assert (timer.done, timer.overdue) == (True, False)
    assert not recovery_timer(recovering, SETTINGS, NINE + minutes(60)).done


def test_a_stopped_clock_is_neither_overdue_nor_moving():
    ended = replace(STARTED, status=S.RECOVERY, infusion_ended_at=NINE + minutes(70))
    timer = dose_timer(ended, NINE + minutes(300), SETTINGS)
    assert (timer.minutes, timer.running, timer.overdue) == (60, False, False)


def test_waiting_for_the_ride_has_no_target():
    ready = replace(STARTED, status=S.READY, infusion_ended_at=NINE + minutes(50),
                    ready_at=NINE + minutes(90))  # fmt: skip
    timer = waiting_timer(ready, NINE + minutes(100))
    assert (timer.text, timer.passing, timer.done, timer.overdue) == (
        "Waiting 10 min",
        None,
        False,
        False,
    )
    assert [t.label for t in visit_timers(ready, SETTINGS, NINE + minutes(100))] == [
        "Dose",
        "Recovery",
        "Waiting",
    ]


# --- a danger reading's recheck survives the end of the dose ------------------------------


def test_a_danger_reading_just_before_end_dose_keeps_its_five_minute_recheck():
    """BP 188/112 at 09:49, End dose at 09:50: the next vitals are due at 09:54, as the
    alert says, not a recovery interval after the end."""

    high = Vitals(systolic=188, diastolic=112, heart_rate=80, spo2=97)
    ended = replace(
        STARTED,
        status=S.RECOVERY,
        infusion_started_at=NINE + minutes(10),
        infusion_ended_at=NINE + minutes(50),
        latest=reading(NINE + minutes(49), VitalsPhase.DURING, high),
    )
    now = NINE + minutes(51)
    assert vitals_due_in(ended, SETTINGS, now) == 3
    assert any("recheck in 5 minutes" in a.action
               for a in session_alerts(ended, SETTINGS, now, time_zone="UTC"))  # fmt: skip
    # Past the recheck it is overdue, whatever the phase.
    assert vitals_due_in(ended, SETTINGS, NINE + minutes(56)) == -2


def test_a_calm_reading_before_end_dose_leaves_the_recovery_interval():

    ended = replace(
        STARTED,
        status=S.RECOVERY,
        infusion_ended_at=NINE + minutes(50),
        latest=reading(NINE + minutes(49), VitalsPhase.DURING),
    )
    assert vitals_due_in(ended, SETTINGS, NINE + minutes(51)) == 14


# --- a severe side effect is an alert for the room, not small print on the card ----------


def test_a_severe_side_effect_during_the_dose_is_a_danger_alert():
    sedated = replace(STARTED, side_effects=(("sedation", "severe"), ("dissociation", "mild")))
    alerts = session_alerts(sedated, SETTINGS, NINE + minutes(20), time_zone="UTC")
    severe = [a for a in alerts if "sedation" in a.what]
    assert [a.level for a in severe] == ["danger"]
    assert severe[0].what == "Severe sedation recorded"
    assert "SpO2" in severe[0].action
    assert not any("dissociation" in a.what for a in alerts)


def test_a_severe_side_effect_recorded_again_as_mild_is_no_longer_an_alert():
    settled = replace(STARTED, side_effects=(("sedation", "mild"),))
    alerts = session_alerts(settled, SETTINGS, NINE + minutes(20), time_zone="UTC")
    assert not any("sedation" in a.what.lower() for a in alerts)


@pytest.mark.parametrize("status", [S.RECOVERY, S.READY])
def test_a_severe_side_effect_after_the_dose_is_still_an_alert(status):
    after = replace(
        STARTED,
        status=status,
        infusion_ended_at=NINE + minutes(50),
        side_effects=(("nausea", "severe"),),
    )
    alerts = session_alerts(after, SETTINGS, NINE + minutes(55), time_zone="UTC")
    assert "Severe nausea recorded" in [a.what for a in alerts]
