"""Issue 6 item 20 in Chromium: the board at its edges, on a 1920×1080 screen.

Sixty chairs, most of them busy and many alerts: the chair strip and the alerts
must leave the first card on the screen. A name with no spaces wraps inside its
card instead of running across the next lanes.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from ketadash.clock import utc_now
from ketadash.db import get_engine, write_session
from ketadash.models import SessionStatus, TreatmentSession
from tests.browser.conftest import SCREEN, assert_no_page_errors, screenshot, wait_for_app_idle
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = pytest.mark.browser

CHAIRS = 60
LONG_NAME = "Bartholomew" + "x" * 70
# (status, how many): 45 of the 60 chairs in use, 8 patients late (an alert each),
# and every patient under way without vitals yet (more alerts).
LAYOUT = [
    (SessionStatus.INFUSING, 20),
    (SessionStatus.RECOVERY, 10),
    (SessionStatus.CHECKED_IN, 15),
    (SessionStatus.SCHEDULED, 8),
]


@pytest.fixture
def big_clinic(tmp_path, sqlite_template) -> str:
    path = tmp_path / "big.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    clinic = make_clinic(url=url, chairs=CHAIRS)
    mark_as_demo(url)  # signed in as the demo's nurse, Dana Reyes
    now = utc_now()
    chair = 0
    for status, count in LAYOUT:
        for n in range(count):
            first = LONG_NAME if (status, n) == (SessionStatus.INFUSING, 0) else f"Pat{chair}"
            patient = make_patient(
                url=url, mrn=f"M{chair}", first=first, last="Doe", site_id=clinic.site_id
            )
            late = status is SessionStatus.SCHEDULED
            session_id = make_session(
                url=url,
                clinic=clinic,
                patient_id=patient,
                # The late ones take the chairs after the busy ones: those show free.
                chair_index=chair,
                scheduled_start=now - timedelta(minutes=30 if late else 60),
            )
            chair += 1
            if late:
                continue
            with write_session(url) as db:
                row = db.get(TreatmentSession, session_id)
                row.status = status
                row.checked_in_at = now - timedelta(minutes=50)
                if status in (SessionStatus.INFUSING, SessionStatus.RECOVERY):
                    row.infusion_started_at = now - timedelta(minutes=45)
                if status is SessionStatus.RECOVERY:
                    row.infusion_ended_at = now - timedelta(minutes=5)
    get_engine(url).dispose()
    return url


def test_sixty_chairs_leave_the_first_card_on_screen(fresh_server, page, big_clinic):
    from playwright.sync_api import expect

    server = fresh_server(big_clinic)
    page.goto(f"{server.base_url}/today")
    wait_for_app_idle(page)
    first_card = page.locator(".kd-card").first
    expect(first_card).to_be_visible()
    expect(page.locator(".kd-chair.free")).to_contain_text("15 free: Chair")
    expect(page.get_by_text("more alerts")).to_be_visible()
    page.locator('[data-testid="stMain"]').evaluate("main => main.scrollTo(0, 0)")
    screenshot(page, "today-sixty-chairs")

    # The first card's chair, name and dose line (about 100 px) are on the screen.
    top = first_card.bounding_box()["y"]
    assert top + 100 < SCREEN["height"], f"the first card starts at {top:.0f}px"

    # The long name wraps in its own card: nothing sticks out of its lane.
    lane = page.locator('.kd-lane[data-lane="infusing"]')
    card = lane.locator(".kd-card", has_text="Bartholomew")
    expect(card).to_be_visible()
    lane_box, card_box = lane.bounding_box(), card.bounding_box()
    assert card_box["x"] + card_box["width"] <= lane_box["x"] + lane_box["width"] + 1
    overflowing = card.evaluate(
        "card => [...card.querySelectorAll('*')].some(e => e.scrollWidth > card.clientWidth + 1)"
    )
    assert not overflowing
    assert_no_page_errors(page)
