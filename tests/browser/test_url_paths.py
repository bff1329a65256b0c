"""Every page answers at its own URL, even as the very first visit to a fresh server.

A fresh server guards Streamlit's legacy multipage trap: with a ``pages/`` folder,
the first deep link used to be served without the entry point (no navigation, no
set-up). See ``ketadash.ui.shell.leave_legacy_multipage_mode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest

from ketadash.clinic import list_sites
from tests.browser.conftest import (
    assert_no_page_errors,
    screenshot,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

DATABASE_DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@dataclass(frozen=True)
class Screen:
    path: str
    title: str
    navigation: bool = True
    # The label of the home page's link, when it is not the title.
    link: str | None = None


SCREENS = [
    Screen("/", "KetaDash"),
    Screen("/today", "Today"),
    Screen("/recovery", "Recovery & rides"),
    # The wall is a TV: its heading is the site's name and "Recovery", no navigation.
    Screen("/wall", "· Recovery", navigation=False, link="Wall display"),
    Screen("/boosters", "Boosters"),
    Screen("/throughput", "Throughput"),
]
# Labels that only our st.navigation has: the legacy mode would show file names.
OUR_NAVIGATION = ["Monitoring room", "Clinic lead", "Recovery & rides", "Wall display"]


def _name(screen: Screen) -> str:
    return screen.path.strip("/") or "home"


def assert_screen(page, screen: Screen) -> None:
    from playwright.sync_api import expect

    wait_for_app_idle(page)
    expect(page.locator("h1", has_text=screen.title)).to_be_visible()
    expect(page.get_by_text("DEMO DATA")).to_be_visible()
    if screen.navigation:
        navigation = page.get_by_test_id("stSidebarNav")
        expect(navigation).to_be_visible()
        for label in OUR_NAVIGATION:
            expect(navigation.get_by_text(label, exact=True)).to_be_visible()
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
    for screen in SCREENS[1:]:
        page.get_by_test_id("stMain").get_by_role("link", name=screen.link or screen.title).click()
        expect(page.locator("h1", has_text=screen.title)).to_be_visible()
        wait_for_app_idle(page)
        assert urlparse(page.url).path == screen.path
        assert_no_page_errors(page)
        if not screen.navigation:
            # The wall shows no navigation: a TV has nowhere to go.
            page.go_back()
            wait_for_app_idle(page)
            continue
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Home").click()
        expect(page.locator("h1", has_text="KetaDash")).to_be_visible()
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
    page.goto(f"{server.base_url}/wall?site={code}")
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
