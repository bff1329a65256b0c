"""Issue 21 in Chromium: the screens fit a laptop, a 1080p monitor and a tablet.

Today, Recovery and Boosters read without scrolling sideways at 1366×768 and
1920×1080 (nor does any table on them hide columns behind a scroll bar); on a
10-inch tablet held landscape (1280×800) Today's panel comes below the lanes.
A colour-blind simulation of Today (deuteranopia, protanopia) is saved for a look.
The pictures (small PNGs) go to artifacts/screenshots/; with KETADASH_DOCS_SCREENSHOTS=1
they also replace the docs' in docs/screenshots/ (a test run leaves the tree clean).
One server for the module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ketadash.config import PROJECT_ROOT
from tests.browser.conftest import (
    SCREENSHOT_DIR,
    ConsoleWatch,
    assert_no_page_errors,
    start_server,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

DOCS_SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
DOCS_VARIABLE = "KETADASH_DOCS_SCREENSHOTS"
LAPTOP = {"width": 1366, "height": 768}
MONITOR = {"width": 1920, "height": 1080}
TABLET = {"width": 1280, "height": 800}
SCREENS = ("today", "recovery", "boosters")

# How the page and each table overflow sideways (0: they fit). A table (st.dataframe) is
# a canvas in a scroller of its own; its hidden columns are the scroller's overflow.
SIDEWAYS = """() => {
  const over = e => e.scrollWidth - e.clientWidth;
  const main = document.querySelector('[data-testid="stMain"]');
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
    .filter(s => s.offsetParent !== null).map(over);
  return {page: over(document.documentElement), main: main ? over(main) : 0, tables};
}"""

# Colour-vision deficiency as SVG colour matrices (Machado, Oliveira and Fernandes 2009,
# severity 1.0), applied to the whole page by a CSS filter.
SIMULATIONS = {
    "deuteranopia": "0.367 0.861 -0.228 0 0  0.280 0.673 0.047 0 0  -0.012 0.043 0.969 0 0"
    "  0 0 0 1 0",
    "protanopia": "0.152 1.053 -0.205 0 0  0.115 0.786 0.099 0 0  -0.004 -0.048 1.052 0 0"
    "  0 0 0 1 0",
}


@pytest.fixture(scope="module")
def server(demo_database_url, tmp_path_factory) -> Iterator:
    started = start_server(
        database_url=demo_database_url, log_dir=tmp_path_factory.mktemp("sizes-logs")
    )
    yield started
    started.stop()


@pytest.fixture
def page_at(browser) -> Iterator:
    """``page_at(viewport)``: a page of its own size; console errors fail the test."""
    contexts, watch = [], ConsoleWatch()

    def open_page(viewport: dict):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        page.set_default_timeout(30_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not watch.errors, "browser console errors:\n" + "\n".join(watch.errors)


def _open(page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}/{path}")
    wait_for_app_idle(page)
    # Tables and charts draw a moment after the run ends.
    page.wait_for_timeout(800)
    wait_for_app_idle(page)
    assert_no_page_errors(page)


def save_small_png(page, name: str) -> None:
    """The visible screen, halved and reduced to 64 colours: readable, and small in git."""
    from io import BytesIO

    from PIL import Image

    picture = Image.open(BytesIO(page.screenshot()))
    half = picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.LANCZOS)
    small = half.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    folders = [SCREENSHOT_DIR]
    if os.environ.get(DOCS_VARIABLE) == "1":
        folders.append(DOCS_SCREENSHOTS)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        small.save(folder / f"{name}.png", optimize=True)


@pytest.mark.parametrize("viewport", [LAPTOP, MONITOR], ids=["1366x768", "1920x1080"])
def test_no_sideways_scrolling_at(viewport, server, page_at):
    page = page_at(viewport)
    size = f"{viewport['width']}x{viewport['height']}"
    overflowing = {}
    for path in SCREENS:
        _open(page, server.base_url, path)
        sideways = page.evaluate(SIDEWAYS)
        if sideways["page"] > 0 or sideways["main"] > 0 or any(t > 0 for t in sideways["tables"]):
            overflowing[path] = sideways
        page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
        save_small_png(page, f"{path}-{size}")
    assert not overflowing, f"sideways overflow in px at {size}: {overflowing}"


def test_on_a_tablet_todays_panel_comes_below_the_lanes(server, page_at):
    page = page_at(TABLET)
    _open(page, server.base_url, "today")
    lanes = page.locator(".kd-lanes").bounding_box()
    panel = page.get_by_role("heading", name="Act on a session").bounding_box()
    assert panel["y"] >= lanes["y"] + lanes["height"], (lanes, panel)
    # Below, not squeezed: the panel has the width of the board.
    assert panel["width"] > lanes["width"] * 0.6, (lanes, panel)
    assert page.evaluate(SIDEWAYS)["page"] <= 0
    save_small_png(page, "today-1280x800")
    page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 1e6)")
    save_small_png(page, "today-1280x800-panel")


@pytest.mark.parametrize("deficiency", list(SIMULATIONS))
def test_colour_blind_view_of_today_is_saved(deficiency, server, page_at):
    """Taken to be looked at (docs/accessibility.md): every lane and state has its word."""
    page = page_at(MONITOR)
    _open(page, server.base_url, "today")
    page.add_style_tag(
        content="html{filter:url('data:image/svg+xml;utf8,"
        '<svg xmlns="http://www.w3.org/2000/svg"><filter id="f">'
        f'<feColorMatrix type="matrix" values="{SIMULATIONS[deficiency]}"/>'
        "</filter></svg>#f')}"
    )
    page.wait_for_timeout(200)
    save_small_png(page, f"today-{deficiency}")
    # Each lane says its name in words, not only in its colour.
    heads = page.locator(".kd-lane-head").all_inner_texts()
    assert heads and all(any(c.isalpha() for c in head) for head in heads), heads
