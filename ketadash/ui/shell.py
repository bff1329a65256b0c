"""What every page shares: its first lines (``page_setup``) and the site picker.

The reads behind these widgets live in ``ketadash.clinic``; this module only
decides when to read (caches keyed on the resolved database URL) and how to show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import streamlit as st
from sqlalchemy.engine import make_url
from streamlit.delta_generator import DeltaGenerator as Column

from ketadash import clinic
from ketadash.clinic import DatabaseState, SiteChoice
from ketadash.clock import utc_now
from ketadash.config import DeploymentConfig, load_config
from ketadash.db import DatabaseUnavailable
from ketadash.screens import Screen
from ketadash.ui.live import (
    Scope,
    cached_read,
    forget_reads_this_run,
    reads_shared_within_the_run,
)
from ketadash.ui.text import plain

SITE_QUERY_PARAM = "site"
_SITE_STATE_KEY = "ketadash_site_id"
# Short enough that a site added by the lead shows up within the minute on every screen.
SITES_TTL_SECONDS = 60
DEMO_MARKER_TTL_SECONDS = 60
# An unattended screen showing the outage message checks this often whether the
# database answers again, and then reruns itself.
OUTAGE_RETRY_SECONDS = 10
_OUTAGE_ARMED_KEY = "kd_outage_retry_armed"
_OUTAGE_TRIES_KEY = "kd_outage_tries"


@dataclass(frozen=True, kw_only=True)
class PageContext:
    """What ``page_setup`` learnt: the database the page reads, and whether it is the demo."""

    database_url: str
    demo: bool


def leave_legacy_multipage_mode() -> None:
    """Make the entry point's ``st.navigation`` serve this URL, however the page was entered.

    Streamlit sees our ``pages/`` folder and, until some session has run
    ``st.navigation``, serves a deep link such as ``/wall`` in its legacy multipage
    mode: the page script runs alone, without the entry point. Clearing the
    process-wide flag and rerunning hands the same URL to ``dashboard.py``. The flag
    is internal to Streamlit 1.67 (hence the pinned minor version), and the browser
    test ``tests/browser/test_url_paths.py`` guards this.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# The browser tab's icon, served by this server. Without it Streamlit 1.67's browser code
# shows the current page's ``:material/...:`` icon as the tab icon by fetching it from
# fonts.gstatic.com (the menu's icons come from the font bundled with Streamlit); a
# clinic network may block outside hosts, and nothing leaves it unasked.
PAGE_ICON = Path(__file__).with_name("favicon.png")


def local_page_icon() -> None:
    """Give the browser tab this server's icon; call before ``st.navigation``, whose page
    icon the browser would otherwise fetch from the internet."""
    st.set_page_config(page_icon=str(PAGE_ICON))


def run_page(page: st.Page, *, admit: Callable[[], object] | None = None) -> None:
    """Run the page ``st.navigation`` chose; a database outage anywhere in it is shown plainly.

    ``admit`` runs first (sign-in, role, a wall's token) and stops the page when the
    person or display may not see it. Pages need not catch ``DatabaseUnavailable``
    themselves: the nurse gets the plain message and a "Try again" button instead of
    a traceback.
    """
    try:
        with reads_shared_within_the_run():
            if admit is not None:
                admit()
            page.run()
    except DatabaseUnavailable as error:
        show_database_unavailable(error)


# The keyboard's place, plain to see on every control (WCAG 2.4.7): Streamlit's own focus
# ring is a faint shadow or a border tint. The colour is the theme's primaryColor.
FOCUS_CSS = """<style>
button:focus-visible, a:focus-visible, summary:focus-visible, [role="radio"]:focus-visible,
[role="checkbox"]:focus-visible, [role="tab"]:focus-visible, [tabindex]:focus-visible {
  outline:3px solid #115e59 !important; outline-offset:2px}
[data-baseweb="input"]:focus-within, [data-baseweb="textarea"]:focus-within,
[data-baseweb="select"] > div:focus-within {outline:3px solid #115e59; outline-offset:1px}
</style>"""


def page_setup(screen: Screen, *, layout: Literal["centered", "wide"] = "wide") -> PageContext:
    """The first call of every page: a ready database, the demo marker and the title.

    The title and icon are the screen's own (``ketadash.screens``), never restated by
    the page. Stops the page with a plain message (no traceback) when the database
    cannot be reached or has not been migrated.
    """
    title, icon = screen.page_heading, screen.icon
    leave_legacy_multipage_mode()
    st.set_page_config(page_title=f"{title} · KetaDash", layout=layout)
    st.html(FOCUS_CSS)
    config = load_config()
    url = config.database_url
    try:
        make_database_ready(config)
        demo = is_demo_database(url)
    except DatabaseUnavailable as error:
        show_database_unavailable(error)
    # The demo's banner (ketadash/ui/auth.py) is drawn by the sign-in, above this.
    st.title(f"{icon} {title}")
    return PageContext(database_url=url, demo=demo)


def main_and_panel(*, panel_heading: str, bold: bool = False) -> tuple[Column, Column]:
    """The screen's two columns: the main view (three quarters) and the side panel, whose
    heading is drawn first (a subheader, or ``bold`` text for a smaller one)."""
    main, panel = st.columns([3, 1], gap="medium")
    if bold:
        panel.markdown(f"**{panel_heading}**")
    else:
        panel.subheader(panel_heading)
    return main, panel


def heading(text: str) -> None:
    """A section heading of the page (a subheader)."""
    st.subheader(text)


def show_database_unavailable(error: DatabaseUnavailable) -> NoReturn:
    """Say in plain words that the database is down, keep the detail folded, stop the page.

    The page comes back by itself: every ``OUTAGE_RETRY_SECONDS`` a small fragment
    asks the database whether it answers, and when it does reruns the whole page.
    Nobody needs to be at the screen (a wall display, a board left on overnight).
    """
    st.error(str(error), icon=":material/cloud_off:")
    with st.expander("Technical detail (for IT)"):
        st.code(error.detail or "no detail", language=None, wrap_lines=True)
    st.button("Try again", icon=":material/refresh:")
    # The fragment's first run is part of this page run, which has just failed:
    # only its own later runs (one every OUTAGE_RETRY_SECONDS) ask the database.
    st.session_state[_OUTAGE_ARMED_KEY] = False
    _retry_until_the_database_answers(load_config().database_url)
    st.stop()


@st.fragment(run_every=OUTAGE_RETRY_SECONDS)
def _retry_until_the_database_answers(url: str) -> None:
    tries = st.session_state.get(_OUTAGE_TRIES_KEY, 0)
    if st.session_state.get(_OUTAGE_ARMED_KEY):
        tries += 1
        try:
            clinic.database_state(url=url)
        except DatabaseUnavailable:
            pass
        else:
            st.session_state[_OUTAGE_TRIES_KEY] = 0
            st.rerun(scope="app")
    st.session_state[_OUTAGE_ARMED_KEY] = True
    st.session_state[_OUTAGE_TRIES_KEY] = tries
    st.caption(
        f"Trying again every {OUTAGE_RETRY_SECONDS} s"
        + (f" ({tries} tries so far)" if tries else "")
        + ": this page comes back by itself when the database answers."
    )


def is_demo_database(url: str) -> bool:
    """True when ``url`` holds the demo clinic (read at most once a minute).

    The last answer will do while the database is away: the demo marker never
    changes for a database, and the page's own reads say "outage".
    """
    return _is_demo.or_last_good(url)


def make_database_ready(config: DeploymentConfig) -> None:
    """The database has its tables; the embedded demo is built on a first start."""
    url = config.database_url
    if url not in _ready_databases():
        state = clinic.database_state(url=url)
        if config.embedded and state is not DatabaseState.READY:
            _build_demo_clinic_once(url)
        elif state is DatabaseState.NO_SCHEMA:
            st.error(
                "The clinic database has no tables yet, so there is nothing to show.\n\n"
                "The person who installed KetaDash needs to run this once, then reload the "
                "page:\n\n`python -m ketadash migrate`\n\n"
                f"Database: `{_safe_url(url)}`",
                icon=":material/construction:",
            )
            st.stop()
        _ready_databases().add(url)
    if config.embedded:
        _keep_demo_day_current(url)


@st.cache_resource(show_spinner=False)
def _ready_databases() -> set[str]:
    # Per process: once a database has a schema it keeps it, so the check runs once.
    return set()


@st.cache_resource(show_spinner="Setting up the demo clinic…")
def _build_demo_clinic_once(url: str) -> None:
    from ketadash.demo import build_demo_clinic

    build_demo_clinic(url=url, now=utc_now())


def _keep_demo_day_current(url: str) -> None:
    try:
        stale = _stale_demo_marker(url, utc_now().strftime("%Y-%m-%dT%H:%M"))
    except DatabaseUnavailable:
        return  # the demo's new day can wait for the database; the page still shows
    if stale:
        _relay_demo_day(url, stale)
        st.cache_data.clear()
        forget_reads_this_run()


@st.cache_data(ttl=DEMO_MARKER_TTL_SECONDS, show_spinner=False)
def _stale_demo_marker(url: str, minute: str) -> str | None:
    # Keyed on the minute too: a day ends at a minute, whatever the cache's age.
    return clinic.stale_demo_marker(url=url, now=utc_now())


@st.cache_resource(show_spinner="Laying out today's demo clinic…")
def _relay_demo_day(url: str, stale_marker: str) -> None:
    # Once per process and day: a screen left on overnight shows a fresh demo day,
    # not yesterday's patients left open. Only ever the embedded demo database.
    from ketadash.demo import build_demo_clinic

    build_demo_clinic(url=url, now=utc_now(), replace_demo=True)


@cached_read(scope=Scope.CLINIC, ttl_seconds=DEMO_MARKER_TTL_SECONDS)
def _is_demo(url: str) -> bool:
    return clinic.is_demo(url=url)


@cached_read(scope=Scope.CLINIC, ttl_seconds=SITES_TTL_SECONDS)
def _sites(url: str) -> list[SiteChoice]:
    return clinic.list_sites(url=url)


@cached_read(scope=Scope.CLINIC, ttl_seconds=SITES_TTL_SECONDS)
def _clinic_name(url: str) -> str | None:
    return clinic.clinic_name(url=url)


def cached_sites(url: str) -> list[SiteChoice]:
    """The clinic's sites, read at most once a minute per database.

    During an outage the last list this server read, if any: sites change seldom,
    and a page that stopped here could not show its own "not updated" marker.
    """
    return _sites.or_last_good(url)


def cached_clinic_name(url: str) -> str | None:
    """The clinic's recorded name (at most one read a minute), the last one during an outage."""
    return _clinic_name.or_last_good(url)


def site_picker(*, container=None, label: str = "Site") -> SiteChoice:
    """A site chooser (in the sidebar unless ``container`` says otherwise).

    The choice is kept in the URL (``?site=<id>``; none means the first site), so
    a wall display reopens on its own site after a reconnect, and in the browser
    session, so it follows the user from page to page. The URL wins when both are
    present.
    """
    url = load_config().database_url
    try:
        sites = cached_sites(url)
    except DatabaseUnavailable as error:
        show_database_unavailable(error)
    if not sites:
        st.warning(
            "This clinic has no sites yet. The operator adds each one with its chairs:\n\n"
            "`python -m ketadash site --code … --name … --time-zone … --chairs N`",
            icon=":material/domain_disabled:",
        )
        st.stop()
    by_id = {site.id: site for site in sites}
    remembered = _site_id_from_url(by_id) or st.session_state.get(_SITE_STATE_KEY)
    if remembered not in by_id:
        remembered = sites[0].id
    where = container if container is not None else st.sidebar
    # No widget key: the widget is rebuilt from the remembered id on every page, which
    # keeps the URL, the session and the widget agreeing.
    chosen_id = where.selectbox(
        label,
        options=list(by_id),
        index=list(by_id).index(remembered),
        # Selectbox options are plain text in Streamlit 1.67 (no markdown); a name in
        # another script is still isolated from the text around it.
        format_func=lambda site_id: plain(by_id[site_id].name),
    )
    st.session_state[_SITE_STATE_KEY] = chosen_id
    # A URL without ?site= means the first site. Writing the parameter pushes a
    # browser history entry, so it is written only when the URL would otherwise
    # be wrong: Back then leaves the page instead of landing on the same page.
    in_url = st.query_params.get(SITE_QUERY_PARAM)
    if in_url != str(chosen_id) and (in_url is not None or chosen_id != sites[0].id):
        st.query_params[SITE_QUERY_PARAM] = str(chosen_id)
    return by_id[chosen_id]


def _site_id_from_url(by_id: dict[int, SiteChoice]) -> int | None:
    raw = st.query_params.get(SITE_QUERY_PARAM, "")
    try:
        site_id = int(raw)
    except ValueError:
        return None
    return site_id if site_id in by_id else None


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unreadable database URL)"
