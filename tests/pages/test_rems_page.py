"""The REMS forms page under AppTest: the lead's list with the days left, and who may open it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ketadash.clock import utc_now
from ketadash.db import write_session
from ketadash.models import Route, Staff, StaffRole
from ketadash.models import SessionStatus as S
from tests.pages.conftest import sign_in
from tests.utils.factories import (
    FRONT_DESK_EMAIL,
    LEAD_EMAIL,
    make_clinic,
    make_patient,
    make_session,
)

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    st.cache_data.clear()
    clinic = make_clinic(url=sqlite_url)
    now = utc_now()
    for mrn, first, days_ago in (("E1", "Ezra", 2), ("E2", "Fay", 9)):
        patient = make_patient(url=sqlite_url, mrn=mrn, first=first, last="Tester")
        treated = now - timedelta(days=days_ago)
        make_session(url=sqlite_url, clinic=clinic, patient_id=patient, scheduled_start=treated,
                     route=Route.ESKETAMINE, status=S.DISCHARGED, infusion_started_at=treated,
                     chair_index=days_ago % 6)  # fmt: skip
    with write_session(sqlite_url) as db:
        db.add(Staff(name="Robin Desk", role=StaffRole.FRONT_DESK, site_id=clinic.site_id,
                     email=FRONT_DESK_EMAIL))  # fmt: skip
    return sqlite_url


def _open(email: str) -> AppTest:
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), email)
    at.switch_page("pages/rems.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_lead_sees_the_forms_not_submitted_with_the_days_left(clinic_url):
    at = _open(LEAD_EMAIL)
    (table,) = at.dataframe
    rows = table.value.to_dict("records")
    assert [(r["Patient"], r["Days left"], r["Form"]) for r in rows] == [
        ("Fay Tester", -2, "Overdue"),
        ("Ezra Tester", 5, "Not started"),
    ]
    assert "Not submitted yet (2)" in [s.value for s in at.subheader]


def test_the_front_desk_does_not_open_the_rems_forms(clinic_url):
    at = _open(FRONT_DESK_EMAIL)
    assert not at.dataframe
    assert any("REMS forms is for" in w.value for w in at.warning), [w.value for w in at.warning]
