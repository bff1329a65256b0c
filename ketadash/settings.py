"""Clinic settings: every clinical threshold and interval, declared once.

Each setting has a default taken from ``shared/clinic-facts.md`` (or marked as
inferred, to be checked by the clinic's physician), a unit and a line of help.
A lead overrides one per site in the ``site_setting`` table; no deploy needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from sqlmodel import Session, select

from ketadash.db import write_session
from ketadash.models import Route, SiteSetting, Staff, StaffRole


@dataclass(frozen=True, kw_only=True)
class SettingSpec:
    name: str
    default: int | str
    unit: str
    help: str
    source: str
    allowed: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()


def setting(
    default: int | str,
    *,
    unit: str,
    help: str,
    source: str,
    allowed: tuple[int, int] | None = None,
    choices: tuple[str, ...] = (),
):
    """Declare one clinic setting: its default, the values a lead may set, unit, help, source.

    ``allowed`` bounds a number so that an override cannot switch a safety rule off
    (a hold limit of 1400) or make it impossible (vitals due every 0 minutes).
    """
    return field(
        default=default,
        metadata={
            "unit": unit,
            "help": help,
            "source": source,
            "allowed": allowed,
            "choices": choices,
        },
    )


@dataclass(frozen=True, kw_only=True)
class ClinicSettings:
    """The settings in force at one site: defaults with the site's overrides."""

    hold_systolic: int = setting(
        140,
        allowed=(100, 200),
        unit="mmHg",
        help="Pre-infusion systolic above this holds the start unless a nurse overrides it.",
        source="clinic protocol page: resting BP above 140/90, no treatment that day",
    )
    hold_diastolic: int = setting(
        90,
        allowed=(60, 130),
        unit="mmHg",
        help="Pre-infusion diastolic above this holds the start unless a nurse overrides it.",
        source="clinic protocol page: resting BP above 140/90, no treatment that day",
    )
    # The start ceiling (h4): above the hold, a nurse's override is not enough.
    start_ceiling_systolic: int = setting(
        180,
        allowed=(150, 220),
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
        unit="mmHg",
        help=(
            "Pre-dose diastolic at or above this: the dose starts only with a clinic lead, "
            "acting themselves, recording why."
        ),
        source="clinic-facts: suggested default, escalate at 180 systolic or 110 diastolic",
    )
    alert_systolic: int = setting(
        180,
        allowed=(120, 250),
        unit="mmHg",
        help="Systolic at or above this during or after a dose raises an alert.",
        source="inferred: Murrough 2013 stopped one infusion at 180/115",
    )
    alert_diastolic: int = setting(
        110,
        allowed=(70, 150),
        unit="mmHg",
        help="Diastolic at or above this during or after a dose raises an alert.",
        source="inferred: Murrough 2013 stopped one infusion at 180/115",
    )
    alert_heart_rate_high: int = setting(
        120,
        allowed=(80, 200),
        unit="bpm",
        help="Heart rate above this raises an alert.",
        source="inferred, to be checked by the clinic's physician",
    )
    alert_heart_rate_low: int = setting(
        50,
        allowed=(30, 80),
        unit="bpm",
        help="Heart rate below this raises an alert.",
        source="inferred, to be checked by the clinic's physician",
    )
    alert_spo2_below: int = setting(
        92,
        allowed=(80, 100),
        unit="%",
        help="SpO2 below this raises an alert.",
        source="inferred, to be checked by the clinic's physician",
    )
    vitals_every_during_minutes: int = setting(
        10,
        allowed=(1, 60),
        unit="min",
        help="Vitals are due this often while a dose is running.",
        source="Riva-Posse 2018: every 10 min during",
    )
    vitals_every_after_minutes: int = setting(
        15,
        allowed=(1, 120),
        unit="min",
        help="Vitals are due this often in recovery.",
        source="Riva-Posse 2018: every 15 min after",
    )
    recheck_after_alert_minutes: int = setting(
        5,
        allowed=(1, 30),
        unit="min",
        help="After a reading that raised an alert, the next vitals are due this soon.",
        source="inferred, to be checked by the clinic's physician",
    )
    planned_infusion_minutes: int = setting(
        40,
        allowed=(5, 240),
        unit="min",
        help="Planned length of an IV infusion when the schedule does not say.",
        source="Fava 2020; Riva-Posse 2018: 0.5 mg/kg over 40 min",
    )
    min_recovery_iv_minutes: int = setting(
        30,
        allowed=(15, 240),
        unit="min",
        help="Shortest recovery after an IV infusion before the patient may be ready to go.",
        source="clinic protocol pages: 30–60 min observation after the infusion",
    )
    min_recovery_esketamine_minutes: int = setting(
        120,
        allowed=(60, 480),
        unit="min",
        help="Shortest observation after esketamine nasal spray.",
        source="Spravato prescribing information / REMS: at least 2 h",
    )
    min_recovery_lozenge_minutes: int = setting(
        60,
        allowed=(15, 480),
        unit="min",
        help="Shortest observation after a lozenge.",
        source="inferred, to be checked by the clinic's physician",
    )
    discharge_vitals_within_percent: int = setting(
        20,
        allowed=(5, 50),
        unit="%",
        help="Vitals within this much of the pre-infusion values count as back to baseline.",
        source="PADSS, Chung 1995: vitals within 20% of baseline score 2",
    )
    late_arrival_minutes: int = setting(
        15,
        allowed=(1, 120),
        unit="min",
        help="A patient not checked in this long after their time is shown as late.",
        source="clinic operations (issue 3)",
    )
    phq9_item9_flag_at: int = setting(
        1,
        allowed=(1, 3),
        unit="points",
        help="A PHQ-9 item 9 answer at or above this is flagged for the nurse.",
        source="Kroenke 2001: item 9 ≥ 1 flags suicidal ideation",
    )
    dose_tolerance_percent: int = setting(
        10,
        allowed=(0, 50),
        unit="%",
        help="A dose in mg further than this from the planned mg/kg × weight is refused.",
        source="inferred, to be checked by the clinic's physician",
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
        allowed=(1, 15),
        unit="min",
        help="Rest between two esketamine nasal devices (28 mg each); sets the dose phase.",
        source="Spravato device instructions (S1): 5 min rest after each device",
    )
    lozenge_dose_minutes: int = setting(
        15,
        allowed=(5, 60),
        unit="min",
        help="How long a lozenge is held before observation starts.",
        source="inferred, to be checked by the clinic's physician",
    )
    weight_change_confirm_percent: int = setting(
        10,
        allowed=(2, 30),
        unit="%",
        help="A weight further than this from the patient's last recorded one needs a "
        "deliberate confirmation before the dose is worked out from it.",
        source="inferred, to be checked by the clinic's physician (a typing slip doses wrongly)",
    )
    idle_sign_out_minutes: int = setting(
        15,
        allowed=(2, 240),
        unit="min",
        help="A station with nobody using it signs out by itself after this long.",
        source="issue 11 (the clinic's request); HIPAA 164.312(a)(2)(iii) automatic logoff",
    )
    # --- boosters: how long relief lasts and when to call (issue 9) ---
    relapse_phq9_at: int = setting(
        10,
        allowed=(5, 20),
        unit="points",
        help="After a series or booster, a PHQ-9 at or above this (and no longer "
        "relapse_drop_percent below baseline) ends the relief episode.",
        source="Kroenke 2001: 10 or more is moderate depression; McInnes 2022",
    )
    relapse_drop_percent: int = setting(
        50,
        allowed=(20, 80),
        unit="%",
        help="A PHQ-9 that is no longer this much below the patient's pre-treatment baseline "
        "(and at or above relapse_phq9_at) ends the relief episode.",
        source="McInnes 2022: response is a drop of 50% or more from baseline",
    )
    booster_quantile_percent: int = setting(
        15,
        allowed=(5, 50),
        unit="%",
        help="The booster is timed for the point by which relief has ended in only this share "
        "of the patient's expected episodes: lower calls earlier.",
        source="inferred; back-tested on the demo clinic (README, Boosters)",
    )
    booster_lead_days: int = setting(
        3,
        allowed=(0, 21),
        unit="days",
        help="Call this many days before the booster should land, to book a chair.",
        source="inferred: a call, then a chair on one of the next open days",
    )
    booster_due_within_days: int = setting(
        7,
        allowed=(1, 30),
        unit="days",
        help="A booster due within this many days (and not booked) is flagged due soon.",
        source="inferred: a week of calls ahead",
    )
    out_of_care_after_days: int = setting(
        120,
        allowed=(30, 730),
        unit="days",
        help="A patient with no infusion, score or symptom report for this long is no longer "
        "in care: off the worklist, shown on request.",
        source="inferred: relief lasts up to a few months (seed text; KetECT median 57 days)",
    )
    series_min_infusions: int = setting(
        6,
        allowed=(1, 12),
        unit="infusions",
        help="A patient is in the initial series (not yet due a booster) until this many "
        "series infusions are given.",
        source="Murrough 2013: 6 infusions over 12 days; seed text: six in three weeks",
    )
    booster_history_days: int = setting(
        365,
        allowed=(90, 3650),
        unit="days",
        help="The boosters worklist reads this much of each patient's past relief.",
        source="inferred: a year holds a patient's recent episodes (recent ones weigh most)",
    )
    ride_late_after_minutes: int = setting(
        15,
        allowed=(5, 120),
        unit="min",
        help="A ride not here this long after its expected time (or the time the driver gave) "
        "raises an alert.",
        source="inferred, clinic operations (issue 8): to be checked by the clinic's lead",
    )
    closing_time_alert_minutes: int = setting(
        30,
        allowed=(5, 240),
        unit="min",
        help="A patient still in the building this long before the site closes raises an alert.",
        source="inferred, clinic operations (issue 8): to be checked by the clinic's lead",
    )

    def min_recovery_minutes(self, route: Route | str) -> int:
        """The shortest recovery for a route: IV and esketamine differ."""
        return {
            Route.IV: self.min_recovery_iv_minutes,
            Route.ESKETAMINE: self.min_recovery_esketamine_minutes,
            Route.LOZENGE: self.min_recovery_lozenge_minutes,
        }[Route(route)]


SETTINGS: tuple[SettingSpec, ...] = tuple(
    SettingSpec(name=f.name, default=f.default, **f.metadata) for f in fields(ClinicSettings)
)
SETTINGS_BY_NAME = {spec.name: spec for spec in SETTINGS}


class InvalidSetting(ValueError):
    """A setting override that is unknown or not of the setting's kind."""


def parse_setting(name: str, raw: str) -> int | str:
    """The typed value of ``raw`` for setting ``name``; raises InvalidSetting."""
    spec = SETTINGS_BY_NAME.get(name)
    if spec is None:
        raise InvalidSetting(f"There is no clinic setting called {name!r}.")
    if isinstance(spec.default, int):
        try:
            value = int(str(raw).strip())
        except ValueError as error:
            raise InvalidSetting(f"{name} must be a whole number of {spec.unit}.") from error
        low, high = spec.allowed or (0, None)
        if value < low or (high is not None and value > high):
            raise InvalidSetting(
                f"{name} must be between {low} and {high} {spec.unit}; {value} is outside."
            )
        return value
    if spec.choices and raw not in spec.choices:
        raise InvalidSetting(f"{name} must be one of: {', '.join(spec.choices)}.")
    return raw


def load_clinic_settings(*, db: Session, site_id: int) -> ClinicSettings:
    """Defaults, with the site's overrides applied. Unknown override names are ignored."""
    rows = db.exec(
        select(SiteSetting.name, SiteSetting.value).where(SiteSetting.site_id == site_id)
    )
    overrides = {
        name: parse_setting(name, value) for name, value in rows if name in SETTINGS_BY_NAME
    }
    return replace(ClinicSettings(), **overrides)


def set_site_setting(
    *,
    db: Session,
    site_id: int,
    name: str,
    value: str,
    staff_id: int | None,
    now: datetime,
) -> int | str:
    """Override one setting at one site; returns the typed value stored."""
    parsed = parse_setting(name, value)
    row = db.exec(
        select(SiteSetting).where(SiteSetting.site_id == site_id, SiteSetting.name == name)
    ).first()
    if row is None:
        row = SiteSetting(site_id=site_id, name=name, value=str(parsed), updated_at=now)
    row.value = str(parsed)
    row.updated_at = now
    row.updated_by = staff_id
    db.add(row)
    return parsed


# --- the leads' settings screen -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SettingInForce:
    """One setting at one site: the value in force, and who last changed it, if anyone."""

    spec: SettingSpec
    value: int | str
    changed_at: datetime | None
    changed_by: str | None

    @property
    def overridden(self) -> bool:
        return self.value != self.spec.default


def settings_in_force(*, db: Session, site_id: int) -> list[SettingInForce]:
    """Every setting at the site, in declaration order, with the site's last change of each."""
    in_force = load_clinic_settings(db=db, site_id=site_id)
    changes = {
        name: (at, who)
        for name, at, who in db.exec(
            select(SiteSetting.name, SiteSetting.updated_at, Staff.name)
            .join(Staff, Staff.id == SiteSetting.updated_by, isouter=True)
            .where(SiteSetting.site_id == site_id)
        )
    }
    return [
        SettingInForce(
            spec=spec,
            value=getattr(in_force, spec.name),
            changed_at=changes.get(spec.name, (None, None))[0],
            changed_by=changes.get(spec.name, (None, None))[1],
        )
        for spec in SETTINGS
    ]


class SettingRefused(ValueError):
    """The person may not change settings; the message says why."""


def change_site_setting(
    *, url: str, site_id: int, name: str, value: str, staff_id: int, now: datetime
) -> int | str:
    """A clinic lead overrides one setting at one site; returns the typed value stored.

    Raises InvalidSetting for a value outside the setting's bounds, SettingRefused when
    the person (from the roster, never the page) is not an active clinic lead.
    """
    with write_session(url) as db:
        staff = db.get(Staff, staff_id)
        if staff is None or not staff.active or StaffRole(staff.role) != StaffRole.LEAD:
            raise SettingRefused("Only a clinic lead can change the clinic's settings.")
        return set_site_setting(
            db=db, site_id=site_id, name=name, value=value, staff_id=staff_id, now=now
        )
