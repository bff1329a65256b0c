"""The checks a nurse can see: may this patient check in, may this dose start, may they go.

Each gate is a plain function of a visit, the clinic settings, the moment and what
the nurse entered, and returns every check with its verdict in the clinic's words.
Screens show the checks; the lifecycle's writes call the same gate inside their
transaction and refuse with its reasons, so what a screen says is what a write
enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from ketadash.clock import whole_minutes_between
from ketadash.limits import (
    ESKETAMINE_DEVICE_MG,
    ESKETAMINE_PLANS_MG,
    dose_possible,
    esketamine_plans_text,
    weight_possible,
    whole_esketamine_devices,
)
from ketadash.models import (
    EscortException,
    RideState,
    Route,
    SessionStatus,
    Severity,
    SideEffect,
    StaffRole,
    VitalsPhase,
)
from ketadash.rems_form import COMEDICATIONS, RecordFields, RemsForm
from ketadash.rules import (
    item9_answer,
    item9_flagged,
    observation_start,
    route_protocol,
    weight_change_percent,
)
from ketadash.settings import ClinicSettings
from ketadash.staff import StaffMember
from ketadash.text import MIN_ACCOUNT_LETTERS, optional_reason
from ketadash.visits import Visit
from ketadash.vitals import BP_HOLD, StartHold, back_to_baseline, start_holds, vitals_alerts
from ketadash.vocabulary import IN_WORDS, OPEN_STATUSES

# The labels of start checks, by which screens and the start write find them.
ITEM9_CHECK = "PHQ-9 item 9: C-SSRS screen done before the dose"
START_CEILING_CHECK = "Pre-dose blood pressure below the start ceiling, or a lead's reason"
HOLD_CHECK = "Pre-infusion vitals within the hold limits, or an override"
DOSE_CHECK = "Dose matches the plan"
# What the nurse acknowledges for a positive item 9 (the start form's tick box says it).
ITEM9_ACKNOWLEDGEMENT = "C-SSRS screen done and reviewed"
# The start form's field for a hold's override when no check asks for a lead's reason.
HOLD_OVERRIDE_FIELD = "Override reason (who approved, why)"


def names_cssrs_step(text: str | None) -> bool:
    """Whether an acknowledgement is the C-SSRS step's own words (``ITEM9_ACKNOWLEDGEMENT``,
    in any case and spacing): "CSSRS not done" mentions the screen but is no record of it."""
    return " ".join((text or "").split()).casefold() == ITEM9_ACKNOWLEDGEMENT.casefold()


class OverrideReason(StrEnum):
    """The reasons in words a dose start takes (the value is ``take_step``'s argument), each
    passing the overrides that name it: the hold's override (a nurse's, or a lead's where a
    check asks for one, as the start ceiling does) and a lead's reason for a second dose."""

    HOLD = "hold_override_reason"
    SECOND_DOSE = "same_day_reason"


@dataclass(frozen=True, kw_only=True)
class Override:
    """How a check that the patient's state fails is passed on the record instead.

    By a reason in words (``reason``: which of the start's reasons), from a clinic lead
    acting themselves when ``by_lead``. The start form says ``message`` (at ``level``, as
    an alert's: "danger" or "warning") above the reason's field, labelled ``field``; the
    start's history records ``note`` and the reason, and the note speaks for the holds
    whose measures are in ``covers`` (the start ceiling's for the blood-pressure hold).
    """

    reason: OverrideReason
    by_lead: bool
    field: str
    message: str
    note: str
    level: Literal["danger", "warning"] = "warning"
    covers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of a checklist: what is checked, whether it passes, and the detail.

    ``override`` is set only on a check that stands because the patient's state fails it:
    it says how the check is passed by a recorded reason (and ``ok`` whether it is).
    """

    label: str
    ok: bool
    detail: str = ""
    override: Override | None = None


@dataclass(frozen=True, kw_only=True)
class Gate:
    """A checklist's verdict. ``holds`` can be overridden with a recorded reason."""

    checks: tuple[Check, ...]
    holds: tuple[StartHold, ...] = ()

    @property
    def allowed(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(check.detail or check.label for check in self.checks if not check.ok)

    @property
    def hold_reasons(self) -> tuple[str, ...]:
        """Why the dose is on hold, in the nurse's words (empty when it is not)."""
        return tuple(hold.reason for hold in self.holds)

    def check(self, label: str) -> Check | None:
        """The check with ``label``, or None when this gate does not make it."""
        return next((check for check in self.checks if check.label == label), None)

    def overrides(self, reason: OverrideReason) -> tuple[Override, ...]:
        """The overrides of this gate's checks that ``reason`` passes, in the checks' order."""
        return tuple(
            check.override
            for check in self.checks
            if check.override is not None and check.override.reason is reason
        )


def as_sentences(reasons: tuple[str, ...] | list[str]) -> str:
    """Reasons as sentences a nurse reads: each capitalised and ended with a full stop."""
    return " ".join(
        r[0].upper() + r[1:] + ("" if r.endswith((".", "!", "?")) else ".") for r in reasons if r
    )


def _under_way_elsewhere(visit: Visit) -> Check:
    if visit.open_elsewhere is None:
        return Check(label="No other visit under way", ok=True)
    chair, status = visit.open_elsewhere
    return Check(
        label="No other visit under way",
        ok=False,
        detail=(
            f"this patient is already {IN_WORDS[status]} in {chair}: one patient, one chair. "
            "Finish or close that visit first"
        ),
    )


# Statuses of a patient who is in a chair, not checked in and waiting for it.
_IN_THE_CHAIR = (SessionStatus.INFUSING, SessionStatus.RECOVERY, SessionStatus.READY)


def _chair_free(visit: Visit, *, occupied_by: tuple[SessionStatus, ...]) -> Check:
    occupant = visit.chair_occupied_by
    if occupant is None or occupant not in occupied_by:
        return Check(label="The chair is free", ok=True)
    return Check(
        label="The chair is free",
        ok=False,
        detail=(
            f"{visit.chair_name} is occupied: another patient is {IN_WORDS[occupant]} there. "
            "One chair, one patient: wait until that patient has left the chair"
        ),
    )


def check_in_gate(*, visit: Visit) -> Gate:
    """A patient has at most one visit under way, and a chair at most one patient under way."""
    return Gate(
        checks=(
            _under_way_elsewhere(visit),
            _chair_free(visit, occupied_by=(SessionStatus.CHECKED_IN, *_IN_THE_CHAIR)),
        )
    )


def reopened_into(visit: Visit) -> SessionStatus | None:
    """The open status taking back a closed visit's last step returns it to, or None.

    A discharge taken back returns the patient to ready (in the chair); a cancel taken
    back returns them to the status they were cancelled from, as the visit's standing
    steps say (checked in, or scheduled: not under way). A no-show returns to scheduled.
    """
    if visit.status == SessionStatus.DISCHARGED:
        return SessionStatus.READY
    if visit.status == SessionStatus.CANCELLED and len(visit.timeline) >= 2:
        before = visit.timeline[-2].status
        return before if before in OPEN_STATUSES else None
    return None


def reopen_gate(*, visit: Visit, into: SessionStatus | None = None) -> Gate:
    """Taking back a cancel or a discharge puts the visit under way again: the check-in
    rules hold (the patient has no other visit under way, no other patient is checked in
    or in the chair). ``into`` is the status the visit returns to (the write knows it
    from the history; by default it is read from the visit's standing steps). A visit
    that does not return to an open status passes without checks."""
    if into is None:
        into = reopened_into(visit)
    if into not in OPEN_STATUSES:
        return Gate(checks=())
    return check_in_gate(visit=visit)


def _overridable(
    *,
    label: str,
    detail: str,
    override: Override,
    reasons: dict[OverrideReason, str | None],
    staff_role: StaffRole | None,
) -> Check:
    """A check the patient's state fails, passed by the override's reason in words (and,
    when ``by_lead``, only from a clinic lead acting themselves)."""
    is_lead = staff_role is not None and StaffRole(staff_role) == StaffRole.LEAD
    given = optional_reason(reasons[override.reason]) is not None
    return Check(
        label=label,
        ok=given and (is_lead or not override.by_lead),
        detail=detail,
        override=override,
    )


def start_checklist(
    *,
    visit: Visit,
    settings: ClinicSettings,
    same_day_reason: str | None = None,
    staff_role: StaffRole | None = None,
    item9_acknowledgement: str | None = None,
    hold_override_reason: str | None = None,
) -> Gate:
    """What must stand before any dose, shown above the start form and enforced by the start.

    Readings count from this visit's check-in. A dose start within
    ``second_dose_window_hours`` of an earlier one (this visit's own start taken back
    included: it may have been given) needs a lead's recorded reason. A positive PHQ-9
    item 9 at this visit needs ``item9_acknowledgement`` naming the C-SSRS screen
    (``ITEM9_ACKNOWLEDGEMENT``). A pre-dose reading at or above the start ceiling needs a
    lead's ``hold_override_reason``. A check passed by a reason says so (``Check.override``),
    so the start form draws its field and the start records it without naming the check.
    """
    reasons = {
        OverrideReason.HOLD: hold_override_reason,
        OverrideReason.SECOND_DOSE: same_day_reason,
    }
    missing = []
    if visit.phq9_total is None:
        missing.append("a PHQ-9")
    if visit.baseline is None:
        missing.append("pre-infusion vitals")
    checks = [
        Check(
            label="PHQ-9 and pre-infusion vitals taken at this visit",
            ok=not missing,
            detail=f"record {' and '.join(missing)} from this visit first" if missing else "",
        ),
        _under_way_elsewhere(visit),
        _chair_free(visit, occupied_by=_IN_THE_CHAIR),
    ]
    if visit.doses_started_recently:
        hours = settings.second_dose_window_hours
        checks.append(
            _overridable(
                label=f"A second dose within {hours} h has a lead's reason",
                detail=(
                    f"this patient already had a dose started in the last {hours} h; a "
                    f"second dose within {hours} h needs a clinic lead, acting themselves, "
                    "to record why"
                ),
                override=Override(
                    reason=OverrideReason.SECOND_DOSE,
                    by_lead=True,
                    field=f"Lead's reason for a second dose within {hours} h",
                    message=(
                        f"This patient already had a dose started in the last {hours} h. A "
                        f"second dose within {hours} h needs a clinic lead, acting themselves, "
                        "to record why."
                    ),
                    note=f"second dose within {hours} h",
                ),
                reasons=reasons,
                staff_role=staff_role,
            )
        )
    checks.extend(_item9_checks(visit, settings, item9_acknowledgement))
    checks.extend(_ceiling_checks(visit, settings, reasons, staff_role))
    holds = tuple(start_holds(visit.baseline.vitals, settings)) if visit.baseline else ()
    return Gate(checks=tuple(checks), holds=holds)


def _item9_checks(
    visit: Visit, settings: ClinicSettings, acknowledgement: str | None
) -> list[Check]:
    """A positive item 9 at this visit (the highest answer, corrections included) holds
    the dose until the nurse records that the C-SSRS screen was done and reviewed."""
    if not item9_flagged(visit, settings):
        return []
    return [
        Check(
            label=ITEM9_CHECK,
            ok=names_cssrs_step(optional_reason(acknowledgement)),
            detail=(
                f"PHQ-9 item 9 was answered {item9_answer(visit)} at this visit (self-harm "
                "thoughts): do the C-SSRS screen, tell the physician, and record "
                f"“{ITEM9_ACKNOWLEDGEMENT}” before the dose"
            ),
        )
    ]


def start_ceiling_reached(visit: Visit, settings: ClinicSettings) -> bool:
    """Whether the pre-dose reading is at or above the start ceiling (systolic or diastolic)."""
    if visit.baseline is None:
        return False
    vitals = visit.baseline.vitals
    return (
        vitals.systolic >= settings.start_ceiling_systolic
        or vitals.diastolic >= settings.start_ceiling_diastolic
    )


def _ceiling_checks(
    visit: Visit,
    settings: ClinicSettings,
    reasons: dict[OverrideReason, str | None],
    staff_role: StaffRole | None,
) -> list[Check]:
    """At or above the start ceiling a nurse's hold override is not enough: a clinic lead,
    acting themselves, records why the dose goes ahead (as for a second dose within the window).
    Not an absolute block: the reading may be rechecked after treatment and rest, and
    the physician's judgement belongs on the record rather than around it. The lead's
    reason is the hold's override (the ceiling is above the hold), and its note speaks for
    the blood-pressure hold."""
    if not start_ceiling_reached(visit, settings) or visit.baseline is None:
        return []
    vitals = visit.baseline.vitals
    ceiling = f"{settings.start_ceiling_systolic}/{settings.start_ceiling_diastolic}"
    return [
        _overridable(
            label=START_CEILING_CHECK,
            detail=(
                f"pre-dose blood pressure {vitals.blood_pressure} is at or above the start "
                f"ceiling of {ceiling}: a nurse's override is not enough. Recheck "
                "after rest and treatment; to dose anyway a clinic lead, acting themselves, "
                "must record why"
            ),
            override=Override(
                reason=OverrideReason.HOLD,
                by_lead=True,
                field="Lead's reason to dose above the ceiling",
                message=(
                    f"At or above the start ceiling ({ceiling}): a nurse's override is not "
                    "enough. Only a clinic lead, acting themselves, can start this dose, with "
                    "the reason below."
                ),
                note="BP at or above the start ceiling, lead's reason",
                level="danger",
                covers=(BP_HOLD,),
            ),
            reasons=reasons,
            staff_role=staff_role,
        )
    ]


def standard_plan(*, route: Route | str, dose_mg: float | None) -> bool:
    """Whether a plan needs no reason: any IV or lozenge plan, esketamine at 56 or 84 mg."""
    return Route(route) != Route.ESKETAMINE or dose_mg is None or dose_mg in ESKETAMINE_PLANS_MG


def plan_problems(
    *,
    route: Route | str,
    dose_mg: float | None,
    plan_reason: str | None,
    staff_role: StaffRole | None,
) -> list[str]:
    """Why a dose plan cannot be booked or imported as it stands (empty when it can).

    An esketamine plan other than the label's 56 or 84 mg (``ESKETAMINE_PLANS_MG``)
    needs a clinic lead, acting themselves, to record ``plan_reason``.
    """
    if standard_plan(route=route, dose_mg=dose_mg):
        return []
    is_lead = staff_role is not None and StaffRole(staff_role) == StaffRole.LEAD
    if is_lead and optional_reason(plan_reason):
        return []
    plans = esketamine_plans_text()
    return [
        f"an esketamine plan of {dose_mg:g} mg is not the label's {plans} mg "
        f"({ESKETAMINE_DEVICE_MG} mg devices): another plan needs a clinic lead, acting "
        "themselves, to record why"
    ]


@dataclass(frozen=True, kw_only=True)
class DosePlan:
    """The planned dose in mg at a weight, and how it was worked out."""

    planned_mg: float | None
    explained: str


def dose_plan(*, visit: Visit, weight_kg: float | None) -> DosePlan:
    """The planned mg: mg/kg × weight for an IV plan, the fixed mg otherwise."""
    if visit.dose_mg_per_kg:
        if weight_kg is None:
            return DosePlan(
                planned_mg=None, explained=f"{visit.dose_mg_per_kg:g} mg/kg (weigh the patient)"
            )
        planned = round(visit.dose_mg_per_kg * weight_kg, 1)
        return DosePlan(
            planned_mg=planned,
            explained=f"{visit.dose_mg_per_kg:g} mg/kg at {weight_kg:g} kg = {planned:g} mg",
        )
    if visit.dose_mg:
        if visit.route == Route.ESKETAMINE:
            devices = round(visit.dose_mg / ESKETAMINE_DEVICE_MG)
            return DosePlan(
                planned_mg=visit.dose_mg,
                explained=f"{visit.dose_mg:g} mg ({devices} devices of {ESKETAMINE_DEVICE_MG} mg)",
            )
        return DosePlan(planned_mg=visit.dose_mg, explained=f"{visit.dose_mg:g} mg")
    return DosePlan(planned_mg=None, explained="no dose planned")


def dose_problems(
    *,
    visit: Visit,
    settings: ClinicSettings,
    given_mg: float | None,
    weight_kg: float | None,
    weight_confirmed: bool = False,
) -> list[str]:
    """Why the dose entered cannot be given as typed (empty when it can).

    Every dose is checked against its plan within ``dose_tolerance_percent``:
    mg/kg plans at today's weight, fixed plans (esketamine, lozenges) as they are.
    Esketamine is given in whole 28 mg devices. A weight far from the patient's
    last recorded one needs ``weight_confirmed``.
    """
    if given_mg is None:
        return ["Enter the dose given, in mg, before starting"]
    if not dose_possible(given_mg):
        return [f"a dose of {given_mg:g} mg is not possible; check it and retype"]
    problems = []
    if weight_kg is not None and not weight_possible(weight_kg):
        return [f"a weight of {weight_kg:g} kg is not possible; check it and retype"]
    change = weight_change_percent(visit, weight_kg)
    if (
        change is not None
        and change > settings.weight_change_confirm_percent
        and (not weight_confirmed)
    ):
        problems.append(
            f"today's weight {weight_kg if weight_kg is not None else visit.weight_kg:g} kg is "
            f"{change:.0f}% from the last recorded {visit.previous_weight_kg:g} kg (more than "
            f"{settings.weight_change_confirm_percent}%): reweigh, then confirm the new weight"
        )
    if visit.route == Route.ESKETAMINE and not whole_esketamine_devices(given_mg):
        problems.append(
            f"esketamine is given in whole {ESKETAMINE_DEVICE_MG} mg devices; "
            f"{given_mg:g} mg is not a number of devices"
        )
    plan = dose_plan(visit=visit, weight_kg=weight_kg)
    if visit.dose_mg_per_kg and weight_kg is None:
        problems.append(
            f"enter today's weight: the dose is planned as {visit.dose_mg_per_kg:g} mg/kg and is "
            "checked against it"
        )
    elif plan.planned_mg is None:
        problems.append("this session has no planned dose; book the plan before dosing")
    else:
        off = abs(given_mg - plan.planned_mg) / plan.planned_mg * 100
        if off > settings.dose_tolerance_percent:
            tolerance = settings.dose_tolerance_percent
            if visit.dose_mg_per_kg and weight_kg is not None:
                problems.append(
                    f"Check the dose: {given_mg:g} mg is {given_mg / weight_kg:.2f} mg/kg at "
                    f"{weight_kg:g} kg, but the plan is {visit.dose_mg_per_kg:g} mg/kg "
                    f"({plan.planned_mg:.1f} mg, ±{tolerance}%)"
                )
            else:
                problems.append(
                    f"Check the dose: {given_mg:g} mg is {off:.0f}% from the plan of "
                    f"{plan.explained} (±{tolerance}%)"
                )
    return problems


def start_gate(
    *,
    visit: Visit,
    settings: ClinicSettings,
    given_mg: float | None,
    weight_kg: float | None,
    weight_confirmed: bool = False,
    hold_override_reason: str | None = None,
    same_day_reason: str | None = None,
    staff_role: StaffRole | None = None,
    item9_acknowledgement: str | None = None,
) -> Gate:
    """The whole start check: the checklist, the holds (each needs an override with a
    reason in words; at or above the start ceiling, the override is a lead's reason), and
    the dose against its plan. The checklist's checks come first, then the hold
    (``HOLD_CHECK``, only when vitals hold the dose), then the dose (``DOSE_CHECK``)."""
    checklist = start_checklist(
        visit=visit,
        settings=settings,
        same_day_reason=same_day_reason,
        staff_role=staff_role,
        item9_acknowledgement=item9_acknowledgement,
        hold_override_reason=hold_override_reason,
    )
    checks = list(checklist.checks)
    if checklist.holds:
        checks.append(
            Check(
                label=HOLD_CHECK,
                ok=optional_reason(hold_override_reason) is not None,
                detail="; ".join(checklist.hold_reasons),
            )
        )
    problems = dose_problems(
        visit=visit,
        settings=settings,
        given_mg=given_mg,
        weight_kg=weight_kg,
        weight_confirmed=weight_confirmed,
    )
    checks.append(Check(label=DOSE_CHECK, ok=not problems, detail="; ".join(problems)))
    return Gate(checks=tuple(checks), holds=checklist.holds)


def ready_gate(
    *,
    visit: Visit,
    settings: ClinicSettings,
    now: datetime,
    steady_on_feet: bool | None = None,
) -> Gate:
    """May the patient be marked ready to go: minimum observation for the route from its own
    start, a recent recovery reading without danger and back near baseline, side effects
    settled, and the nurse's confirmation that the patient is steady on their feet."""
    protocol = route_protocol(visit, settings)
    start = observation_start(visit, settings)
    minutes = whole_minutes_between(start, now) if start is not None else 0
    minimum = protocol.observation_minutes
    checks = [
        Check(
            label=f"{protocol.observation_label} of at least {minimum} min",
            ok=start is not None and minutes >= minimum,
            detail=(
                f"too early: {minutes} of the {minimum} minutes of "
                f"{protocol.observation_label.lower()} this route needs; ready in "
                f"{max(0, minimum - minutes)} min"
            ),
        )
    ]
    after = visit.latest
    fresh_since = now - timedelta(minutes=settings.vitals_every_after_minutes)
    recent = (
        after is not None
        and after.phase == VitalsPhase.AFTER
        and visit.infusion_ended_at is not None
        and after.taken_at >= visit.infusion_ended_at
        and after.taken_at >= fresh_since
    )
    if recent and after is not None:
        age = f"taken {whole_minutes_between(after.taken_at, now)} min ago"
    elif after is not None and after.phase == VitalsPhase.AFTER:
        age = f"the last were {whole_minutes_between(after.taken_at, now)} min ago"
    else:
        age = "none taken since the dose ended"
    checks.append(
        Check(
            label=f"Recovery vitals within the last {settings.vitals_every_after_minutes} min",
            ok=recent,
            detail="" if recent else f"record a set of recovery vitals now ({age})",
        )
    )
    if recent and after is not None:
        dangers = [
            a.what
            for a in vitals_alerts(after.vitals, phase=VitalsPhase.AFTER, settings=settings)
            if a.level == "danger"
        ]
        checks.append(
            Check(
                label="No danger in the last vitals",
                ok=not dangers,
                detail=f"the last recovery vitals show {'; '.join(dangers)}; recheck later",
            )
        )
        if visit.baseline is not None:
            ok, off = back_to_baseline(
                after.vitals,
                visit.baseline.vitals,
                within_percent=settings.discharge_vitals_within_percent,
            )
            checks.append(
                Check(
                    label=(
                        f"Vitals within {settings.discharge_vitals_within_percent}% of pre-infusion"
                    ),
                    ok=ok,
                    detail="vitals are not back to baseline yet: " + "; ".join(off),
                )
            )
    lingering = _lingering_side_effects(visit)
    checks.append(
        Check(
            label="Side effects settled",
            ok=not lingering,
            detail=f"still {', '.join(lingering)}: record them again once they settle",
        )
    )
    checks.append(
        Check(
            label="Steady on feet and oriented (nurse confirms)",
            ok=steady_on_feet is True,
            detail="confirm the patient is steady on their feet and oriented",
        )
    )
    return Gate(checks=tuple(checks))


def _lingering_side_effects(visit: Visit) -> list[str]:
    """The side effects whose last recording is moderate or severe, in the nurse's words."""
    return [
        f"{SideEffect(effect).label.lower()} ({severity})"
        for effect, severity in visit.side_effects
        if severity in (Severity.MODERATE, Severity.SEVERE)
    ]


def fit_to_go_gate(*, visit: Visit, settings: ClinicSettings) -> Gate:
    """The discharge gate's first part: nothing alarming recorded while the patient waited to
    go. The ready gate allowed no danger in the last reading and no moderate or severe side
    effect, so any standing now came after ready; a nurse clears it with a newer calm
    reading, the effect recorded again as mild or none, or by taking the patient back to
    recovery. No escort exception overrides it."""
    dangers = []
    latest = visit.latest
    if latest is not None and latest.phase == VitalsPhase.AFTER:
        dangers = [
            a.what
            for a in vitals_alerts(latest.vitals, phase=VitalsPhase.AFTER, settings=settings)
            if a.level == "danger"
        ]
    lingering = _lingering_side_effects(visit)
    checks = (
        Check(
            label="No danger in the vitals since ready",
            ok=not dangers,
            detail=(
                f"the last vitals show {'; '.join(dangers)}: the patient cannot go home now. "
                "Recheck, and record a new set once they settle, or take the patient back to "
                "recovery"
            ),
        ),
        Check(
            label="No moderate or severe side effect since ready",
            ok=not lingering,
            detail=(
                f"still {', '.join(lingering)} since they were marked ready: record it again once "
                "it settles (mild or none), or take the patient back to recovery"
            ),
        ),
    )
    return Gate(checks=checks)


def discharge_gate(
    *,
    visit: Visit,
    settings: ClinicSettings,
    escort_exception: EscortException | str | None = None,
    reason: str | None = None,
    approving_lead: StaffMember | None = None,
) -> Gate:
    """May the patient go home: nothing alarming recorded since they were marked ready (a
    danger reading, a moderate or severe side effect), and an adult escort has arrived, or
    the nurse records what was arranged instead with a reason (never a silent bypass). No
    driving for 12–24 h. An escort exception never overrides what the patient's state says.

    A lead's approval names ``approving_lead``, a lead on the site's roster."""
    fit = fit_to_go_gate(visit=visit, settings=settings)
    rems = rems_started_gate(visit=visit, settings=settings)
    escort = _escort_gate(
        visit=visit, escort_exception=escort_exception, reason=reason, approving_lead=approving_lead
    )
    return Gate(checks=(*fit.checks, *rems.checks, *escort.checks))


REMS_STARTED_CHECK = "REMS monitoring form started"


def rems_required(*, route: Route | str, settings: ClinicSettings) -> bool:
    """Whether a session of ``route`` needs a REMS Patient Monitoring Form at this clinic:
    esketamine, while ``rems_monitoring_form`` is "required"."""
    return Route(route) == Route.ESKETAMINE and settings.rems_monitoring_form == "required"


def rems_started_gate(*, visit: Visit, settings: ClinicSettings) -> Gate:
    """An esketamine session is closed (discharged) only with its REMS Patient Monitoring
    Form started, so no session leaves without one (the REMS asks for a form after every
    treatment session). No check for other routes, or when the clinic turned it off."""
    if not rems_required(route=visit.route, settings=settings):
        return Gate(checks=())
    return Gate(
        checks=(
            Check(
                label=REMS_STARTED_CHECK,
                ok=visit.rems_record_started,
                detail=(
                    "this is an esketamine session: start its REMS Patient Monitoring Form "
                    "(device lot number, sedating or blood-pressure medications) before the "
                    "patient goes home; it can be finished and submitted later, within "
                    f"{settings.rems_submit_within_days} days"
                ),
            ),
        )
    )


def _escort_gate(
    *,
    visit: Visit,
    escort_exception: EscortException | str | None,
    reason: str | None,
    approving_lead: StaffMember | None,
) -> Gate:
    arrived = visit.ride_state is RideState.ARRIVED
    if arrived:
        checks = [Check(label="An adult escort has arrived", ok=True)]
        if escort_exception is not None:
            # Recording an exception with the escort here would mislead the lead's list.
            checks.append(
                Check(
                    label="No escort exception",
                    ok=False,
                    detail="the ride has arrived: discharge with the escort, no exception needed",
                )
            )
        return Gate(checks=tuple(checks))
    if escort_exception is not None:
        return Gate(
            checks=_escort_exception_checks(
                EscortException(escort_exception), reason=reason, approving_lead=approving_lead
            )
        )
    return Gate(
        checks=(
            Check(
                label="An adult escort has arrived",
                ok=False,
                detail=(
                    "no adult has been recorded as arrived to take the patient home: record the "
                    "ride's arrival first (no driving for 12–24 h), or record what was arranged "
                    "instead with a reason"
                ),
            ),
        )
    )


def _escort_exception_checks(
    kind: EscortException, *, reason: str | None, approving_lead: StaffMember | None
) -> tuple[Check, ...]:
    checks = [
        Check(
            label=f"No escort here: {kind.label.lower()}",
            ok=optional_reason(reason, min_letters=MIN_ACCOUNT_LETTERS) is not None,
            detail=(
                "say in words who is taking the patient home and how (a named person, "
                f"the lead's approval), at least {MIN_ACCOUNT_LETTERS} letters"
            ),
        )
    ]
    if kind is EscortException.LEAD_APPROVED:
        # As for a second dose within the window: the approval is a lead's, on the record
        # under the lead's own name, not a nurse's word for it.
        is_lead = approving_lead is not None and StaffRole(approving_lead.role) == StaffRole.LEAD
        checks.append(
            Check(
                label="The approving lead is named",
                ok=is_lead,
                detail="name the clinic lead who approved the arrangement (a lead on the roster)",
            )
        )
    return tuple(checks)


def rems_submit_gate(*, form: RemsForm) -> Gate:
    """May a REMS Patient Monitoring Form be marked submitted: monitoring is over, the
    nurse's part is complete (lot number, the four co-medication answers, when the patient
    would have been ready to leave, from the first device to the end of monitoring, the
    monitoring provider), and the three blood pressures are recorded or the notes say why
    one is missing. Shown above the form's buttons; the submit write refuses with it."""
    record = form.record or RecordFields()
    filled = form.prefill
    checks = [
        Check(
            label="Monitoring finished",
            ok=filled.monitoring_ended_at is not None,
            detail=(
                "the patient's monitoring is not over: mark them ready to go first (the form "
                "times the session from the first device to the end of monitoring)"
            ),
        ),
        Check(
            label="Device lot number",
            ok=bool(record.device_lot),
            detail="type the lot number printed on the device carton",
        ),
    ]
    unanswered = [
        words[0].lower() + words[1:]
        for name, words in COMEDICATIONS
        if getattr(record, name) is None
    ]
    checks.append(
        Check(
            label="Sedating or blood-pressure medications answered",
            ok=not unanswered,
            detail=f"answer yes or no for {', '.join(unanswered)}",
        )
    )
    ready = record.ready_to_leave_at
    start, end = filled.first_device_at, filled.monitoring_ended_at
    if ready is None:
        detail = "say when the patient would have been ready to leave without the 2-hour rule"
    else:
        detail = (
            "the ready-to-leave time must lie between the first device and the end of "
            "monitoring: check the time typed"
        )
    checks.append(
        Check(
            label="Ready to leave without the 2-hour rule",
            ok=ready is not None
            and start is not None
            and end is not None
            and start <= ready <= end,
            detail=detail,
        )
    )
    checks.append(
        Check(
            label="Monitoring healthcare provider named",
            ok=record.monitoring_provider_id is not None,
            detail="choose the nurse or lead who monitored the patient",
        )
    )
    missing = [
        words
        for reading, words in (
            (filled.bp_before, "before dosing"),
            (filled.bp_after_dose, "about 40 min after dosing"),
            (filled.bp_at_end, "before completion"),
        )
        if reading is None
    ]
    checks.append(
        Check(
            label="Blood pressures before, about 40 min after and before completion",
            ok=not missing or optional_reason(record.notes) is not None,
            detail=(f"no blood pressure is recorded {' or '.join(missing)}: say why in the notes"),
        )
    )
    return Gate(checks=tuple(checks))
