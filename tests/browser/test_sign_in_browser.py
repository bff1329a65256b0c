"""Sign-in end to end: Chromium, a real server and a real OpenID Connect provider (issue 11).

The provider is ``oidc-provider-mock`` on the loopback address; the server reads an
``[auth]`` secrets file of the test's own (``start_server(secrets=...)``) and serves a
real (not demo) clinic. Before sign-in no page's HTML or websocket traffic carries a
patient's name or MRN; a nurse signs in, checks a patient in and the history names
him; he signs out through the provider; a stranger is refused; a lead sees
Throughput and a nurse does not; the wall opens for a registered display only, and
blanks when its token is revoked.

One provider and one server for the module; every test has its own browser context
(its own cookies, so its own sign-in). One host, 127.0.0.1, everywhere: the identity
cookie and the provider's redirect must agree on it.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from ketadash.auth import AccessAction, register_display, revoke_display
from ketadash.clock import utc_now
from ketadash.db import get_engine, read_session, write_session
from ketadash.models import AccessLog, SessionStatus, StatusChange, TreatmentSession
from ketadash.screens import SCREENS, THROUGHPUT, TODAY, WALL
from tests.browser.conftest import (
    BACKEND_COOKIE,
    SCREEN,
    ConsoleWatch,
    assert_no_page_errors,
    find_free_port,
    screenshot,
    start_proxy,
    start_server,
    wait_for_app_idle,
)
from tests.conftest import skip_or_fail
from tests.utils.factories import (
    LEAD_EMAIL,
    NURSE_EMAIL,
    OTHER_NURSE_EMAIL,
    ClinicIds,
    make_clinic,
    make_patient,
    make_session,
)

pytestmark = [
    pytest.mark.browser,
    # The provider runs in this process, on Authlib APIs Authlib itself has deprecated.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*"),
    pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning"),
]

HOST = "127.0.0.1"
STRANGER_EMAIL = "stranger@elsewhere.test"
# Names nothing else on a page could contain by chance, so finding one means a leak.
CHECK_IN_NAME = ("Alexandrina", "Quennell")
CHECK_IN_MRN = "MRN-90417"
RECOVERY_NAME = ("Beatrix", "Lundqvist")
RECOVERY_MRN = "MRN-55302"
RECOVERY_ALIAS = "Blue Heron"
PERSONAL = (*CHECK_IN_NAME, CHECK_IN_MRN, *RECOVERY_NAME, RECOVERY_MRN)
STAFF_SCREENS = [screen for screen in SCREENS if not screen.public]
# The wall refreshes every 5 s; a revoked token blanks it at the next refresh.
WALL_BLANK_WAIT_MS = 15_000
# The provider's own pages (sign-in form, end session) ask for a favicon it has not got.
PROVIDER_NOISE = re.compile(r"favicon\.ico")


@dataclass(frozen=True)
class SignInClinic:
    url: str
    ids: ClinicIds
    check_in_session: int


@dataclass
class Capture:
    """A page's websocket frames as they arrive (binary protobuf: searched as bytes)."""

    frames: list[bytes] = field(default_factory=list)

    def on_socket(self, socket) -> None:
        socket.on("framereceived", self._on_frame)

    def _on_frame(self, payload) -> None:
        self.frames.append(payload if isinstance(payload, bytes) else payload.encode())

    def carries(self, text: str) -> bool:
        return any(text.encode() in frame for frame in self.frames)


def _midday_time_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now: the sessions below (from 90 minutes
    ago) are then on the site's today whenever the tests run."""
    hours_ahead = 12 - now.hour  # from -11 to +12, all of them Etc/GMT zones
    return f"Etc/GMT{-hours_ahead:+d}"  # the Etc/GMT sign is inverted: GMT-5 is UTC+5


@pytest.fixture(scope="module")
def clinic(sqlite_template, tmp_path_factory) -> SignInClinic:
    """A real clinic (no demo mark): one patient expected now, one in recovery with an alias."""
    path = tmp_path_factory.mktemp("sign-in-db") / "clinic.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    now = utc_now()
    ids = make_clinic(url=url, time_zone=_midday_time_zone(now))
    expected = make_patient(
        url=url,
        mrn=CHECK_IN_MRN,
        first=CHECK_IN_NAME[0],
        last=CHECK_IN_NAME[1],
        site_id=ids.site_id,
    )
    resting = make_patient(
        url=url,
        mrn=RECOVERY_MRN,
        first=RECOVERY_NAME[0],
        last=RECOVERY_NAME[1],
        alias=RECOVERY_ALIAS,
        site_id=ids.site_id,
    )
    check_in_session = make_session(
        url=url, clinic=ids, patient_id=expected, scheduled_start=now - timedelta(minutes=10)
    )
    recovery_session = make_session(
        url=url,
        clinic=ids,
        patient_id=resting,
        chair_index=1,
        scheduled_start=now - timedelta(minutes=90),
    )
    with write_session(url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == recovery_session)
            .values(
                status=SessionStatus.RECOVERY,
                checked_in_at=now - timedelta(minutes=85),
                infusion_started_at=now - timedelta(minutes=70),
                infusion_ended_at=now - timedelta(minutes=30),
            )
        )
    # The server opens the file itself; keep no connection to it here.
    get_engine(url).dispose()
    return SignInClinic(url=url, ids=ids, check_in_session=check_in_session)


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """An OpenID Connect provider on the loopback address; its base URL."""
    try:
        from oidc_provider_mock import User, run_server_in_thread
    except ImportError:
        skip_or_fail("the oidc-provider-mock package is not installed (requirements-dev.txt)")
    # Any e-mail typed into its form signs in as that e-mail; the names are for show.
    users = [
        User(sub=NURSE_EMAIL, claims={"email": NURSE_EMAIL, "name": "Dana Reyes"}),
        User(sub=OTHER_NURSE_EMAIL, claims={"email": OTHER_NURSE_EMAIL, "name": "Sam Okafor"}),
        User(sub=LEAD_EMAIL, claims={"email": LEAD_EMAIL, "name": "Lee Park"}),
        User(sub=STRANGER_EMAIL, claims={"email": STRANGER_EMAIL, "name": "Stranger"}),
    ]
    # Werkzeug logs every request of the provider; the test output has no use for them.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    try:
        with run_server_in_thread(port=0, user_claims=users) as server:
            yield f"http://{HOST}:{server.server_port}"
    finally:
        werkzeug.setLevel(level)


@pytest.fixture(scope="module")
def server(clinic, provider, tmp_path_factory):
    """The dashboard on the clinic, with the provider configured under ``[auth]``."""
    folder = tmp_path_factory.mktemp("sign-in-server")
    port = find_free_port()
    secrets_file = folder / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://{HOST}:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "ketadash-browser-tests"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    started = start_server(database_url=clinic.url, log_dir=folder, port=port, secrets=secrets_file)
    yield started
    started.stop()


@contextmanager
def browser_page(browser, *, capture: Capture | None = None):
    """A page in a browser context of its own (no cookies: nobody signed in).

    Fails the test on a console error or an exception shown, as the ``page`` fixture.
    """
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch = ConsoleWatch()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    if capture is not None:
        page.on("websocket", capture.on_socket)
    try:
        yield page
        assert_no_page_errors(page)
    finally:
        context.close()
    errors = [e for e in watch.errors if not PROVIDER_NOISE.search(e)]
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def open_screen(page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}{path}")
    wait_for_app_idle(page)


def sign_in(page, base_url: str, email: str, *, path: str = "/") -> None:
    """Sign in at the provider as ``email``, from ``path``'s sign-in screen."""
    from playwright.sync_api import expect

    open_screen(page, base_url, path)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize?**")
    page.locator('input[name="sub"]').fill(email)
    page.get_by_role("button", name="Authorize", exact=True).click()
    # The provider sends the browser to /oauth2callback, which sends it on to the app.
    page.wait_for_url(f"{base_url}/")
    wait_for_app_idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)


def sign_out(page, base_url: str, *, in_sidebar: bool = True) -> None:
    """Sign out, through the provider's end-session page, back to the sign-in screen."""
    from playwright.sync_api import expect

    where = sidebar(page) if in_sidebar else page.get_by_test_id("stMain")
    where.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/oauth2/end_session?**")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{base_url}/")
    wait_for_app_idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def assert_nothing_personal(text: str, where: str) -> None:
    leaked = [s for s in (*PERSONAL, RECOVERY_ALIAS) if s in text]
    assert not leaked, f"{where} carries patient data: {leaked}"


def _choose(page, label: str, option: re.Pattern) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option).first.click()
    wait_for_app_idle(page)


# --- before sign-in ------------------------------------------------------------------------


def test_before_sign_in_no_screen_sends_a_patient(browser, server):
    from playwright.sync_api import expect

    capture = Capture()
    with browser_page(browser, capture=capture) as page:
        # Each address loaded anew: a new document, a new websocket, a new session.
        for screen in STAFF_SCREENS:
            capture.frames.clear()
            open_screen(page, server.base_url, screen.path)
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            if screen is TODAY:
                screenshot(page, "sign-in")
            assert_nothing_personal(page.content(), f"the HTML of {screen.path}")
            assert capture.frames, f"no websocket traffic captured on {screen.path}"
            for personal in (*PERSONAL, RECOVERY_ALIAS):
                assert not capture.carries(personal), f"websocket of {screen.path}: {personal}"

        # The same capture finds the patients once someone has signed in: the check
        # above looks where patient data travels.
        capture.frames.clear()
        sign_in(page, server.base_url, NURSE_EMAIL, path=TODAY.path)
        open_screen(page, server.base_url, TODAY.path)
        expect(page.locator(".kd-lane").first).to_be_visible()
        assert capture.carries(CHECK_IN_NAME[1])
        assert capture.carries(RECOVERY_NAME[1])


# --- a nurse's shift -----------------------------------------------------------------------


def test_a_nurse_signs_in_acts_under_his_name_and_signs_out(browser, server, clinic):
    from playwright.sync_api import expect

    # The clinic's second nurse: were the page to act as a default person (the demo's
    # first nurse), the history would name someone else.
    with browser_page(browser) as page:
        sign_in(page, server.base_url, OTHER_NURSE_EMAIL, path=TODAY.path)
        expect(sidebar(page)).to_contain_text("Sam Okafor")
        expect(sidebar(page)).to_contain_text("nurse")
        # A nurse's menu has no Throughput, and its address refuses him.
        expect(sidebar(page).get_by_role("link", name=TODAY.title)).to_be_visible()
        expect(sidebar(page).get_by_role("link", name=THROUGHPUT.title)).to_have_count(0)
        open_screen(page, server.base_url, THROUGHPUT.path)
        expect(page.get_by_text("Throughput is for clinic leads")).to_be_visible()

        open_screen(page, server.base_url, TODAY.path)
        name = " ".join(CHECK_IN_NAME)
        _choose(page, "Patient", re.compile(re.escape(name)))
        page.get_by_role("button", name="Check in").click()
        expect(
            page.get_by_test_id("stAlert").filter(has_text=f"{name}: checked in.")
        ).to_be_visible()
        wait_for_app_idle(page)
        page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
        screenshot(page, "sign-in-today")

        # The history names who signed in, not anyone picked on the page.
        with read_session(clinic.url) as db:
            last_change = db.exec(
                select(StatusChange)
                .where(StatusChange.session_id == clinic.check_in_session)
                .order_by(StatusChange.version.desc())
            ).first()
            opened = db.exec(
                select(AccessLog.staff_id).where(
                    AccessLog.session_id == clinic.check_in_session,
                    AccessLog.action == AccessAction.OPEN_PANEL.value,
                )
            ).all()
        assert (last_change.to_status, last_change.staff_id) == (
            SessionStatus.CHECKED_IN,
            clinic.ids.other_nurse_id,
        )
        assert opened == [clinic.ids.other_nurse_id]

        sign_out(page, server.base_url)
        assert_nothing_personal(page.content(), "the HTML after sign-out")
        # The identity cookie is gone: a reload does not sign him back in.
        page.reload()
        wait_for_app_idle(page)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


def test_someone_not_on_the_roster_is_refused(browser, server):
    from playwright.sync_api import expect

    with browser_page(browser) as page:
        sign_in(page, server.base_url, STRANGER_EMAIL, path=TODAY.path)
        expect(page.get_by_text("not on this clinic's staff list")).to_be_visible()
        screenshot(page, "sign-in-refused")
        assert_nothing_personal(page.content(), "the refusal's HTML")
        open_screen(page, server.base_url, TODAY.path)
        expect(page.get_by_text("not on this clinic's staff list")).to_be_visible()
        assert_nothing_personal(page.content(), "the refusal's HTML on /today")
        # The way out, to try another account.
        sign_out(page, server.base_url, in_sidebar=False)


def test_a_lead_sees_throughput(browser, server):
    from playwright.sync_api import expect

    with browser_page(browser) as page:
        sign_in(page, server.base_url, LEAD_EMAIL)
        expect(sidebar(page)).to_contain_text("Lee Park")
        expect(sidebar(page)).to_contain_text("clinic lead")
        link = sidebar(page).get_by_role("link", name=THROUGHPUT.title)
        expect(link).to_be_visible()
        link.click()
        expect(page.get_by_role("heading", name=THROUGHPUT.title).first).to_be_visible()
        wait_for_app_idle(page)
        expect(page.get_by_text("Throughput is for clinic leads")).to_have_count(0)


# --- the wall ------------------------------------------------------------------------------


def test_the_wall_opens_for_a_registered_display_only(browser, server, clinic):
    from playwright.sync_api import expect

    display_id, token = register_display(
        url=clinic.url, site_code="main", name="Recovery TV", now=utc_now()
    )
    heading = "Main Street · Recovery"
    tile = ".kdw-tile"
    capture = Capture()
    with browser_page(browser, capture=capture) as page:
        for address in (WALL.path, f"{WALL.path}?display=not-a-token"):
            capture.frames.clear()
            open_screen(page, server.base_url, address)
            expect(page.get_by_text("This display is not registered")).to_be_visible()
            if address == WALL.path:
                screenshot(page, "wall-not-registered")
            expect(page.get_by_text(heading)).to_have_count(0)
            assert_nothing_personal(page.content(), f"the HTML of {address}")
            assert capture.frames, f"no websocket traffic captured on {address}"
            for personal in (*PERSONAL, RECOVERY_ALIAS):
                assert not capture.carries(personal), f"websocket of {address}: {personal}"

        # Nobody signed in, and the registered display's address opens its site's wall.
        open_screen(page, server.base_url, f"{WALL.path}?display={token}&embed=true")
        expect(page.get_by_text(heading)).to_be_visible()
        expect(page.locator(tile).filter(has_text=RECOVERY_ALIAS)).to_be_visible()
        expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
        assert capture.carries(RECOVERY_ALIAS)

        # Revoked, the open wall goes blank at its next refresh, with no reload.
        revoke_display(url=clinic.url, display_id=display_id, now=utc_now())
        expect(page.get_by_text("This display is not registered")).to_be_visible(
            timeout=WALL_BLANK_WAIT_MS
        )
        expect(page.locator(tile)).to_have_count(0)
        assert_nothing_personal(page.content(), "the revoked wall's HTML")


# --- two server processes, one clinic ------------------------------------------------------


def test_signing_out_through_one_server_signs_out_on_the_other(browser, provider, clinic, tmp_path):
    """Two ``streamlit run`` processes on one database behind nginx, as docs/deployment.md serves
    them: a tab served by the second process, still holding the identity cookie, is
    signed out when the sign-out is made through the first; only the database tells it."""
    from playwright.sync_api import expect

    proxy_port, first_port, second_port = find_free_port(), find_free_port(), find_free_port()
    secrets_file = tmp_path / "secrets.toml"
    # One address for both (the identity cookie names its origin), one cookie secret.
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://{HOST}:{proxy_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "ketadash-browser-tests"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    servers = [
        start_server(database_url=clinic.url, log_dir=tmp_path, port=p, secrets=secrets_file)
        for p in (first_port, second_port)
    ]
    proxy_folder = tmp_path / "nginx"
    proxy_folder.mkdir()
    proxy = start_proxy(backends={"first": first_port, "second": second_port},
                        folder=proxy_folder, port=proxy_port)  # fmt: skip
    try:
        with browser_page(browser) as first:
            sign_in(first, proxy.base_url, NURSE_EMAIL, path=TODAY.path)
            # The same sign-in (its identity cookie) in a tab the second process serves.
            identity = [c for c in first.context.cookies() if c["name"].startswith("_streamlit")]
            other = browser.new_context(viewport=SCREEN)
            other.add_cookies([*identity, {"name": BACKEND_COOKIE, "value": "second",
                                           "url": proxy.base_url}])  # fmt: skip
            second = other.new_page()
            second.set_default_timeout(20_000)
            open_screen(second, proxy.base_url, TODAY.path)
            expect(sidebar(second)).to_contain_text("Dana Reyes")

            sign_out(first, proxy.base_url)
            # The second tab still has the cookie; its next run (a click in its menu)
            # finds the sign-out in the database and signs out through the provider.
            sidebar(second).get_by_role("link", name=TODAY.title).click()
            second.wait_for_url(re.compile(r"/oauth2/end_session\?"), timeout=30_000)
            second.get_by_role("button", name="End session").click()
            second.wait_for_url(f"{proxy.base_url}/")
            wait_for_app_idle(second)
            expect(second.get_by_role("button", name="Sign in")).to_be_visible()
            assert_nothing_personal(second.content(), "the second server's tab after sign-out")
            other.close()
        # nginx logs a websocket when it closes: the second tab's went to the second server.
        assert proxy.websockets_to(second_port) >= 1
    finally:
        proxy.stop()
        for server in servers:
            server.stop()
