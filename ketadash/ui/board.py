"""The monitoring-room board, drawn: the lanes and their cards, the chair strip, the
alerts, and the live fragment that redraws them.

The live part is a fragment that re-reads the board when the site's data version moves
and each minute (ketadash.ui.live); the panel a nurse acts from (ketadash.ui.panel)
lives outside it, so a refresh never eats what a nurse is typing.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

import streamlit as st

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
from ketadash.clock import to_local
from ketadash.models import RideState, Route, SideEffect
from ketadash.rules import (
    Passing,
    esketamine_devices,
    item9_answer,
    item9_flagged,
    weight_change_percent,
)
from ketadash.ui.actions import showing_site_day
from ketadash.ui.live import (
    Live,
    Reading,
    Scope,
    cached_read,
    live_fragment,
)
from ketadash.ui.text import bdi, literal
from ketadash.visits import SiteDay, Visit
from ketadash.vitals import Alert

# A nurse glances, acts, glances again: a few seconds is live enough, and every
# screen of one server shares one read per site per interval (the cache below).

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
# The panel's chosen visit, and the version of each visit it last showed: written by
# the panel, read by the board to say when the panel is behind (``panel_is_behind``).
SELECTED_KEY = "kd_selected_session_id"
SEEN_KEY = "kd_seen_versions"


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
    if ride is None or state is RideState.NONE:  # RideState.of(None) is NONE
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
                assert who is not None, "a chair that is not free has someone in it"
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
        # occupied_by is None exactly when the chair is free.
        if not chair.shared and (who := chair.occupied_by) is not None:
            groups.setdefault(who.status.label, []).append(chair.name)
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


def panel_is_behind(board: SiteDay) -> Visit | None:
    """The selected session, if the board has a newer version of it than the panel shows."""
    seen: dict[int, int] = st.session_state.get(SEEN_KEY, {})
    selected = st.session_state.get(SELECTED_KEY)
    for session in board.sessions:
        if session.session_id == selected and selected in seen:
            return session if seen[selected] != session.version else None
    return None
