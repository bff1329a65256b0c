"""Every page answers at its own URL, even as the very first visit to a fresh server.

A fresh server guards Streamlit's legacy multipage trap: with a ``pages/`` folder,
the first deep link used to be served without the entry point (no navigation, no
set-up). See ``ketadash.ui.shell.leave_legacy_multipage_mode``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from ketadash.clinic import list_sites
from ketadash.models import StaffRole
from ketadash.screens import HOME, SCREENS, SECTIONS, WALL, Screen
from tests.browser.conftest import (
    assert_no_page_errors,
    demo_sign_in_as,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

DATABASE_DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


# Labels only our own menu has (the legacy mode would show file names, no sections): the
# demo's lead may open every screen.
OUR_NAVIGATION = [*SECTIONS, *(screen.title for screen in SCREENS)]


def _for_leads_only(screen: Screen) -> bool:
    return StaffRole.NURSE not in screen.audience


def _name(screen: Screen) -> str:
    return screen.url_path or "home"


def assert_screen(page, screen: Screen) -> None:
    """The screen itself, under our menu, at its own address, as the demo's lead sees it."""
    from playwright.sync_api import expect

    wait_for_app_idle(page)
    expect(page.locator("h1", has_text=screen.page_heading)).to_be_visible()
    expect(page.get_by_text("DEMO DATA").first).to_be_visible()
    # A public screen (the recovery-area TV) hides the navigation.
    if not screen.public:
        if _for_leads_only(screen):
            # The demo signs in as a nurse, who is told the screen is not for her.
            expect(page.get_by_text(f"{screen.title} is for clinic leads")).to_be_visible()
        demo_sign_in_as(page, "Clinic lead")
        # Streamlit's legacy pages/ mode would list the entry point's file name.
        expect(page.get_by_test_id("stSidebarNav").get_by_text("dashboard")).to_have_count(0)
        menu = page.get_by_test_id("stSidebar")
        for label in OUR_NAVIGATION:
            expect(menu.get_by_text(label, exact=True).first).to_be_visible()
        if _for_leads_only(screen):
            expect(page.get_by_text(f"{screen.title} is for clinic leads")).to_have_count(0)
    assert urlparse(page.url).path == screen.path
    assert_no_page_errors(page)


@pytest.mark.parametrize("screen", SCREENS, ids=_name)
def test_first_visit_to_fresh_server_shows_the_page(fresh_server, page, screen):
    server = fresh_server()
    page.goto(server.base_url + screen.path)
    assert_screen(page, screen)
    screenshot(page, f"first-visit-{_name(screen)}")


def test_every_path_in_turn_on_one_server(app_server, page):
    for screen in SCREENS:
        page.goto(app_server.base_url + screen.path)
        assert_screen(page, screen)
        screenshot(page, f"visit-{_name(screen)}")


def test_home_links_open_each_page(app_server, page):
    from playwright.sync_api import expect

    page.goto(app_server.base_url + "/")
    wait_for_app_idle(page)
    demo_sign_in_as(page, "Clinic lead")
    for screen in SCREENS:
        if screen.is_home:
            continue
        page.get_by_test_id("stMain").get_by_role("link", name=screen.title).click()
        expect(page.locator("h1", has_text=screen.page_heading)).to_be_visible()
        wait_for_app_idle(page)
        assert urlparse(page.url).path == screen.path
        assert_no_page_errors(page)
        if screen.public:
            # The wall shows no navigation: a TV has nowhere to go.
            page.go_back()
            wait_for_app_idle(page)
            continue
        page.get_by_test_id("stSidebar").get_by_role("link", name=HOME.title).click()
        expect(page.locator("h1", has_text=HOME.page_heading)).to_be_visible()
        wait_for_app_idle(page)


def test_wall_keeps_its_site_from_the_url_on_first_visit(fresh_server, page, demo_database_url):
    from playwright.sync_api import expect
    from sqlmodel import select

    from ketadash.db import read_session
    from ketadash.models import Site

    sites = list_sites(url=demo_database_url)
    assert len(sites) >= 2, "the demo clinic should have two sites"
    second = sites[1]
    with read_session(demo_database_url) as db:
        code = db.get(Site, second.id).code
        assert db.exec(select(Site.code)).all()[0] != code
    server = fresh_server()
    page.goto(f"{server.base_url}{WALL.path}?site={code}")
    wait_for_app_idle(page)
    expect(page.locator("h1", has_text=f"{second.name} · Recovery")).to_be_visible()
    assert parse_qs(urlparse(page.url).query).get("site") == [code]
    assert_no_page_errors(page)
    screenshot(page, "wall-second-site")


def test_database_down_shows_a_plain_message(fresh_server, page):
    from playwright.sync_api import expect

    server = fresh_server(DATABASE_DOWN_URL)
    page.goto(server.base_url + "/today")
    wait_for_app_idle(page)
    expect(page.get_by_text("The clinic database cannot be reached")).to_be_visible()
    expect(page.get_by_text("Technical detail (for IT)")).to_be_visible()
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    assert_no_page_errors(page)
    screenshot(page, "database-down")
