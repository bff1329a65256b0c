"""Issue 6 item 10 in Chromium: names that look like markdown load nothing and link nowhere.

A patient called ``![t](http://127.0.0.1:9/x.png) [c](https://example.org)``,
in a chair, at a site and with a driver of the same kind, is opened, checked in,
given a ride, and changed at another station. Every request the browser makes
is recorded: none may go to a host named in the data (nor anywhere but the app
itself), and no ``<img>`` or ``<a>`` from the data may exist in the page.

A clinic network may block outside hosts, and nothing leaves it unasked: every
screen a signed-in person opens asks the app's own server only. (Streamlit 1.67
shows a page's ``:material/...:`` icon as the browser tab's icon by fetching it
from fonts.gstatic.com; this test once let that host through as "Streamlit's own",
so it never saw the request. The menu's icons come from the font bundled with
Streamlit.)
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from urllib.parse import urlparse

import pytest

from ketadash.clock import utc_now
from ketadash.db import get_engine, write_session
from ketadash.models import Chair, Site, Staff
from tests.browser.conftest import (
    assert_no_page_errors,
    demo_sign_in_as,
    screenshot,
    wait_for_app_idle,
)
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = pytest.mark.browser

FIRST = "![t](http://127.0.0.1:9/x.png)"
LAST = "[c](https://example.org)"
PATIENT = f"{FIRST} {LAST}"
CHAIR = "![ch](http://127.0.0.1:9/chair.png)"
SITE = "[site](https://example.org/site)"
NURSE = "![n](http://127.0.0.1:9/nurse.png)"
DRIVER = "![d](http://127.0.0.1:9/driver.png) [call](https://example.org/call)"
HOSTS_IN_THE_DATA = {"127.0.0.1:9", "example.org"}
REFRESH_WAIT_MS = 20_000
# The word joiners ``literal`` puts after colons are invisible; compare without them.
_SHOWS_TEXT = """([selector, text]) => [...document.querySelectorAll(selector)].some(
    (element) => element.innerText.replaceAll("\\u2060", "").includes(text))"""


def expect_shown(page, selector: str, text: str, *, timeout: int = 20_000) -> None:
    """Wait until an element matching ``selector`` shows ``text`` (word joiners aside)."""
    page.wait_for_function(_SHOWS_TEXT, arg=[selector, text], timeout=timeout)


def outside_the_app(requested: list[str], *, app_host: str) -> list[str]:
    """The addresses in ``requested`` on any host but the app's (data: URLs aside)."""
    return [
        address
        for address in requested
        if urlparse(address).scheme in ("http", "https", "ws", "wss")
        and urlparse(address).netloc != app_host
    ]


@pytest.fixture
def hostile_clinic(tmp_path, sqlite_template):
    path = tmp_path / "hostile.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    clinic = make_clinic(url=url)
    mark_as_demo(url)  # signed in as the demo's nurse, Dana Reyes
    with write_session(url) as db:
        db.get(Site, clinic.site_id).name = SITE
        db.get(Chair, clinic.chair_ids[0]).name = CHAIR
        db.get(Staff, clinic.other_nurse_id).name = NURSE
    patient = make_patient(url=url, first=FIRST, last=LAST, site_id=clinic.site_id)
    session_id = make_session(
        url=url, clinic=clinic, patient_id=patient, scheduled_start=utc_now() - timedelta(minutes=5)
    )
    get_engine(url).dispose()
    return url, clinic, session_id


def test_names_from_the_database_load_nothing(fresh_server, page, hostile_clinic):
    from playwright.sync_api import expect

    from ketadash.lifecycle import take_step
    from ketadash.vocabulary import Step

    url, clinic, session_id = hostile_clinic
    server = fresh_server(url)
    app_host = urlparse(server.base_url).netloc
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{server.base_url}/today")
    wait_for_app_idle(page)
    expect(page.locator(".kd-lane-head").first).to_be_visible()

    page.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
    page.get_by_role("option", name=PATIENT).click()
    wait_for_app_idle(page)
    # The panel header shows the names as typed, in one line.
    expect_shown(page, "[data-testid=stMarkdownContainer]", f"{PATIENT} · {CHAIR} · Expected")

    page.get_by_role("button", name="Check in").click()
    expect_shown(page, "[data-testid=stAlert]", f"{PATIENT}: checked in.")
    expect_shown(page, "[data-testid=stToast]", f"{PATIENT}: checked in.")
    wait_for_app_idle(page)

    page.get_by_text("Ride home (none recorded)").click()
    page.get_by_label("Driver's name").fill(DRIVER)
    wait_for_app_idle(page)
    page.get_by_role("button", name="Save ride").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Ride saved.")).to_be_visible()
    expect_shown(page, "[data-testid=stExpander] summary", f"Ride home: {DRIVER}")
    wait_for_app_idle(page)

    # Another station takes the check-in back: the board names the patient in its notice.
    from ketadash.lifecycle import undo_last_step

    undo_last_step(url=url, session_id=session_id, staff_id=clinic.other_nurse_id,
                   expected_version=2, reason="wrong patient at the desk")  # fmt: skip
    expect_shown(
        page,
        "[data-testid=stAlert]",
        f"{PATIENT} was changed at another station",
        timeout=REFRESH_WAIT_MS,
    )
    wait_for_app_idle(page)
    page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
    screenshot(page, "today-hostile-names")
    assert_no_page_errors(page)

    # Nothing from the data became an image or a link ...
    for host in HOSTS_IN_THE_DATA:
        assert page.locator(f'img[src*="{host}"]').count() == 0
        assert page.locator(f'a[href*="{host}"]').count() == 0
    # ... and the browser asked no host but the app.
    assert not outside_the_app(requested, app_host=app_host)
    named = [a for a in requested if any(host in a for host in HOSTS_IN_THE_DATA)]
    assert not named, named
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.nurse_id, expected_version=3)  # fmt: skip


def test_signed_in_screens_ask_no_outside_host(fresh_server, page, hostile_clinic):
    from playwright.sync_api import expect

    from ketadash.screens import SCREENS, WALL

    url, _clinic, _session_id = hostile_clinic
    server = fresh_server(url)
    app_host = urlparse(server.base_url).netloc
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server.base_url}/")
    wait_for_app_idle(page)
    demo_sign_in_as(page, "Clinic lead")  # the lead may open every staff screen
    # Through the menu, in one browser session: the demo's role is kept in it.
    for screen in [s for s in SCREENS if s is not WALL]:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=screen.title).click()
        expect(page).to_have_url(re.compile(f"/{re.escape(screen.url_path)}$"))
        wait_for_app_idle(page)
        # The tab's icon is set after the run; give the browser time to ask for it.
        page.wait_for_timeout(500)
        assert_no_page_errors(page)
    # The sidebar folded and opened again: its button's icon is drawn too.
    page.get_by_test_id("stSidebar").hover()
    page.get_by_test_id("stSidebarCollapseButton").locator("button").click()
    page.get_by_test_id("stExpandSidebarButton").click()
    page.wait_for_timeout(500)
    assert requested, "the browser made no request at all"
    assert not outside_the_app(requested, app_host=app_host)
