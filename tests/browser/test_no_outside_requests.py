"""Issue 6 item 10 in Chromium: names that look like markdown load nothing and link nowhere.

A patient called ``![t](http://127.0.0.1:9/x.png) [c](https://example.org)``,
in a chair, at a site and with a driver of the same kind, is opened, checked in,
given a ride, and changed at another station. Every request the browser makes
is recorded: none may go to a host named in the data (nor anywhere but the app
itself, less Streamlit's own icon font), and no ``<img>`` or ``<a>`` from the
data may exist in the page.
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
from tests.browser.conftest import assert_no_page_errors, screenshot, wait_for_app_idle
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
# Streamlit's own icon font (Material Symbols) comes from Google's font service
# when the theme asks for it; it is the app's chrome, not the data's.
STREAMLIT_OWN = re.compile(r"^fonts\.(googleapis|gstatic)\.com$")
REFRESH_WAIT_MS = 20_000
# The word joiners ``literal`` puts after colons are invisible; compare without them.
_SHOWS_TEXT = """([selector, text]) => [...document.querySelectorAll(selector)].some(
    (element) => element.innerText.replaceAll("\\u2060", "").includes(text))"""


def expect_shown(page, selector: str, text: str, *, timeout: int = 20_000) -> None:
    """Wait until an element matching ``selector`` shows ``text`` (word joiners aside)."""
    page.wait_for_function(_SHOWS_TEXT, arg=[selector, text], timeout=timeout)


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

    from ketadash.lifecycle import Step, take_step

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
    # ... and the browser asked no host but the app (and Streamlit's own font).
    outside = [
        address
        for address in requested
        if urlparse(address).scheme in ("http", "https", "ws", "wss")
        and urlparse(address).netloc != app_host
        and not STREAMLIT_OWN.match(urlparse(address).hostname or "")
    ]
    assert not outside, outside
    named = [a for a in requested if any(host in a for host in HOSTS_IN_THE_DATA)]
    assert not named, named
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.nurse_id, expected_version=3)  # fmt: skip
