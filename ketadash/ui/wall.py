"""The wall display: the recovery-area TV, read from across the room, seen by everyone.

Everything it shows comes from ``ketadash.public`` (a label, a place, a time), so
nothing else about a patient reaches the browser. It takes no input: the site
comes from the URL (``/wall?site=CODE``), it redraws itself in a fragment when the
site's data version moves (and each minute, or each page turn while it pages), pages
through more than a screenful on its own, and when the database cannot be read it
keeps the last picture and says since when.
"""

from __future__ import annotations

import html
import math
from datetime import datetime

import streamlit as st

from ketadash.auth import DisplayAccess
from ketadash.clock import clock_text, to_local, utc_now
from ketadash.config import load_config
from ketadash.db import DatabaseUnavailable
from ketadash.public import (
    PublicPlace,
    PublicRecoveryArea,
    UnknownSite,
    first_site_code,
    load_public_recovery_area,
)
from ketadash.ui import shell
from ketadash.ui.auth import NOT_REGISTERED, admitted_display, display_still_registered
from ketadash.ui.live import Drawn, data_versions, on_change_fragment
from ketadash.ui.text import bdi

# Not clinical: how the screen behaves. Where nothing watches the data version (AppTest),
# a few seconds is live enough for a waiting room; every wall of one server shares one
# read per site and version (or per interval).
WALL_REFRESH_SECONDS = 5
WALL_TTL_SECONDS = 4
# Twelve tiles (3 × 4) fit a 1920×1080 screen in type readable across the room; more page.
WALL_PAGE_SIZE = 12
WALL_PAGE_SECONDS = 10
SITE_QUERY_PARAM = "site"
_LAST_KEY = "kd_wall_last"

WALL_CSS = """
<style>
/* A TV: none of Streamlit's chrome, nothing to click, no dimming while a refresh runs. */
header[data-testid="stHeader"], [data-testid="stSidebar"], [data-testid="stSidebarNav"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stStatusWidget"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"], footer {display:none !important}
.stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] {background:#0b1220 !important}
[data-testid="stMainBlockContainer"] {padding:18px 40px 0 40px !important;
  max-width:100% !important}
[data-stale="true"], .stale-element {opacity:1 !important; transition:none !important}
.kdw {color:#f8fafc; font-family:"Source Sans Pro", "Segoe UI", Arial, sans-serif}
.kdw-head {display:flex; align-items:flex-end; justify-content:space-between;
  border-bottom:4px solid #334155; padding-bottom:8px; margin-bottom:16px}
.kdw-site {font-size:56px; font-weight:700; line-height:1.05; margin:0; color:#f8fafc}
.kdw-sub {font-size:28px; color:#cbd5e1; margin-top:6px}
.kdw-clock {font-size:84px; font-weight:700; line-height:1; font-variant-numeric:tabular-nums}
.kdw-right {text-align:right}
.kdw-stale {background:#7c2d12; color:#fff7ed; font-size:30px; font-weight:700;
  padding:10px 20px; border-radius:10px; margin-bottom:18px}
.kdw-grid {display:grid; grid-template-columns:repeat(3, 1fr); grid-auto-rows:196px; gap:18px}
.kdw-tile {background:#1e293b; border-radius:18px; padding:14px 26px; border:6px solid #1e293b;
  display:flex; flex-direction:column; justify-content:center; gap:6px; overflow:hidden}
.kdw-tile > div {flex-shrink:0; margin:0}
.kdw-label {font-size:56px; font-weight:700; line-height:1.12; white-space:nowrap;
  overflow:hidden; text-overflow:ellipsis; color:#f8fafc}
.kdw-place {font-size:38px; font-weight:600; line-height:1.15; color:#e2e8f0;
  white-space:nowrap}
.kdw-since {font-size:30px; line-height:1.15; color:#cbd5e1; font-variant-numeric:tabular-nums}
.kdw-tile.waiting_for_ride {border-color:#fbbf24}
.kdw-tile.waiting_for_ride .kdw-place {color:#fde68a}
/* The ride has arrived: a solid, bright tile and a thick outline, never blinking. */
.kdw-tile.ride_arrived {background:#fde047; border-color:#ffffff}
.kdw-tile.ride_arrived .kdw-label, .kdw-tile.ride_arrived .kdw-place,
.kdw-tile.ride_arrived .kdw-since {color:#111827}
.kdw-tile.ride_arrived .kdw-place::before {content:"\\2714\\FE0E  "}
.kdw-empty {font-size:44px; color:#cbd5e1; margin-top:120px; text-align:center}
.kdw-foot {display:flex; justify-content:space-between; font-size:26px; color:#94a3b8;
  margin-top:12px}
.kdw-demo {background:#c2410c; color:#fff; border-radius:8px; padding:2px 10px; font-size:22px;
  font-weight:700; margin-left:16px; vertical-align:middle}
</style>
"""


def wall_page() -> None:
    """The whole wall: set-up, style, and the self-refreshing picture. Takes no input."""
    shell.leave_legacy_multipage_mode()
    # The sidebar is hidden by the style below, not collapsed: a collapsed state would
    # follow the browser to the next page it opens.
    st.set_page_config(page_title="Wall display · KetaDash", layout="wide")
    st.html(WALL_CSS)
    display = admitted_display()
    if display is not None:
        live_wall(site_code=display.site_code, display=display)
    else:  # the demo's wall: any site, by its code
        live_wall(site_code=st.query_params.get(SITE_QUERY_PARAM), display=None)


@st.cache_data(ttl=WALL_TTL_SECONDS, show_spinner=False)
def _cached_area(url: str, site_code: str, version: str | None) -> PublicRecoveryArea:
    return load_public_recovery_area(url=url, site_code=site_code, now=utc_now())


def cached_area(url: str, site_code: str) -> PublicRecoveryArea:
    """The site's public recovery area, read at most once per data version (and interval)
    for every wall of this process."""
    versions = data_versions(url)
    return _cached_area(url, site_code, None if versions is None else versions.token())


@st.cache_data(ttl=shell.SITES_TTL_SECONDS, show_spinner=False)
def cached_first_site_code(url: str) -> str | None:
    return first_site_code(url=url)


def live_wall(*, site_code: str | None, display: DisplayAccess | None) -> None:
    """The picture, redrawn in place when the data changes, each minute, each page turn.

    A registered display's token is checked again at every redraw; revoking it moves the
    site's version, so it blanks the wall within a second or two, without anyone
    touching the TV.
    """
    url = load_config().database_url

    # The site is known by its code; the version watched is every site's (a wall is
    # cheap to redraw, and a code's site id is not known before the first read).
    @on_change_fragment(
        url=url, site_id=None, key=f"wall:{site_code}", fallback_seconds=WALL_REFRESH_SECONDS
    )
    def _refreshing() -> Drawn | None:
        now = utc_now()
        last_key = f"{_LAST_KEY}-{site_code}"
        try:
            if not display_still_registered(display):
                st.session_state.pop(last_key, None)
                st.html(_notice_html(NOT_REGISTERED))
                return None
            demo = _prepare(url)
            code = site_code or cached_first_site_code(url)
            if code is None:
                st.html(_notice_html("This clinic has no sites yet."))
                return None
            area = cached_area(url, code)
            st.session_state[last_key] = (area, demo)
            stale = False
        except UnknownSite:
            st.html(
                _notice_html(
                    f"No site has the code “{site_code}”. Open this screen as "
                    "/wall?site=CODE with the site's code."
                )
            )
            return None
        except DatabaseUnavailable:
            if last_key not in st.session_state:
                # Nothing to show yet (a restart during an outage): say so calmly, retry.
                st.html(_notice_html("Waiting for the clinic database…"))
                return Drawn(stale=True)
            area, demo = st.session_state[last_key]
            stale = True
        st.html(wall_html(area, now=now, stale=stale, demo=demo))
        _, pages = wall_page_of(len(area.patients), now)
        return Drawn(stale=stale, tick_seconds=WALL_PAGE_SECONDS if pages > 1 else None)

    _refreshing()


def _prepare(url: str) -> bool:
    """The database is ready (the demo built on a first start); True when it is the demo."""
    # The shell's own set-up, inside the fragment so that a database outage is retried
    # by the next refresh instead of stopping the page for good.
    shell.make_database_ready(load_config())
    return shell.is_demo_database(url)


def _e(text: object) -> str:
    return html.escape(str(text))


def wall_page_of(count: int, now: datetime) -> tuple[int, int]:
    """Which page of ``count`` people shows at ``now`` (0-based), and how many pages there are.

    Derived from the clock, not remembered: every wall and every reconnect agree.
    """
    pages = max(1, math.ceil(count / WALL_PAGE_SIZE))
    return int(now.timestamp() // WALL_PAGE_SECONDS) % pages, pages


def wall_html(area: PublicRecoveryArea, *, now: datetime, stale: bool, demo: bool) -> str:
    """The whole screen as HTML: header with clock, the tiles of one page, the footer."""
    zone = area.time_zone
    clock = to_local(now, zone)
    read_at = to_local(area.read_at, zone)
    page, pages = wall_page_of(len(area.patients), now)
    shown = area.patients[page * WALL_PAGE_SIZE : (page + 1) * WALL_PAGE_SIZE]
    tiles = "".join(
        f'<div class="kdw-tile {p.place.value}" data-place="{p.place.value}">'
        f'<div class="kdw-label">{bdi(p.label)}</div>'
        f'<div class="kdw-place">{_e(p.place.label)}</div>'
        f'<div class="kdw-since">since {_e(clock_text(p.since, zone))}</div></div>'
        for p in shown
    )
    body = (
        f'<div class="kdw-grid">{tiles}</div>'
        if shown
        else '<div class="kdw-empty">Nobody is in recovery right now.</div>'
    )
    banner = (
        f'<div class="kdw-stale">Not updated since {read_at:%H:%M} — reconnecting…</div>'
        if stale
        else ""
    )
    demo_badge = '<span class="kdw-demo">DEMO DATA</span>' if demo else ""
    arrived = sum(p.place is PublicPlace.RIDE_ARRIVED for p in area.patients)
    paging = f"Page {page + 1} of {pages}" if pages > 1 else ""
    return (
        f'<div class="kdw" data-site="{_e(area.site_code)}">'
        '<div class="kdw-head"><div>'
        f'<h1 class="kdw-site">{bdi(area.site_name)} · Recovery{demo_badge}</h1>'
        f'<div class="kdw-sub">{len(area.patients)} in recovery · {arrived} ride'
        f"{'' if arrived == 1 else 's'} here</div></div>"
        f'<div class="kdw-right"><div class="kdw-clock">{clock:%H:%M}</div>'
        f'<div class="kdw-sub kdw-updated">updated {read_at:%H:%M:%S}</div></div></div>'
        f"{banner}{body}"
        f'<div class="kdw-foot"><span>Please ask a nurse before leaving.</span>'
        f'<span class="kdw-paging">{paging}</span></div></div>'
    )


def _notice_html(text: str) -> str:
    return f'<div class="kdw"><div class="kdw-empty">{_e(text)}</div></div>'
