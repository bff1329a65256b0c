"""The driver's page (``/ride?link=``) and the Recovery panel that makes its link, under AppTest."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from ketadash.clock import utc_now
from ketadash.db import DatabaseUnavailable, write_session
from ketadash.driver_link import load_driver_link, make_driver_link, revoke_driver_link
from ketadash.models import Patient, Site, TreatmentSession
from ketadash.models import SessionStatus as S
from tests.pages.conftest import sign_in
from tests.utils.factories import NURSE_EMAIL, make_clinic, make_patient, make_session

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")
# Everything that would name the patient or their place in the room.
PERSONAL = ("Alex", "Morgan", "MRN-7", "1961", "617-555-0142", "Chair 3", "Blue Heron")


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    st.cache_data.clear()
    return sqlite_url


@pytest.fixture
def visit(clinic_url):
    """Alex Morgan (MRN-7, born 1961, phone 617-555-0142, alias Blue Heron) in Chair 3,
    in recovery since ten minutes ago, at Main Street (12 Main Street, 617-555-0100)."""
    clinic = make_clinic(url=clinic_url)
    now = utc_now()
    patient = make_patient(url=clinic_url, mrn="MRN-7", first="Alex", last="Morgan",
                           alias="Blue Heron")  # fmt: skip
    session_id = make_session(
        url=clinic_url, clinic=clinic, patient_id=patient,
        scheduled_start=now - timedelta(minutes=70), chair_index=2, status=S.RECOVERY,
        checked_in_at=now - timedelta(minutes=75),
        infusion_started_at=now - timedelta(minutes=50),
        infusion_ended_at=now - timedelta(minutes=10),
    )  # fmt: skip
    with write_session(clinic_url) as db:
        db.execute(
            update(Site)
            .where(Site.id == clinic.site_id)
            .values(address="12 Main Street", phone="617-555-0100")
        )
        db.execute(
            update(Patient)
            .where(Patient.id == patient)
            .values(date_of_birth=date(1961, 3, 4), phone="617-555-0142")
        )
    return clinic, session_id


def _open_ride(token: str | None) -> AppTest:
    """The page as a driver's phone opens it: nobody signed in, the link in the address."""
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), None)
    at.switch_page("pages/ride.py")
    if token is not None:
        at.query_params["link"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def _everything(at: AppTest) -> str:
    return " ".join(
        str(e.value)
        for e in [*at.get("html"), *at.markdown, *at.title, *at.warning, *at.error, *at.text]
    )


def test_the_driver_sees_the_clinic_and_ready_around_and_nothing_personal(visit, clinic_url):
    clinic, session_id = visit
    token = make_driver_link(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                             now=utc_now())  # fmt: skip
    at = _open_ride(token)
    shown = _everything(at)
    assert "<bdi>Main Street</bdi>" in shown
    assert "<bdi>12 Main Street</bdi>" in shown and 'href="tel:6175550100"' in shown
    assert re.search(r"In treatment, ready around \d\d:\d\d", shown), shown
    for personal in PERSONAL:
        assert personal not in shown, personal
    # Nothing to type or click, and no menu: the driver has nowhere else to go.
    assert not at.text_input and not at.button and not at.selectbox
    assert load_driver_link(url=clinic_url, session_id=session_id).first_opened_at is not None


def test_the_page_follows_the_visit_and_ends_with_it(visit, clinic_url):
    clinic, session_id = visit
    token = make_driver_link(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                             now=utc_now())  # fmt: skip
    at = _open_ride(token)
    for values, words in (
        ({"status": S.READY, "ready_at": utc_now()}, "Ready now"),
        ({"status": S.DISCHARGED, "discharged_at": utc_now()}, "This link has expired"),
    ):
        with write_session(clinic_url) as db:
            db.execute(
                update(TreatmentSession).where(TreatmentSession.id == session_id).values(**values)
            )
        at.run()
        assert words in _everything(at)


def test_a_revoked_link_says_so_at_the_next_refresh(visit, clinic_url):
    clinic, session_id = visit
    token = make_driver_link(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                             now=utc_now())  # fmt: skip
    at = _open_ride(token)
    assert "In treatment" in _everything(at)
    revoke_driver_link(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                       now=utc_now())  # fmt: skip
    at.run()
    shown = _everything(at)
    assert "This link has been withdrawn" in shown and "In treatment" not in shown


@pytest.mark.parametrize("given", [None, "", "not-a-token", "x" * 43])
def test_a_bad_link_shows_nothing_of_any_visit(visit, given):
    shown = _everything(_open_ride(given))
    assert "This link does not work" in shown
    for personal in (*PERSONAL, "Main Street", "617-555-0100"):
        assert personal not in shown, personal


def test_a_nurse_makes_shows_and_revokes_the_link_on_recovery(visit, clinic_url):
    _clinic, session_id = visit
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), NURSE_EMAIL)
    at.run()
    at.switch_page("pages/recovery.py")
    at.run()
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    assert any("No driver's link yet." in t.value for t in at.text)
    next(b for b in at.button if b.label == "Make a link").click().run()
    assert not at.exception, at.exception
    link, message = (c.value for c in at.code)
    token = re.fullmatch(r"http://.*/ride\?link=([\w-]+)", link).group(1)
    assert link in message and "617-555-0100" in message
    for personal in PERSONAL:
        assert personal not in message, personal
    # The driver opens it: the nurse sees when.
    assert "In treatment" in _everything(_open_ride(token))
    at.run()
    assert any("driver opened at" in t.value for t in at.text)
    next(b for b in at.button if b.label == "Revoke").click().run()
    assert not at.exception, at.exception
    assert any("revoked" in t.value for t in at.text)
    assert not at.code
    assert "withdrawn" in _everything(_open_ride(token))


def test_an_outage_keeps_the_last_picture_and_says_since_when(visit, clinic_url, monkeypatch):
    import ketadash.ui.driver as driver

    clinic, session_id = visit
    token = make_driver_link(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                             now=utc_now())  # fmt: skip
    at = _open_ride(token)
    assert "Not updated since" not in _everything(at)

    def unreachable(**_):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(driver, "open_driver_link", unreachable)
    at.run()
    assert not at.exception, at.exception
    shown = _everything(at)
    assert "Not updated since" in shown and "In treatment, ready around" in shown
    assert not at.error, "the driver sees no error box"


def test_a_page_opened_during_an_outage_asks_the_driver_to_call(visit, monkeypatch):
    import ketadash.ui.driver as driver

    def unreachable(**_):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(driver, "open_driver_link", unreachable)
    shown = _everything(_open_ride("any-token"))
    assert "Please call the clinic" in shown and "tries again by itself" in shown


# --- reached from outside the clinic network ----------------------------------------------


def _make_link_on_recovery(at: AppTest, session_id: int) -> AppTest:
    at.run()
    at.switch_page("pages/recovery.py")
    at.run()
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    next(b for b in at.button if b.label == "Make a link").click().run()
    assert not at.exception, at.exception
    return at


def test_links_are_made_on_the_clinic_public_address_when_it_has_one(visit, monkeypatch):
    _clinic, session_id = visit
    monkeypatch.setenv("KETADASH_PUBLIC_URL", "https://rides.clinic.example/ketadash/")
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), NURSE_EMAIL)
    link, message = (c.value for c in _make_link_on_recovery(at, session_id).code)
    assert re.fullmatch(r"https://rides\.clinic\.example/ketadash/ride\?link=[\w-]+", link)
    assert link in message


def test_a_public_address_a_phone_cannot_open_is_said_and_no_link_is_shown(visit, monkeypatch):
    _clinic, session_id = visit
    monkeypatch.setenv("KETADASH_PUBLIC_URL", "rides.clinic.example")
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), NURSE_EMAIL)
    at = _make_link_on_recovery(at, session_id)
    assert not at.code
    assert any("KETADASH_PUBLIC_URL" in e.value and "not a web address" in e.value
               for e in at.error)  # fmt: skip


def test_a_driver_page_only_server_runs_no_staff_screen(visit, clinic_url, monkeypatch):
    """The process facing the internet registers the driver's page and a page saying so:
    a staff screen's script asked for by name is not there to run."""
    clinic, session_id = visit
    monkeypatch.setenv("KETADASH_DRIVER_PAGE_ONLY", "1")
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), NURSE_EMAIL)
    at.run()
    assert not at.exception, at.exception
    shown = _everything(at)
    assert "Open the link in the clinic's text message" in shown
    assert not at.sidebar.button, "no sign-out, no menu, no site picker"
    for personal in PERSONAL:
        assert personal not in shown, personal
    with pytest.raises(Exception, match="Could not find a navigation page"):
        at.switch_page("pages/today.py").run()
    token = make_driver_link(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                             now=utc_now())  # fmt: skip
    assert "In treatment" in _everything(_open_ride(token))
