"""Issue 21 in Chromium: axe-core on every screen, for each demo person, and the wall.

axe-core (the accessibility engine, bundled by the ``axe-playwright-python`` package of
requirements-dev.txt) runs its WCAG 2.0/2.1 A and AA rules on each screen the demo's
nurse, lead and front desk may open, and on the wall in kiosk mode. A serious or
critical violation fails the test, except Streamlit's own, each named by rule and by
the selector of the element axe points at (docs/accessibility.md).
One server for the module: each person is one browser context walking the screens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ketadash.auth import may_open
from ketadash.models import StaffRole
from ketadash.screens import SCREENS
from tests.browser.conftest import (
    SCREEN,
    ConsoleWatch,
    assert_no_page_errors,
    demo_sign_in_as,
    start_server,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}
PEOPLE = {
    StaffRole.NURSE: "Nurse",
    StaffRole.LEAD: "Clinic lead",
    StaffRole.FRONT_DESK: "Front desk",
}


@dataclass(frozen=True)
class Upstream:
    """A violation in Streamlit's own markup: the rule, the element it is on, the issue."""

    rule: str
    element: str  # a CSS selector the flagged element itself must match
    issue: str


# Streamlit's, not ours (docs/accessibility.md): set aside only for this rule on an
# element matching this selector, so the same rule failing in our markup still fails.
UPSTREAM = (
    # With sections, st.navigation's sidebar menu puts each section's <div> straight
    # inside the <ul>, so the <li>s are not children of a list.
    Upstream(
        rule="list",
        element='ul[data-testid="stSidebarNavItems"]',
        issue="https://github.com/streamlit/streamlit/issues/8399",
    ),
    Upstream(
        rule="listitem",
        element='ul[data-testid="stSidebarNavItems"] > div > li',
        issue="https://github.com/streamlit/streamlit/issues/8399",
    ),
)
IS_ELEMENT = "([target, selector]) => !!document.querySelector(target)?.matches(selector)"


def _serious(results: dict) -> list[dict]:
    return [v for v in results["violations"] if v.get("impact") in FAILING_IMPACTS]


def _ours(page, violations: list[dict]) -> list[str]:
    """The violations left once Streamlit's own are set aside, one line per element."""
    found = []
    for violation in violations:
        for node in violation["nodes"]:
            target = node["target"][-1] if len(node["target"]) == 1 else None
            if target is not None and any(
                u.rule == violation["id"] and page.evaluate(IS_ELEMENT, [target, u.element])
                for u in UPSTREAM
            ):
                continue
            summary = " ".join(node.get("failureSummary", "").splitlines()[-1:]).strip()
            found.append(
                f"{violation['id']} ({violation['impact']}): {summary}: {node['html'][:200]}"
            )
    return found


@pytest.fixture(scope="module")
def axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        from tests.conftest import skip_or_fail

        skip_or_fail("the axe-playwright-python package is not installed (requirements-dev.txt)")
    return Axe()


@pytest.fixture(scope="module")
def server(demo_database_url, tmp_path_factory) -> Iterator:
    started = start_server(
        database_url=demo_database_url, log_dir=tmp_path_factory.mktemp("a11y-logs")
    )
    yield started
    started.stop()


def run_axe(axe, page) -> dict:
    """axe-core's WCAG 2.1 A/AA rules on the page as it stands."""
    results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_21_AA}})
    return results.response


def _settled(page) -> None:
    wait_for_app_idle(page)
    # Charts and data grids draw a moment after the run ends.
    page.wait_for_timeout(800)
    wait_for_app_idle(page)


@pytest.mark.parametrize("role", list(PEOPLE), ids=[r.value for r in PEOPLE])
def test_every_screen_passes_axe_for(role, browser, server, axe):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    watch = ConsoleWatch()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    page.set_default_timeout(30_000)
    found: dict[str, list[str]] = {}
    try:
        page.goto(f"{server.base_url}/")
        wait_for_app_idle(page)
        if role is not StaffRole.NURSE:
            demo_sign_in_as(page, PEOPLE[role])
        for screen in SCREENS:
            if screen.public or not may_open(audience=screen.audience, role=role):
                continue
            page.goto(f"{server.base_url}{screen.path}")
            _settled(page)
            assert_no_page_errors(page)
            ours = _ours(page, _serious(run_axe(axe, page)))
            if ours:
                found[screen.title] = ours
    finally:
        context.close()
    assert not watch.errors, "browser console errors:\n" + "\n".join(watch.errors)
    assert not found, "axe-core, WCAG 2.1 A/AA, serious or critical:\n" + json.dumps(
        found, indent=1
    )


def test_the_kiosk_wall_passes_axe(browser, server, axe):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    try:
        page.goto(f"{server.base_url}/wall?embed=true")
        _settled(page)
        page.locator(".kdw-updated").wait_for()
        ours = _ours(page, _serious(run_axe(axe, page)))
    finally:
        context.close()
    assert not ours, "axe-core on the wall:\n" + "\n".join(ours)
