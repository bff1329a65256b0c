"""Sign-in decisions, registered displays and the access log (issue 11), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from ketadash import auth
from ketadash.__main__ import main
from ketadash.auth import AccessAction, AccessRefused, SignInMode
from ketadash.db import read_session, write_session
from ketadash.models import Display, Staff, StaffRole
from tests.utils.factories import make_clinic

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def clinic(db_url):
    ids = make_clinic(url=db_url)
    auth.set_staff_email(url=db_url, staff_id=ids.nurse_id, email=" Dana.Reyes@Clinic.example ")
    return ids


@pytest.mark.parametrize(
    ("demo", "configured", "mode"),
    [
        (True, False, SignInMode.DEMO),
        (True, True, SignInMode.IDENTITY_PROVIDER),
        (False, True, SignInMode.IDENTITY_PROVIDER),
        (False, False, SignInMode.REFUSE),
    ],
)
def test_a_real_clinic_without_an_identity_provider_is_refused(demo, configured, mode):
    assert auth.sign_in_mode(demo=demo, auth_configured=configured) is mode


def test_sign_in_matches_the_roster_by_email_ignoring_case(db_url, clinic):
    member = auth.staff_for_email(url=db_url, email="DANA.REYES@clinic.example")
    assert (member.id, member.role) == (clinic.nurse_id, StaffRole.NURSE)


def test_an_unknown_or_inactive_person_is_refused_in_plain_words(db_url, clinic):
    with pytest.raises(AccessRefused, match="not on this clinic's staff list"):
        auth.staff_for_email(url=db_url, email="stranger@example.org")
    with pytest.raises(AccessRefused, match="did not give an e-mail"):
        auth.staff_for_email(url=db_url, email=None)
    with write_session(db_url) as db:
        db.get(Staff, clinic.nurse_id).active = False
    with pytest.raises(AccessRefused, match="no longer working here"):
        auth.staff_for_email(url=db_url, email="dana.reyes@clinic.example")


def test_one_email_belongs_to_one_person(db_url, clinic):
    with pytest.raises(ValueError, match="already belongs"):
        auth.set_staff_email(url=db_url, staff_id=clinic.lead_id, email="dana.reyes@clinic.example")
    with pytest.raises(ValueError, match="not an e-mail"):
        auth.set_staff_email(url=db_url, staff_id=clinic.lead_id, email="lee park")


def test_roles_on_screens():
    leads = frozenset({StaffRole.LEAD})
    assert auth.may_open(audience=leads, role=StaffRole.LEAD)
    assert not auth.may_open(audience=leads, role=StaffRole.NURSE)


def test_an_idle_station_is_signed_out_after_the_setting():
    assert not auth.idle_too_long(last_activity=NOW, now=NOW + timedelta(minutes=14),
                                  idle_minutes=15)  # fmt: skip
    assert auth.idle_too_long(last_activity=NOW, now=NOW + timedelta(minutes=15), idle_minutes=15)


def test_a_display_token_is_stored_only_as_a_hash_and_can_be_revoked(db_url, clinic):
    display_id, token = auth.register_display(url=db_url, site_code="main", name="Recovery TV",
                                              now=NOW)  # fmt: skip
    with read_session(db_url) as db:
        stored = db.exec(select(Display.token_hash)).one()
    assert token not in stored and len(token) >= 40
    access = auth.display_for_token(url=db_url, token=token)
    assert (access.display_id, access.site_id) == (display_id, clinic.site_id)
    assert auth.display_for_token(url=db_url, token=token[:-1] + "x") is None
    assert auth.display_for_token(url=db_url, token=None) is None
    assert auth.revoke_display(url=db_url, display_id=display_id, now=NOW)
    assert auth.display_for_token(url=db_url, token=token) is None
    (entry,) = auth.list_displays(url=db_url)
    assert entry.revoked_at == NOW
    assert not auth.revoke_display(url=db_url, display_id=999, now=NOW)


def test_the_access_log_records_who_opened_what(db_url, clinic):
    auth.log_access(url=db_url, staff_id=clinic.nurse_id, action=AccessAction.OPEN_PANEL,
                    session_id=None, patient_id=None, now=NOW)  # fmt: skip
    auth.log_access(url=db_url, staff_id=clinic.lead_id, action=AccessAction.EXPORT,
                    detail="throughput CSV", now=NOW + timedelta(minutes=1))  # fmt: skip
    log = auth.read_access_log(url=db_url, start=NOW, end=NOW + timedelta(hours=1))
    assert list(log["staff"]) == ["Lee Park", "Dana Reyes"]
    assert list(log["action"]) == ["export", "open_panel"]
    only_dana = auth.read_access_log(url=db_url, start=NOW, end=NOW + timedelta(hours=1),
                                     staff_id=clinic.nurse_id)  # fmt: skip
    assert len(only_dana) == 1


def test_display_commands_print_the_address_once_and_revoke(sqlite_url, capsys):
    make_clinic(url=sqlite_url)
    assert main(["display", "--url", sqlite_url, "add", "--site", "main",
                 "--name", "Recovery TV"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    token = printed.split("display=")[1].split()[0]
    assert auth.display_for_token(url=sqlite_url, token=token) is not None
    assert main(["display", "--url", sqlite_url, "list"]) == 0
    assert "Recovery TV\tactive" in capsys.readouterr().out
    assert main(["display", "--url", sqlite_url, "revoke", "1"]) == 0
    assert auth.display_for_token(url=sqlite_url, token=token) is None
    assert main(["display", "--url", sqlite_url, "revoke", "7"]) == 1


def test_staff_command_records_the_email(sqlite_url, capsys):
    make_clinic(url=sqlite_url)
    assert main(["staff", "--url", sqlite_url, "--name", "Ana Ruiz", "--role", "lead",
                 "--site", "main", "--email", "Ana.Ruiz@clinic.example"]) == 0  # fmt: skip
    assert "signs in as ana.ruiz@clinic.example" in capsys.readouterr().out
    assert auth.staff_for_email(url=sqlite_url, email="ana.ruiz@clinic.example").name == "Ana Ruiz"
