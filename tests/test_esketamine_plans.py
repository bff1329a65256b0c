"""Hostile safety review (h4), item 5: esketamine plans outside the label's 56 and 84 mg.

Such a plan is refused at import and at booking unless a clinic lead records a reason;
the start form draws whatever plan the data holds (tests/pages/test_today_page.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from ketadash.booking import BookingRefused, book_booster
from ketadash.db import read_session
from ketadash.gates import plan_problems
from ketadash.importer import ImportRejected, import_files
from ketadash.models import Route, StaffRole, TreatmentSession
from tests.utils.factories import LEAD_EMAIL, NURSE_EMAIL, make_clinic, make_patient, make_session

# Friday 27 Nov 2026, 09:00 in New York; the booster goes on Tuesday 1 Dec at 10:00.
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
TUESDAY_TEN = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
REASON = "Dr Patel: 112 mg per the trial protocol, consent on file"


@pytest.mark.parametrize(
    ("dose_mg", "role", "reason", "ok"),
    [
        (56, StaffRole.NURSE, None, True),
        (84, None, None, True),
        (28, StaffRole.NURSE, None, False),
        (112, StaffRole.NURSE, None, False),
        (476, StaffRole.NURSE, REASON, False),
        (112, StaffRole.LEAD, None, False),
        (112, StaffRole.LEAD, REASON, True),
    ],
)
def test_an_esketamine_plan_outside_56_and_84_mg_needs_a_leads_reason(dose_mg, role, reason, ok):
    problems = plan_problems(
        route=Route.ESKETAMINE, dose_mg=dose_mg, plan_reason=reason, staff_role=role
    )
    assert (not problems) is ok
    if not ok:
        assert "56 or 84 mg" in problems[0]


def test_other_routes_are_not_held_to_the_esketamine_plans():
    assert not plan_problems(route=Route.LOZENGE, dose_mg=200, plan_reason=None, staff_role=None)
    assert not plan_problems(route=Route.IV, dose_mg=None, plan_reason=None, staff_role=None)


def _files(tmp_path: Path, *, dose_mg: int, extra_header: str = "", extra: str = "") -> dict:
    patients = tmp_path / "patients.csv"
    patients.write_text("mrn,first_name,last_name\nA-1,Alex,Morgan\n")
    sessions = tmp_path / "sessions.csv"
    sessions.write_text(
        "session_ref,mrn,site,scheduled_start,route,kind,dose_mg_per_kg,dose_mg,status"
        f"{extra_header}\n"
        f"EHR-1,A-1,main,2026-11-30 10:00,esketamine,series,,{dose_mg},scheduled{extra}\n"
    )
    return {"patients": patients, "sessions": sessions}


@pytest.mark.parametrize("dose_mg", [112, 476, 28])
def test_the_import_refuses_an_esketamine_plan_outside_56_and_84_mg(db_url, tmp_path, dose_mg):
    make_clinic(url=db_url)
    with pytest.raises(ImportRejected) as rejected:
        import_files(url=db_url, **_files(tmp_path, dose_mg=dose_mg), now=NOW)
    (problem,) = rejected.value.problems
    assert problem.line == 2
    assert "56 or 84 mg" in problem.reason
    with read_session(db_url) as db:
        assert db.exec(select(TreatmentSession)).all() == []


def test_the_import_takes_84_mg(db_url, tmp_path):
    make_clinic(url=db_url)
    import_files(url=db_url, **_files(tmp_path, dose_mg=84), now=NOW)


def test_the_import_takes_an_unusual_plan_with_a_leads_reason(db_url, tmp_path):
    make_clinic(url=db_url)
    files = _files(tmp_path, dose_mg=112, extra_header=",plan_reason,plan_lead",
                   extra=f',"{REASON}",{LEAD_EMAIL}')  # fmt: skip
    import_files(url=db_url, **files, now=NOW)
    with read_session(db_url) as db:
        (session,) = db.exec(select(TreatmentSession)).all()
    assert session.dose_mg == 112
    assert REASON in session.plan_reason
    assert "Lee Park" in session.plan_reason


def test_the_import_refuses_an_unusual_plan_whose_reason_is_not_a_leads(db_url, tmp_path):
    make_clinic(url=db_url)
    files = _files(tmp_path, dose_mg=112, extra_header=",plan_reason,plan_lead",
                   extra=f',"{REASON}",{NURSE_EMAIL}')  # fmt: skip
    with pytest.raises(ImportRejected) as rejected:
        import_files(url=db_url, **files, now=NOW)
    assert "clinic lead" in str(rejected.value.problems)


@pytest.fixture
def after_an_unusual_plan(db_url):
    clinic = make_clinic(url=db_url, chairs=2)
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    make_session(url=db_url, clinic=clinic, patient_id=patient, route=Route.ESKETAMINE,
                 dose_mg=112, scheduled_start=NOW - timedelta(days=7))  # fmt: skip
    return clinic, patient


def test_booking_refuses_to_copy_an_unusual_esketamine_plan(db_url, after_an_unusual_plan):
    clinic, patient = after_an_unusual_plan
    with pytest.raises(BookingRefused, match="56 or 84 mg"):
        book_booster(url=db_url, patient_id=patient, site_id=clinic.site_id, start=TUESDAY_TEN,
                     staff_id=clinic.nurse_id, now=NOW, plan_reason=REASON)  # fmt: skip
    with pytest.raises(BookingRefused, match="56 or 84 mg"):
        book_booster(url=db_url, patient_id=patient, site_id=clinic.site_id, start=TUESDAY_TEN,
                     staff_id=clinic.lead_id, now=NOW)  # fmt: skip
    booked = book_booster(url=db_url, patient_id=patient, site_id=clinic.site_id,
                          start=TUESDAY_TEN, staff_id=clinic.lead_id, now=NOW,
                          plan_reason=REASON)  # fmt: skip
    with read_session(db_url) as db:
        session = db.get(TreatmentSession, booked.session_id)
    assert (session.dose_mg, session.plan_reason) == (112, REASON)
