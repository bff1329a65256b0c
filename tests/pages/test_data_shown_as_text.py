"""Names from the database are shown as text on Today, never as markdown or HTML.

Issue 6, items 10 and 11: a patient called ``![t](http://127.0.0.1:9/x.png)`` must
not become an image (a request to that host), ``[c](https://example.org)`` not a
link, in the panel header, the messages and toasts, the ride expander, the
"changed at another station" notices and the flash; and in the board's HTML each
name sits in its own ``<bdi>``. The browser side is tests/browser/
test_no_outside_requests.py; here AppTest checks the markdown Streamlit is given.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from ketadash.clock import utc_now
from ketadash.config import PROJECT_ROOT
from ketadash.db import write_session
from ketadash.lifecycle import take_step, undo_last_step
from ketadash.models import Chair, Site, Staff, TreatmentSession, VitalsPhase, VitalsReading
from ketadash.models import SessionStatus as S
from ketadash.rides import arrange_ride
from ketadash.ui.text import literal
from ketadash.vocabulary import Step
from tests.pages.conftest import sign_in
from tests.utils.factories import (
    LEAD_EMAIL,
    NURSE_EMAIL,
    OTHER_NURSE_EMAIL,
    make_clinic,
    make_patient,
    make_session,
)

DASHBOARD = str(PROJECT_ROOT / "dashboard.py")
FIRST = "![t](http://127.0.0.1:9/x.png)"
LAST = "[c](https://example.org)"
PATIENT = f"{FIRST} {LAST}"
CHAIR = "![ch](http://127.0.0.1:9/chair.png)"
SITE = "[site](https://example.org/site) :red[Main]"
NURSE = "![n](http://127.0.0.1:9/nurse.png)"
DRIVER = "![d](http://127.0.0.1:9/driver.png) $x^2$ :material/home:"
# Markdown that would act, were it not escaped: an image or a link opening, a
# colour directive, a LaTeX dollar, an icon shortcode.
ACTIVE = re.compile(r"(?<!\\)(!\[|\]\(|:red\[|\$x|:material/)")


@pytest.fixture
def hostile_clinic(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    clinic = make_clinic(url=sqlite_url)
    with write_session(sqlite_url) as db:
        db.get(Site, clinic.site_id).name = SITE
        db.get(Chair, clinic.chair_ids[0]).name = CHAIR
        db.get(Staff, clinic.other_nurse_id).name = NURSE
    patient = make_patient(url=sqlite_url, first=FIRST, last=LAST, site_id=clinic.site_id)
    session_id = make_session(
        url=sqlite_url,
        clinic=clinic,
        patient_id=patient,
        scheduled_start=utc_now() - timedelta(minutes=5),
    )
    return sqlite_url, clinic, session_id


def _markdown_shown(at: AppTest) -> list[str]:
    """Every string of this run that Streamlit reads as markdown."""
    values = [e.value for kind in ("markdown", "caption", "success", "info", "warning", "error")
              for e in getattr(at, kind)]  # fmt: skip
    values += [t.value for t in at.toast]
    values += [e.label for e in at.expander]
    values += [b.label for b in at.button] + [c.label for c in at.checkbox]
    return [str(v) for v in values]


def _html_shown(at: AppTest) -> str:
    return " ".join(element.value for element in at.get("html"))


def test_a_hostile_patient_name_is_shown_as_text_everywhere(hostile_clinic):
    url, clinic, session_id = hostile_clinic
    seen: list[str] = []

    def run(at: AppTest) -> AppTest:
        at.run()
        assert not at.exception, at.exception
        seen.extend(_markdown_shown(at))
        return at

    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.run()  # Home (pages/home.py is another change's: its site list is not checked here)
    at.switch_page("pages/today.py")
    run(at)
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id)
    run(at)
    # The panel header names the patient and the chair, escaped.
    assert any(literal(PATIENT) in v and literal(CHAIR) in v for v in _markdown_shown(at))

    # The other station checks the patient in; this one, still on "Expected", is told
    # who did it (the flash and its toast carry the other nurse's name).
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.other_nurse_id, expected_version=1)  # fmt: skip
    at.button(key=f"step-check_in-{session_id}").click()
    run(at)
    assert any(literal(NURSE) in w.value for w in at.warning)
    assert any(literal(NURSE) in t.value for t in at.toast)

    # A ride with a hostile driver: the expander's label shows the name as text.
    next(t for t in at.text_input if t.label == "Driver's name").input(DRIVER)
    next(b for b in at.button if b.label == "Save ride").click()
    run(at)
    assert any(s.value == "Ride saved." for s in at.success)
    assert any(literal(DRIVER) in e.label for e in at.expander)

    # Taking back the check-in: the success message and its toast name the patient.
    next(t for t in at.text_input if t.label == "Why").input("pressed the wrong patient")
    next(b for b in at.button if b.label.startswith("Take back")).click()
    run(at)
    done = f"{literal(PATIENT)}: last step taken back."
    assert any(s.value == done for s in at.success)
    assert any(t.value == done for t in at.toast)

    # Another station checks the patient in again: the panel points it out. (The
    # board's own notice, which names the patient, comes on a refresh of the board
    # alone, which AppTest cannot fire; it goes through the same ``literal``.)
    take_step(url=url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.other_nurse_id, expected_version=3)  # fmt: skip
    from ketadash.ui.actions import after_write

    after_write()
    run(at)
    assert any("Changed at another station" in i.value for i in at.info)

    # Nothing Streamlit reads as markdown holds an active construct from the data.
    assert seen
    acting = [v for v in seen if ACTIVE.search(v)]
    assert not acting, acting

    # The board's HTML: every name escaped and in its own <bdi>.
    board = _html_shown(at)
    for name in (PATIENT, CHAIR, SITE):
        assert f"<bdi>{html.escape(name)}</bdi>" in board, name
    undo_last_step(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                   expected_version=4, reason="tidy up after the test")  # fmt: skip


def test_the_site_picker_and_the_signed_in_name_show_names_as_given(hostile_clinic):
    url, _clinic, _ = hostile_clinic
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), OTHER_NURSE_EMAIL)
    at.run()
    at.switch_page("pages/today.py").run()
    assert not at.exception
    # Selectbox options are plain text in Streamlit: the name is shown unchanged.
    site_box = at.sidebar.selectbox[0]
    assert site_box.options == [SITE]
    # The signed-in person's name, in the sidebar, is text, not an image.
    assert any(literal(NURSE) in m.value for m in at.sidebar.markdown)
    with write_session(url) as db:
        assert db.exec(select(Site.name)).one() == SITE


def test_the_clinic_settings_screen_shows_the_site_name_as_text(hostile_clinic):
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), LEAD_EMAIL)
    at.run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    next(t for t in at.text_input if t.label.startswith("New value")).set_value("150")
    next(b for b in at.button if b.label == "Save").click().run()
    shown = _markdown_shown(at) + [t.label for t in at.text_input]
    assert any(literal(SITE) in v for v in shown if "is now 150" in v)
    assert any(literal(SITE) in v for v in shown if v.startswith("In force at"))
    assert not any(SITE in v for v in shown), "a site name given to markdown as is"


# Markdown autolinks that escaping alone does not stop: an e-mail address and "www.".
AUTOLINK_DRIVER = "![d](http://127.0.0.1:9/d.png) [call](http://127.0.0.1:9/c) a@b.org www.x.org"


@pytest.fixture
def hostile_recovery(hostile_clinic):
    """The hostile patient resting after the dose, a hostile driver arranged for them."""
    url, clinic, session_id = hostile_clinic
    now = utc_now()
    with write_session(url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == session_id)
            .values(
                status=S.RECOVERY,
                checked_in_at=now - timedelta(minutes=95),
                infusion_started_at=now - timedelta(minutes=85),
                infusion_ended_at=now - timedelta(minutes=45),
            )
        )
        db.add(VitalsReading(session_id=session_id, taken_at=now - timedelta(minutes=3),
                             phase=VitalsPhase.AFTER, systolic=120, diastolic=78,
                             heart_rate=70, spo2=98))  # fmt: skip
    arrange_ride(url=url, session_id=session_id, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name=AUTOLINK_DRIVER,
                 expected_pickup_at=now + timedelta(minutes=20))  # fmt: skip
    return url, clinic, session_id


def test_recovery_names_the_driver_and_the_patient_as_text_in_its_messages(hostile_recovery):
    _url, _clinic, session_id = hostile_recovery
    seen: list[str] = []

    def run(at: AppTest) -> AppTest:
        at.run()
        assert not at.exception, at.exception
        seen.extend(_markdown_shown(at))
        return at

    def said(at: AppTest) -> list[str]:
        return [s.value for s in at.success] + [t.value for t in at.toast]

    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), NURSE_EMAIL)
    at.run()
    at.switch_page("pages/recovery.py")
    run(at)
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id)
    run(at)

    next(b for b in at.button if b.label == "On the way").click()
    run(at)
    assert f"{literal(AUTOLINK_DRIVER)} is on the way." in said(at), said(at)

    next(b for b in at.button if b.label == "Ride has arrived").click()
    run(at)
    assert f"{literal(AUTOLINK_DRIVER)} is here." in said(at), said(at)

    next(c for c in at.checkbox if c.label.startswith("Steady on their feet")).check()
    next(b for b in at.button if b.label == "Mark ready to go").click()
    run(at)
    assert any(v.startswith(f"{literal(PATIENT)}: ") for v in said(at)), said(at)

    next(b for b in at.button if b.label == "Discharge").click()
    run(at)
    assert any(v.startswith(f"{literal(PATIENT)}: ") for v in said(at)), said(at)

    # Nothing Streamlit reads as markdown holds the data as it was typed: no image, no
    # link, and the e-mail address and "www." broken so GFM cannot autolink them.
    assert seen
    acting = [v for v in seen if ACTIVE.search(v) or "a@b" in v or "www." in v]
    assert not acting, acting
