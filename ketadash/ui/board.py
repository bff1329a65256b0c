"""Widgets of the monitoring-room board: the live lanes, and the panel a nurse acts from.

The live part is a fragment that re-reads the board when the site's data version moves
and each minute (ketadash.ui.live); the forms live outside it, so a refresh never eats
what a nurse is typing.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import streamlit as st

from ketadash.auth import AccessAction
from ketadash.board import (
    ChairState,
    Lane,
    SessionView,
    by_lane,
    chair_alerts,
    chair_states,
    load_board,
    patients_in_words,
    time_text,
    view_board,
    vitals_due_text,
)
from ketadash.clinic import SiteChoice
from ketadash.clock import local_today, nearest_moment, to_local, utc_now
from ketadash.db import DatabaseUnavailable
from ketadash.gates import (
    ITEM9_ACKNOWLEDGEMENT,
    ITEM9_CHECK,
    Gate,
    as_sentences,
    check_in_gate,
    discharge_gate,
    dose_plan,
    ready_gate,
    reopen_gate,
    start_ceiling_reached,
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
from ketadash.models import RideState, Route, Severity, SideEffect
from ketadash.models import SessionStatus as S
from ketadash.rides import arrange_ride
from ketadash.rules import (
    Passing,
    dose_timer,
    esketamine_devices,
    item9_answer,
    item9_flagged,
    weight_change_percent,
)
from ketadash.staff import StaffMember
from ketadash.ui import saves
from ketadash.ui.actions import OWN_WRITE_KEY, act, flash, show_flash, showing_site_day
from ketadash.ui.auth import note_opened
from ketadash.ui.live import (
    Live,
    Reading,
    Scope,
    cached_read,
    live_fragment,
)
from ketadash.ui.rems import rems_section
from ketadash.ui.saves import Drawn
from ketadash.ui.text import bdi, literal, plain
from ketadash.visits import SiteDay, Visit
from ketadash.vitals import Alert, Vitals
from ketadash.vocabulary import CLINICIANS, TRANSITIONS, Step, allowed_steps

# A nurse glances, acts, glances again: a few seconds is live enough, and every
# screen of one server shares one read per site per interval (the cache below).
_log = logging.getLogger(__name__)

REFRESH_SECONDS = 5
BOARD_TTL_SECONDS = 5
LANES_SHOWN = (
    Lane.EXPECTED,
    Lane.CHECKED_IN,
    Lane.INFUSING,
    Lane.RECOVERY,
    Lane.READY,
    Lane.DISCHARGED,
)
_SELECTED_KEY = "kd_selected_session_id"
_SEEN_KEY = "kd_seen_versions"


@cached_read(scope=Scope.SITE_DAY, ttl_seconds=BOARD_TTL_SECONDS)
def cached_board(url: str, site_id: int, day) -> SiteDay:
    return load_board(url=url, site_id=site_id, day=day)


def todays_board_reading(url: str, site: SiteChoice, now: datetime) -> Reading[SiteDay]:
    """The site's board for its own calendar day at ``now``, with when it was read."""
    return cached_board.reading(url, site.id, showing_site_day(url, site, now))


def todays_board(url: str, site: SiteChoice, now: datetime) -> SiteDay:
    """The site's board for its own calendar day at ``now``."""
    return todays_board_reading(url, site, now).data


# --- the live board -------------------------------------------------------------------------

BOARD_CSS = """
<style>
.kd-strip{display:flex;gap:10px;margin:0 0 10px 0;flex-wrap:wrap}
.kd-count{background:#f1f5f9;border-radius:10px;padding:6px 14px;min-width:110px}
.kd-count b{display:block;font-size:1.9rem;line-height:1.1;color:#0f172a}
.kd-count span{font-size:.85rem;color:#475569}
.kd-chairs{display:flex;gap:6px;flex-wrap:wrap;margin:4px 0 12px 0}
.kd-chair{border-radius:8px;padding:4px 10px;font-size:.9rem;border:1px solid #cbd5e1}
.kd-chair.free{background:#ecfdf5;border-color:#10b981;color:#065f46}
.kd-chair.busy{background:#f8fafc;color:#334155}
.kd-chair.shared{background:#fef2f2;border:2px solid #dc2626;color:#991b1b;font-weight:600}
.kd-alerts{margin:0 0 12px 0}
.kd-alert{border-left:6px solid #f59e0b;background:#fffbeb;padding:6px 10px;margin:4px 0;
  border-radius:6px;font-size:1rem}
/* Urgent is told by a word and a wider edge too, not by red alone (issue 21). */
.kd-alert.danger{border-color:#dc2626;background:#fef2f2;border-left-width:12px}
.kd-alert.danger::before{content:"Urgent \\00B7  ";font-weight:700;color:#991b1b}
.kd-alert .do{color:#334155}
.kd-lanes{display:grid;grid-template-columns:repeat(var(--kd-lanes),minmax(0,1fr));gap:1rem}
@media (max-width:640px){.kd-lanes{grid-template-columns:minmax(0,1fr)}}
.kd-lane-head{font-weight:700;font-size:1.05rem;color:#0f172a;border-bottom:3px solid #94a3b8;
  padding-bottom:2px;margin-bottom:6px}
.kd-lane-head.infusing{border-color:#7c3aed}.kd-lane-head.recovery{border-color:#0284c7}
.kd-lane-head.ready{border-color:#059669}.kd-lane-head.checked_in{border-color:#d97706}
.kd-card{border:1px solid #e2e8f0;border-radius:10px;padding:8px 10px;margin-bottom:8px;
  background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.kd-card.danger{border:2px solid #dc2626;border-left-width:8px}
.kd-card.warning{border:2px solid #f59e0b}
/* A closed card is told by its lane and a dashed edge, not by fading its text. */
.kd-card.done{background:#f8fafc;border-style:dashed}
.kd-card.compact{padding:4px 10px;margin-bottom:5px}
.kd-card.compact .kd-name{font-size:1rem;margin:0}
.kd-top{display:flex;justify-content:space-between;font-size:.85rem;color:#475569}
.kd-top .chair{font-weight:700;color:#0f172a}
.kd-name{font-size:1.1rem;font-weight:600;color:#0f172a;margin:2px 0}
.kd-meta{font-size:.85rem;color:#475569}
.kd-flag{display:inline-block;background:#fee2e2;color:#991b1b;border-radius:6px;
  padding:0 6px;margin:2px 4px 0 0;font-size:.78rem}
.kd-flag.item9{background:#dc2626;color:#fff}
.kd-timer{font-size:1.25rem;font-weight:700;margin-top:4px;color:#0f172a}
.kd-timer.over{color:#b91c1c}.kd-timer.done{color:#047857}
.kd-timer.stopped{font-size:.95rem;color:#64748b;font-weight:500}
.kd-bar{height:6px;background:#e2e8f0;border-radius:3px;overflow:hidden}
.kd-bar div{height:6px;background:#7c3aed}.kd-bar.over div{background:#dc2626}
.kd-bar.recovery div{background:#0284c7}.kd-bar.done div{background:#059669}
.kd-vitals{font-size:.85rem;color:#334155;margin-top:4px}.kd-vitals .kd-when{color:#64748b}
.kd-due{font-size:.9rem;margin-top:2px;color:#334155}.kd-due.overdue{color:#b91c1c;font-weight:700}
.kd-mini{font-size:.8rem;color:#b45309;margin-top:3px}
.kd-checks{font-size:.95rem;margin:4px 0 8px 0}.kd-checks .ok{color:#047857}
.kd-checks .todo{color:#b45309;font-weight:600}
.kd-empty{color:#64748b;font-size:.9rem;font-style:italic}
.kd-updated{color:#64748b;font-size:.85rem;text-align:right}
.kd-chair.compact{padding:2px 8px;font-size:.8rem}
.kd-lane,.kd-card,.kd-alert,.kd-chair,.kd-updated{min-width:0;overflow-wrap:anywhere}
[data-testid="stMainBlockContainer"]{padding-top:2.5rem}
/* A 10-inch tablet held landscape (1280 px) or narrower: the panel goes below the lanes,
   as wide as the board, instead of a strip too narrow for its forms. */
@media (max-width:1300px){
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .kd-lanes){flex-wrap:wrap}
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .kd-lanes)
  > [data-testid="stColumn"]{width:100% !important;flex:1 1 100% !important;min-width:100%}
}
</style>
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _alert_level(view: SessionView) -> str:
    levels = {a.level for a in view.alerts}
    return "danger" if "danger" in levels else "warning" if levels else ""


def _timer_html(view: SessionView) -> str:
    parts = []
    for timer in view.timers:
        if timer.running:
            # The type says which side of the target is good: a dose over its plan is
            # red, an observation past its minimum is the "may go home" green.
            css = "over" if timer.overdue else "done" if timer.done else ""
            parts.append(f'<div class="kd-timer {css}">{_e(timer.text)}</div>')
            if timer.target:
                width = min(100, round(100 * timer.minutes / timer.target))
                kind = "recovery" if timer.passing == Passing.GOOD else ""
                bar_css = "over" if timer.overdue else "done" if timer.done else kind
                parts.append(
                    f'<div class="kd-bar {bar_css}"><div style="width:{width}%"></div></div>'
                )
        elif view.lane in (Lane.RECOVERY, Lane.READY, Lane.INFUSING):
            parts.append(f'<div class="kd-timer stopped">{_e(timer.text)}</div>')
    return "".join(parts)


def dose_text(s: Visit) -> str:
    """The plan, and once started the dose given: " · 0.5 mg/kg (35 mg given)"."""
    plan = f" · {s.dose_mg_per_kg:g} mg/kg" if s.dose_mg_per_kg else ""
    if s.dose_mg and not s.dose_mg_per_kg:
        plan = f" · {s.dose_mg:g} mg"
        if s.route == Route.ESKETAMINE:
            plan += f" ({esketamine_devices(s.dose_mg)} devices)"
    if s.given_dose_mg is not None:
        plan += f" ({s.given_dose_mg:g} mg given)"
    return plan


def _weight_html(s: Visit, board: SiteDay) -> str:
    change = weight_change_percent(s)
    if change is None or change <= board.settings.weight_change_confirm_percent:
        return ""
    return (
        f'<div class="kd-mini">Weight {s.weight_kg:g} kg today, last visit '
        f"{s.previous_weight_kg:g} kg ({change:.0f}% change)</div>"
    )


def _ride_html(s: Visit, board: SiteDay) -> str:
    """The ride home in one line, by its state (one rule: ``RideState.of``)."""
    ride, state = s.ride, s.ride_state
    if state is RideState.NONE:
        return '<div class="kd-mini">No ride arranged</div>'
    if state is RideState.ARRIVED:
        return (
            f'<div class="kd-meta">Ride here: {bdi(ride.driver_name)} since '
            f"{_e(time_text(ride.arrived_at, board))}</div>"
        )
    if state is RideState.ON_THE_WAY:
        eta = time_text(ride.eta_at, board) or "time not given"
        return (
            f'<div class="kd-mini">Ride on the way: {bdi(ride.driver_name)}, about {_e(eta)}</div>'
        )
    expected = time_text(ride.expected_pickup_at, board) or "time not given"
    return f'<div class="kd-mini">Ride: {bdi(ride.driver_name)}, expected {_e(expected)}</div>'


def card_html(view: SessionView, board: SiteDay) -> str:
    """One patient's card: chair, name, route and dose, flags, timers, vitals, alerts."""
    s = view.session
    flags = "".join(f'<span class="kd-flag">{_e(f.label)}</span>' for f in s.care_flags)
    if item9_flagged(s, board.settings):
        flags += f'<span class="kd-flag item9">PHQ-9 item 9 = {item9_answer(s)}</span>'
    dose = dose_text(s)
    when = time_text(s.scheduled_start, board)
    if s.earlier_day:
        when = to_local(s.scheduled_start, board.time_zone).strftime("%a %d %b %H:%M")
    if view.lane in (Lane.EXPECTED, Lane.DISCHARGED) and not s.earlier_day:
        return _compact_card_html(view, board, when=when, flags=flags)
    body = [
        f'<div class="kd-top"><span class="chair">{bdi(s.chair_name)}</span>'
        f"<span>{_e(when)}</span></div>",
        f'<div class="kd-name">{bdi(s.patient_name)}</div>',
        f'<div class="kd-meta">{_e(s.route.label)}{_e(dose)} · {_e(s.kind.value.capitalize())}'
        + (f" · PHQ-9 {s.phq9_total}" if s.phq9_total is not None else "")
        + "</div>",
    ]
    if flags:
        body.append(f"<div>{flags}</div>")
    body.append(_timer_html(view))
    body.append(_weight_html(s, board))
    if s.latest is not None and view.lane not in (Lane.EXPECTED, Lane.CLOSED):
        v = s.latest.vitals
        body.append(
            f'<div class="kd-vitals">BP {v.blood_pressure} · HR {v.heart_rate} · '
            f"SpO2 {v.spo2}% <span class='kd-when'>at "
            f"{_e(time_text(s.latest.taken_at, board))}</span></div>"
        )
    if view.vitals_due_in is not None:
        overdue = " overdue" if view.vitals_due_in <= 0 else ""
        body.append(f'<div class="kd-due{overdue}">{_e(vitals_due_text(view.vitals_due_in))}</div>')
    if s.side_effects:
        effects = ", ".join(f"{SideEffect(e).label} ({sev})" for e, sev in s.side_effects)
        body.append(f'<div class="kd-mini">{_e(effects)}</div>')
    if view.lane in (Lane.RECOVERY, Lane.READY):
        body.append(_ride_html(s, board))
    if view.lane == Lane.CLOSED and s.close_reason:
        body.append(f'<div class="kd-meta">{bdi(s.close_reason)}</div>')
    done = "done" if view.lane in (Lane.DISCHARGED, Lane.CLOSED) else ""
    return (
        f'<div class="kd-card {_alert_level(view)} {done}" data-session="{s.session_id}">'
        + "".join(body)
        + "</div>"
    )


def _compact_card_html(view: SessionView, board: SiteDay, *, when: str, flags: str) -> str:
    """Expected and gone-home patients need less: when, where, who, what to watch for."""
    s = view.session
    detail = f"{s.route.label}{dose_text(s)} · {s.kind.value.capitalize()}"
    if view.lane == Lane.DISCHARGED and s.discharged_at:
        detail = f"Home at {time_text(s.discharged_at, board)}"
    alerts = "".join(f'<div class="kd-mini">{_e(a.what)}</div>' for a in view.alerts if a.level)
    done = " done" if view.lane == Lane.DISCHARGED else ""
    return (
        f'<div class="kd-card compact {_alert_level(view)}{done}" data-session="{s.session_id}">'
        f'<div class="kd-top"><span class="chair">{bdi(s.chair_name)}</span>'
        f"<span>{_e(when)}</span></div>"
        f'<div class="kd-name">{bdi(s.patient_name)}</div>'
        f'<div class="kd-meta">{_e(detail)}</div>'
        + (f"<div>{flags}</div>" if flags else "")
        + alerts
        + "</div>"
    )


# A clinic with more chairs than this gets the compact strip: one chip for the free
# chairs, one per state of the busy ones. Sixty chairs in full would push the
# first card below a 1080p screen.
FULL_CHAIR_STRIP_UP_TO = 12
CHAIRS_NAMED_IN_A_CHIP = 12
# The most urgent alerts stay in sight; the rest fold into "and N more".
ALERTS_IN_SIGHT = 5


def summary_html(views: list[SessionView], board: SiteDay, *, chairs: list[ChairState]) -> str:
    """Counts per lane and the chairs (``chair_states``): which are free now, who is in the
    others; a chair recorded with two patients names them all, marked as an alert."""
    lanes = by_lane(views)
    counts = "".join(
        f'<div class="kd-count"><b>{len(lanes[lane])}</b><span>{_e(lane.label)}</span></div>'
        for lane in LANES_SHOWN
    )
    free = [c for c in chairs if c.free]
    if len(chairs) > FULL_CHAIR_STRIP_UP_TO:
        chips = _compact_chairs_html(chairs, free)
    else:
        chips = []
        for chair in chairs:
            if chair.free:
                nxt = (
                    f" · next {time_text(chair.next_expected, board)}"
                    if chair.next_expected
                    else ""
                )
                chips.append(f'<span class="kd-chair free">{bdi(chair.name)}: free{_e(nxt)}</span>')
            elif chair.shared:
                chips.append(_shared_chair_html(chair))
            else:
                who = chair.occupied_by
                chips.append(
                    f'<span class="kd-chair busy"><b>{bdi(chair.name)}</b>: '
                    f"{bdi(who.patient_name)} · {_e(who.status.label)}</span>"
                )
    free_count = (
        f'<div class="kd-count"><b>{len(free)}/{len(chairs)}</b><span>Chairs free</span></div>'
    )
    return (
        f'<div class="kd-strip">{counts}{free_count}</div>'
        f'<div class="kd-chairs">{"".join(chips)}</div>'
    )


def _shared_chair_html(chair: ChairState) -> str:
    """ "⚠ Chair 2: Alex Morgan + Bea Lund — two patients", in the order they entered."""
    names = " + ".join(bdi(s.patient_name) for s in chair.occupants)
    return (
        f'<span class="kd-chair busy shared">⚠ <b>{bdi(chair.name)}</b>: {names} — '
        f"{_e(patients_in_words(count=len(chair.occupants)))}</span>"
    )


def _compact_chairs_html(states: list[ChairState], free: list[ChairState]) -> list[str]:
    """One chip for the free chairs ("15 free: Chair 3, 7, …") and one per state of the others.

    The lanes below name who is in each chair; the strip only answers "where is
    a chair free, and what are the others doing", in a line or two at most.
    """
    groups: dict[str, list[str]] = {}
    shared = [c.name for c in states if c.shared]
    for chair in states:
        if not chair.free and not chair.shared:
            groups.setdefault(chair.occupied_by.status.label, []).append(chair.name)
    chips = []
    if shared:
        # First, and apart from the states: the alert list below names who is in them.
        head = f"⚠ {len(shared)} with more than one patient"
        chips.append(_chair_group_html("busy shared compact", head, shared))
    if free:
        chips.append(_chair_group_html("free", f"{len(free)} free", [c.name for c in free]))
    for label, names in groups.items():
        chips.append(_chair_group_html("busy compact", f"{len(names)} {label.lower()}", names))
    return chips


def _chair_group_html(css: str, head: str, names: list[str]) -> str:
    shown = _shortened_names(names[:CHAIRS_NAMED_IN_A_CHIP])
    more = ", …" if len(names) > CHAIRS_NAMED_IN_A_CHIP else ""
    return (
        f'<span class="kd-chair {css}" title="{_e(", ".join(names))}">'
        f"<b>{_e(head)}:</b> {bdi(shown)}{more}</span>"
    )


def _shortened_names(names: list[str]) -> str:
    """ "Chair 3, 7, 9" when every name is the same word and a number, else the names."""
    words = [name.rsplit(" ", 1) for name in names]
    if len(names) > 1 and all(len(w) == 2 for w in words) and len({w[0] for w in words}) == 1:
        return f"{words[0][0]} " + ", ".join(w[1] for w in words)
    return ", ".join(names)


@dataclass(frozen=True, kw_only=True)
class AlertRow:
    """One line of the board's alert list: the chair, who is in it, the alert."""

    chair_name: str
    patient_names: tuple[str, ...]
    alert: Alert
    # A chair-level alert's words name the chair, which is data: isolated when drawn.
    what_names_data: bool = False


def alert_rows(
    views: list[SessionView], *, chairs: list[ChairState] | None = None
) -> list[AlertRow]:
    """Every standing alert, the most urgent first: each chair's (``chair_alerts``), then
    each visit's; a chair's own alert comes before its patients' alerts of the same level."""
    rows = [
        AlertRow(
            chair_name=chair.name,
            patient_names=tuple(s.patient_name for s in chair.occupants),
            alert=alert,
            what_names_data=True,
        )
        for chair, alert in chair_alerts(chairs=chairs or [])
    ]
    for view in views:
        for alert in view.alerts:
            rows.append(
                AlertRow(
                    chair_name=view.session.chair_name,
                    patient_names=(view.session.patient_name,),
                    alert=alert,
                )
            )
    # Chair 2 before Chair 10: the order of the room, not of the alphabet (a stable sort).
    rows.sort(key=lambda r: (0 if r.alert.level == "danger" else 1, _in_room_order(r.chair_name)))
    return rows


def _in_room_order(name: str) -> list[tuple[int, object]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def _alert_list_html(rows: list[AlertRow]) -> str:
    items = "".join(
        f'<div class="kd-alert {r.alert.level}"><b>{bdi(r.chair_name)} · '
        f"{' + '.join(bdi(name) for name in r.patient_names)}</b> — "
        f"{bdi(r.alert.what) if r.what_names_data else _e(r.alert.what)}. "
        f'<span class="do">→ {_e(r.alert.action)}</span></div>'
        for r in rows
    )
    return f'<div class="kd-alerts">{items}</div>'


def _draw_alerts(views: list[SessionView], *, chairs: list[ChairState]) -> None:
    """The most urgent few in sight; the others one click away, so the lanes stay in view."""
    rows = alert_rows(views, chairs=chairs)
    if not rows:
        return
    st.html(_alert_list_html(rows[:ALERTS_IN_SIGHT]))
    rest = rows[ALERTS_IN_SIGHT:]
    if rest:
        # A key keeps it open across the refreshes while a nurse reads it.
        with st.expander(f"and {len(rest)} more alerts", key="kd-more-alerts"):
            st.html(_alert_list_html(rest))


def lanes_html(lanes: dict[Lane, list[SessionView]], board: SiteDay) -> str:
    """The lanes side by side, one HTML block (one element a refresh, not thirteen)."""
    shown = []
    for lane in LANES_SHOWN:
        cards = "".join(card_html(v, board) for v in lanes[lane]) or (
            '<div class="kd-empty">None</div>'
        )
        shown.append(
            f'<div class="kd-lane" data-lane="{lane.value}">'
            f'<div class="kd-lane-head {lane.value}">{_e(lane.label)} '
            f"({len(lanes[lane])})</div>{cards}</div>"
        )
    return f'<div class="kd-lanes" style="--kd-lanes:{len(shown)}">{"".join(shown)}</div>'


def live_board(*, url: str, site: SiteChoice) -> None:
    """The board, redrawn when the site's data changes and each minute (a fragment: forms
    elsewhere are untouched)."""
    st.html(BOARD_CSS)

    def _refreshing(live: Live[SiteDay]) -> None:
        board, now = live.data, live.now
        behind = panel_is_behind(board)
        if behind is not None:
            notice, button = st.columns([4, 1], vertical_alignment="center")
            notice.warning(
                f"{literal(behind.patient_name)} was changed at another station: now "
                f"**{behind.status.label.lower()}**. The panel on the right still shows the "
                "old state.",
                icon=":material/sync_problem:",
            )
            if button.button("Refresh the panel", key="kd-refresh-panel"):
                st.rerun(scope="app")
        views = view_board(board, now)
        chairs = chair_states(board, now)
        # The time the data was read, not the time of drawing: a stale board says so.
        st.html(
            f'<div class="kd-updated">Updated {to_local(live.read_at, board.time_zone):%H:%M:%S}'
            f" · {bdi(board.site_name)} · {board.day:%A %d %B}</div>"
            + summary_html(views, board, chairs=chairs)
        )
        _draw_alerts(views, chairs=chairs)
        lanes = by_lane(views)
        st.html(lanes_html(lanes, board))
        if lanes[Lane.CLOSED]:
            with st.expander(f"{Lane.CLOSED.label} today ({len(lanes[Lane.CLOSED])})"):
                st.html("".join(card_html(v, board) for v in lanes[Lane.CLOSED]))

    # The last good board stays up, timers running, while the database is away.
    live_fragment(
        key=f"today-board:{url}:{site.id}",
        read=lambda now: todays_board_reading(url, site, now),
        draw=_refreshing,
        refresh_seconds=REFRESH_SECONDS,
        time_zone=site.time_zone,
        url=url,
        site_id=site.id,
    )


# --- acting on a session ---------------------------------------------------------------------


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
    remembered = st.session_state.get(_SELECTED_KEY)
    chosen = st.selectbox(
        "Patient",
        options=options,
        index=options.index(remembered) if remembered in sessions else None,
        format_func=lambda session_id: _session_label(sessions[session_id], board),
        placeholder="Choose a patient",
    )
    st.session_state[_SELECTED_KEY] = chosen
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
    status = session.status
    if status == S.SCHEDULED:
        _gated_step(url=url, session=session, staff=staff, step=Step.CHECK_IN,
                    gate=check_in_gate(visit=session))  # fmt: skip
    if staff.role not in CLINICIANS:
        _front_desk_actions(url=url, session=session, staff=staff, board=board)
        return
    if status == S.CHECKED_IN:
        _phq9_form(url=url, session=session, staff=staff)
    if status in (S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY):
        _vitals_form(url=url, session=session, staff=staff)
    if status in (S.INFUSING, S.RECOVERY, S.READY):
        # While ready too: an effect that flares up holds the discharge until recorded settled.
        _side_effects_form(url=url, session=session, staff=staff)
    if status == S.CHECKED_IN:
        _start_form(url=url, session=session, staff=staff, board=board)
    if status == S.INFUSING:
        _end_dose(url=url, session=session, staff=staff, board=board, now=now)
    if status in (S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY):
        _ride_form(url=url, session=session, staff=staff, board=board)
    if status == S.RECOVERY:
        _ready_form(url=url, session=session, staff=staff, board=board, now=now)
    if status in (S.INFUSING, S.RECOVERY, S.READY) and session.route == Route.ESKETAMINE:
        rems_section(url=url, session_id=session.session_id, route=session.route,
                     settings=board.settings, staff=staff)  # fmt: skip
    if status == S.READY:
        _gated_step(url=url, session=session, staff=staff, step=Step.DISCHARGE,
                    gate=discharge_gate(visit=session, settings=board.settings))  # fmt: skip
    if status in (S.SCHEDULED, S.CHECKED_IN):
        _exit_form(url=url, session=session, staff=staff)
    if status != S.SCHEDULED:
        _undo_form(url=url, session=session, staff=staff)


def _front_desk_actions(*, url: str, session: Visit, staff: StaffMember, board: SiteDay) -> None:
    status = session.status
    if status in (S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY):
        _ride_form(url=url, session=session, staff=staff, board=board)
    if status in (S.SCHEDULED, S.CHECKED_IN):
        _exit_form(url=url, session=session, staff=staff)
    st.caption("Vitals, the dose, ready and discharge are recorded by a nurse or the clinic lead.")


def _note_changes_from_elsewhere(session: Visit, messages) -> None:
    """Say so when the session changed at another station since this screen last showed it."""
    seen: dict[int, int] = st.session_state.setdefault(_SEEN_KEY, {})
    own_write = st.session_state.pop(OWN_WRITE_KEY, False)
    previous = seen.get(session.session_id)
    if previous is not None and previous != session.version and not own_write:
        messages.info(
            f"Changed at another station while you were looking: the patient is now "
            f"**{session.status.label.lower()}**. Check before you act.",
            icon=":material/sync:",
        )
    seen[session.session_id] = session.version


def panel_is_behind(board: SiteDay) -> Visit | None:
    """The selected session, if the board has a newer version of it than the panel shows."""
    seen: dict[int, int] = st.session_state.get(_SEEN_KEY, {})
    selected = st.session_state.get(_SELECTED_KEY)
    for session in board.sessions:
        if session.session_id == selected and selected in seen:
            return session if seen[selected] != session.version else None
    return None


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


def _end_dose(
    *, url: str, session: Visit, staff: StaffMember, board: SiteDay, now: datetime
) -> None:
    """Ending a dose before its planned minutes (the route's own) takes a deliberate tick."""
    timer = dose_timer(session, now, board.settings)
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


def _exit_form(*, url: str, session: Visit, staff: StaffMember) -> None:
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
                st.error("Choose No-show or Cancel.")
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


def _start_form(*, url: str, session: Visit, staff: StaffMember, board: SiteDay) -> None:
    checklist = start_checklist(visit=session, settings=board.settings)
    # Every check, always: one added to the gate is never hidden from the nurse. The
    # second-dose rule, item 9 and the ceiling each have a field in the form below too.
    _checklist(checklist)
    item9_check = any(c.label == ITEM9_CHECK for c in checklist.checks)
    above_ceiling = start_ceiling_reached(session, board.settings)
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
            dose = float(devices * ESKETAMINE_DEVICE_MG)
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
        override = ""
        # At or above the ceiling the hold's override becomes a lead's reason.
        if checklist.holds or above_ceiling:
            if checklist.holds:
                st.warning(
                    "On hold: " + literal("; ".join(checklist.hold_reasons)) + ".",
                    icon=":material/warning:",
                )
            if above_ceiling:
                st.error(
                    f"At or above the start ceiling ({board.settings.start_ceiling_systolic}/"
                    f"{board.settings.start_ceiling_diastolic}): a nurse's override is not "
                    "enough. Only a clinic lead, acting themselves, can start this dose, with "
                    "the reason below.",
                    icon=":material/block:",
                )
                override = st.text_input("Lead's reason to dose above the ceiling")
            else:
                override = st.text_input("Override reason (who approved, why)")
        same_day = ""
        if session.doses_started_recently:
            hours = board.settings.second_dose_window_hours
            st.warning(
                f"This patient already had a dose started in the last {hours} h. A second "
                f"dose within {hours} h needs a clinic lead, acting themselves, to record why.",
                icon=":material/warning:",
            )
            same_day = st.text_input(f"Lead's reason for a second dose within {hours} h")
        if st.form_submit_button("Start dose", type="primary"):
            _take_step(
                url=url,
                session=session,
                staff=staff,
                step=Step.START_INFUSION,
                dose_mg=dose or None,
                weight_kg=weight or None,
                weight_confirmed=confirmed,
                hold_override_reason=override or None,
                same_day_reason=same_day or None,
                item9_acknowledgement=acknowledgement,
                save=save,
            )


def _ready_form(
    *, url: str, session: Visit, staff: StaffMember, board: SiteDay, now: datetime
) -> None:
    """The ready checklist from the ready gate, and the nurse's own confirmation.

    The confirmation stands unticked in the checklist (as on Recovery) until the nurse
    ticks it in the form; the ready step records it in the history.
    """
    gate = ready_gate(visit=session, settings=board.settings, now=now)
    _checklist(gate)
    save = saves.drawn(f"ready-{session.session_id}", what="ready to go")
    with st.form(save.form):
        steady = st.checkbox("Steady on feet and oriented: I have checked the patient")
        if st.form_submit_button(TRANSITIONS[Step.MARK_READY].label, type="primary"):
            _take_step(url=url, session=session, staff=staff, step=Step.MARK_READY,
                       steady_on_feet=steady, save=save)  # fmt: skip


def _vitals_form(*, url: str, session: Visit, staff: StaffMember) -> None:
    save = saves.drawn(f"vitals-{session.session_id}", what="vitals")
    with st.form(save.form):
        st.markdown("**Vitals**")
        left, right = st.columns(2)
        systolic = left.number_input("Systolic", step=1, value=None, placeholder="mmHg")
        diastolic = right.number_input("Diastolic", step=1, value=None, placeholder="mmHg")
        heart_rate = left.number_input("Heart rate", step=1, value=None, placeholder="bpm")
        spo2 = right.number_input("SpO2", step=1, value=None, placeholder="%")
        if st.form_submit_button("Save vitals"):
            values = (systolic, diastolic, heart_rate, spo2)
            if any(v is None for v in values):
                st.error("Fill in all four: systolic, diastolic, heart rate and SpO2.")
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


def _phq9_form(*, url: str, session: Visit, staff: StaffMember) -> None:
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
                st.error("Enter both the total and item 9.")
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


def _side_effects_form(*, url: str, session: Visit, staff: StaffMember) -> None:
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


def _ride_form(*, url: str, session: Visit, staff: StaffMember, board: SiteDay) -> None:
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


def _undo_form(*, url: str, session: Visit, staff: StaffMember) -> None:
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
