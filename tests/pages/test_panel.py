"""The Today panel's forms come from the state machine (``allowed_steps``) and the
person's role, and a check added to a gate is drawn on its form before it ever refuses,
with the field for its reason when a lead may pass it on the record."""

from __future__ import annotations

import dataclasses
import html
from types import SimpleNamespace

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

import ketadash.gates
import ketadash.ui.panel
from ketadash.db import read_session
from ketadash.gates import Check, Override, OverrideReason
from ketadash.models import Route, SessionStatus, StaffRole, StatusChange, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.ui import panel as p
from ketadash.vocabulary import Step
from tests.pages.conftest import sign_in
from tests.pages.test_start_form_page import _checked_in
from tests.pages.test_today_page import DASHBOARD, _open_as_nurse, _submit
from tests.utils.factories import LEAD_EMAIL

NEW_CHECK = "Consent form for this course signed"
NEW_DETAIL = "ask the patient to sign the consent form first"

# A bounded pre-dose check a lead may pass with a reason, as a new ceiling setting's would be.
LEAD_CHECK = "Pre-dose heart rate below the start ceiling, or a lead's reason"
LEAD_DETAIL = "heart rate at or above the start ceiling: a clinic lead must record why"
LEAD_FIELD = "Lead's reason to dose above the heart-rate ceiling"
LEAD_MESSAGE = "Heart rate at or above the start ceiling: only a clinic lead can start this dose."
LEAD_NOTE = "heart rate at or above the start ceiling, lead's reason"


@pytest.fixture
def clinic_url(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    return sqlite_url


def test_every_step_has_one_form_and_a_place_in_the_panel():
    assert set(p.STEP_FORMS) == set(Step)
    assert {entry for entry in p.LAYOUT if isinstance(entry, Step)} == set(Step)


def _forms(status: S, role: StaffRole, route: Route = Route.IV) -> list:
    # Only the status and route decide the forms: a fake visit with those two is enough.
    return p.panel_forms(visit=SimpleNamespace(status=status, route=route), role=role)


@pytest.mark.parametrize("role", [StaffRole.NURSE, StaffRole.LEAD])
def test_a_clinician_gets_the_forms_of_the_work_in_its_order(role):
    assert _forms(S.SCHEDULED, role) == [p._check_in, p._exit_form]
    assert _forms(S.CHECKED_IN, role) == [
        p._phq9_form, p._vitals_form, p._start_form, p._ride_form, p._exit_form, p._undo_form,
    ]  # fmt: skip
    assert _forms(S.INFUSING, role) == [
        p._vitals_form, p._side_effects_form, p._end_dose, p._ride_form, p._undo_form,
    ]  # fmt: skip
    assert _forms(S.RECOVERY, role, Route.ESKETAMINE) == [
        p._vitals_form, p._side_effects_form, p._ride_form, p._ready_form, p._rems, p._undo_form,
    ]  # fmt: skip
    assert _forms(S.READY, role) == [
        p._vitals_form, p._side_effects_form, p._ride_form, p._discharge, p._undo_form,
    ]  # fmt: skip
    for closed in (S.DISCHARGED, S.CANCELLED, S.NO_SHOW):
        assert _forms(closed, role) == [p._undo_form]


def test_front_desk_gets_check_in_the_ride_and_the_exits_only():
    desk = StaffRole.FRONT_DESK
    assert _forms(S.SCHEDULED, desk) == [p._check_in, p._exit_form]
    assert _forms(S.CHECKED_IN, desk) == [p._ride_form, p._exit_form]
    for status in (S.INFUSING, S.RECOVERY, S.READY):
        assert _forms(status, desk, Route.ESKETAMINE) == [p._ride_form]
    assert _forms(S.DISCHARGED, desk) == []


def test_a_check_added_to_the_start_checklist_is_drawn_before_it_refuses(clinic_url, monkeypatch):
    real = ketadash.gates.start_checklist

    def with_one_more(**kwargs):
        gate = real(**kwargs)
        extra = Check(label=NEW_CHECK, ok=False, detail=NEW_DETAIL)
        return dataclasses.replace(gate, checks=(*gate.checks, extra))

    # The gate itself (what the start enforces) and the name the panel draws from.
    monkeypatch.setattr(ketadash.gates, "start_checklist", with_one_more)
    monkeypatch.setattr(ketadash.ui.panel, "start_checklist", with_one_more)
    clinic, session_id = _checked_in(clinic_url)
    at = _open_as_nurse(clinic, session_id)
    assert not at.exception, at.exception
    drawn = " ".join(e.value for e in at.get("html"))
    assert NEW_CHECK in drawn
    assert "sign the consent form first" in drawn
    assert not at.error  # seen before anything was refused
    next(n for n in at.number_input if n.label == "Weight today (kg)").set_value(70.0)
    next(n for n in at.number_input if n.label == "Dose given (mg)").set_value(35.0)
    _submit(at, "Start dose")
    # The start refuses with the same words the checklist showed.
    assert any("sign the consent form first" in e.value for e in at.error)
    with read_session(clinic_url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.CHECKED_IN
        assert not db.exec(select(StatusChange).where(StatusChange.to_status == "infusing")).all()


def _with_a_lead_check(real):
    """``start_checklist`` with one more check, passed only by a lead's hold override reason."""

    def with_one_more(**kwargs):
        gate = real(**kwargs)
        reason = (kwargs.get("hold_override_reason") or "").strip()
        is_lead = kwargs.get("staff_role") == StaffRole.LEAD
        override = Override(
            reason=OverrideReason.HOLD, by_lead=True, field=LEAD_FIELD, message=LEAD_MESSAGE,
            note=LEAD_NOTE,
        )  # fmt: skip
        extra = Check(label=LEAD_CHECK, ok=bool(reason) and is_lead, detail=LEAD_DETAIL,
                      override=override)  # fmt: skip
        return dataclasses.replace(gate, checks=(*gate.checks, extra))

    return with_one_more


def _fill_the_start(at: AppTest, reason: str) -> None:
    next(n for n in at.number_input if n.label == "Weight today (kg)").set_value(70.0)
    next(n for n in at.number_input if n.label == "Dose given (mg)").set_value(35.0)
    next(t for t in at.text_input if t.label == LEAD_FIELD).input(reason)
    _submit(at, "Start dose")


def test_a_new_check_a_lead_may_override_is_drawn_with_its_reasons_field(clinic_url, monkeypatch):
    with_one_more = _with_a_lead_check(ketadash.gates.start_checklist)
    monkeypatch.setattr(ketadash.gates, "start_checklist", with_one_more)
    monkeypatch.setattr(ketadash.ui.panel, "start_checklist", with_one_more)
    clinic, session_id = _checked_in(clinic_url)  # calm vitals: no hold of its own
    at = _open_as_nurse(clinic, session_id)
    assert not at.exception, at.exception
    drawn = " ".join(e.value for e in at.get("html"))
    assert html.escape(LEAD_CHECK) in drawn
    assert "a clinic lead must record why" in drawn
    # Its message and its field, from the check alone: the panel does not know this check.
    assert [w.value for w in at.warning] == [LEAD_MESSAGE]
    assert [t.label for t in at.text_input if t.label == LEAD_FIELD] == [LEAD_FIELD]
    assert not at.error
    _fill_the_start(at, "patient anxious")  # a nurse's reason is not a lead's
    assert any("a clinic lead must record why" in e.value for e in at.error)
    with read_session(clinic_url) as db:
        assert db.get(TreatmentSession, session_id).status == SessionStatus.CHECKED_IN
    lead = sign_in(AppTest.from_file(DASHBOARD, default_timeout=30), LEAD_EMAIL)
    lead.run()
    lead.switch_page("pages/today.py").run()
    next(s for s in lead.selectbox if s.label == "Patient").set_value(session_id).run()
    _fill_the_start(lead, "Dr Patel saw the patient: anxious, go ahead")
    assert not lead.exception, lead.exception
    with read_session(clinic_url) as db:
        session = db.get(TreatmentSession, session_id)
        change = db.exec(select(StatusChange).where(StatusChange.to_status == "infusing")).one()
    # The write stores and notes the reason as the check asked, without knowing it either.
    assert session.status == SessionStatus.INFUSING
    assert session.hold_override_reason == "Dr Patel saw the patient: anxious, go ahead"
    assert f"{LEAD_NOTE}: Dr Patel saw the patient: anxious, go ahead" in change.reason
