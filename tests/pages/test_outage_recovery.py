"""Issue 6 item 19: a page rides out a database outage and comes back by itself.

AppTest cannot fire ``run_every`` (the self-retrying part is in
tests/browser/test_outage_recovery.py); here: what each run shows.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ketadash import auth as auth_reads
from ketadash import clinic as clinic_reads
from ketadash.clock import utc_now
from ketadash.config import PROJECT_ROOT
from ketadash.db import DatabaseUnavailable
from ketadash.ui import board as board_ui
from ketadash.ui.shell import OUTAGE_RETRY_SECONDS
from tests.utils.factories import make_clinic, make_patient, make_session

DASHBOARD = str(PROJECT_ROOT / "dashboard.py")
DATABASE_DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture(autouse=True)
def fresh_streamlit_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    clinic = make_clinic(url=sqlite_url)
    patient = make_patient(url=sqlite_url, site_id=clinic.site_id)
    make_session(url=sqlite_url, clinic=clinic, patient_id=patient,
                 scheduled_start=utc_now() - timedelta(minutes=5))  # fmt: skip
    return sqlite_url


def _today() -> AppTest:
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.run()
    at.switch_page("pages/today.py").run()
    assert not at.exception, at.exception
    return at


def _updated(at: AppTest) -> str:
    text = " ".join(element.value for element in at.get("html"))
    match = re.search(r"Updated (\d\d:\d\d:\d\d)", text)
    assert match, "no Updated line"
    return match.group(1)


def _take_the_database_away(monkeypatch) -> None:
    def down(**_where):
        raise DatabaseUnavailable("connection refused")

    for module, read in [
        (clinic_reads, "list_sites"),
        (clinic_reads, "is_demo"),
        (clinic_reads, "clinic_name"),
        (clinic_reads, "database_state"),
        (clinic_reads, "stale_demo_marker"),
        (board_ui, "load_board"),
        (auth_reads, "staff_for_email"),
        (auth_reads, "idle_sign_out_minutes"),
    ]:
        monkeypatch.setattr(module, read, down)
    # Every cache has expired, as after a minute or more of outage.
    st.cache_data.clear()


def test_the_outage_page_says_it_retries_by_itself(monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", DATABASE_DOWN_URL)
    at = AppTest.from_file(DASHBOARD, default_timeout=30).run()
    assert not at.exception
    assert "cannot be reached" in at.error[0].value
    assert any(f"Trying again every {OUTAGE_RETRY_SECONDS} s" in c.value for c in at.caption)
    assert any(b.label == "Try again" for b in at.button)


def test_a_long_outage_keeps_the_page_with_its_last_data(clinic_url, monkeypatch):
    at = _today()
    first_read = _updated(at)
    _take_the_database_away(monkeypatch)
    at.run()
    assert not at.exception
    # Not the error page: the title, the site picker, the staff picker and the board
    # (its last data, under a marker) are all still there.
    assert not [e for e in at.expander if e.label.startswith("Technical detail")]
    assert any("Today" in t.value for t in at.title)
    assert at.sidebar.selectbox[0].value is not None
    assert any("Dana Reyes" in m.value for m in at.sidebar.markdown)
    assert "Alex Morgan" in " ".join(h.value for h in at.get("html"))
    marker = " ".join(w.value for w in at.warning)
    assert f"Not updated since {first_read}" in marker
    assert _updated(at) == first_read  # the data's time, not the time of drawing

    monkeypatch.undo()
    monkeypatch.setenv("KETADASH_DATABASE_URL", clinic_url)
    at.run()
    assert not at.exception
    assert not any("Not updated since" in w.value for w in at.warning)
    assert not at.error


def test_updated_is_the_time_the_data_was_read(clinic_url):
    at = _today()
    first = _updated(at)
    time.sleep(1.2)
    at.run()  # a second later, within the board's few seconds of cache: the same reading
    assert _updated(at) == first
