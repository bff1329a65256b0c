"""Saves that cannot be lost, as the nurse sees them: every submit says it saved, says
"Already saved" when it was in the database already, or says plainly that it did not
save and keeps what was typed."""

from __future__ import annotations

import ast
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select
from streamlit.testing.v1 import AppTest

import ketadash.lifecycle
from ketadash.clock import utc_now
from ketadash.db import DatabaseUnavailable, read_session
from ketadash.lifecycle import Step, record_vitals, take_step
from ketadash.models import Ride, SubmittedForm, VitalsReading
from ketadash.submissions import submission
from tests.utils.factories import make_clinic, make_patient, make_session
from tests.utils.visits import CALM

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = str(ROOT / "dashboard.py")
KEYS = "kd_submission_keys"


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    return sqlite_url


@pytest.fixture
def checked_in(clinic_url):
    clinic = make_clinic(url=clinic_url)
    patient = make_patient(url=clinic_url, site_id=clinic.site_id)
    session_id = make_session(url=clinic_url, clinic=clinic, patient_id=patient,
                              scheduled_start=utc_now() - timedelta(minutes=5))  # fmt: skip
    take_step(url=clinic_url, session_id=session_id, step=Step.CHECK_IN,
              staff_id=clinic.nurse_id, expected_version=1)  # fmt: skip
    return clinic, session_id


def _open(session_id: int) -> AppTest:
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.run()
    at.switch_page("pages/today.py")
    at.run()
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    assert not at.exception, at.exception
    return at


def _type_vitals(at: AppTest, values=(124, 80, 72, 98)) -> None:
    for label, value in zip(("Systolic", "Diastolic", "Heart rate", "SpO2"), values, strict=True):
        next(n for n in at.number_input if n.label == label).set_value(value)


def _save_vitals(at: AppTest) -> None:
    next(b for b in at.button if b.label == "Save vitals").click().run()


def _vitals_count(url: str, session_id: int) -> int:
    with read_session(url) as db:
        return db.exec(
            select(func.count(VitalsReading.id)).where(VitalsReading.session_id == session_id)
        ).one()


def _vitals_key(at: AppTest, session_id: int) -> str:
    keys = at.session_state[KEYS]
    (form,) = [name for name in keys if name.startswith(f"vitals-{session_id}-")]
    return keys[form]


def test_a_save_says_saved_and_records_its_key(checked_in, clinic_url):
    clinic, session_id = checked_in
    at = _open(session_id)
    key = _vitals_key(at, session_id)
    _type_vitals(at)
    _save_vitals(at)
    assert any("Vitals saved: BP 124/80" in s.value for s in at.success)
    assert _vitals_count(clinic_url, session_id) == 1
    with read_session(clinic_url) as db:
        row = db.get(SubmittedForm, key)
        assert (row.what, row.staff_id) == ("vitals", clinic.nurse_id)
    # The next entry is a new form with a new key, and empty fields.
    assert _vitals_key(at, session_id) != key
    assert next(n for n in at.number_input if n.label == "Systolic").value is None


def test_a_repeated_submit_is_already_saved_and_written_once(checked_in, clinic_url):
    # The first press reached the database, but its answer never reached the screen
    # (a dropped connection, a rerun that replays the click): the same form sent again.
    clinic, session_id = checked_in
    at = _open(session_id)
    with submission(key=_vitals_key(at, session_id), what="vitals", staff_id=clinic.nurse_id):
        record_vitals(url=clinic_url, session_id=session_id, staff_id=clinic.nurse_id,
                      vitals=CALM)  # fmt: skip
    _type_vitals(at, (120, 80, 70, 98))
    _save_vitals(at)
    assert any("Already saved" in s.value for s in at.success), [s.value for s in at.success]
    assert not at.error
    assert _vitals_count(clinic_url, session_id) == 1


@contextmanager
def _unreachable(*_args, **_kwargs):
    raise DatabaseUnavailable("connection refused")
    yield  # pragma: no cover


def test_a_save_with_the_database_down_says_not_saved_and_keeps_the_values(
    checked_in, clinic_url, monkeypatch
):
    _clinic, session_id = checked_in
    at = _open(session_id)
    real = ketadash.lifecycle.write_session
    monkeypatch.setattr(ketadash.lifecycle, "write_session", _unreachable)
    _type_vitals(at)
    _save_vitals(at)
    assert any("Not saved." in e.value and "still here" in e.value for e in at.error)
    assert not any("Vitals saved" in s.value for s in at.success)
    assert next(n for n in at.number_input if n.label == "Systolic").value == 124
    assert _vitals_count(clinic_url, session_id) == 0
    # The database is back: the same press saves, once.
    monkeypatch.setattr(ketadash.lifecycle, "write_session", real)
    _save_vitals(at)
    assert any("Vitals saved: BP 124/80" in s.value for s in at.success)
    assert _vitals_count(clinic_url, session_id) == 1


def test_a_save_whose_answer_was_lost_is_already_saved_on_the_retry(
    checked_in, clinic_url, monkeypatch
):
    # The commit landed, then the connection broke: the nurse is told it is not saved,
    # presses again, and hears that it was saved after all; one reading.
    _clinic, session_id = checked_in
    at = _open(session_id)
    real = ketadash.lifecycle.write_session

    @contextmanager
    def lost_answer(url):
        with real(url) as db:
            yield db
        raise DatabaseUnavailable("server closed the connection unexpectedly")

    monkeypatch.setattr(ketadash.lifecycle, "write_session", lost_answer)
    _type_vitals(at)
    _save_vitals(at)
    assert any("Not saved." in e.value for e in at.error)
    monkeypatch.setattr(ketadash.lifecycle, "write_session", real)
    _save_vitals(at)
    assert any("Already saved" in s.value for s in at.success)
    assert _vitals_count(clinic_url, session_id) == 1


def test_an_unexpected_failure_says_not_saved(checked_in, clinic_url, monkeypatch):
    _clinic, session_id = checked_in
    at = _open(session_id)

    def broken(**_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("ketadash.ui.panel.record_vitals", broken)
    _type_vitals(at)
    _save_vitals(at)
    assert not at.exception
    assert any("Not saved." in e.value and "logged" in e.value for e in at.error)
    assert next(n for n in at.number_input if n.label == "Systolic").value == 124


# --- forms never live inside a refreshing part ----------------------------------------------


def _calls(node: ast.AST) -> set[str]:
    """The names of everything called in ``node`` (``st.form`` as "st.form", ``f()`` as "f")."""
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            if isinstance(call.func, ast.Name):
                names.add(call.func.id)
            elif isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                names.add(f"{call.func.value.id}.{call.func.attr}")
    return names


def _refreshing_bodies(tree: ast.Module) -> list[ast.AST]:
    """Functions that run inside a fragment: decorated ``st.fragment``, or handed to
    ``live_fragment`` as its ``read`` or ``draw``."""
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    bodies = [
        f for f in functions.values() if any("fragment" in ast.unparse(d) for d in f.decorator_list)
    ]
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "live_fragment":
            for keyword in call.keywords:
                if keyword.arg in ("read", "draw"):
                    value = keyword.value
                    bodies.append(functions.get(getattr(value, "id", ""), value))
    return bodies


def test_no_form_is_drawn_inside_a_refreshing_part():
    forms = {"st.form", "st.form_submit_button"}
    for path in sorted((ROOT / "ketadash" / "ui").glob("*.py")):
        tree = ast.parse(path.read_text())
        functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
        for body in _refreshing_bodies(tree):
            # Follow the module's own functions it calls, to any depth.
            seen, todo = set(), [body]
            while todo:
                node = todo.pop()
                called = _calls(node)
                assert not called & forms, f"{path.name}: a form inside a fragment"
                for name in called & set(functions) - seen:
                    seen.add(name)
                    todo.append(functions[name])


def test_the_form_check_sees_a_form_in_a_fragment():
    tree = ast.parse(
        "@st.fragment(run_every=5)\ndef live():\n    draw()\n"
        "def draw():\n    with st.form('x'):\n        st.form_submit_button('Save')\n"
    )
    (body,) = _refreshing_bodies(tree)
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    assert "st.form" in _calls(functions["draw"]) and "draw" in _calls(body)


def test_a_ride_saved_on_recovery_with_the_database_down_says_not_saved(
    checked_in, clinic_url, monkeypatch
):
    import ketadash.rides

    _clinic, session_id = checked_in
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.run()
    at.switch_page("pages/recovery.py")
    at.run()
    next(s for s in at.selectbox if s.label == "Patient").set_value(session_id).run()
    real = ketadash.rides.write_session
    monkeypatch.setattr(ketadash.rides, "write_session", _unreachable)
    next(t for t in at.text_input if t.label == "Driver's name").input("Kim Carrier")
    next(b for b in at.button if b.label == "Save ride").click().run()
    assert any("Not saved." in e.value for e in at.error)
    assert not any("Ride saved" in s.value for s in at.success)
    assert next(t for t in at.text_input if t.label == "Driver's name").value == "Kim Carrier"
    monkeypatch.setattr(ketadash.rides, "write_session", real)
    next(b for b in at.button if b.label == "Save ride").click().run()
    assert any("Ride saved" in s.value for s in at.success)
    with read_session(clinic_url) as db:
        assert db.exec(select(func.count(Ride.id)).where(Ride.session_id == session_id)).one() == 1
