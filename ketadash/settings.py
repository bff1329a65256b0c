"""Clinic settings: every clinical threshold and interval, declared once.

Each setting has a default taken from ``shared/clinic-facts.md`` (or marked as
inferred, to be checked by the clinic's physician), a unit and a line of help.
A lead overrides one per site in the ``site_setting`` table; no deploy needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ketadash.db import ROW_LOCK, write_session
from ketadash.models import Route, SettingChange, Site, SiteSetting, Staff, StaffRole


@dataclass(frozen=True, kw_only=True)
class SettingSpec:
    name: str
    default: int | str
    unit: str
    help: str
    source: str
    allowed: tuple[int, int] | None = None
    bounds_source: str = ""
    choices: tuple[str, ...] = ()


def setting(
    default: int | str,
    *,
    unit: str,
    help: str,
    source: str,
    allowed: tuple[int, int] | None = None,
    bounds_source: str = "",
    choices: tuple[str, ...] = (),
):
    """Declare one clinic setting: its default, the values a lead may set, unit, help, source.

    ``allowed`` bounds a number so that an override cannot switch a safety rule off
    (a hold limit of 1400) or make it impossible (vitals due every 0 minutes);
    ``bounds_source`` says why these bounds (the label, a study), and is shown with a
    refusal.
    """
    return field(
        default=default,
        metadata={
            "unit": unit,
            "help": help,
            "source": source,
            "allowed": allowed,
            "bounds_source": bounds_source,
            "choices": choices,
        },
    )


@dataclass(frozen=True, kw_only=True)
class ClinicSettings:
    """The settings in force at one site: defaults with the site's overrides."""

    hold_systolic: int = setting(
        140,
        allowed=(120, 160),
        bounds_source=(
            "a hold above 160 leaves no room below the 180 alert for the usual rise of about +16 "
            "mmHg in the infusion (Yale 2024); below 120 holds normal pressures"
        ),
        unit="mmHg",
        help="Pre-infusion systolic above this holds the start unless a nurse overrides it.",
        source="clinic protocol page: resting BP above 140/90, no treatment that day",
    )
    hold_diastolic: int = setting(
        90,
        allowed=(80, 100),
        bounds_source=(
            "a hold above 100 leaves no room below the 110 alert for the usual rise of about +11 "
            "mmHg (Yale 2024); below 80 holds normal pressures"
        ),
        unit="mmHg",
        help="Pre-infusion diastolic above this holds the start unless a nurse overrides it.",
        source="clinic protocol page: resting BP above 140/90, no treatment that day",
    )
    # The start ceiling: above the hold, a nurse's override is not enough.
    start_ceiling_systolic: int = setting(
        180,
        allowed=(150, 220),
        bounds_source=(
            "clinic-facts: escalate at 180 systolic; Murrough 2013 stopped an infusion at "
            "180/115; above 220 is a hypertensive emergency, below 150 every held start needs "
            "a lead"
        ),
        unit="mmHg",
        help=(
            "Pre-dose systolic at or above this: the dose starts only with a clinic lead, "
            "acting themselves, recording why."
        ),
        source="clinic-facts: suggested default, escalate at 180 systolic or 110 diastolic",
    )
    start_ceiling_diastolic: int = setting(
        110,
        allowed=(95, 140),
        bounds_source=(
            "clinic-facts: escalate at 110 diastolic; Murrough 2013 stopped an infusion at "
            "180/115; above 140 is a hypertensive emergency, below 95 every held start needs "
            "a lead"
        ),
        unit="mmHg",
        help=(
            "Pre-dose diastolic at or above this: the dose starts only with a clinic lead, "
            "acting themselves, recording why."
        ),
        source="clinic-facts: suggested default, escalate at 180 systolic or 110 diastolic",
    )
    alert_systolic: int = setting(
        180,
        allowed=(150, 180),
        bounds_source=(
            "Murrough 2013 stopped an infusion at 180/115: an alert later than 180 comes too "
            "late; below 150 the usual rise from a 140 start (+16, Yale 2024) alerts every "
            "patient"
        ),
        unit="mmHg",
        help="Systolic at or above this during or after a dose raises an alert.",
        source="inferred: Murrough 2013 stopped one infusion at 180/115",
    )
    alert_diastolic: int = setting(
        110,
        allowed=(95, 115),
        bounds_source=(
            "Murrough 2013 stopped an infusion at 180/115: an alert later than 115 comes too "
            "late; below 95 the usual rise from a 90 start (+11, Yale 2024) alerts every patient"
        ),
        unit="mmHg",
        help="Diastolic at or above this during or after a dose raises an alert.",
        source="inferred: Murrough 2013 stopped one infusion at 180/115",
    )
    alert_heart_rate_high: int = setting(
        120,
        allowed=(100, 140),
        bounds_source=(
            "inferred: above 100 bpm is a fast heart rate; an alert past 140 comes too late (to "
            "be checked by the clinic's physician)"
        ),
        unit="bpm",
        help="Heart rate above this raises an alert.",
        source="inferred, to be checked by the clinic's physician",
    )
    alert_heart_rate_low: int = setting(
        50,
        allowed=(40, 60),
        bounds_source=(
            "inferred: below 60 bpm is a slow heart rate; an alert below 40 comes too late (to be"
            " checked by the clinic's physician)"
        ),
        unit="bpm",
        help="Heart rate below this raises an alert.",
        source="inferred, to be checked by the clinic's physician",
    )
    alert_spo2_below: int = setting(
        92,
        allowed=(90, 95),
        bounds_source=(
            "Aldrete 1995: SpO2 above 92% on air scores 2; an alert below 90% misses low oxygen "
            "(respiratory depression is on the esketamine label); above 95 alerts healthy "
            "readings"
        ),
        unit="%",
        help="SpO2 below this raises an alert.",
        source="inferred, to be checked by the clinic's physician",
    )
    vitals_every_during_minutes: int = setting(
        10,
        allowed=(5, 15),
        bounds_source=(
            "Riva-Posse 2018: every 10 min during; the BP peaks 30–40 min into the infusion (Yale"
            " 2024), so readings at most 15 min apart catch it"
        ),
        unit="min",
        help="Vitals are due this often while a dose is running.",
        source="Riva-Posse 2018: every 10 min during",
    )
    vitals_every_after_minutes: int = setting(
        15,
        allowed=(5, 30),
        bounds_source=(
            "Riva-Posse 2018: every 15 min after; PADSS is rescored every 30 min (Chung 1995), so"
            " no longer than that"
        ),
        unit="min",
        help="Vitals are due this often in recovery.",
        source="Riva-Posse 2018: every 15 min after",
    )
    recheck_after_alert_minutes: int = setting(
        5,
        allowed=(1, 10),
        bounds_source=(
            "inferred: a recheck is sooner than the routine 10-min readings during a dose, or it "
            "is no recheck"
        ),
        unit="min",
        help="After a reading that raised an alert, the next vitals are due this soon.",
        source="inferred, to be checked by the clinic's physician",
    )
    planned_infusion_minutes: int = setting(
        40,
        allowed=(40, 60),
        bounds_source="APA consensus (Sanacora 2017): 0.5 mg/kg over 40 min; ASKP3: over 40–60 min",
        unit="min",
        help="Planned length of an IV infusion when the schedule does not say.",
        source="Fava 2020; Riva-Posse 2018: 0.5 mg/kg over 40 min",
    )
    min_recovery_iv_minutes: int = setting(
        30,
        allowed=(30, 240),
        bounds_source=(
            "clinic protocol pages: 30–60 min observation after the infusion, never less than 30"
        ),
        unit="min",
        help="Shortest recovery after an IV infusion before the patient may be ready to go.",
        source="clinic protocol pages: 30–60 min observation after the infusion",
    )
    min_recovery_esketamine_minutes: int = setting(
        120,
        allowed=(120, 480),
        bounds_source=(
            "Spravato label: at least 2 h of observation after esketamine (REMS); not a clinic's "
            "choice"
        ),
        unit="min",
        help="Shortest observation after esketamine nasal spray.",
        source="Spravato prescribing information / REMS: at least 2 h",
    )
    min_recovery_lozenge_minutes: int = setting(
        60,
        allowed=(30, 480),
        bounds_source="inferred: no shorter than the shortest IV recovery (30 min)",
        unit="min",
        help="Shortest observation after a lozenge.",
        source="inferred, to be checked by the clinic's physician",
    )
    discharge_vitals_within_percent: int = setting(
        20,
        allowed=(5, 20),
        bounds_source=(
            "PADSS, Chung 1995: within 20% of baseline scores 2, 20–40% off scores 1; wider is "
            "not back to baseline"
        ),
        unit="%",
        help="Vitals within this much of the pre-infusion values count as back to baseline.",
        source="PADSS, Chung 1995: vitals within 20% of baseline score 2",
    )
    late_arrival_minutes: int = setting(
        15,
        allowed=(1, 120),
        bounds_source="clinic operations: a display rule, not a clinical threshold",
        unit="min",
        help="A patient not checked in this long after their time is shown as late.",
        source="clinic operations (issue 3)",
    )
    phq9_item9_flag_at: int = setting(
        1,
        allowed=(1, 1),
        bounds_source=(
            "Kroenke 2001: any item 9 answer of 1 or more flags suicidal ideation; not a clinic's"
            " choice"
        ),
        unit="points",
        help="A PHQ-9 item 9 answer at or above this is flagged for the nurse.",
        source="Kroenke 2001: item 9 ≥ 1 flags suicidal ideation",
    )
    dose_tolerance_percent: int = setting(
        10,
        allowed=(0, 10),
        bounds_source=(
            "inferred: the dose is worked out from mg/kg and weight; more than 10% from it is "
            "another dose, not a rounding"
        ),
        unit="%",
        help="A dose in mg further than this from the planned mg/kg × weight is refused.",
        source="inferred, to be checked by the clinic's physician",
    )
    second_dose_window_hours: int = setting(
        24,
        allowed=(24, 72),
        bounds_source=(
            "inferred: never shorter than a day (no more than one dose a day); longer than 3 days"
            " would hold a twice-weekly esketamine schedule (Spravato label)"
        ),
        unit="h",
        help="A dose started for the patient this many hours before a new start (any visit, "
        "a start taken back included) makes the new one a second dose: it needs a clinic "
        "lead's recorded reason.",
        source="inferred: no more than one dose a day (Murrough 2013: 6 infusions over 12 "
        "days; Spravato label: at most twice weekly); a rolling window, not the calendar day",
    )
    wall_label: str = setting(
        "alias_or_chair",
        unit="rule",
        help="What the wall display shows for a patient: the alias they chose, else the chair.",
        source="privacy: no names on public screens",
        choices=("alias_or_chair", "chair_only"),
    )
    esketamine_device_interval_minutes: int = setting(
        5,
        allowed=(5, 15),
        bounds_source="Spravato device instructions (S1): at least 5 min rest after each device",
        unit="min",
        help="Rest between two esketamine nasal devices (28 mg each); sets the dose phase.",
        source="Spravato device instructions (S1): 5 min rest after each device",
    )
    lozenge_dose_minutes: int = setting(
        15,
        allowed=(5, 60),
        bounds_source="inferred, to be checked by the clinic's physician",
        unit="min",
        help="How long a lozenge is held before observation starts.",
        source="inferred, to be checked by the clinic's physician",
    )
    weight_change_confirm_percent: int = setting(
        10,
        allowed=(2, 30),
        bounds_source=(
            "inferred: under 2% is a scale's noise; over 30% a slip would pass unconfirmed"
        ),
        unit="%",
        help="A weight further than this from the patient's last recorded one needs a "
        "deliberate confirmation before the dose is worked out from it.",
        source="inferred, to be checked by the clinic's physician (a typing slip doses wrongly)",
    )
    idle_sign_out_minutes: int = setting(
        15,
        allowed=(2, 240),
        bounds_source="clinic operations (issue 11); HIPAA asks for automatic logoff, not a length",
        unit="min",
        help="A station with nobody using it signs out by itself after this long.",
        source="issue 11 (the clinic's request); HIPAA 164.312(a)(2)(iii) automatic logoff",
    )
    # --- boosters: how long relief lasts and when to call (issue 9) ---
    relapse_phq9_at: int = setting(
        10,
        allowed=(5, 20),
        bounds_source="Kroenke 2001: PHQ-9 bands (5 mild to 20 severe)",
        unit="points",
        help="After a series or booster, a PHQ-9 at or above this (and no longer "
        "relapse_drop_percent below baseline) ends the relief episode.",
        source="Kroenke 2001: 10 or more is moderate depression; McInnes 2022",
    )
    relapse_drop_percent: int = setting(
        50,
        allowed=(20, 80),
        bounds_source="McInnes 2022: response is a drop of 50% or more; inferred range around it",
        unit="%",
        help="A PHQ-9 that is no longer this much below the patient's pre-treatment baseline "
        "(and at or above relapse_phq9_at) ends the relief episode.",
        source="McInnes 2022: response is a drop of 50% or more from baseline",
    )
    booster_quantile_percent: int = setting(
        3,
        allowed=(1, 50),
        bounds_source=(
            "inferred: beyond half the patient's episodes the call comes after most relapses"
        ),
        unit="%",
        help="Each morning the booster is dated for the day by which relief ends in only this "
        "share of the patient's episodes that last as long as this one so far: lower is earlier. "
        "The one margin: no lead days come off.",
        source="back-tested on the demo and a second synthetic clinic "
        "(benchmarks/bench_boosters.py; docs/figures.md, Boosters)",
    )
    booster_call_now_rise_points: int = setting(
        5,
        allowed=(3, 10),
        bounds_source="inferred: around the PHQ-9's 5-point clinically meaningful change",
        unit="points",
        help="A PHQ-9 this many points or more above the one at the last infusion is a "
        "'call now' signal on the boosters worklist, before relief is over by the relapse line.",
        source="issue 19 (the clinic's request); Löwe 2004: a 5-point PHQ-9 change is "
        "clinically meaningful",
    )
    booster_due_within_days: int = setting(
        7,
        allowed=(1, 30),
        bounds_source="inferred: clinic operations",
        unit="days",
        help="A booster due within this many days (and not booked) is flagged due soon.",
        source="inferred: a week of calls ahead",
    )
    out_of_care_after_days: int = setting(
        120,
        allowed=(30, 730),
        bounds_source="inferred: relief lasts from a couple of weeks to a few months (seed text)",
        unit="days",
        help="A patient with no infusion, score or symptom report for this long is no longer "
        "in care: off the worklist, shown on request.",
        source="inferred: relief lasts up to a few months (seed text; KetECT median 57 days)",
    )
    series_min_infusions: int = setting(
        6,
        allowed=(1, 12),
        bounds_source="Murrough 2013: 6 infusions; Oliver 2022: up to 10 in a series",
        unit="infusions",
        help="A patient is in the initial series (not yet due a booster) until this many "
        "series infusions are given.",
        source="Murrough 2013: 6 infusions over 12 days; seed text: six in three weeks",
    )
    booster_history_days: int = setting(
        365,
        allowed=(90, 3650),
        bounds_source="inferred: a report window, not a clinical threshold",
        unit="days",
        help="The boosters worklist reads this much of each patient's past relief.",
        source="inferred: a year holds a patient's recent episodes (recent ones weigh most)",
    )
    ride_late_after_minutes: int = setting(
        15,
        allowed=(5, 120),
        bounds_source="clinic operations (issue 8)",
        unit="min",
        help="A ride not here this long after its expected time (or the time the driver gave) "
        "raises an alert.",
        source="inferred, clinic operations (issue 8): to be checked by the clinic's lead",
    )
    closing_time_alert_minutes: int = setting(
        30,
        allowed=(5, 240),
        bounds_source="clinic operations (issue 8)",
        unit="min",
        help="A patient still in the building this long before the site closes raises an alert.",
        source="inferred, clinic operations (issue 8): to be checked by the clinic's lead",
    )
    # --- esketamine REMS (issue 20) ---
    esketamine_bp_check_minutes: int = setting(
        40,
        allowed=(30, 60),
        bounds_source=(
            "Spravato label: BP about 40 min after dosing; BP peaks at 30-40 min (Yale 2024)"
        ),
        unit="min",
        help="After the first esketamine device, a blood pressure is due this many minutes in "
        "(REMS form: BP before, about 40 min after, and before completion).",
        source="Spravato prescribing information / REMS: BP before dosing, about 40 min after",
    )
    rems_monitoring_form: str = setting(
        "required",
        unit="rule",
        help="required: an esketamine session is discharged only once its REMS Patient "
        "Monitoring Form is started, and forms not yet submitted are listed with the days "
        "left; off: neither (a clinic no longer under the REMS).",
        source="Spravato REMS: a Patient Monitoring Form after every treatment session",
        choices=("required", "off"),
    )
    rems_submit_within_days: int = setting(
        7,
        allowed=(1, 7),
        bounds_source="Spravato REMS: due within 7 days; a clinic may keep an earlier deadline",
        unit="days",
        help="A REMS Patient Monitoring Form is due this many days after the treatment date; "
        "the list counts the days left.",
        source="Spravato REMS patient monitoring form instructions: submit within 7 days",
    )

    def min_recovery_minutes(self, route: Route | str) -> int:
        """The shortest recovery for a route: IV and esketamine differ."""
        return {
            Route.IV: self.min_recovery_iv_minutes,
            Route.ESKETAMINE: self.min_recovery_esketamine_minutes,
            Route.LOZENGE: self.min_recovery_lozenge_minutes,
        }[Route(route)]


def _declared(f: Field[Any]) -> SettingSpec:
    """The declaration of one ClinicSettings field, as ``setting()`` made it."""
    if f.default is MISSING:
        raise TypeError(f"ClinicSettings.{f.name} has no default: declare it with setting().")
    return SettingSpec(name=f.name, default=f.default, **f.metadata)


SETTINGS: tuple[SettingSpec, ...] = tuple(_declared(f) for f in fields(ClinicSettings))
SETTINGS_BY_NAME = {spec.name: spec for spec in SETTINGS}


class InvalidSetting(ValueError):
    """A setting change that is refused; ``problems`` lists every reason, in words."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(" ".join(self.problems))


def _bound_problem(spec: SettingSpec, value: int) -> str | None:
    """Why ``value`` is outside the setting's bounds, with the bounds' source; None if inside."""
    low, high = spec.allowed or (0, None)
    if low <= value and (high is None or value <= high):
        return None
    why = f" ({spec.bounds_source})" if spec.bounds_source else ""
    if low == high:
        return f"{spec.name} is fixed at {low}{why}; {value} is not allowed."
    return f"{spec.name} must be between {low} and {high} {spec.unit}{why}; {value} is outside."


def parse_setting(name: str, raw: str) -> int | str:
    """The typed value of ``raw`` for setting ``name``, within its bounds; raises InvalidSetting.

    Checks the one setting alone; ``setting_change_problems`` checks it with the others.
    """
    spec = SETTINGS_BY_NAME.get(name)
    if spec is None:
        raise InvalidSetting(f"There is no clinic setting called {name!r}.")
    if isinstance(spec.default, int):
        try:
            value = int(str(raw).strip())
        except ValueError as error:
            raise InvalidSetting(f"{name} must be a whole number of {spec.unit}.") from error
        problem = _bound_problem(spec, value)
        if problem:
            raise InvalidSetting(problem)
        return value
    if spec.choices and raw not in spec.choices:
        raise InvalidSetting(f"{name} must be one of: {', '.join(spec.choices)}.")
    return raw


# --- settings that must agree with each other --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SettingRelation:
    """A rule between two settings: ``first`` must be ``relation`` ``second``, and why."""

    first: str
    relation: str  # "below", "shorter than" or "at most"
    second: str
    why: str

    def holds(self, settings: ClinicSettings) -> bool:
        first, second = getattr(settings, self.first), getattr(settings, self.second)
        return first <= second if self.relation == "at most" else first < second

    def problem(self, settings: ClinicSettings) -> str:
        unit = SETTINGS_BY_NAME[self.first].unit
        return (
            f"{self.first} ({getattr(settings, self.first)} {unit}) must be {self.relation} "
            f"{self.second} ({getattr(settings, self.second)} {unit}): {self.why}."
        )


SETTING_RELATIONS: tuple[SettingRelation, ...] = (
    SettingRelation(
        first="hold_systolic",
        relation="below",
        second="alert_systolic",
        why="a pressure that only holds a start cannot already be an alert during the dose",
    ),
    SettingRelation(
        first="hold_diastolic",
        relation="below",
        second="alert_diastolic",
        why="a pressure that only holds a start cannot already be an alert during the dose",
    ),
    SettingRelation(
        first="hold_systolic",
        relation="below",
        second="start_ceiling_systolic",
        why="a reading that needs a lead to dose must already be one that holds the start",
    ),
    SettingRelation(
        first="hold_diastolic",
        relation="below",
        second="start_ceiling_diastolic",
        why="a reading that needs a lead to dose must already be one that holds the start",
    ),
    SettingRelation(
        first="alert_heart_rate_low",
        relation="below",
        second="alert_heart_rate_high",
        why="otherwise every heart rate, or none, raises an alert",
    ),
    SettingRelation(
        first="vitals_every_during_minutes",
        relation="shorter than",
        second="planned_infusion_minutes",
        why="an infusion must have readings while it runs (the BP peaks 30–40 min in)",
    ),
    SettingRelation(
        first="recheck_after_alert_minutes",
        relation="at most",
        second="vitals_every_during_minutes",
        why="a recheck after an alert comes no later than the routine readings",
    ),
    SettingRelation(
        first="vitals_every_after_minutes",
        relation="at most",
        second="min_recovery_iv_minutes",
        why="the shortest recovery must hold at least one set of recovery vitals",
    ),
)


def _with_values(settings: ClinicSettings, values: Mapping[str, int | str]) -> ClinicSettings:
    """``settings`` with the settings named in ``values`` replaced (each name a declared
    setting, each value of its kind: the callers parse them)."""
    by_name: dict[str, Any] = dict(values)  # one value per name, of that setting's own type
    return replace(settings, **by_name)


def settings_problems(*, settings: ClinicSettings) -> list[str]:
    """Every reason ``settings`` cannot be in force (empty when they can): each number
    outside its bounds, with the bounds' source, then each relation between settings
    that does not hold."""
    problems = []
    for spec in SETTINGS:
        value = getattr(settings, spec.name)
        if isinstance(spec.default, int):
            problem = _bound_problem(spec, value)
            if problem:
                problems.append(problem)
        elif spec.choices and value not in spec.choices:
            problems.append(f"{spec.name} must be one of: {', '.join(spec.choices)}.")
    problems.extend(
        relation.problem(settings) for relation in SETTING_RELATIONS if not relation.holds(settings)
    )
    return problems


def setting_change_problems(*, in_force: ClinicSettings, changes: Mapping[str, str]) -> list[str]:
    """Why ``changes`` (setting name to the value typed) cannot be made to the settings
    ``in_force`` (empty when they can). The settings screen shows these before saving; the
    write (``set_site_settings``) checks the same inside its transaction and refuses with
    the same words."""
    parsed: dict[str, int | str] = {}
    problems = []
    for name, raw in changes.items():
        spec = SETTINGS_BY_NAME.get(name)
        if spec is None:
            problems.append(f"There is no clinic setting called {name!r}.")
            continue
        if isinstance(spec.default, int):
            try:
                parsed[name] = int(str(raw).strip())
            except ValueError:
                problems.append(f"{name} must be a whole number of {spec.unit}.")
        else:
            parsed[name] = raw
    if problems:
        return problems
    return settings_problems(settings=_with_values(in_force, parsed))


def load_clinic_settings(*, db: Session, site_id: int) -> ClinicSettings:
    """Defaults, with the site's overrides applied. Unknown override names are ignored.

    A stored override that the bounds of today refuse (stored before they were tightened),
    or that contradicts another setting, is not in force: its setting keeps the default,
    which comes from the sources.
    """
    rows = db.exec(
        select(SiteSetting.name, SiteSetting.value).where(SiteSetting.site_id == site_id)
    )
    overrides = {}
    for name, value in rows:
        if name in SETTINGS_BY_NAME:
            try:
                overrides[name] = parse_setting(name, value)
            except InvalidSetting:
                continue
    settings, defaults = _with_values(ClinicSettings(), overrides), ClinicSettings()
    # Each pass puts back the defaults of a broken relation; the defaults break none.
    for _ in SETTING_RELATIONS:
        broken = {
            name
            for relation in SETTING_RELATIONS
            if not relation.holds(settings)
            for name in (relation.first, relation.second)
        }
        if not broken:
            break
        settings = replace(settings, **{name: getattr(defaults, name) for name in broken})
    return settings


def set_site_settings(
    *,
    db: Session,
    site_id: int,
    changes: Mapping[str, str],
    staff_id: int | None,
    now: datetime,
) -> dict[str, int | str]:
    """Override settings at one site together, checked together against the settings in
    force (``setting_change_problems``); returns the typed values stored. Each change that
    alters a value is kept in ``setting_change`` (who, when, old and new value) in the
    caller's transaction. Raises InvalidSetting with every reason, having written nothing,
    when any is refused."""
    # One change of a site's settings at a time: two leads changing related settings at
    # once (a hold and its alert) are each checked against what the other left, and the
    # history's old value is the one that was replaced. (SQLite's BEGIN IMMEDIATE
    # already queues writers.)
    db.exec(select(Site.id).where(Site.id == site_id).with_for_update(**ROW_LOCK)).first()
    in_force = load_clinic_settings(db=db, site_id=site_id)
    problems = setting_change_problems(in_force=in_force, changes=changes)
    if problems:
        raise InvalidSetting(problems)
    stored = {name: parse_setting(name, value) for name, value in changes.items()}
    for name, parsed in stored.items():
        old = getattr(in_force, name)
        if old != parsed:
            db.add(
                SettingChange(
                    site_id=site_id,
                    name=name,
                    old_value=str(old),
                    new_value=str(parsed),
                    changed_at=now,
                    changed_by=staff_id,
                )
            )
        row = db.exec(
            select(SiteSetting).where(SiteSetting.site_id == site_id, SiteSetting.name == name)
        ).first()
        if row is None:
            row = SiteSetting(site_id=site_id, name=name, value=str(parsed), updated_at=now)
        row.value = str(parsed)
        row.updated_at = now
        row.updated_by = staff_id
        db.add(row)
    return stored


def set_site_setting(
    *,
    db: Session,
    site_id: int,
    name: str,
    value: str,
    staff_id: int | None,
    now: datetime,
) -> int | str:
    """Override one setting at one site (see ``set_site_settings``); returns the typed value."""
    return set_site_settings(
        db=db, site_id=site_id, changes={name: value}, staff_id=staff_id, now=now
    )[name]


# --- the leads' settings screen -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SettingInForce:
    """One setting at one site: the value in force, and who last changed it, if anyone.

    ``stored`` is the site's stored value when it is not the one in force (stored before
    the bounds were tightened, or contradicting another setting); otherwise None.
    """

    spec: SettingSpec
    value: int | str
    changed_at: datetime | None
    changed_by: str | None
    stored: str | None = None

    @property
    def overridden(self) -> bool:
        return self.value != self.spec.default


def settings_in_force(*, db: Session, site_id: int) -> list[SettingInForce]:
    """Every setting at the site, in declaration order, with the site's last change of each."""
    in_force = load_clinic_settings(db=db, site_id=site_id)
    changes = {
        name: (at, who, value)
        for name, at, who, value in db.exec(
            select(SiteSetting.name, SiteSetting.updated_at, col(Staff.name), SiteSetting.value)
            .join(Staff, col(Staff.id) == col(SiteSetting.updated_by), isouter=True)
            .where(SiteSetting.site_id == site_id)
        )
    }
    rows = []
    for spec in SETTINGS:
        at, who, stored = changes.get(spec.name, (None, None, None))
        value = getattr(in_force, spec.name)
        rows.append(
            SettingInForce(
                spec=spec,
                value=value,
                changed_at=at,
                changed_by=who,
                stored=stored if stored is not None and stored.strip() != str(value) else None,
            )
        )
    return rows


@dataclass(frozen=True, kw_only=True)
class SettingChangeMade:
    """One change of a setting at a site, as kept in the history."""

    changed_at: datetime
    changed_by: str | None
    name: str
    old_value: str
    new_value: str


def setting_history(*, db: Session, site_id: int, limit: int = 50) -> list[SettingChangeMade]:
    """The site's latest setting changes, newest first (at most ``limit``)."""
    rows = db.execute(
        sa.select(  # five columns: more than sqlmodel's select is typed for
            col(SettingChange.changed_at),
            col(Staff.name),
            col(SettingChange.name),
            col(SettingChange.old_value),
            col(SettingChange.new_value),
        )
        .join(Staff, col(Staff.id) == col(SettingChange.changed_by), isouter=True)
        .where(col(SettingChange.site_id) == site_id)
        .order_by(col(SettingChange.changed_at).desc(), col(SettingChange.id).desc())
        .limit(limit)
    )
    return [
        SettingChangeMade(changed_at=at, changed_by=who, name=name, old_value=old, new_value=new)
        for at, who, name, old, new in rows
    ]


class SettingRefused(ValueError):
    """The person may not change settings; the message says why."""


def change_site_setting(
    *, url: str, site_id: int, name: str, value: str, staff_id: int, now: datetime
) -> int | str:
    """A clinic lead overrides one setting at one site; returns the typed value stored.

    Raises InvalidSetting (every reason from ``setting_change_problems``) for a value
    outside the setting's bounds or one that contradicts another setting in force,
    SettingRefused when the person (from the roster, never the page) is not an active
    clinic lead.
    """
    with write_session(url) as db:
        staff = db.get(Staff, staff_id)
        if staff is None or not staff.active or StaffRole(staff.role) != StaffRole.LEAD:
            raise SettingRefused("Only a clinic lead can change the clinic's settings.")
        return set_site_setting(
            db=db, site_id=site_id, name=name, value=value, staff_id=staff_id, now=now
        )
