"""The wall page under AppTest: public labels only, the site by code, the last picture kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from ketadash.auth import list_displays, register_display, revoke_display
from ketadash.clock import utc_now
from ketadash.db import DatabaseUnavailable, write_session
from ketadash.models import SessionStatus as S
from ketadash.models import SiteSetting, TreatmentSession
from tests.pages.conftest import demo_sign_in, sign_in
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    st.cache_data.clear()
    return sqlite_url


@pytest.fixture
def recovery_area(clinic_url):
    clinic = make_clinic(url=clinic_url)
    now = utc_now()
    people = [
        ("A1", "Alex", "Morgan", "Blue Heron", S.RECOVERY),
        ("B2", "Bea", "Lund", None, S.READY),
        ("C3", "Cy", "Quist", "Oak", S.INFUSING),
    ]
    for index, (mrn, first, last, alias, status) in enumerate(people):
        patient = make_patient(url=clinic_url, mrn=mrn, first=first, last=last, alias=alias)
        session_id = make_session(
            url=clinic_url,
            clinic=clinic,
            patient_id=patient,
            scheduled_start=now - timedelta(minutes=90),
            chair_index=index,
        )
        with write_session(clinic_url) as db:
            db.execute(
                update(TreatmentSession)
                .where(TreatmentSession.id == session_id)
                .values(
                    status=status,
                    infusion_ended_at=now - timedelta(minutes=30),
                    ready_at=now - timedelta(minutes=5) if status == S.READY else None,
                )
            )
    return clinic


def _open_wall(*, token: str | None = None, site: str | None = None, demo: bool = False) -> AppTest:
    """The wall as a TV opens it: nobody signed in, its address carrying its token."""
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    if demo:
        demo_sign_in(at)
    else:
        sign_in(at, None)
    at.switch_page("pages/wall.py")
    if token is not None:
        at.query_params["display"] = token
    if site is not None:
        at.query_params["site"] = site
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def token(recovery_area, clinic_url) -> str:
    """A registered display of the Main Street site."""
    _display_id, token = register_display(
        url=clinic_url, site_code="main", name="Recovery TV", now=utc_now()
    )
    return token


def _wall_text(at: AppTest) -> str:
    return " ".join(str(element.value) for element in at.get("html"))


def test_the_wall_shows_labels_places_and_nothing_personal(token):
    at = _open_wall(token=token)
    text = _wall_text(at)
    assert "<bdi>Main Street</bdi> · Recovery" in text
    assert "Blue Heron" in text and "Resting" in text
    assert "Chair 2" in text and "Ready — waiting for ride" in text
    # Still dosing: not in the recovery area.
    assert "Oak" not in text
    everything = text + " ".join(str(e.value) for e in at.markdown)
    for personal in ("Alex", "Morgan", "Bea", "Lund", "A1", "B2"):
        assert personal not in everything.replace("Chair 2", ""), personal
    # Nothing to type or click.
    assert not at.text_input and not at.button and not at.selectbox


PERSONAL = ("Alex", "Morgan", "Bea", "Lund", "A1", "B2", "Blue Heron", "Main Street")


@pytest.mark.parametrize("given", [None, "", "not-a-token", "x" * 43])
def test_a_wall_without_a_valid_token_shows_nothing_of_any_patient(recovery_area, given):
    at = _open_wall(token=given)
    shown = " ".join(str(e.value) for e in [*at.get("html"), *at.markdown, *at.title, *at.warning])
    assert "This display is not registered" in shown
    for personal in PERSONAL:
        assert personal not in shown, personal


def test_a_revoked_display_is_blanked(token, clinic_url):
    at = _open_wall(token=token)
    assert "Blue Heron" in _wall_text(at)
    (entry,) = list_displays(url=clinic_url)
    revoke_display(url=clinic_url, display_id=entry.id, now=utc_now())
    at.run()
    assert "Blue Heron" not in _wall_text(at)
    assert any("not registered" in w.value for w in at.warning)


def test_the_token_not_the_url_chooses_the_site(token):
    # A ?site= beside a valid token changes nothing: the display belongs to its site.
    at = _open_wall(token=token, site="elsewhere")
    assert "<bdi>Main Street</bdi> · Recovery" in _wall_text(at)


def test_the_demo_wall_needs_no_token_and_shows_the_first_site(recovery_area, clinic_url):
    mark_as_demo(clinic_url)
    assert "<bdi>Main Street</bdi> · Recovery" in _wall_text(_open_wall(demo=True))


def test_an_unknown_site_code_says_so(recovery_area, clinic_url):
    mark_as_demo(clinic_url)
    text = _wall_text(_open_wall(site="nowhere", demo=True))
    assert "No site has the code “nowhere”" in text
    assert "Blue Heron" not in text


def test_chair_only_hides_the_aliases(recovery_area, clinic_url, token):
    with write_session(clinic_url) as db:
        db.add(
            SiteSetting(
                site_id=recovery_area.site_id,
                name="wall_label",
                value="chair_only",
                updated_at=utc_now(),
            )
        )
    text = _wall_text(_open_wall(token=token))
    assert "Blue Heron" not in text
    assert "Chair 1" in text


def test_the_last_picture_stays_when_the_database_cannot_be_read(token, monkeypatch):
    import ketadash.ui.wall as wall

    at = _open_wall(token=token)
    assert "not updated since" not in _wall_text(at).lower()

    def unreachable(**_):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(wall, "load_public_recovery_area", unreachable)
    st.cache_data.clear()
    monkeypatch.setattr(wall, "_prepare", lambda url: True)
    at.run()
    assert not at.exception, at.exception
    text = _wall_text(at)
    assert "Not updated since" in text
    assert "Blue Heron" in text
    assert not at.error, "the wall shows no error box"


def test_a_wall_opened_during_an_outage_waits_calmly(token, monkeypatch):
    import ketadash.ui.wall as wall

    def unreachable(url):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(wall, "_prepare", unreachable)
    at = _open_wall(token=token)
    assert "Waiting for the clinic database" in _wall_text(at)
    assert not at.error
