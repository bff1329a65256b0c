"""The Today panel: choose a patient, see what can be done now, do it.

Which forms a visit gets is the state machine's answer, not the screen's: one form for
each ``Step`` (``STEP_FORMS``), drawn when ``vocabulary.allowed_steps`` allows the step
from the visit's status and the person's role may take it, between the forms that
record something about the visit (``Record``), in the order of the work (``LAYOUT``).
Each checklist a form shows is drawn whole from its gate, and a check the form needs is
found by its label (``gates.ITEM9_CHECK``), never by its position. A check passed by a
reason in words brings its own message and field (``gates.Override``): the start form
draws them for whatever checks ask, without knowing any one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import streamlit as st

from ketadash.auth import AccessAction
from ketadash.board import time_text
from ketadash.clinic import SiteChoice
from ketadash.clock import local_today, nearest_moment, to_local, utc_now
from ketadash.db import DatabaseUnavailable
from ketadash.gates import (
    HOLD_OVERRIDE_FIELD,
    ITEM9_ACKNOWLEDGEMENT,
    ITEM9_CHECK,
    Gate,
    OverrideReason,
    as_sentences,
    check_in_gate,
    discharge_gate,
    dose_plan,
    ready_gate,
    reopen_gate,
    start_checklist,
)
from ketadash.lifecycle import (
    record_phq9,
    record_side_effects,
    record_vitals,
    take_step,
    undo_last_step,
)
from ketadash.limits import ESKETAMINE_DEVICE_MG, MAX_DOSE_MG, MAX_WEIGHT_KG
from ketadash.models import Route, Severity, SideEffect, StaffRole
from ketadash.models import SessionStatus as S
from ketadash.rides import arrange_ride
from ketadash.rules import dose_timer, esketamine_devices, item9_answer
from ketadash.staff import StaffMember
from ketadash.ui import saves
from ketadash.ui.actions import OWN_WRITE_KEY, act, flash, show_flash
from ketadash.ui.auth import note_opened
from ketadash.ui.board import SEEN_KEY, SELECTED_KEY, todays_board
from ketadash.ui.rems import rems_section
from ketadash.ui.saves import Drawn
from ketadash.ui.text import bdi, literal, plain
from ketadash.visits import SiteDay, Visit
from ketadash.vitals import Vitals
from ketadash.vocabulary import (
    CLINICAL_STEPS,
    CLINICIANS,
    OPEN_STATUSES,
    TRANSITIONS,
    Step,
    allowed_steps,
)


@dataclass(frozen=True, kw_only=True)
class Panel:
    """What every form of the panel acts on: the chosen visit, on the board it was read
    from, by the signed-in person, at this run's moment."""

    url: str
    session: Visit
    staff: StaffMember
    board: SiteDay
    now: datetime


@dataclass(frozen=True, kw_only=True)
class Record:
    """A form that records something about the visit (not a step): drawn while
    ``shown(visit)``; ``clinical`` ones are for a nurse or the lead only."""

    draw: Callable[[Panel], None]
    shown: Callable[[Visit], bool]
    clinical: bool = True


def _session_label(s: Visit, board: SiteDay) -> str:
    when = time_text(s.scheduled_start, board)
    if s.earlier_day:
        when = to_local(s.scheduled_start, board.time_zone).strftime("%a %H:%M")
    return f"{plain(s.chair_name)} · {when} · {plain(s.patient_name)} — {s.status.label}"


def session_actions(*, url: str, site: SiteChoice, staff: StaffMember, now: datetime) -> None:
    """Choose a patient, see what can be done now, do it.

    Forms come in the order of the work (questionnaire, vitals, then the step), and
    the messages have a fixed slot at the top: a message that comes and goes never
    shifts the forms below it, so an open section stays open with its error showing.
    Front desk staff see only their own steps (check-in, the ride, cancel or no-show);
    the lifecycle refuses the clinical ones whatever the screen shows.
    """
    messages = st.container()
    show_flash(messages)
    try:
        board = todays_board(url, site, now)
    except DatabaseUnavailable as error:
        st.error(str(error), icon=":material/cloud_off:")
        return
    sessions = {s.session_id: s for s in board.sessions}
    if not sessions:
        st.info("No sessions booked at this site today.")
        return
    options = list(sessions)
    remembered = st.session_state.get(SELECTED_KEY)
    chosen = st.selectbox(
        "Patient",
        options=options,
        index=options.index(remembered) if remembered in sessions else None,
        format_func=lambda session_id: _session_label(sessions[session_id], board),
        placeholder="Choose a patient",
    )
    st.session_state[SELECTED_KEY] = chosen
    if chosen is None:
        st.caption("Choose a patient to check them in, record vitals or move them along.")
        return
    session = sessions[chosen]
    note_opened(
        action=AccessAction.OPEN_PANEL,
        where="today",
        session_id=session.session_id,
        patient_id=session.patient_id,
    )
    _note_changes_from_elsewhere(session, messages)
    st.markdown(
        f"**{literal(session.patient_name)}** · {literal(session.chair_name)} · "
        f"**{session.status.label}**"
    )
    panel = Panel(url=url, session=session, staff=staff, board=board, now=now)
    for form in panel_forms(visit=session, role=staff.role):
        form(panel)
    if staff.role not in CLINICIANS:
        st.caption(
            "Vitals, the dose, ready and discharge are recorded by a nurse or the clinic lead."
        )


def panel_forms(*, visit: Visit, role: StaffRole) -> list[Callable[[Panel], None]]:
    """The forms the panel draws for ``visit`` and a person of ``role``, in ``LAYOUT`` order:
    each step ``allowed_steps(visit.status)`` allows and the role may take (front desk
    takes no ``CLINICAL_STEPS``), and each record ``shown`` for the visit (front desk only
    the non-clinical ones). A form serving two steps (cancel, no-show) is drawn once."""
    clinician = role in CLINICIANS
    steps = {s for s in allowed_steps(visit.status) if clinician or s not in CLINICAL_STEPS}
    forms: list[Callable[[Panel], None]] = []
    for entry in LAYOUT:
        if isinstance(entry, Step):
            form = STEP_FORMS[entry] if entry in steps else None
        else:
            wanted = entry.shown(visit) and (clinician or not entry.clinical)
            form = entry.draw if wanted else None
        if form is not None and form not in forms:
            forms.append(form)
    return forms


def _note_changes_from_elsewhere(session: Visit, messages) -> None:
    """Say so when the session changed at another station since this screen last showed it."""
    seen: dict[int, int] = st.session_state.setdefault(SEEN_KEY, {})
    own_write = st.session_state.pop(OWN_WRITE_KEY, False)
    previous = seen.get(session.session_id)
    if previous is not None and previous != session.version and not own_write:
        messages.info(
            f"Changed at another station while you were looking: the patient is now "
            f"**{session.status.label.lower()}**. Check before you act.",
            icon=":material/sync:",
        )
    seen[session.session_id] = session.version


def _take_step(
    *, url: str, session: Visit, staff: StaffMember, step: Step, save: Drawn, **details
) -> None:
    """Take one lifecycle step on the version the nurse is looking at, and say it was done."""
    act(
        lambda: take_step(
            url=url,
            session_id=session.session_id,
            step=step,
            staff_id=staff.id,
            expected_version=session.version,
            **details,
        ),
        f"{literal(session.patient_name)}: {TRANSITIONS[step].done}.",
        save=save,
        staff=staff,
    )


def _gated_step(*, url: str, session: Visit, staff: StaffMember, step: Step, gate: Gate) -> None:
    """A step's button under its gate: the checks that do not pass are shown, and the
    button waits for them (the step refuses with the same words whatever the screen)."""
    if not gate.allowed:
        _checklist(Gate(checks=tuple(c for c in gate.checks if not c.ok)))
    transition = TRANSITIONS[step]
    save = saves.drawn(f"step-{step}-{session.session_id}", what=transition.label.lower())
    if st.button(
        transition.label,
        key=f"step-{step}-{session.session_id}",
        type="primary",
        disabled=not gate.allowed,
    ):
        _take_step(url=url, session=session, staff=staff, step=step, save=save)


def _end_dose(panel: Panel) -> None:
    """Ending a dose before its planned minutes (the route's own) takes a deliberate tick."""
    url, session, staff, board, now = panel.url, panel.session, panel.staff, panel.board, panel.now
    timer = dose_timer(session, now, board.settings)
    # The end is offered only while infusing (allowed_steps), so the dose has started, and
    # a dose's timer always carries the route's planned minutes.
    assert timer is not None and timer.target is not None, "end of a dose that has not started"
    minutes, planned = timer.minutes, timer.target
    early = minutes < planned
    confirmed = True
    if early:
        confirmed = st.checkbox(
            f"End now, at {minutes} of the planned {planned} minutes",
            key=f"end-early-{session.session_id}-{session.version}",
        )
    if early and not confirmed:
        st.caption("Tick the box above to end the dose early.")
    save = saves.drawn(f"step-{Step.END_INFUSION}-{session.session_id}", what="end of the dose")
    if st.button(
        TRANSITIONS[Step.END_INFUSION].label,
        key=f"step-{Step.END_INFUSION}-{session.session_id}",
        type="primary",
        disabled=not confirmed,
    ):
        _take_step(
            url=url,
            session=session,
            staff=staff,
            step=Step.END_INFUSION,
            reason=f"ended early at {minutes} of {planned} min" if early else None,
            save=save,
        )


def _exit_form(panel: Panel) -> None:
    url, session, staff = panel.url, panel.session, panel.staff
    exits = [step for step in allowed_steps(session.status) if step in (Step.CANCEL, Step.NO_SHOW)]
    save = saves.drawn(f"exit-{session.session_id}", what="no-show or cancel")
    with st.expander("No-show or cancel"), st.form(save.form, border=False):
        reason = st.text_input("Reason", placeholder="e.g. no answer by phone")
        chosen = st.radio(
            "Mark as",
            exits,
            index=None,
            format_func=lambda step: TRANSITIONS[step].label,
            horizontal=True,
        )
        if st.form_submit_button("Save"):
            if chosen is None:
                st.error(f"{saves.NOT_SAVED} Choose No-show or Cancel.")
                return
            _take_step(url=url, session=session, staff=staff, step=chosen, reason=reason, save=save)


def _checklist(gate: Gate) -> None:
    """A gate's checks as a nurse's checklist: what stands, and what still needs doing."""
    rows = []
    for check in gate.checks:
        detail = "" if check.ok or not check.detail else f" — {bdi(as_sentences([check.detail]))}"
        mark, css = ("✓", "ok") if check.ok else ("○", "todo")
        rows.append(f'<div class="{css}">{mark} {bdi(check.label)}{detail}</div>')
    st.html(f'<div class="kd-checks">{"".join(rows)}</div>')


def _start_form(panel: Panel) -> None:
    url, session, staff, board = panel.url, panel.session, panel.staff, panel.board
    checklist = start_checklist(visit=session, settings=board.settings)
    # Every check, always: one added to the gate is never hidden from the nurse. Item 9
    # and each check passed by a reason (its override) have a field in the form below too.
    _checklist(checklist)
    item9_check = any(c.label == ITEM9_CHECK for c in checklist.checks)
    save = saves.drawn(f"start-{session.session_id}", what="start of the dose")
    with st.form(save.form):
        st.markdown("**Start dose**")
        plan = dose_plan(visit=session, weight_kg=session.weight_kg)
        st.caption(f"Planned: {literal(plan.explained)}, {session.route.label}")
        left, right = st.columns(2)
        weight = left.number_input(
            "Weight today (kg)",
            min_value=0.0,
            max_value=float(MAX_WEIGHT_KG),
            value=float(session.weight_kg) if session.weight_kg else None,
            step=0.1,
        )
        if session.route == Route.ESKETAMINE:
            # Esketamine comes in whole 28 mg devices: the nurse counts devices, not mg.
            # The list reaches whatever plan the data holds (a lead may have booked more
            # than 3), so an unusual plan is drawn and checked by the start, not a crash.
            planned_devices = esketamine_devices(session.dose_mg)
            devices = right.selectbox(
                "Devices given (28 mg each)",
                options=list(range(1, max(3, planned_devices) + 1)),
                index=planned_devices - 1,
                format_func=lambda n: (
                    f"{n} device{'s' if n > 1 else ''} = {n * ESKETAMINE_DEVICE_MG} mg"
                ),
            )
            dose: float | None = float(devices * ESKETAMINE_DEVICE_MG)
        else:
            # The plan at the recorded weight is offered; the start checks what is given.
            dose = right.number_input(
                "Dose given (mg)",
                min_value=0.0,
                max_value=float(MAX_DOSE_MG),
                value=float(plan.planned_mg) if plan.planned_mg else None,
                step=0.5,
            )
        confirmed = False
        if session.previous_weight_kg:
            confirmed = st.checkbox(
                f"Reweighed: use today's weight even though it differs from the last visit's "
                f"{session.previous_weight_kg:g} kg by more than "
                f"{board.settings.weight_change_confirm_percent}%",
            )
        acknowledgement = None
        if item9_check:
            st.error(
                "PHQ-9 item 9 is positive at this visit: do the C-SSRS screen and tell the "
                "physician before the dose.",
                icon=":material/emergency:",
            )
            if st.checkbox(ITEM9_ACKNOWLEDGEMENT):
                acknowledgement = ITEM9_ACKNOWLEDGEMENT
        reasons = {kind: _override_field(checklist, kind) for kind in OverrideReason}
        if st.form_submit_button("Start dose", type="primary"):
            _take_step(
                url=url,
                session=session,
                staff=staff,
                step=Step.START_INFUSION,
                dose_mg=dose or None,
                weight_kg=weight or None,
                weight_confirmed=confirmed,
                hold_override_reason=reasons[OverrideReason.HOLD] or None,
                same_day_reason=reasons[OverrideReason.SECOND_DOSE] or None,
                item9_acknowledgement=acknowledgement,
                save=save,
            )


def _override_field(checklist: Gate, kind: OverrideReason) -> str:
    """The field for one of the start's reasons, drawn when a check or a hold asks for it:
    the holds first (the hold's reason), then each check's message, the field labelled by
    the first check that asks for it (a lead's reason where a check needs a lead's)."""
    overrides = checklist.overrides(kind)
    holds = checklist.holds if kind is OverrideReason.HOLD else ()
    if not overrides and not holds:
        return ""
    if holds:
        st.warning(
            "On hold: " + literal("; ".join(hold.reason for hold in holds)) + ".",
            icon=":material/warning:",
        )
    for override in overrides:
        if override.level == "danger":
            st.error(override.message, icon=":material/block:")
        else:
            st.warning(override.message, icon=":material/warning:")
    return st.text_input(overrides[0].field if overrides else HOLD_OVERRIDE_FIELD)


def _ready_form(panel: Panel) -> None:
    """The ready checklist from the ready gate, and the nurse's own confirmation.

    The confirmation stands unticked in the checklist (as on Recovery) until the nurse
    ticks it in the form; the ready step records it in the history.
    """
    url, session, staff, board, now = panel.url, panel.session, panel.staff, panel.board, panel.now
    gate = ready_gate(visit=session, settings=board.settings, now=now)
    _checklist(gate)
    save = saves.drawn(f"ready-{session.session_id}", what="ready to go")
    with st.form(save.form):
        steady = st.checkbox("Steady on feet and oriented: I have checked the patient")
        if st.form_submit_button(TRANSITIONS[Step.MARK_READY].label, type="primary"):
            _take_step(url=url, session=session, staff=staff, step=Step.MARK_READY,
                       steady_on_feet=steady, save=save)  # fmt: skip


def _vitals_form(panel: Panel) -> None:
    url, session, staff = panel.url, panel.session, panel.staff
    save = saves.drawn(f"vitals-{session.session_id}", what="vitals")
    with st.form(save.form):
        st.markdown("**Vitals**")
        left, right = st.columns(2)
        systolic = left.number_input("Systolic", step=1, value=None, placeholder="mmHg")
        diastolic = right.number_input("Diastolic", step=1, value=None, placeholder="mmHg")
        heart_rate = left.number_input("Heart rate", step=1, value=None, placeholder="bpm")
        spo2 = right.number_input("SpO2", step=1, value=None, placeholder="%")
        if st.form_submit_button("Save vitals"):
            if systolic is None or diastolic is None or heart_rate is None or spo2 is None:
                st.error(
                    f"{saves.NOT_SAVED} Fill in all four: systolic, diastolic, heart rate and SpO2."
                )
                return
            vitals = Vitals(
                systolic=int(systolic),
                diastolic=int(diastolic),
                heart_rate=int(heart_rate),
                spo2=int(spo2),
            )

            def record() -> None:
                recorded = record_vitals(
                    url=url, session_id=session.session_id, staff_id=staff.id, vitals=vitals
                )
                if recorded.alerts:
                    flash(
                        "alert",
                        "Vitals saved. "
                        + " ".join(f"{a.what}: {a.action}" for a in recorded.alerts),
                    )

            act(
                record,
                f"Vitals saved: BP {vitals.blood_pressure}, HR {vitals.heart_rate}.",
                save=save,
                staff=staff,
            )


def _phq9_form(panel: Panel) -> None:
    url, session, staff = panel.url, panel.session, panel.staff
    correcting = session.phq9_count > 0
    if correcting:
        highest = item9_answer(session)
        st.caption(
            f"PHQ-9 today: {session.phq9_total} (item 9: {session.phq9_item9})"
            + (f"; highest item 9 this visit: {highest}" if highest != session.phq9_item9 else "")
            + (f"; {session.phq9_count} scores" if session.phq9_count > 1 else "")
        )
    save = saves.drawn(f"phq9-{session.session_id}", what="PHQ-9")
    with st.form(save.form):
        st.markdown("**Correct the PHQ-9**" if correcting else "**PHQ-9 before the dose**")
        left, right = st.columns(2)
        total = left.number_input("Total (0–27)", step=1, value=None)
        item9 = right.number_input("Item 9 (0–3)", step=1, value=None)
        reason = None
        if correcting:
            reason = st.text_input("Why the PHQ-9 is corrected (both scores are kept)")
        if st.form_submit_button("Save PHQ-9"):
            if total is None or item9 is None:
                st.error(f"{saves.NOT_SAVED} Enter both the total and item 9.")
                return
            act(
                lambda: record_phq9(
                    url=url,
                    session_id=session.session_id,
                    staff_id=staff.id,
                    total=int(total),
                    item9=int(item9),
                    correction_reason=reason or None,
                ),
                f"PHQ-9 saved: {int(total)} (item 9: {int(item9)}).",
                save=save,
                staff=staff,
            )


def _side_effects_form(panel: Panel) -> None:
    url, session, staff = panel.url, panel.session, panel.staff
    save = saves.drawn(f"effects-{session.session_id}", what="side effects")
    with st.expander("Side effects"), st.form(save.form, border=False):
        # Each patient's own form, starting from what is already recorded: a save
        # restates every effect, so a blank default would erase the earlier ones.
        recorded = dict(session.side_effects)
        chosen = {
            effect: st.segmented_control(
                effect.label,
                list(Severity),
                default=Severity(recorded.get(effect.value, Severity.NONE)),
                key=f"fx-{session.session_id}-{session.version}-{effect}",
            )
            for effect in SideEffect
        }
        if st.form_submit_button("Save side effects"):
            act(
                lambda: record_side_effects(
                    url=url,
                    session_id=session.session_id,
                    staff_id=staff.id,
                    effects={e: Severity(s or Severity.NONE) for e, s in chosen.items()},
                ),
                "Side effects saved.",
                save=save,
                staff=staff,
            )


def _ride_form(panel: Panel) -> None:
    url, session, staff, board = panel.url, panel.session, panel.staff, panel.board
    ride = session.ride
    title = "Ride home" + (f": {literal(ride.driver_name)}" if ride else " (none recorded)")
    if ride and ride.arrived_at:
        title += f", here since {time_text(ride.arrived_at, board)}"
    save = saves.drawn(f"ride-{session.session_id}", what="ride")
    with (
        st.expander(title, expanded=session.status == S.READY),
        st.form(save.form, border=False),
    ):
        name = st.text_input("Driver's name", value=ride.driver_name if ride else "")
        left, right = st.columns(2)
        phone = left.text_input("Phone", value=(ride.driver_phone or "") if ride else "")
        relationship = right.text_input(
            "Relationship", value=(ride.relationship or "") if ride else ""
        )
        expected_local = to_local(ride.expected_pickup_at, board.time_zone) if ride else None
        pickup = st.time_input(
            "Expected pickup",
            value=expected_local.time() if expected_local else None,
            step=300,
        )
        arrived = st.checkbox(
            "The driver is here now",
            value=bool(ride and ride.arrived_at),
            disabled=bool(ride and ride.arrived_at),
        )
        if st.form_submit_button("Save ride"):
            act(
                lambda: arrange_ride(
                    url=url,
                    session_id=session.session_id,
                    staff_id=staff.id,
                    driver_name=name,
                    driver_phone=phone or None,
                    relationship=relationship or None,
                    expected_pickup_at=_pickup_at(pickup, board) if pickup else None,
                    arrived=arrived,
                    expected_ride_version=ride.version if ride else None,
                ),
                "Ride saved: the driver is here." if arrived else "Ride saved.",
                save=save,
                staff=staff,
            )


def _pickup_at(moment: time, board: SiteDay) -> datetime:
    """A typed time of day as the moment it means: the nearest to now on today's board
    (00:15 typed at 23:50 is in 25 minutes), else the nearest to midday of the day shown."""
    now = utc_now()
    if board.day != local_today(board.time_zone, now=now):
        zone = ZoneInfo(board.time_zone)
        now = datetime.combine(board.day, time(12), tzinfo=zone).astimezone(UTC)
    return nearest_moment(moment, time_zone=board.time_zone, now=now)


def _undo_form(panel: Panel) -> None:
    url, session, staff = panel.url, panel.session, panel.staff
    # Taking back a cancel or a discharge puts the visit under way again: the check-in's
    # checks are shown, and the button waits for them (the write refuses with the same words).
    gate = reopen_gate(visit=session)
    with st.expander("Correct a mistake (take back the last step)"):
        if not gate.allowed:
            _checklist(Gate(checks=tuple(c for c in gate.checks if not c.ok)))
        save = saves.drawn(f"undo-{session.session_id}", what="correction")
        with st.form(save.form, border=False):
            reason = st.text_input("Why", placeholder="e.g. pressed start on the wrong chair")
            taken_back = st.form_submit_button(
                f"Take back “{session.status.label}”", disabled=not gate.allowed
            )
        if taken_back:
            act(
                lambda: undo_last_step(
                    url=url,
                    session_id=session.session_id,
                    staff_id=staff.id,
                    expected_version=session.version,
                    reason=reason,
                ),
                f"{literal(session.patient_name)}: last step taken back.",
                save=save,
                staff=staff,
            )


def _check_in(panel: Panel) -> None:
    _gated_step(url=panel.url, session=panel.session, staff=panel.staff, step=Step.CHECK_IN,
                gate=check_in_gate(visit=panel.session))  # fmt: skip


def _discharge(panel: Panel) -> None:
    gate = discharge_gate(visit=panel.session, settings=panel.board.settings)
    _gated_step(url=panel.url, session=panel.session, staff=panel.staff, step=Step.DISCHARGE,
                gate=gate)  # fmt: skip


def _rems(panel: Panel) -> None:
    session = panel.session
    rems_section(url=panel.url, session_id=session.session_id, route=session.route,
                 settings=panel.board.settings, staff=panel.staff)  # fmt: skip


# One form for each step of the state machine (tests check that none is missing).
STEP_FORMS: dict[Step, Callable[[Panel], None]] = {
    Step.CHECK_IN: _check_in,
    Step.START_INFUSION: _start_form,
    Step.END_INFUSION: _end_dose,
    Step.MARK_READY: _ready_form,
    Step.DISCHARGE: _discharge,
    Step.CANCEL: _exit_form,
    Step.NO_SHOW: _exit_form,
}

# Once the dose has started: what the patient feels, and the REMS monitoring of esketamine.
_DOSE_STARTED = OPEN_STATUSES - {S.CHECKED_IN}

# The panel in the order of the work: the questionnaire and vitals before the step they
# allow, the ride where the nurse reaches for it, the exits and the correction last.
LAYOUT: tuple[Step | Record, ...] = (
    Step.CHECK_IN,
    # Before the dose: drawn while the start is the step ahead.
    Record(draw=_phq9_form, shown=lambda v: Step.START_INFUSION in allowed_steps(v.status)),
    Record(draw=_vitals_form, shown=lambda v: v.status in OPEN_STATUSES),
    # While ready too: an effect that flares up holds the discharge until recorded settled.
    Record(draw=_side_effects_form, shown=lambda v: v.status in _DOSE_STARTED),
    Step.START_INFUSION,
    Step.END_INFUSION,
    Record(draw=_ride_form, shown=lambda v: v.status in OPEN_STATUSES, clinical=False),
    Step.MARK_READY,
    Record(
        draw=_rems,
        shown=lambda v: v.status in _DOSE_STARTED and v.route == Route.ESKETAMINE,
    ),
    Step.DISCHARGE,
    Step.CANCEL,
    Step.NO_SHOW,
    Record(draw=_undo_form, shown=lambda v: v.status != S.SCHEDULED),
)
