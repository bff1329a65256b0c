"""Sign-in, roles on screens, idle sign-out and the access log, under AppTest (issue 11).

``at.user`` stands for the identity cookie Streamlit reads after the identity provider
has signed someone in; the end-to-end sign-in against a real provider is
``tests/browser/test_sign_in_browser.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import update
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from ketadash.auth import AccessAction, read_access_log
from ketadash.clock import utc_now
from ketadash.db import read_session, write_session
from ketadash.lifecycle import record_phq9, record_vitals, take_step
from ketadash.models import SessionStatus, SignIn, Staff, StaffRole, TreatmentSession
from ketadash.screens import LINK_SCREENS, SCREENS, THROUGHPUT, TODAY
from ketadash.sign_ins import end, shared_sign_in
from ketadash.ui.auth import ADMISSION_KEY, DEMO_ROLE_KEY, LAST_ACTIVE_KEY
from ketadash.ui.navigation import NAVIGATION_KEY
from ketadash.vitals import Vitals
from ketadash.vocabulary import Step
from tests.pages.conftest import demo_sign_in, menu, sign_in
from tests.utils.factories import (
    FRONT_DESK_EMAIL,
    LEAD_EMAIL,
    NURSE_EMAIL,
    make_clinic,
    make_patient,
    make_session,
)

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")
PERSONAL = ("Alex", "Morgan", "MRN-A1", "Bea", "Lund")


@pytest.fixture
def clinic(sqlite_url, monkeypatch):
    """Two patients today (Alex checked in with the checks done), and a front desk person."""
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    st.cache_data.clear()
    ids = make_clinic(url=sqlite_url)
    now = utc_now()
    alex = make_patient(url=sqlite_url, mrn="MRN-A1", first="Alex", last="Morgan",
                        site_id=ids.site_id)  # fmt: skip
    bea = make_patient(url=sqlite_url, mrn="MRN-B2", first="Bea", last="Lund",
                       site_id=ids.site_id)  # fmt: skip
    alex_session = make_session(url=sqlite_url, clinic=ids, patient_id=alex,
                                scheduled_start=now - timedelta(minutes=10))  # fmt: skip
    bea_session = make_session(url=sqlite_url, clinic=ids, patient_id=bea, chair_index=1,
                               scheduled_start=now + timedelta(minutes=30))  # fmt: skip
    take_step(url=sqlite_url, session_id=alex_session, step=Step.CHECK_IN,
              staff_id=ids.nurse_id, expected_version=1)  # fmt: skip
    record_phq9(url=sqlite_url, session_id=alex_session, staff_id=ids.nurse_id, total=12,
                item9=0)  # fmt: skip
    record_vitals(url=sqlite_url, session_id=alex_session, staff_id=ids.nurse_id,
                  vitals=Vitals(systolic=120, diastolic=78, heart_rate=70, spo2=98))  # fmt: skip
    with write_session(sqlite_url) as db:
        desk = Staff(name="Fran Quinn", role=StaffRole.FRONT_DESK, site_id=ids.site_id,
                     email=FRONT_DESK_EMAIL)  # fmt: skip
        db.add(desk)
        db.flush()
        desk_id = desk.id
    return sqlite_url, ids, alex_session, bea_session, desk_id


def _open(email: str | None, page: str = "pages/today.py") -> AppTest:
    at = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), email)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _everything_shown(at: AppTest) -> str:
    parts = [*at.markdown, *at.title, *at.caption, *at.info, *at.warning, *at.error]
    parts += [*at.get("html"), *at.subheader, *at.text]
    text = " ".join(str(p.value) for p in parts)
    for box in at.selectbox:
        text += " ".join(str(o) for o in box.options)
    return text


def _links(at: AppTest) -> set[str]:
    return set(menu(at))


def _choose(at: AppTest, session_id: int) -> AppTest:
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    return at


# --- before and without sign-in ---------------------------------------------------------------


@pytest.mark.parametrize("screen", [s for s in SCREENS if not s.public], ids=lambda s: s.title)
def test_before_sign_in_no_screen_shows_a_patient(clinic, screen):
    at = _open(None, screen.script)
    assert any(b.label == "Sign in" for b in at.button)
    shown = _everything_shown(at)
    for personal in PERSONAL:
        assert personal not in shown, (screen.title, personal)
    assert not at.sidebar.selectbox, "not even the site list"
    assert menu(at) == {}, "no menu before sign-in"


@pytest.mark.parametrize(
    ("email", "said"),
    [
        ("stranger@example.org", "not on this clinic's staff list"),
        ("lee.park@clinic.test", "no longer working here"),
    ],
)
def test_someone_not_on_the_roster_or_inactive_is_refused_plainly(clinic, email, said):
    url, ids, *_ = clinic
    with write_session(url) as db:
        db.get(Staff, ids.lead_id).active = False
    at = _open(email)
    assert any(said in e.value for e in at.error)
    assert any(b.label == "Sign out" for b in at.button)
    for personal in PERSONAL:
        assert personal not in _everything_shown(at)


def test_someone_taken_off_the_roster_loses_the_screen_and_the_menu(clinic):
    url, ids, *_ = clinic
    at = _open(NURSE_EMAIL)
    assert TODAY.url_path in menu(at)
    with write_session(url) as db:
        db.get(Staff, ids.nurse_id).active = False
    # The roster's next check (at most ROSTER_TTL_SECONDS later): forced here.
    admission = at.session_state[ADMISSION_KEY]
    at.session_state[ADMISSION_KEY] = replace(
        admission, checked_at=admission.checked_at - timedelta(minutes=5)
    )
    st.cache_data.clear()
    at.run()
    assert any("no longer working here" in e.value for e in at.error)
    assert menu(at) == {}, "not even the titles of the screens"


def test_a_real_clinic_without_an_identity_provider_shows_no_patient(clinic):
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.secrets.pop("auth", None)
    at.user = {"is_logged_in": False}
    at.switch_page("pages/today.py").run()
    shown = _everything_shown(at)
    assert "nobody can sign in yet" in shown
    assert "secrets.toml" in shown and "[auth]" in shown
    for personal in PERSONAL:
        assert personal not in shown


# --- roles on screens -------------------------------------------------------------------------


def test_a_lead_sees_throughput_and_a_nurse_does_not(clinic):
    lead = _open(LEAD_EMAIL, THROUGHPUT.script)
    assert THROUGHPUT.url_path in _links(lead)
    assert any(m.label == "Infusions completed" for m in lead.metric)

    nurse = _open(NURSE_EMAIL, THROUGHPUT.script)
    assert THROUGHPUT.url_path not in _links(nurse)
    assert "access-log" not in _links(nurse)
    assert not nurse.metric, "the throughput page itself never ran"
    assert any("Throughput is for clinic leads" in w.value for w in nurse.warning)
    home = _open(NURSE_EMAIL, "pages/home.py")
    assert THROUGHPUT.url_path not in {link.proto.page for link in home.main.get("page_link")}


def test_every_screen_stays_registered_and_the_menu_lists_only_a_roles_own(clinic):
    nurse = _open(NURSE_EMAIL)
    registered = {page.url_path for pages in nurse.session_state[NAVIGATION_KEY].sections.values()
                  for page in pages}  # fmt: skip
    # The driver's page too (reached by its link only, in nobody's menu).
    assert registered == {screen.url_path for screen in (*SCREENS, *LINK_SCREENS)}
    # A real clinic's wall opens with a display's address, never from a staff menu.
    assert set(menu(nurse)) == {"", "today", "recovery", "boosters", "rems"}
    # The menu follows the person in the same click, not one run late.
    lead = sign_in(nurse, LEAD_EMAIL).run()
    assert THROUGHPUT.url_path in menu(lead)


def test_front_desk_sees_no_clinical_step_and_cannot_force_one(clinic):
    url, _ids, alex, *_ = clinic
    desk = _choose(_open(FRONT_DESK_EMAIL), alex)
    labels = {b.label for b in desk.button}
    assert "Start dose" not in labels and "Save vitals" not in labels
    assert "Boosters" not in menu(desk).values()

    # A forced widget value: the nurse's start form is on screen, then the same browser
    # is signed in as the front desk and the form's button is sent anyway.
    at = _choose(_open(NURSE_EMAIL), alex)
    next(n for n in at.number_input if n.label == "Weight today (kg)").set_value(70.0)
    next(n for n in at.number_input if n.label == "Dose given (mg)").set_value(35.0)
    sign_in(at, FRONT_DESK_EMAIL)
    next(b for b in at.button if b.label == "Start dose").click().run()
    assert not at.exception
    with read_session(url) as db:
        assert db.get(TreatmentSession, alex).status == SessionStatus.CHECKED_IN


def test_front_desk_cannot_start_a_dose_through_the_pages_action(clinic):
    from ketadash.lifecycle import StepNotAllowed

    url, _ids, alex, _bea, desk_id = clinic
    with pytest.raises(StepNotAllowed, match="only a nurse or a clinic lead"):
        take_step(url=url, session_id=alex, step=Step.START_INFUSION, staff_id=desk_id,
                  expected_version=2, dose_mg=35, weight_kg=70)  # fmt: skip
    with read_session(url) as db:
        assert db.get(TreatmentSession, alex).status == SessionStatus.CHECKED_IN


# --- idle sign-out ----------------------------------------------------------------------------


def test_an_idle_station_signs_out(clinic):
    at = _open(NURSE_EMAIL)
    assert "Alex Morgan" in _everything_shown(at)
    at.session_state[LAST_ACTIVE_KEY] = utc_now() - timedelta(minutes=16)
    at.run()
    at.run()  # the page after the provider's sign-out
    assert any(b.label == "Sign in" for b in at.button)
    assert "Alex Morgan" not in _everything_shown(at)


def test_a_station_in_use_stays_signed_in(clinic):
    at = _open(NURSE_EMAIL)
    at.session_state[LAST_ACTIVE_KEY] = utc_now() - timedelta(minutes=14)
    at.run()
    assert "Alex Morgan" in _everything_shown(at)


def test_the_demo_signs_out_when_idle_and_asks_to_sign_in_again(monkeypatch, tmp_path):
    from ketadash.demo import build_demo_clinic

    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    build_demo_clinic(url=url, patients=20, history_days=14, now=utc_now())
    monkeypatch.setenv("KETADASH_DATABASE_URL", url)
    at = demo_sign_in(AppTest.from_file(DASHBOARD, default_timeout=60))
    at.switch_page("pages/today.py").run()
    assert any("Demo sign-in" in m.value for m in at.markdown)
    at.session_state[LAST_ACTIVE_KEY] = utc_now() - timedelta(hours=1)
    at.run()
    assert any("without use" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Sign in again (demo)").click().run()
    assert any(t.value.endswith("Today") for t in at.title)
    # The banner's switch signs in as the demo's lead, who sees Throughput.
    at.session_state[DEMO_ROLE_KEY] = StaffRole.LEAD
    at.run()
    assert THROUGHPUT.url_path in _links(at)


# --- the access log ---------------------------------------------------------------------------


def test_opening_a_patients_panel_is_logged_once_per_opening(clinic):
    url, ids, alex, bea, _desk = clinic
    start = utc_now() - timedelta(minutes=1)
    at = _choose(_open(NURSE_EMAIL), alex)
    at.run()  # the same panel redrawn: not a new opening
    _choose(at, bea)
    log = read_access_log(url=url, start=start, end=utc_now() + timedelta(minutes=1))
    assert list(log["action"]) == [AccessAction.OPEN_PANEL] * 2
    assert list(log["patient"]) == ["MRN-B2", "MRN-A1"]
    assert set(log["staff"]) == {"Dana Reyes"}

    lead = _open(LEAD_EMAIL, "pages/access-log.py")
    (table,) = lead.dataframe
    assert list(table.value["Patient (MRN)"]) == ["MRN-B2", "MRN-A1"]
    assert set(table.value["Who"]) == {"Dana Reyes"}
    assert any(b.label == "Download the access log (CSV)" for b in lead.get("download_button"))
    with read_session(url) as db:
        assert db.exec(select(Staff.id).where(Staff.email == NURSE_EMAIL)).one() == ids.nurse_id


def test_the_access_log_is_for_leads(clinic):
    nurse = _open(NURSE_EMAIL, "pages/access-log.py")
    assert not nurse.dataframe
    assert any("Access log is for clinic leads" in w.value for w in nurse.warning)


# --- clinic settings --------------------------------------------------------------------------


def test_a_lead_changes_a_setting_and_a_nurse_cannot_open_the_screen(clinic):
    from ketadash.db import read_session as reading
    from ketadash.models import SiteSetting

    url, ids, *_ = clinic
    lead = _open(LEAD_EMAIL, "pages/settings.py")
    (table,) = lead.dataframe
    assert "hold_systolic" in list(table.value["Setting"])
    next(s for s in lead.selectbox if s.label == "Setting").set_value("hold_systolic").run()
    next(t for t in lead.text_input if t.label.startswith("New value")).set_value("1400")
    next(b for b in lead.button if b.label == "Save").click().run()
    assert any("between 120 and 160" in e.value for e in lead.error)
    next(t for t in lead.text_input if t.label.startswith("New value")).set_value("150")
    next(b for b in lead.button if b.label == "Save").click().run()
    assert any("hold_systolic is now 150 mmHg" in s.value for s in lead.success)
    with reading(url) as db:
        row = db.exec(select(SiteSetting).where(SiteSetting.name == "hold_systolic")).one()
        assert (row.value, row.updated_by) == ("150", ids.lead_id)

    nurse = _open(NURSE_EMAIL, "pages/settings.py")
    assert not nurse.dataframe
    assert any("Clinic settings is for clinic leads" in w.value for w in nurse.warning)


def test_the_settings_screen_shows_the_latest_changes(clinic):
    lead = _open(LEAD_EMAIL, "pages/settings.py")
    _change_on_screen(lead, "hold_systolic", "150")
    _change_on_screen(lead, "hold_systolic", "130")
    changes = next(d for d in lead.dataframe if "Old value" in d.value.columns).value
    assert list(changes["Setting"]) == ["hold_systolic", "hold_systolic"]
    assert list(zip(changes["Old value"], changes["New value"], strict=True)) == [
        ("150", "130"),
        ("140", "150"),
    ]
    assert set(changes["By"]) == {"Lee Park"}


def _change_on_screen(at: AppTest, name: str, value: str) -> AppTest:
    next(s for s in at.selectbox if s.label == "Setting").set_value(name).run()
    next(t for t in at.text_input if t.label.startswith("New value")).set_value(value)
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_settings_screen_shows_each_reason_a_change_is_refused(clinic):
    from ketadash.ui.text import literal

    lead = _open(LEAD_EMAIL, "pages/settings.py")
    _change_on_screen(lead, "min_recovery_esketamine_minutes", "60")
    (error,) = lead.error
    assert "between 120 and 480 min" in error.value
    assert literal("Spravato label: at least 2 h") in error.value
    assert "Nothing was changed" in error.value
    _change_on_screen(lead, "hold_systolic", "160")
    assert any("hold_systolic is now 160" in s.value for s in lead.success)
    _change_on_screen(lead, "alert_systolic", "160")
    (error,) = lead.error
    assert literal("hold_systolic (160 mmHg) must be below alert_systolic (160 mmHg)") in (
        error.value
    )


# --- one sign-in, several tabs -----------------------------------------------------------------


@pytest.fixture
def one_browser(monkeypatch):
    """Every AppTest is a tab of one browser: the same identity cookie behind each."""
    import ketadash.ui.auth as ui_auth

    st.cache_resource.clear()
    monkeypatch.setattr(ui_auth, "_sign_in_key", lambda mode: "one-browser-cookie")
    return ui_auth


def test_a_reload_or_new_tab_keeps_the_idle_clock(clinic, one_browser, sqlite_url):
    first = _open(NURSE_EMAIL)
    assert "Alex Morgan" in _everything_shown(first)
    # The last use recorded for every process, as if it had been 20 minutes ago.
    with write_session(sqlite_url) as db:
        db.execute(
            update(SignIn)
            .where(SignIn.key == "one-browser-cookie")
            .values(last_active_at=utc_now() - timedelta(minutes=20))
        )
    reloaded = _open(NURSE_EMAIL)
    reloaded.run()  # the page after the provider's sign-out
    assert "Alex Morgan" not in _everything_shown(reloaded)
    assert any(b.label == "Sign in" for b in reloaded.button)


def test_signing_out_in_one_tab_signs_out_the_others(clinic, one_browser):
    first, second = _open(NURSE_EMAIL), _open(NURSE_EMAIL)
    next(b for b in first.sidebar.button if b.label == "Sign out").click().run()
    second.run()
    second.run()
    assert "Alex Morgan" not in _everything_shown(second)


def test_a_sign_out_through_another_server_process_signs_this_tab_out(
    clinic, one_browser, sqlite_url
):
    # Another process behind the same address records the sign-out in the database;
    # this process never heard of it otherwise.
    tab = _open(NURSE_EMAIL)
    assert "Alex Morgan" in _everything_shown(tab)
    end(url=sqlite_url, key="one-browser-cookie", now=utc_now())
    tab.run()
    tab.run()
    assert "Alex Morgan" not in _everything_shown(tab)


def test_a_use_is_written_for_the_other_processes_at_most_every_half_minute(
    clinic, one_browser, sqlite_url
):
    tab = _open(NURSE_EMAIL)
    first = shared_sign_in(url=sqlite_url, key="one-browser-cookie").last_active_at
    assert first is not None
    tab.run()
    assert shared_sign_in(url=sqlite_url, key="one-browser-cookie").last_active_at == first


def test_a_named_provider_in_the_secrets_is_the_one_signed_in_with():
    from streamlit.runtime.secrets import AttrDict

    from ketadash.ui.auth import _provider

    named = {"redirect_uri": "x", "cookie_secret": "y", "entra": AttrDict({"client_id": "z"})}
    assert _provider(named) == "entra"
    assert _provider({"redirect_uri": "x", "client_id": "z"}) is None


def test_an_unverified_email_is_refused(clinic):
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.user = {"is_logged_in": True, "email": NURSE_EMAIL, "email_verified": False}
    at.switch_page("pages/today.py").run()
    assert any("has not verified your e-mail" in e.value for e in at.error)
    assert "Alex Morgan" not in _everything_shown(at)
