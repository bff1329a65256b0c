"""Who is at the keyboard, on every screen: sign-in, roles, idle sign-out, the access log.

``dashboard.py`` calls ``admit`` before it runs any staff screen, and ``admit_display``
before the wall. Nothing of a patient is read before they have said yes. The
decisions themselves are plain functions in ``ketadash.auth``; this module only asks
Streamlit who signed in (``st.user``), draws the sign-in, refusal and demo screens,
and keeps the browser session's part (when it was last used, what it last opened).

Three ways a deployment knows who is here (``ketadash.auth.SignInMode``):

- the clinic's identity provider through ``st.login`` when ``[auth]`` is in
  ``.streamlit/secrets.toml``; the e-mail it gives is matched to the staff roster;
- on the demo clinic without ``[auth]``, a demo person (nurse, lead or front desk)
  under a banner that says so;
- on a real clinic without ``[auth]``, nobody: a page that says how to set it up.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from ketadash import auth, sign_ins
from ketadash.auth import AccessAction, AccessRefused, DisplayAccess, SignInMode
from ketadash.clock import utc_now
from ketadash.config import load_config
from ketadash.db import DatabaseUnavailable
from ketadash.exports import csv_text
from ketadash.models import StaffRole
from ketadash.screens import HOME, SECTIONS, Screen, screens_in
from ketadash.settings import ClinicSettings
from ketadash.sign_ins import SharedSignIn
from ketadash.staff import StaffMember
from ketadash.ui import downloads, shell
from ketadash.ui.live import Scope, cached_read
from ketadash.ui.text import literal

_log = logging.getLogger(__name__)

SIGNED_IN_KEY = "kd_signed_in"
LAST_ACTIVE_KEY = "kd_last_active"
DEMO_ROLE_KEY = "kd_demo_role"
SIGNED_OUT_KEY = "kd_signed_out"
_OPENED_KEY = "kd_opened"
_DISPLAY_KEY = "kd_display"
_DEMO_SWITCH_KEY = "kd_demo_switch"
ADMISSION_KEY = "kd_admission"
_MENU_KEY = "kd_menu"
_TOUCHED_KEY = "kd_sign_in_touched"
_DISPLAY_NOTED_KEY = "kd_display_noted"
DISPLAY_QUERY_PARAM = "display"
# How often an open screen asks whether it has been idle too long. Not clinical: the
# sign-out lands at most this much after the setting's minute. Not more often: every
# timed fragment run is a chance for Streamlit 1.67 to coalesce it with a form's
# submit and drop the submit (seen under load in Chromium: "Save ride" did nothing).
IDLE_CHECK_SECONDS = 60
# A person taken off the roster loses access within this long, without a restart.
ROSTER_TTL_SECONDS = 30

ROLE_WORDS = {
    StaffRole.NURSE: "nurse",
    StaffRole.LEAD: "clinic lead",
    StaffRole.FRONT_DESK: "front desk",
}
# Plural, for "Throughput is for clinic leads".
_ROLE_PLURALS = {
    StaffRole.NURSE: "nurses",
    StaffRole.LEAD: "clinic leads",
    StaffRole.FRONT_DESK: "front desk staff",
}


# --- what this deployment is -----------------------------------------------------------------


def auth_section() -> dict | None:
    """The ``[auth]`` settings of ``.streamlit/secrets.toml``, or None when there are none."""
    try:
        section = st.secrets.get("auth")
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return None
    return dict(section) if section else None


def _provider(section: dict) -> str | None:
    """The provider name for ``st.login``: None for a flat ``[auth]``, else its one subsection."""
    if "client_id" in section:
        return None
    # st.secrets hands subsections out as its own mapping type, not dict.
    named = [name for name, value in section.items() if isinstance(value, Mapping)]
    return named[0] if named else None


def sign_in_mode(url: str) -> SignInMode:
    return auth.sign_in_mode(
        demo=shell.is_demo_database(url), auth_configured=auth_section() is not None
    )


# --- staff screens ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Admission:
    """Who this browser session was admitted as, and when that was last checked."""

    who: tuple
    mode: SignInMode
    staff: StaffMember
    demo: bool
    idle_minutes: int
    checked_at: datetime


# A Streamlit session lives as long as its tab: a reload, a new tab or a reopened browser
# starts a new one, still signed in by the 30-day cookie, and behind a load balancer it
# may be served by another process. So the last use of each identity-provider sign-in
# (one browser's identity cookie) and its sign-out are kept in the database
# (``ketadash.sign_ins``): the idle clock counts use in every tab on every process, and
# a sign-out in one tab ends the sign-in in the others, whichever process serves them.


def _shared_sign_in(key: str) -> SharedSignIn | None:
    """The sign-in as every process knows it; None while the database is away (this
    tab's own clock then decides alone)."""
    try:
        return sign_ins.shared_sign_in(url=load_config().database_url, key=key)
    except DatabaseUnavailable:
        return None


def _touch(key: str, now: datetime) -> None:
    """Count this run as use of the sign-in for every process: written at most once every
    ``sign_ins.TOUCH_SECONDS`` by this tab, so a click costs no write."""
    touched = st.session_state.get(_TOUCHED_KEY)
    if (
        touched is not None
        and touched[0] == key
        and (now - touched[1]).total_seconds() < sign_ins.TOUCH_SECONDS
    ):
        return
    try:
        sign_ins.touch(url=load_config().database_url, key=key, now=now)
    except DatabaseUnavailable:
        return  # tried again on the next run
    st.session_state[_TOUCHED_KEY] = (key, now)


def _sign_in_key(mode: SignInMode) -> str | None:
    """This browser's sign-in (a hash of Streamlit's identity cookie), or None (the demo)."""
    if mode is not SignInMode.IDENTITY_PROVIDER:
        return None
    try:
        cookies = st.context.cookies
    except Exception:  # no request behind this run (AppTest)
        return None
    parts = sorted((k, v) for k, v in cookies.items() if k.startswith("_streamlit_user"))
    if not parts:
        return None
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _sign_out_if_over(mode: SignInMode, *, idle_minutes: int, now: datetime) -> str | None:
    """Sign out when another tab of this sign-in signed out, or when it has been idle too
    long (last used in this tab or another); returns the sign-in's key (None: the demo)."""
    key = _sign_in_key(mode)
    shared = _shared_sign_in(key) if key is not None else None
    if shared is not None and shared.ended:
        sign_out(mode, reason="You signed out in another tab.")
    moments = [st.session_state.get(LAST_ACTIVE_KEY), shared and shared.last_active_at]
    last = max((m for m in moments if m), default=None)
    if last is not None and auth.idle_too_long(
        last_activity=last, now=now, idle_minutes=idle_minutes
    ):
        sign_out(mode, reason=f"Signed out after {idle_minutes} minutes without use.")
    return key


def admit(screen: Screen) -> StaffMember:
    """The signed-in staff member who may see ``screen``; otherwise the page stops here.

    Before anyone has signed in, when the person is not on the roster, and when their
    role may not see this screen, the page shows why and nothing else: no patient
    data has been read. Also signs an idle station out, and counts this run as use.
    """
    now = utc_now()
    admission = _admission(now)
    mode, staff = admission.mode, admission.staff
    if mode is SignInMode.DEMO:
        _demo_banner(staff)
    elif admission.demo:
        st.markdown(":orange-badge[:material/science: DEMO DATA] :small[Synthetic patients.]")
    key = _sign_out_if_over(mode, idle_minutes=admission.idle_minutes, now=now)
    st.session_state[LAST_ACTIVE_KEY] = now
    if key is not None:
        _touch(key, now)
    st.session_state[SIGNED_IN_KEY] = staff
    if tuple(visible_screens(staff.role)) != st.session_state.get(_MENU_KEY):
        st.rerun()  # the menu this run was built with is someone else's (just signed in)
    _sidebar(admission)
    if not auth.may_open(audience=screen.audience, role=staff.role):
        _not_for_this_role(screen, staff)
    return staff


def _admission(now: datetime) -> _Admission:
    """Who is here, from the roster; asked again at most every ROSTER_TTL_SECONDS.

    Between checks a rerun (every click) costs a comparison, not a read: the answer
    is kept in the browser session with what it was decided for (the database, the
    identity provider's e-mail, the demo's role), and anything else is a new decision.
    """
    config = load_config()
    url = config.database_url
    section = auth_section()
    signed_in_email = st.user.get("email") if section and st.user.is_logged_in else None
    who = (url, section is not None, signed_in_email, st.session_state.get(DEMO_ROLE_KEY))
    kept = st.session_state.get(ADMISSION_KEY)
    if (
        kept is not None
        and kept.who == who
        and SIGNED_OUT_KEY not in st.session_state
        and (now - kept.checked_at).total_seconds() < ROSTER_TTL_SECONDS
    ):
        return kept
    st.session_state.pop(ADMISSION_KEY, None)
    shell.make_database_ready(config)
    demo = shell.is_demo_database(url)
    mode = auth.sign_in_mode(demo=demo, auth_configured=section is not None)
    if mode is SignInMode.REFUSE:
        _explain_missing_sign_in()
    if SIGNED_OUT_KEY in st.session_state:
        _signed_out_screen(mode)
    staff = _demo_person(url) if mode is SignInMode.DEMO else _identity_provider_person(url)
    admission = _Admission(
        who=who, mode=mode, staff=staff, demo=demo, idle_minutes=_idle_minutes(url),
        checked_at=now,
    )  # fmt: skip
    st.session_state[ADMISSION_KEY] = admission
    return admission


def signed_in() -> StaffMember:
    """Who is at the keyboard in this run (``admit`` has made sure someone is)."""
    staff = st.session_state.get(SIGNED_IN_KEY)
    if staff is None:  # a page run without dashboard.py's admit: show nothing
        st.stop()
    return staff


def menu_screens() -> tuple[Screen, ...]:
    """The screens this browser session's menu lists on this run, Home left out.

    ``st.navigation`` is called before ``admit`` (every address must resolve, also
    for a refusal), so the menu follows the last admission of this session: none
    before sign-in. When ``admit`` then decides differently, it reruns once.
    """
    admission = st.session_state.get(ADMISSION_KEY)
    shown = () if admission is None else tuple(visible_screens(admission.staff.role))
    st.session_state[_MENU_KEY] = shown
    return shown


def visible_screens(role: StaffRole) -> list[Screen]:
    """The screens a role may open, in navigation order, Home left out.

    A public screen (the wall) is listed only on the demo: a real clinic's wall
    opens with a registered display's address, which no staff browser has.
    """
    admission = st.session_state.get(ADMISSION_KEY)
    demo = admission is not None and admission.mode is SignInMode.DEMO
    return [
        screen
        for section in SECTIONS
        for screen in screens_in(section)
        if auth.may_open(audience=screen.audience, role=role) and (demo or not screen.public)
    ]


def sign_out(mode: SignInMode, *, reason: str) -> None:
    """End this browser's sign-in (every tab of it); the next screen is the sign-in again."""
    _forget_sign_in(mode)
    if mode is SignInMode.IDENTITY_PROVIDER:
        st.logout()  # also signs out of the provider when it allows, and reloads the app
        st.stop()
    st.session_state[SIGNED_OUT_KEY] = reason
    st.rerun(scope="app")


def _identity_provider_person(url: str) -> StaffMember:
    if not st.user.is_logged_in:
        _sign_in_screen()
    if st.user.get("email_verified") is False:
        # Where people may set their own address (guest accounts), an unverified
        # e-mail could name someone on the roster.
        _refuse_person(
            "Your identity provider has not verified your e-mail address, so KetaDash "
            "cannot tell who you are. Ask the clinic lead."
        )
    try:
        # During an outage, the answer this server last had: the page can then show
        # its own last data under a "not updated" marker instead of going blank.
        staff = _roster_person.or_last_good(url, st.user.get("email"))
    except AccessRefused as refused:
        _refuse_person(literal(refused))  # it names the e-mail the provider gave
    return staff


def _refuse_person(reason: str) -> None:
    """Signed in, but not someone who may see this clinic: why (markdown), a way out; no data."""
    _title()
    st.error(reason, icon=":material/person_off:")
    st.button("Sign out", on_click=st.logout, icon=":material/logout:")
    st.stop()


@cached_read(scope=Scope.CLINIC, ttl_seconds=ROSTER_TTL_SECONDS)
def _roster_person(url: str, email: str | None) -> StaffMember:
    # A refusal is an exception, which is never cached: a person just added gets in at once.
    return auth.staff_for_email(url=url, email=email)


@cached_read(scope=Scope.CLINIC, ttl_seconds=ROSTER_TTL_SECONDS)
def _idle_minutes_read(url: str) -> int:
    return auth.idle_sign_out_minutes(url=url)


def _idle_minutes(url: str) -> int:
    try:
        return _idle_minutes_read.or_last_good(url)
    except DatabaseUnavailable:
        return ClinicSettings().idle_sign_out_minutes


@cached_read(scope=Scope.CLINIC, ttl_seconds=ROSTER_TTL_SECONDS)
def _demo_staff(url: str, role: str) -> StaffMember | None:
    return auth.demo_staff(url=url, role=StaffRole(role))


def _demo_person(url: str) -> StaffMember:
    """The demo's person: a nurse unless the banner's switch says otherwise."""
    role = StaffRole(st.session_state.get(DEMO_ROLE_KEY) or StaffRole.NURSE)
    staff = _demo_staff.or_last_good(url, role.value)
    if staff is None:
        _without_a_menu()
        st.error(
            f"The demo clinic has no active {ROLE_WORDS[role]} to sign in as. "
            "Rebuild it with `python -m ketadash demo`.",
            icon=":material/person_off:",
        )
        st.stop()
    return staff


def _demo_banner(staff: StaffMember) -> None:
    # One line, so the board below keeps its place on a 1080p screen.
    with st.container(
        border=True, horizontal=True, vertical_alignment="center", key="kd_demo_banner"
    ):
        st.markdown(
            ":orange-badge[:material/science: DEMO DATA] **Demo sign-in**, synthetic "
            f"patients, no password: you are **{literal(staff.name)}**, "
            f"{ROLE_WORDS[staff.role]}."
        )
        # The choice is kept under a key of its own: a widget's state is dropped on a
        # page without it (the wall), and the demo person should survive a look at it.
        st.segmented_control(
            "Sign in as",
            options=list(StaffRole),
            default=staff.role,
            required=True,
            format_func=lambda role: ROLE_WORDS[StaffRole(role)].capitalize(),
            key=_DEMO_SWITCH_KEY,
            on_change=_demo_role_chosen,
            label_visibility="collapsed",
        )


def _demo_role_chosen() -> None:
    st.session_state[DEMO_ROLE_KEY] = st.session_state[_DEMO_SWITCH_KEY]


def _sidebar(admission: _Admission) -> None:
    """Who is signed in, under the menu (``menu_screens``: only what they may open)."""
    staff = admission.staff
    with st.sidebar:
        st.markdown(
            f"**{literal(staff.name)}**  \n:gray[{ROLE_WORDS[staff.role]}]  \n"
            f":gray[:small[Signs out after {admission.idle_minutes} min without use.]]"
        )
        st.button(
            "Sign out",
            icon=":material/logout:",
            key="kd_sign_out",
            on_click=_sign_out_clicked,
            args=(admission.mode,),
        )
        _watch_for_idleness(admission.mode, admission.idle_minutes)


def _forget_sign_in(mode: SignInMode) -> None:
    """This browser session forgets who was signed in, and so do its other tabs; its
    downloads not yet fetched are removed."""
    downloads.signed_out(downloads.browser_session_id())
    key = _sign_in_key(mode)
    if key is not None:
        try:
            sign_ins.end(url=load_config().database_url, key=key, now=utc_now())
        except DatabaseUnavailable:
            # This tab signs out all the same; tabs served by other processes keep their
            # sign-in until they are idle too long or the cookie goes.
            _log.warning("a sign-out could not be recorded for the other tabs: no database")
    for name in (ADMISSION_KEY, SIGNED_IN_KEY, LAST_ACTIVE_KEY, _OPENED_KEY, _TOUCHED_KEY):
        st.session_state.pop(name, None)


def _sign_out_clicked(mode: SignInMode) -> None:
    _forget_sign_in(mode)
    if mode is SignInMode.IDENTITY_PROVIDER:
        st.logout()
    else:
        st.session_state[SIGNED_OUT_KEY] = "You signed out."


@st.fragment(run_every=IDLE_CHECK_SECONDS)
def _watch_for_idleness(mode: SignInMode, idle_minutes: int) -> None:
    # Runs on its own clock: only a whole-page run (a click, a form, a page change)
    # counts as use, so a board refreshing itself does not keep a station signed in.
    _sign_out_if_over(mode, idle_minutes=idle_minutes, now=utc_now())


def _title() -> None:
    """The top of a screen shown instead of a page, before anyone is admitted."""
    _without_a_menu()
    st.set_page_config(page_title="KetaDash", layout="centered")
    st.title(":material/local_hospital: KetaDash")


def _without_a_menu() -> None:
    # The menu of this run came from the admission just dropped (the roster's
    # recheck, a lapsed sign-in): one more run draws this screen without it.
    if st.session_state.get(_MENU_KEY):
        st.rerun()


def _sign_in_screen() -> None:
    _title()
    name = shell.cached_clinic_name(load_config().database_url)
    st.markdown(
        f"Sign in with your clinic account to see {literal(name) if name else 'the clinic'}'s "
        "patients."
    )
    section = auth_section() or {}
    st.button(
        "Sign in",
        type="primary",
        icon=":material/login:",
        on_click=st.login,
        args=(_provider(section),) if _provider(section) else (),
    )
    st.stop()


def _signed_out_screen(mode: SignInMode) -> None:
    _title()
    st.info(st.session_state[SIGNED_OUT_KEY], icon=":material/logout:")
    label = "Sign in again" if mode is SignInMode.IDENTITY_PROVIDER else "Sign in again (demo)"
    st.button(label, type="primary", icon=":material/login:", on_click=_sign_in_again)
    st.stop()


def _sign_in_again() -> None:
    st.session_state.pop(SIGNED_OUT_KEY, None)


def _explain_missing_sign_in() -> None:
    _title()
    st.error(
        "This clinic's database is a real one, and nobody can sign in yet, so KetaDash "
        "shows no patient data.",
        icon=":material/lock:",
    )
    st.markdown(
        "The person who installed KetaDash sets up sign-in once:\n\n"
        "1. Register KetaDash with the clinic's identity provider (Microsoft Entra, "
        "Google Workspace, Okta…) as a web app whose redirect address is "
        "`https://<this server>/oauth2callback`.\n"
        "2. Put its details in `.streamlit/secrets.toml` under `[auth]` "
        "(`redirect_uri`, `cookie_secret`, `client_id`, `client_secret`, "
        "`server_metadata_url`).\n"
        "3. Give each staff member the e-mail they sign in with: "
        "`python -m ketadash staff --name … --role nurse --email …`.\n"
        "4. Restart KetaDash.\n\n"
        "docs/deployment.md (*Staff sign-in*) has the details. The wall display "
        "does not need this: register it with `python -m ketadash display add`."
    )
    st.stop()


def _not_for_this_role(screen: Screen, staff: StaffMember) -> None:
    st.set_page_config(page_title=f"{screen.title} · KetaDash", layout="wide")
    st.title(f"{screen.icon} {screen.title}")
    roles = [role for role in StaffRole if role in screen.audience]
    st.warning(
        f"{screen.title} is for {' and '.join(_ROLE_PLURALS[r] for r in roles)}. You are "
        f"signed in as {literal(staff.name)}, {ROLE_WORDS[staff.role]}.",
        icon=":material/lock:",
    )
    st.page_link(HOME.script, label="Back to Home", icon=HOME.icon)
    st.stop()


# --- the wall --------------------------------------------------------------------------------


def admit_display() -> DisplayAccess | None:
    """The registered display this wall is, from ``?display=TOKEN``; None on the demo.

    Without a valid token the page says only that the display is not registered and
    stops: no patient data is read. The demo clinic (no ``[auth]``) needs no token.
    The wall reads the answer back with ``admitted_display``.
    """
    config = load_config()
    url = config.database_url
    st.session_state.pop(_DISPLAY_KEY, None)
    shell.make_database_ready(config)
    token = st.query_params.get(DISPLAY_QUERY_PARAM)
    if token is None and sign_in_mode(url) is SignInMode.DEMO:
        display = None
    else:
        display = auth.display_for_token(url=url, token=token)
        if display is None:
            not_registered()
    st.session_state[_DISPLAY_KEY] = (display,)
    return display


def admitted_display() -> DisplayAccess | None:
    """The display ``admit_display`` let in during this run (None: the demo's wall)."""
    admitted = st.session_state.get(_DISPLAY_KEY)
    if admitted is None:  # the wall run without dashboard.py's admit_display
        not_registered()
    return admitted[0]


def display_still_registered(display: DisplayAccess | None) -> bool:
    """Asked at every refresh: a revoked token blanks the wall within one refresh."""
    if display is None:
        return True
    token = st.query_params.get(DISPLAY_QUERY_PARAM)
    url = load_config().database_url
    current = auth.display_for_token(url=url, token=token)
    registered = current is not None and current.display_id == display.display_id
    if registered:
        _note_display_check(url, display.display_id)
    return registered


def _note_display_check(url: str, display_id: int) -> None:
    # Kept in the database, for every process: at most once a minute from this wall.
    now = utc_now()
    noted = st.session_state.get(_DISPLAY_NOTED_KEY)
    if noted is not None and (now - noted).total_seconds() < sign_ins.DISPLAY_CHECK_SECONDS:
        return
    try:
        sign_ins.note_display_check(url=url, display_id=display_id, now=now)
    except DatabaseUnavailable:
        return
    st.session_state[_DISPLAY_NOTED_KEY] = now


NOT_REGISTERED = (
    "This display is not registered. Ask the clinic lead for its address "
    "(python -m ketadash display add)."
)


def not_registered() -> NoReturn:
    st.set_page_config(page_title="Wall display · KetaDash", layout="wide")
    st.title(":material/tv_off: KetaDash wall display")
    st.warning(NOT_REGISTERED, icon=":material/lock:")
    st.stop()


# --- the access log --------------------------------------------------------------------------


def note_opened(
    *,
    action: AccessAction,
    where: str,
    session_id: int | None = None,
    patient_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Record that the signed-in person opened a patient's record, once per opening.

    ``where`` names the panel: choosing the same patient again in it, or the page
    redrawing, is not a new opening; choosing someone else and coming back is.
    """
    opened = st.session_state.setdefault(_OPENED_KEY, {})
    what = (session_id, patient_id)
    if opened.get(where) == what:
        return
    staff = signed_in()
    auth.log_access(
        url=load_config().database_url,
        staff_id=staff.id,
        action=action,
        session_id=session_id,
        patient_id=patient_id,
        detail=detail,
        now=utc_now(),
    )
    opened[where] = what


def export_button(
    label: str, *, table: Callable[[], pd.DataFrame] | pd.DataFrame, file_name: str, **kwargs
) -> None:
    """A button that downloads ``table`` as CSV, safe to open in a spreadsheet
    (``ketadash.exports.csv_text``); every download goes into the access log as an export.

    The file is made only when the button is clicked, and that is when the log is
    written. Its address serves that one download (``ketadash.ui.downloads``): fetching
    it again, with or without the sign-in's cookie, finds nothing, and signing out
    removes a file not yet fetched and makes the buttons drawn before it inert.
    """
    file_button(
        label,
        body=lambda: csv_text(frame=table() if callable(table) else table).encode(),
        file_name=file_name,
        mime=downloads.CSV_MIME,
        **kwargs,
    )


def file_button(
    label: str, *, body: Callable[[], bytes], file_name: str, mime: str, **kwargs
) -> None:
    """A download button for the file ``body()`` makes when clicked (a CSV export, a PDF
    form), logged as an export and served once, as ``export_button`` says."""
    staff = signed_in()
    url = load_config().database_url
    guard = downloads.one_download()
    session_id = downloads.browser_session_id()
    drawn_at = downloads.drawn(session_id)

    def logged() -> bytes:
        made = body()
        if guard is not None:
            guard.made(session_id=session_id, drawn_at=drawn_at, body=made, file_name=file_name,
                       mime=mime)  # fmt: skip
        auth.log_access(url=url, staff_id=staff.id, action=AccessAction.EXPORT,
                        detail=file_name, now=utc_now())  # fmt: skip
        return made

    st.download_button(
        label,
        data=logged,
        file_name=file_name,
        mime=mime,
        on_click="ignore",
        **kwargs,
    )
