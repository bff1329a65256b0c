"""The driver's page (``/ride?link=TOKEN``): opened on a phone in a car park, no sign-in.

Everything it shows comes from ``ketadash.driver_link.open_driver_link``, built on the
public projection: the clinic's name, the site's address and phone, and one line
about the visit. It takes no input and refreshes itself; when the database cannot
be read it keeps the last picture and says since when.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit, urlunsplit

import streamlit as st

from ketadash.clock import to_local, utc_now
from ketadash.config import PublicUrlInvalid, load_config, public_base_url
from ketadash.db import DatabaseUnavailable
from ketadash.driver_link import (
    LINK_QUERY_PARAM,
    DriverLinkRefused,
    driver_link_summary,
    driver_link_url,
    driver_words,
    load_driver_link,
    load_site_contact,
    make_driver_link,
    open_driver_link,
    revoke_driver_link,
    text_message,
)
from ketadash.public import DriverState, LinkState, PublicDriverStatus
from ketadash.submissions import AlreadySaved, submission
from ketadash.ui import saves, shell
from ketadash.ui.text import bdi

# Not clinical: a driver leaves the page open; half a minute is live enough for
# "ready around", and a few small reads per driver per refresh are cheap.
DRIVER_REFRESH_SECONDS = 30
_LAST_KEY = "kd_driver_last"

DRIVER_CSS = """
<style>
/* A phone in a car park: none of Streamlit's chrome, large type, nothing to click. */
header[data-testid="stHeader"], [data-testid="stSidebar"], [data-testid="stSidebarNav"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stStatusWidget"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"], footer {display:none !important}
[data-testid="stMainBlockContainer"] {padding:16px 16px 0 16px !important; max-width:640px}
[data-stale="true"], .stale-element {opacity:1 !important; transition:none !important}
.kdd {font-family:"Source Sans Pro", "Segoe UI", Arial, sans-serif; color:#0f172a}
.kdd-clinic {font-size:26px; font-weight:700; margin:0 0 2px 0; line-height:1.2}
.kdd-site {font-size:18px; color:#334155; line-height:1.35}
.kdd-state {border-radius:16px; padding:22px 20px; margin:18px 0; border:3px solid #cbd5e1;
  background:#f8fafc}
.kdd-state.in_treatment {border-color:#0369a1; background:#f0f9ff}
.kdd-state.ready {border-color:#047857; background:#ecfdf5}
.kdd-state.call_us, .kdd-state.ended {border-color:#b45309; background:#fffbeb}
.kdd-headline {font-size:32px; font-weight:700; line-height:1.2; margin:0}
.kdd-detail {font-size:20px; line-height:1.35; margin-top:10px; color:#1e293b}
.kdd-phone a {font-size:22px; font-weight:700; color:#0369a1}
.kdd-foot {font-size:15px; color:#64748b; margin-top:14px}
.kdd-stale {background:#7c2d12; color:#fff7ed; font-weight:700; padding:8px 12px;
  border-radius:8px; margin-top:12px}
.kdd-demo {background:#c2410c; color:#fff; border-radius:6px; padding:1px 8px; font-size:14px;
  font-weight:700; margin-left:8px; vertical-align:middle}
</style>
"""


def driver_page() -> None:
    """The whole page: set-up, style, and the self-refreshing status. Takes no input."""
    _phone_page()
    live_driver_status(token=st.query_params.get(LINK_QUERY_PARAM))


def driver_only_home() -> None:
    """``/`` on a server that serves drivers' links only (``KETADASH_DRIVER_PAGE_ONLY``),
    and any other address typed into it: there is nothing else to see there."""
    _phone_page()
    st.html(
        '<div class="kdd"><div class="kdd-state ended"><p class="kdd-headline">Open the link '
        "in the clinic's text message</p><div class='kdd-detail'>This address shows the "
        "person collecting a patient when they will be ready, from the link the clinic "
        "sent. It shows nothing else.</div></div></div>"
    )


def _phone_page() -> None:
    """The set-up both phone pages share: our navigation, the page's title, the style."""
    shell.leave_legacy_multipage_mode()
    st.set_page_config(page_title="Ride home", layout="centered")
    st.html(DRIVER_CSS)


def live_driver_status(*, token: str | None) -> None:
    """The status, redrawn every ``DRIVER_REFRESH_SECONDS`` in place."""

    @st.fragment(run_every=DRIVER_REFRESH_SECONDS)
    def _refreshing() -> None:
        now = utc_now()
        config = load_config()
        try:
            # Inside the fragment: an outage is retried by the next refresh.
            shell.make_database_ready(config)
            demo = shell.is_demo_database(config.database_url)
            status = open_driver_link(url=config.database_url, token=token, now=now)
            st.session_state[_LAST_KEY] = (status, demo)
            stale = False
        except DatabaseUnavailable:
            if _LAST_KEY not in st.session_state:
                st.html(
                    '<div class="kdd"><div class="kdd-state call_us"><p class="kdd-headline">'
                    "Please call the clinic</p><div class='kdd-detail'>This page cannot show "
                    "any news just now. It tries again by itself.</div></div></div>"
                )
                return
            status, demo = st.session_state[_LAST_KEY]
            stale = True
        st.html(driver_html(status, stale=stale, demo=demo))

    _refreshing()


def _e(text: object) -> str:
    return html.escape(str(text))


def driver_html(status: PublicDriverStatus, *, stale: bool, demo: bool) -> str:
    """The page as HTML: who the clinic is and how to reach it, then the one line."""
    words = driver_words(status)
    contact = status.contact
    if status.link is not LinkState.LIVE:
        css = "ended"
    else:
        css = (status.state or DriverState.CALL_US).value
    head = ""
    if contact is not None:
        badge = '<span class="kdd-demo">DEMO</span>' if demo else ""
        address = (
            f'<div class="kdd-site kdd-address">{bdi(contact.site_address)}</div>'
            if contact.site_address
            else ""
        )
        phone = ""
        if contact.site_phone:
            dial = "".join(ch for ch in contact.site_phone if ch.isdigit() or ch == "+")
            phone = (
                f'<div class="kdd-site kdd-phone"><a href="tel:{_e(dial)}">'
                f"{bdi(contact.site_phone)}</a></div>"
            )
        site = (
            f'<div class="kdd-site">{bdi(contact.site_name)}</div>'
            if contact.site_name != contact.clinic_name
            else ""
        )
        head = f'<p class="kdd-clinic">{bdi(contact.clinic_name)}{badge}</p>{site}{address}{phone}'
    zone = contact.time_zone if contact is not None else "UTC"
    read_at = to_local(status.read_at, zone)
    banner = (
        f'<div class="kdd-stale">Not updated since {read_at:%H:%M}: reconnecting…</div>'
        if stale
        else ""
    )
    foot = (
        f'<div class="kdd-foot">Updated {read_at:%H:%M}. This page updates itself.</div>'
        if status.link is LinkState.LIVE
        else ""
    )
    return (
        f'<div class="kdd" data-link="{status.link.value}" data-state="{_e(css)}">{head}'
        f'<div class="kdd-state {_e(css)}"><p class="kdd-headline">{_e(words.headline)}</p>'
        f'<div class="kdd-detail">{_e(words.detail)}</div></div>{banner}{foot}</div>'
    )


# --- the staff side: on Recovery, next to the ride ---------------------------------------------

_TOKEN_KEY = "kd_driver_token"


def link_base_url() -> str:
    """Where drivers' links point: ``KETADASH_PUBLIC_URL`` when the clinic set one (the
    address phones outside the clinic network reach), else this server as the staff
    browser reaches it. Raises ``PublicUrlInvalid`` when the set address is not one."""
    public_url = load_config().public_url
    return public_base_url(public_url) if public_url else server_base_url()


def server_base_url() -> str:
    """This server's address as the staff browser reaches it, without the page's path."""
    parts = urlsplit(st.context.url or "")
    path = parts.path.rstrip("/")
    # The page's own slug (``/recovery``) goes; a base path the server is served under stays.
    base_path = path.rsplit("/", 1)[0] if path else ""
    return urlunsplit((parts.scheme or "http", parts.netloc or "localhost", base_path, "", ""))


def driver_link_panel(*, url: str, session_id: int, site_id: int, staff_id: int, time_zone: str):
    """Make, show and revoke the visit's driver's link; when the driver opened it.

    The token is shown only in the browser session that made it (only its hash is
    stored); a lost link is replaced by a new one, which stops the old one working.
    """
    now = utc_now()
    try:
        facts = load_driver_link(url=url, session_id=session_id)
    except DatabaseUnavailable as error:
        st.error(str(error), icon=":material/cloud_off:")
        return
    key = f"{_TOKEN_KEY}-{session_id}"
    made = st.session_state.get(key)
    live = facts is not None and facts.live(now=now)
    if made is not None and not live:
        st.session_state.pop(key, None)
        made = None
    with st.expander("Driver's status link", expanded=made is not None):
        st.text(driver_link_summary(facts, time_zone=time_zone, now=now))
        if made is not None:
            _show_link(url=url, site_id=site_id, token=made)
        left, right = st.columns(2)
        label = "New link" if live else "Make a link"
        make = saves.drawn(f"driver-make-{session_id}", what="driver's link")
        if left.button(label, key=make.form, icon=":material/link:"):
            _link_action(
                make,
                staff_id,
                lambda: st.session_state.__setitem__(
                    key,
                    make_driver_link(url=url, session_id=session_id, staff_id=staff_id, now=now),
                ),
            )
        revoke = saves.drawn(f"driver-revoke-{session_id}", what="revoking the driver's link")
        if live and right.button("Revoke", key=revoke.form, icon=":material/link_off:"):
            st.session_state.pop(key, None)
            _link_action(
                revoke,
                staff_id,
                lambda: revoke_driver_link(
                    url=url, session_id=session_id, staff_id=staff_id, now=now
                ),
            )
        if live and made is None:
            st.caption("A new link replaces the one sent: the old one stops working.")


def _link_action(save: saves.Drawn, staff_id: int | None, action) -> None:
    """Make or revoke under the button's idempotency key: a repeated press writes once."""
    try:
        with submission(key=save.key, what=save.what, staff_id=staff_id):
            action()
    except AlreadySaved:
        saves.confirmed(save)
        st.rerun()
    except DriverLinkRefused as refused:
        st.error(f"{saves.NOT_SAVED} {refused}", icon=":material/block:")
    except DatabaseUnavailable as down:
        st.error(saves.not_saved(down), icon=":material/cloud_off:")
    else:
        saves.confirmed(save)
        st.rerun()


def _show_link(*, url: str, site_id: int, token: str) -> None:
    try:
        link = driver_link_url(base=link_base_url(), token=token)
    except PublicUrlInvalid as error:
        # A link the driver's phone cannot open is worse than none: say so, send nothing.
        st.error(f"{error}. Ask whoever runs KetaDash to correct it.", icon=":material/link_off:")
        return
    st.caption("The link (its copy button shows in its corner):")
    st.code(link, language=None, wrap_lines=True)
    contact = load_site_contact(url=url, site_id=site_id)
    if contact is not None:
        st.caption("A text message to send:")
        st.code(text_message(contact=contact, link=link), language=None, wrap_lines=True)
