"""The throughput page under AppTest: a lead reviews the demo clinic."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ketadash.clock import local_today, utc_now
from ketadash.config import DATABASE_URL_VARIABLE
from ketadash.db import get_engine
from ketadash.models import StaffRole
from ketadash.ui.actions import after_write
from ketadash.ui.auth import DEMO_ROLE_KEY
from tests.pages.conftest import demo_sign_in, sign_in

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> str:
    from ketadash.demo import build_demo_clinic

    url = f"sqlite:///{tmp_path_factory.mktemp('throughput') / 'demo.sqlite'}"
    build_demo_clinic(url=url, patients=150, history_days=120, now=utc_now())
    get_engine(url).dispose()
    return url


@pytest.fixture(autouse=True)
def on_the_demo(monkeypatch, demo_url) -> Iterator[None]:
    monkeypatch.setenv(DATABASE_URL_VARIABLE, demo_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def _open(*, email: str | None = None) -> AppTest:
    """Throughput as a lead sees it: the demo's lead, or the clinic lead signed in by e-mail."""
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    if email is None:
        demo_sign_in(at).session_state[DEMO_ROLE_KEY] = StaffRole.LEAD
    else:
        sign_in(at, email)
    at.run()
    at.switch_page("pages/throughput.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_headline_figures_with_the_change_against_the_period_before():
    at = _open()
    labels = [metric.label for metric in at.metric]
    for name in (
        "Infusions completed",
        "New patients starting a series",
        "Boosters given",
        "No-show rate",
        "Late-cancel rate",
        "Scheduled chair use",
        "Actual chair use",
        "On-time starts",
        "Median cycle time",
    ):
        assert name in labels
    completed = next(m for m in at.metric if m.label == "Infusions completed")
    assert int(completed.value.replace(",", "")) > 0
    assert completed.delta  # the change against the previous 4 weeks


def test_charts_have_plain_titles_and_tables_download():
    at = _open()
    specs = " ".join(chart.proto.spec for chart in at.get("vega_lite_chart"))
    for title in (
        "Completed infusions per day, by kind and route",
        "Share of chairs in use, by weekday and hour",
        "Median minutes in each part of the visit, by week",
        "No-shows by weekday",
        "No-shows by booked hour",
        "No-shows by how far ahead the visit was booked",
        "boosters that fell due",
    ):
        assert title in specs
    downloads = [button.proto.label for button in at.get("download_button")]
    assert "Download every visit with its phase times (CSV)" in downloads
    assert "Download the parts of the visit (CSV)" in downloads
    assert "Download no-shows by lead time (CSV)" in downloads
    assert "Download boosters that fell due (CSV)" in downloads
    assert len(at.dataframe) >= 5


def test_booster_flags_turned_into_bookings():
    at = _open()
    in_time = next(m for m in at.metric if m.label == "Boosters booked in time")
    assert in_time.value.endswith("%")
    captions = " ".join(c.value for c in at.caption)
    assert "boosters fell due in the period" in captions
    assert "Booster flags turned into bookings" in " ".join(m.value for m in at.markdown)


def test_a_year_for_one_site():
    at = _open()
    at.selectbox(key="throughput_period").set_value("Last 52 weeks").run()
    at.selectbox(key="throughput_site").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "364 days up to today" in " ".join(m.value for m in at.markdown)
    assert len(at.get("vega_lite_chart")) >= 5


def test_a_nurse_save_keeps_the_leads_figures(monkeypatch):
    """Today's write clears the monitoring room's caches; the lead's figures stay."""
    from ketadash.ui import live
    from ketadash.ui import throughput as ui

    at = _open()
    computed = []

    def counting(original):
        def count(**kwargs):
            computed.append(original.__name__)
            return original(**kwargs)

        return count

    for name in ("throughput_report", "booster_follow_up"):
        monkeypatch.setattr(ui, name, counting(getattr(ui, name)))
    after_write()  # what Today runs after every save, outside a page: every site's day
    live.clear_site_day(
        url=os.environ[DATABASE_URL_VARIABLE],
        site_id=1,
        day=local_today("America/New_York", now=utc_now()),
    )
    at.run()
    assert not at.exception
    assert computed == []
    # They are the period scope's reads, which a write never clears; they expire.
    assert ui.cached_report.scope is live.Scope.PERIOD
    assert ui.cached_booster_follow_up.scope is live.Scope.PERIOD
    ui.cached_report.clear()
    ui.cached_booster_follow_up.clear()
    at.run()
    assert computed == ["throughput_report", "booster_follow_up"]


def test_chosen_dates():
    at = _open()
    at.selectbox(key="throughput_period").set_value("Choose dates").run()
    assert not at.exception
    assert at.date_input(key="throughput_dates").value


def test_a_clinic_without_visits_shows_empty_figures(monkeypatch, sqlite_url):
    from tests.utils.factories import LEAD_EMAIL, make_clinic

    make_clinic(url=sqlite_url)
    monkeypatch.setenv(DATABASE_URL_VARIABLE, sqlite_url)
    at = _open(email=LEAD_EMAIL)
    completed = next(m for m in at.metric if m.label == "Infusions completed")
    assert completed.value == "0"
    assert next(m for m in at.metric if m.label == "No-show rate").value == "–"
    assert next(m for m in at.metric if m.label == "Boosters booked in time").value == "–"
    assert any("No infusion was completed" in info.value for info in at.info)
    assert any("No booster fell due" in info.value for info in at.info)
