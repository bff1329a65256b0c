"""Widgets of the Recovery & rides page: the live list, and the panel a nurse acts from.

The list (timers, checklist, ride, alerts) is a fragment that re-reads when the site's
data version moves and each minute; the forms live outside it, so a refresh never eats
what is being typed.
Everything shown comes from ``ketadash.recovery`` and ``ketadash.rides``; names and
other text from the database are escaped, never read as markdown.
"""

from __future__ import annotations

import html
from datetime import date, datetime, time

import streamlit as st

from ketadash.auth import AccessAction
from ketadash.board import vitals_due_text
from ketadash.clinic import SiteChoice
from ketadash.clock import clock_text, nearest_moment, to_local, utc_now
from ketadash.db import DatabaseUnavailable
from ketadash.gates import Gate
from ketadash.lifecycle import take_step
from ketadash.models import EscortException, RideState
from ketadash.models import SessionStatus as S
from ketadash.recovery import RecoveryEntry, RecoveryView, discharge_patient, load_recovery
from ketadash.rides import (
    RideFacts,
    arrange_ride,
    cancel_ride,
    ride_arrived,
    ride_on_the_way,
    ride_state,
    ride_summary,
    take_back_ride_arrival,
)
from ketadash.staff import StaffMember, leads_on_the_roster
from ketadash.ui import saves
from ketadash.ui.actions import act, show_flash, showing_site_day
from ketadash.ui.auth import note_opened
from ketadash.ui.driver import driver_link_panel
from ketadash.ui.live import Drawn, Scope, cached_read, on_change_fragment
from ketadash.ui.rems import rems_section
from ketadash.ui.text import bdi, literal, plain
from ketadash.vocabulary import CLINICIANS, TRANSITIONS, Step

REFRESH_SECONDS = 5
RECOVERY_TTL_SECONDS = 5
_SELECTED_KEY = "kd_recovery_selected"
_LAST_KEY = "kd_recovery_last"

RECOVERY_CSS = """
<style>
.kr-card{border:1px solid #e2e8f0;border-radius:10px;padding:10px 14px;margin-bottom:10px;
  background:#fff}
.kr-card.alert{border:2px solid #f59e0b}.kr-card.danger{border:2px solid #dc2626}
.kr-head{display:flex;justify-content:space-between;gap:12px;font-size:1.1rem;color:#0f172a}
.kr-head b{font-size:1.2rem}
.kr-status{font-weight:700;color:#0369a1}.kr-status.ready{color:#047857}
.kr-timers{font-size:1.05rem;margin:4px 0;color:#0f172a}
.kr-timers .done{color:#047857;font-weight:700}
.kr-vitals{font-size:1rem;color:#334155}.kr-vitals .due{font-weight:700}
.kr-vitals .overdue{color:#b91c1c}
.kr-checks{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
.kr-check{border-radius:6px;padding:2px 8px;font-size:.9rem}
.kr-check.ok{background:#ecfdf5;color:#065f46}.kr-check.no{background:#fef2f2;color:#991b1b}
.kr-ride{font-size:1rem;margin:4px 0}
.kr-badge{display:inline-block;border-radius:6px;padding:0 8px;font-weight:700;margin-right:6px}
.kr-badge.none{background:#fee2e2;color:#991b1b}.kr-badge.arranged{background:#e0f2fe;color:#075985}
.kr-badge.on_the_way{background:#fef3c7;color:#92400e}
.kr-badge.arrived{background:#047857;color:#fff}
.kr-alert{border-left:5px solid #f59e0b;background:#fffbeb;padding:4px 8px;margin:4px 0;
  border-radius:5px}
.kr-alert.danger{border-color:#dc2626;background:#fef2f2}
.kr-alert .do{color:#334155}
.kr-updated{color:#64748b;font-size:.85rem;text-align:right}
.kr-empty{color:#64748b;font-style:italic}
</style>
"""


@cached_read(scope=Scope.SITE_DAY, ttl_seconds=RECOVERY_TTL_SECONDS)
def cached_recovery(url: str, site_id: int, day: date) -> RecoveryView:
    # A site's day, like the board: a write at the site clears both.
    return load_recovery(url=url, site_id=site_id, now=utc_now())


def read_recovery(url: str, site: SiteChoice, now: datetime) -> RecoveryView:
    return cached_recovery(url, site.id, showing_site_day(url, site, now))


def _e(text: object) -> str:
    return html.escape(str(text))


# --- the live list ---------------------------------------------------------------------------


def live_recovery(*, url: str, site: SiteChoice) -> None:
    """Every patient in recovery or ready, longest first, redrawn when the site's data
    changes and each minute (every REFRESH_SECONDS where nothing watches the version)."""
    st.html(RECOVERY_CSS)

    @on_change_fragment(
        url=url, site_id=site.id, key=f"recovery:{site.id}", fallback_seconds=REFRESH_SECONDS
    )
    def _refreshing() -> Drawn | None:
        now = utc_now()
        last_key = f"{_LAST_KEY}-{site.id}"
        try:
            view = read_recovery(url, site, now)
            st.session_state[last_key] = view
            stale = ""
        except DatabaseUnavailable as error:
            if last_key not in st.session_state:
                st.error(str(error), icon=":material/cloud_off:")
                return Drawn(stale=True)
            view = st.session_state[last_key]
            stale = f" · not updated since {to_local(view.read_at, view.time_zone):%H:%M}"
            st.error(
                "The clinic database cannot be reached: this list shows it as it was at "
                f"{to_local(view.read_at, view.time_zone):%H:%M:%S}. It catches up by itself.",
                icon=":material/cloud_off:",
            )
        closes = f" · closes {view.closes_at:%H:%M}" if view.closes_at else ""
        st.html(
            f'<div class="kr-updated">Updated {to_local(view.read_at, view.time_zone):%H:%M:%S}'
            f"{stale} · {bdi(view.site_name)}{_e(closes)}</div>"
        )
        if not view.recovering:
            st.html('<div class="kr-empty">Nobody is in recovery or waiting for a ride.</div>')
        else:
            st.html("".join(entry_html(entry, view) for entry in view.recovering))
        if view.escort_exceptions:
            st.subheader("Went home without an arrived escort today (for the lead)")
            st.html(escort_exceptions_html(view))
        if view.later:
            with st.expander(f"Rides for later today ({len(view.later)})"):
                st.html(later_html(view))
        return Drawn(stale=bool(stale))

    _refreshing()


def _check_html(label: str, ok: bool, detail: str) -> str:
    # The gate's detail says what is still missing, so it is shown only while it is.
    mark = "✓" if ok else "✗"
    missing = "" if ok or not detail else f": {_e(detail)}"
    return f'<span class="kr-check {"ok" if ok else "no"}">{mark} {_e(label)}{missing}</span>'


def _check_line(check) -> str:
    """One check as plain text (``st.text``): the detail only while it is not met."""
    if check.ok or not check.detail:
        return f"✓ {check.label}" if check.ok else f"✗ {check.label}"
    return f"✗ {check.label}: {check.detail}"


def _gate_html(gate: Gate) -> str:
    return "".join(_check_html(c.label, c.ok, c.detail) for c in gate.checks)


def ride_badge(ride: RideFacts | None) -> str:
    state = ride_state(ride)
    return f'<span class="kr-badge {state.value}">{_e(state.label)}</span>'


def entry_html(entry: RecoveryEntry, view: RecoveryView) -> str:
    """One patient: who and where, timers, the checklist, the ride, the alerts."""
    s = entry.session
    status_css = "ready" if s.status == S.READY else ""
    timers = []
    clock = entry.observation
    if clock is not None and not clock.done and clock.target is not None:
        timers.append(
            f"{clock.label} {clock.minutes} of {clock.target} min · "
            f"{clock.target - clock.minutes} min to go"
        )
    elif clock is not None:
        timers.append(
            f'<span class="done">{clock.label} {clock.minutes} min · minimum '
            f"{clock.target} reached</span>"
        )
    if entry.waiting_minutes is not None:
        timers.append(f"Waiting for the ride {entry.waiting_minutes} min")
    vitals = []
    if s.latest is not None:
        v = s.latest.vitals
        vitals.append(
            f"Last vitals BP {v.blood_pressure} · HR {v.heart_rate} · SpO2 {v.spo2}% at "
            f"{_e(clock_text(s.latest.taken_at, view.time_zone))}"
        )
    if entry.vitals_due_in is not None:
        due_css = "due overdue" if entry.vitals_due_in <= 0 else "due"
        vitals.append(f'<span class="{due_css}">{_e(vitals_due_text(entry.vitals_due_in))}</span>')
    if entry.bp_check_due_in is not None:
        minutes = entry.bp_check_due_in
        when = f"overdue by {-minutes} min" if minutes < 0 else f"due in {minutes} min"
        bp_css = "due overdue" if minutes <= 0 else "due"
        vitals.append(
            f'<span class="{bp_css}" data-bp-check="due">'
            f"{view.settings.esketamine_bp_check_minutes}-min BP (esketamine) {when}</span>"
        )
    checks = _gate_html(entry.ready) if s.status == S.RECOVERY else _gate_html(entry.discharge)
    checks_title = "Ready to go?" if s.status == S.RECOVERY else "Discharge?"
    alerts = "".join(
        f'<div class="kr-alert {_e(a.level)}"><b>{_e(a.what)}</b> '
        f'<span class="do">→ {_e(a.action)}</span></div>'
        for a in entry.alerts
    )
    level = {a.level for a in entry.alerts}
    card_css = "danger" if "danger" in level else "alert" if level else ""
    return (
        f'<div class="kr-card {card_css}" data-session="{s.session_id}" '
        f'data-ride="{entry.ride_state.value}">'
        f'<div class="kr-head"><span><b>{bdi(s.chair_name)}</b> · {bdi(s.patient_name)}'
        f" · {_e(s.route.label)}</span>"
        f'<span class="kr-status {status_css}">{_e(s.status.label)}</span></div>'
        f'<div class="kr-timers">{" · ".join(timers)}</div>'
        f'<div class="kr-vitals">{" · ".join(vitals)}</div>'
        f'<div class="kr-checks"><b>{checks_title}</b> {checks}</div>'
        f'<div class="kr-ride">{ride_badge(entry.ride)}'
        f"{bdi(ride_summary(entry.ride, time_zone=view.time_zone))}</div>"
        f"{alerts}</div>"
    )


def escort_exceptions_html(view: RecoveryView) -> str:
    rows = "".join(
        f"<tr><td>{clock_text(x.discharged_at, view.time_zone)}</td><td>{bdi(x.chair_name)}</td>"
        f"<td>{bdi(x.patient_name)}</td><td>{_e(x.exception.label)}</td>"
        f"<td>{bdi(x.reason)}</td><td>{bdi(x.staff_name or '')}</td>"
        f"<td>{_e(ride_state(x.ride).label)}</td></tr>"
        for x in view.escort_exceptions
    )
    return (
        '<table class="kr-exceptions"><thead><tr><th>Home at</th><th>Chair</th><th>Patient</th>'
        "<th>Instead of an arrived escort</th><th>Reason</th><th>Recorded by</th>"
        f"<th>Ride now</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def later_html(view: RecoveryView) -> str:
    rows = "".join(
        f'<div class="kr-ride">{ride_badge(ride)}<b>{bdi(s.chair_name)}</b> '
        f"{clock_text(s.scheduled_start, view.time_zone)} · {bdi(s.patient_name)} · "
        f"{_e(s.status.label)} — {bdi(ride_summary(ride, time_zone=view.time_zone))}"
        "</div>"
        for s, ride in view.later
    )
    return rows


# --- acting on a patient's ride and discharge ----------------------------------------------------


def recovery_actions(*, url: str, site: SiteChoice, staff: StaffMember) -> None:
    """Choose a patient of today, then record their ride, mark ready or discharge.

    Front desk staff record rides; ready and discharge are for a nurse or the lead
    (shown only to them, and refused by the lifecycle to anyone else).
    """
    messages = st.container()
    show_flash(messages)
    now = utc_now()
    try:
        view = read_recovery(url, site, now)
    except DatabaseUnavailable as error:
        st.error(str(error), icon=":material/cloud_off:")
        return
    entries = {e.session.session_id: e for e in view.recovering}
    later = {s.session_id: (s, ride) for s, ride in view.later}
    options = [*entries, *later]
    if not options:
        st.caption("Nobody today needs a ride recorded.")
        return

    def label(session_id: int) -> str:
        session, ride = (
            (entries[session_id].session, entries[session_id].ride)
            if session_id in entries
            else later[session_id]
        )
        return (
            f"{plain(session.chair_name)} · {plain(session.patient_name)} — "
            f"{session.status.label} · {ride_state(ride).label}"
        )

    remembered = st.session_state.get(_SELECTED_KEY)
    chosen = st.selectbox(
        "Patient",
        options=options,
        index=options.index(remembered) if remembered in options else None,
        format_func=label,
        placeholder="Choose a patient",
    )
    st.session_state[_SELECTED_KEY] = chosen
    if chosen is None:
        st.caption("Choose a patient to record their ride, mark them ready or discharge them.")
        return
    if chosen in entries:
        session, ride = entries[chosen].session, entries[chosen].ride
    else:
        session, ride = later[chosen]
    note_opened(
        action=AccessAction.OPEN_PANEL,
        where="recovery",
        session_id=session.session_id,
        patient_id=session.patient_id,
    )
    st.text(f"{plain(session.chair_name)} · {plain(session.patient_name)} · {session.status.label}")
    st.text(ride_summary(ride, time_zone=view.time_zone))
    _ride_buttons(url=url, session_id=chosen, ride=ride, staff=staff, time_zone=view.time_zone)
    driver_link_panel(
        url=url,
        session_id=chosen,
        site_id=view.site_id,
        staff_id=staff.id,
        time_zone=view.time_zone,
    )
    _arrange_form(url=url, session_id=chosen, ride=ride, staff=staff, view=view)
    if chosen in entries and staff.role in CLINICIANS:
        entry = entries[chosen]
        rems_section(url=url, session_id=chosen, route=session.route, settings=view.settings,
                     staff=staff)  # fmt: skip
        if session.status == S.RECOVERY:
            _mark_ready(url=url, entry=entry, staff=staff)
        if session.status == S.READY:
            _discharge(url=url, entry=entry, staff=staff)
    _ride_corrections(url=url, session_id=chosen, ride=ride, staff=staff)


def _ride_buttons(
    *, url: str, session_id: int, ride: RideFacts | None, staff, time_zone: str
) -> None:
    state = ride_state(ride)
    if ride is None or state not in (RideState.ARRANGED, RideState.ON_THE_WAY):
        return
    version = ride.version
    arrived = saves.drawn(f"arrived-{session_id}-{version}", what="ride's arrival")
    if st.button("Ride has arrived", type="primary", key=f"arrived-{session_id}-{version}"):
        act(
            lambda: ride_arrived(
                url=url, session_id=session_id, staff_id=staff.id, expected_ride_version=version
            ),
            f"{literal(ride.driver_name)} is here.",
            save=arrived,
            staff=staff,
        )
    if state is RideState.ARRANGED:
        save = saves.drawn(f"way-{session_id}", what="ride on the way")
        with st.form(save.form):
            st.markdown("**The driver called: on the way**")
            eta = st.time_input("Time they gave", value=None, step=300)
            if st.form_submit_button("On the way"):
                act(
                    lambda: ride_on_the_way(
                        url=url,
                        session_id=session_id,
                        staff_id=staff.id,
                        expected_ride_version=version,
                        eta_at=_typed_at(eta, time_zone) if eta else None,
                    ),
                    f"{literal(ride.driver_name)} is on the way.",
                    save=save,
                    staff=staff,
                )


def _arrange_form(
    *, url: str, session_id: int, ride: RideFacts | None, staff, view: RecoveryView
) -> None:
    state = ride_state(ride)
    title = "Arrange the ride home" if state is RideState.NONE else "Change the ride's details"
    save = saves.drawn(f"arrange-{session_id}", what="ride")
    with (
        st.expander(title, expanded=state is RideState.NONE),
        st.form(save.form, border=False),
    ):
        # The details to change, when there is a ride (a cancelled one's are not offered).
        shown = ride if state is not RideState.NONE else None
        name = st.text_input("Driver's name", value=shown.driver_name if shown else "")
        left, right = st.columns(2)
        phone = left.text_input("Phone", value=(shown.driver_phone or "") if shown else "")
        relationship = right.text_input(
            "Relationship", value=(shown.relationship or "") if shown else ""
        )
        expected = to_local(shown.expected_pickup_at, view.time_zone) if shown else None
        pickup = st.time_input(
            "Expected pickup", value=expected.time() if expected else None, step=300
        )
        if st.form_submit_button("Save ride"):
            act(
                lambda: arrange_ride(
                    url=url,
                    session_id=session_id,
                    staff_id=staff.id,
                    expected_ride_version=ride.version if ride else None,
                    driver_name=name,
                    driver_phone=phone or None,
                    relationship=relationship or None,
                    expected_pickup_at=_typed_at(pickup, view.time_zone) if pickup else None,
                ),
                "Ride saved.",
                save=save,
                staff=staff,
            )


def _ride_corrections(*, url: str, session_id: int, ride: RideFacts | None, staff) -> None:
    state = ride_state(ride)
    if ride is None:
        return  # nothing recorded: nothing to correct (ride_state says NONE)
    version = ride.version
    if state is RideState.ARRIVED:
        save = saves.drawn(f"unarrive-{session_id}", what="correction of the arrival")
        with (
            st.expander("Correct a mistake: the ride has not arrived"),
            st.form(save.form, border=False),
        ):
            reason = st.text_input("Why", placeholder="e.g. ticked the wrong patient")
            if st.form_submit_button("Take back the arrival"):
                act(
                    lambda: take_back_ride_arrival(
                        url=url,
                        session_id=session_id,
                        staff_id=staff.id,
                        expected_ride_version=version,
                        reason=reason,
                    ),
                    "Arrival taken back.",
                    save=save,
                    staff=staff,
                )
    if state is not RideState.NONE:
        cancel = saves.drawn(f"cancel-ride-{session_id}", what="cancelled ride")
        with (
            st.expander("The ride fell through"),
            st.form(cancel.form, border=False),
        ):
            reason = st.text_input("Why", placeholder="e.g. the driver's car broke down")
            if st.form_submit_button("No ride any more"):
                act(
                    lambda: cancel_ride(
                        url=url,
                        session_id=session_id,
                        staff_id=staff.id,
                        expected_ride_version=version,
                        reason=reason,
                    ),
                    "Ride cancelled: arrange another adult.",
                    save=cancel,
                    staff=staff,
                )


def _mark_ready(*, url: str, entry: RecoveryEntry, staff) -> None:
    session = entry.session
    save = saves.drawn(f"ready-{session.session_id}", what="ready to go")
    with st.form(save.form):
        st.markdown("**Ready to go?**")
        for check in entry.ready.checks:
            st.text(_check_line(check))
        steady = st.checkbox("Steady on their feet and oriented (checked at the bedside)")
        if st.form_submit_button(TRANSITIONS[Step.MARK_READY].label, type="primary"):
            if not steady:
                st.error(
                    f"{saves.NOT_SAVED} Walk with the patient first and tick that they are "
                    "steady on their feet."
                )
                return
            act(
                lambda: take_step(
                    url=url,
                    session_id=session.session_id,
                    step=Step.MARK_READY,
                    staff_id=staff.id,
                    expected_version=session.version,
                    steady_on_feet=steady,
                ),
                f"{literal(session.patient_name)}: {TRANSITIONS[Step.MARK_READY].done}.",
                save=save,
                staff=staff,
            )


def _discharge(*, url: str, entry: RecoveryEntry, staff) -> None:
    session = entry.session
    for check in entry.discharge.checks:
        st.text(_check_line(check))
    discharge = saves.drawn(f"discharge-{session.session_id}", what="discharge")
    if st.button(
        TRANSITIONS[Step.DISCHARGE].label,
        type="primary",
        disabled=not entry.discharge.allowed,
        key=f"discharge-{session.session_id}-{session.version}",
    ):
        act(
            lambda: discharge_patient(
                url=url,
                session_id=session.session_id,
                staff_id=staff.id,
                expected_version=session.version,
            ),
            f"{literal(session.patient_name)}: {TRANSITIONS[Step.DISCHARGE].done}.",
            save=discharge,
            staff=staff,
        )
    if entry.ride_state is RideState.ARRIVED or not entry.fit_to_go.allowed:
        # Not fit to go (shown above): no escort exception is offered until a nurse clears it.
        return
    save = saves.drawn(f"exception-{session.session_id}", what="discharge with an exception")
    with (
        st.expander("Discharge without an arrived escort (recorded for the lead)"),
        st.form(save.form, border=False),
    ):
        st.caption(
            "Only when no adult can come now. If the patient can wait, they stay. The lead sees "
            "every discharge made this way."
        )
        exception = st.radio(
            "Instead of an arrived escort",
            list(EscortException),
            index=None,
            format_func=lambda e: e.label,
        )
        try:
            roster = leads_on_the_roster(url=url, site_id=session.site_id)
        except DatabaseUnavailable:
            roster = []  # the discharge itself says the database cannot be reached
        leads = {m.id: m.name for m in roster}
        lead_id = st.selectbox(
            "Approving lead",
            options=list(leads),
            index=None,
            format_func=lambda i: plain(leads[i]),
            placeholder="For a lead's approval: which lead approved",
        )
        reason = st.text_input(
            "Reason", placeholder="who is coming and when, or what the lead approved"
        )
        if st.form_submit_button("Discharge with this exception"):
            if exception is None:
                st.error(
                    f"{saves.NOT_SAVED} Choose what was arranged instead of an arrived escort."
                )
                return
            act(
                lambda: discharge_patient(
                    url=url,
                    session_id=session.session_id,
                    staff_id=staff.id,
                    expected_version=session.version,
                    escort_exception=exception,
                    reason=reason,
                    approved_by_lead_id=lead_id,
                ),
                f"{literal(session.patient_name)}: discharged with an escort exception "
                "(listed for the lead).",
                save=save,
                staff=staff,
            )


def _typed_at(moment: time, time_zone: str) -> datetime:
    """A time of day typed now, as the moment it means: the nearest occurrence (00:15
    typed at 23:50 is in 25 minutes, not this morning)."""
    return nearest_moment(moment, time_zone=time_zone, now=utc_now())
