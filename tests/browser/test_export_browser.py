"""A download in Chromium: made at the click, logged, and its address fetched only once.

Streamlit serves a download's file at ``/media/<id>.csv`` without asking who is there.
The address the browser was given must answer nothing to a second fetch, without the
sign-in's cookie before sign-out or after it; each click is one row in the access log.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select

from ketadash.auth import AccessAction
from ketadash.clock import utc_now
from ketadash.db import get_engine
from ketadash.models import AccessLog
from tests.browser.conftest import wait_for_app_idle
from tests.utils.factories import mark_as_demo
from tests.utils.relief import make_open_clinic, make_relief_patient

pytestmark = pytest.mark.browser


@pytest.fixture
def clinic_with_a_worklist(sqlite_url) -> str:
    now = utc_now()
    clinic = make_open_clinic(url=sqlite_url, now=now, chairs=2)
    make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn="KD-000101", relief=20, episodes=5,
        days_since_last=24, first="Rita", last="Quinn",
    )  # fmt: skip
    mark_as_demo(sqlite_url)  # signed in as the demo's nurse
    get_engine(sqlite_url).dispose()
    return sqlite_url


def _exports(url: str) -> int:
    with get_engine(url).connect() as connection:
        query = select(func.count()).where(AccessLog.action == AccessAction.EXPORT.value)
        return connection.execute(query).scalar_one()


def _fetch_without_cookie(address: str) -> int:
    """The HTTP status of a plain GET of ``address``: no cookie, no browser session."""
    try:
        with urllib.request.urlopen(address, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _download(page) -> tuple[str, str]:
    with page.expect_download() as started:
        page.get_by_role("button", name="Download CSV").click()
    download = started.value
    assert download.failure() is None, download.failure()
    return download.url, download.path().read_text()


def test_a_download_is_served_once_and_every_click_is_logged(
    clinic_with_a_worklist, fresh_server, page
):
    from playwright.sync_api import expect

    url = clinic_with_a_worklist
    server = fresh_server(url)
    page.goto(f"{server.base_url}/boosters")
    wait_for_app_idle(page)
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
    assert _exports(url) == 0

    address, body = _download(page)
    assert "/media/" in address
    assert "KD-000101" in body
    assert _exports(url) == 1
    assert _fetch_without_cookie(address) == 404

    again, body_again = _download(page)
    assert body_again == body
    assert _exports(url) == 2
    assert _fetch_without_cookie(again) == 404

    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    wait_for_app_idle(page)
    assert _fetch_without_cookie(address) == 404
    assert _fetch_without_cookie(again) == 404
    assert _exports(url) == 2
