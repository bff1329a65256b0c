"""The driver's link in a real browser: typed straight into a fresh server (the legacy
``pages/`` trap), on a phone and a desktop, refreshing itself until it is revoked."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.driver_link import DRIVER_TOKEN_BYTES, make_driver_link, revoke_driver_link
from ketadash.models import Chair, Patient, Staff, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.ui.driver import DRIVER_REFRESH_SECONDS
from tests.browser.conftest import (
    SCREEN,
    SCREENSHOT_DIR,
    assert_no_page_errors,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
HEADLINES = ("In treatment, ready around", "Ready now", "Please call us")


def _a_visit_under_way(url: str) -> tuple[int, int, list[str]]:
    """A demo visit in the building, a nurse of its site, and what would identify the patient."""
    with read_session(url) as db:
        for status in (S.RECOVERY, S.INFUSING, S.CHECKED_IN, S.READY):
            row = db.execute(
                select(TreatmentSession.id, TreatmentSession.site_id, Patient, Chair.name)
                .join(Patient, Patient.id == TreatmentSession.patient_id)
                .join(Chair, Chair.id == TreatmentSession.chair_id)
                .where(TreatmentSession.status == status)
                .order_by(TreatmentSession.scheduled_start.desc())
                .limit(1)
            ).first()
            if row is not None:
                break
        assert row is not None, "the demo should have someone in the building"
        staff_id = db.execute(select(Staff.id).where(Staff.site_id == row.site_id)).scalar()
        patient = row.Patient
        identifiers = [patient.first_name, patient.last_name, patient.mrn, row.name]
        identifiers += [patient.phone] if patient.phone else []
        identifiers += [patient.display_alias] if patient.display_alias else []
        if patient.date_of_birth is not None:
            identifiers.append(patient.date_of_birth.isoformat())
    return row.id, staff_id, identifiers


def test_the_link_typed_into_a_fresh_server_shows_the_status_and_refreshes(
    fresh_server, page, demo_database_url
):
    from playwright.sync_api import expect

    session_id, staff_id, identifiers = _a_visit_under_way(demo_database_url)
    token = make_driver_link(
        url=demo_database_url, session_id=session_id, staff_id=staff_id, now=utc_now()
    )
    assert len(token) >= DRIVER_TOKEN_BYTES
    server = fresh_server()
    page.set_viewport_size(PHONE)
    page.goto(f"{server.base_url}/ride?link={token}")
    wait_for_app_idle(page)
    headline = page.locator(".kdd-headline")
    expect(headline).to_be_visible()
    assert any(headline.inner_text().startswith(words) for words in HEADLINES)
    expect(page.locator(".kdd-phone a")).to_have_attribute("href", "tel:6175550100")
    # The address survived the first visit's rerun into our navigation.
    assert urlparse(page.url).path == "/ride"
    assert parse_qs(urlparse(page.url).query).get("link") == [token]
    # No menu, no sign-in, nothing about the patient anywhere in the page.
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    html = page.content()
    for identifier in identifiers:
        assert identifier not in html, identifier
    assert_no_page_errors(page)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "driver-link-phone.png"))
    page.set_viewport_size(SCREEN)
    screenshot(page, "driver-link-desktop")
    # Left open: revoking it reaches the page at its next refresh, without a reload.
    revoke_driver_link(
        url=demo_database_url, session_id=session_id, staff_id=staff_id, now=utc_now()
    )
    expect(headline).to_have_text(
        "This link has been withdrawn", timeout=(DRIVER_REFRESH_SECONDS + 20) * 1000
    )
    assert_no_page_errors(page)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOT_DIR / "driver-link-phone-withdrawn.png"))


def test_a_made_up_link_says_it_does_not_work(app_server, page):
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)
    page.goto(f"{app_server.base_url}/ride?link=made-up")
    wait_for_app_idle(page)
    expect(page.locator(".kdd-headline")).to_have_text("This link does not work")
    expect(page.locator(".kdd-phone")).to_have_count(0)
    assert_no_page_errors(page)


def test_a_nurse_makes_the_link_and_the_driver_opens_it(app_server, browser, page):
    """On Recovery & rides the nurse makes the link; its address works on a phone, and the
    panel then says when the driver opened it."""
    import re

    from playwright.sync_api import expect

    page.goto(f"{app_server.base_url}/recovery")
    wait_for_app_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
    page.get_by_role(
        "option", name=re.compile(r"— (In recovery|Ready to go|Dose running)")
    ).first.click()
    wait_for_app_idle(page)
    page.get_by_text("Driver's status link").click()
    page.get_by_role("button", name=re.compile("Make a link|New link")).click()
    code = page.locator("[data-testid=stCode] code").first
    expect(code).to_contain_text("/ride?link=")
    link = code.inner_text().strip()
    assert link.startswith(f"{app_server.base_url}/ride?link="), link
    expect(page.locator("[data-testid=stCode] code").nth(1)).to_contain_text(link)
    wait_for_app_idle(page)
    screenshot(page, "driver-link-recovery-panel")

    phone = browser.new_context(viewport=PHONE).new_page()
    phone.goto(link)
    wait_for_app_idle(phone)
    headline = phone.locator(".kdd-headline")
    expect(headline).to_be_visible()
    assert any(headline.inner_text().startswith(words) for words in HEADLINES)
    phone.context.close()

    # The nurse's next look at the panel names the moment the driver opened it.
    page.reload()
    wait_for_app_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
    page.get_by_role(
        "option", name=re.compile(r"— (In recovery|Ready to go|Dose running)")
    ).first.click()
    wait_for_app_idle(page)
    page.get_by_text("Driver's status link").click()
    expect(page.get_by_text(re.compile(r"driver opened at \d\d:\d\d"))).to_be_visible()
    assert_no_page_errors(page)


def test_a_driver_page_only_server_shows_the_link_and_no_staff_screen(
    fresh_server, browser, demo_database_url
):
    """The server facing phones outside the clinic (``KETADASH_DRIVER_PAGE_ONLY``): every
    staff address typed straight into it, the first visitor included (the legacy ``pages/``
    trap), shows only "open the link"; the driver's link itself works."""
    from playwright.sync_api import expect

    session_id, staff_id, identifiers = _a_visit_under_way(demo_database_url)
    token = make_driver_link(
        url=demo_database_url, session_id=session_id, staff_id=staff_id, now=utc_now()
    )
    server = fresh_server(env={"KETADASH_DRIVER_PAGE_ONLY": "1"})
    for path in ("/today", "/", "/wall", "/settings", "/recovery"):
        page = browser.new_context(viewport=PHONE).new_page()
        page.goto(f"{server.base_url}{path}")
        expect(page.locator(".kdd-headline")).to_have_text(
            "Open the link in the clinic's text message", timeout=30_000
        )
        wait_for_app_idle(page)
        expect(page.get_by_test_id("stSidebar")).to_have_count(0)
        html = page.content()
        for identifier in identifiers:
            assert identifier not in html, (path, identifier)
        for staff_words in ("Sign out", "Recovery & rides", "Dose running", "Chair "):
            assert staff_words not in page.inner_text("body"), (path, staff_words)
        page.context.close()
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(f"{server.base_url}/ride?link={token}")
    headline = page.locator(".kdd-headline")
    expect(headline).to_be_visible(timeout=30_000)
    assert any(headline.inner_text().startswith(words) for words in HEADLINES)
    assert_no_page_errors(page)
    page.context.close()
