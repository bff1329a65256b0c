"""The access log and the histories (status, ride, settings) are append-only in the
database itself (0005)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ketadash import auth
from ketadash.auth import AccessAction
from ketadash.db import alembic_config, get_engine, migrate, write_session
from ketadash.lifecycle import take_step
from ketadash.rides import arrange_ride
from ketadash.settings import set_site_setting
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
CHANGES = {
    "access_log": ("UPDATE access_log SET detail = 'nothing happened'", "DELETE FROM access_log"),
    "status_change": (
        "UPDATE status_change SET to_status = to_status",
        "DELETE FROM status_change",
    ),
    "ride_change": ("UPDATE ride_change SET state = state", "DELETE FROM ride_change"),
    "setting_change": (
        "UPDATE setting_change SET new_value = old_value",
        "DELETE FROM setting_change",
    ),
}


def _history(url: str) -> None:
    """One access log row and one status change."""
    clinic = make_clinic(url=url)
    patient = make_patient(url=url, site_id=clinic.site_id)
    session = make_session(url=url, clinic=clinic, patient_id=patient, scheduled_start=NOW)
    take_step(url=url, session_id=session, step=Step.CHECK_IN, staff_id=clinic.nurse_id,
              expected_version=1, now=NOW)  # fmt: skip
    auth.log_access(url=url, staff_id=clinic.lead_id, action=AccessAction.EXPORT,
                    detail="visits.csv", now=NOW)  # fmt: skip
    arrange_ride(url=url, session_id=session, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo Driver", now=NOW)  # fmt: skip
    with write_session(url) as db:
        set_site_setting(db=db, site_id=clinic.site_id, name="late_arrival_minutes",
                         value="20", staff_id=clinic.lead_id, now=NOW)  # fmt: skip


def _rows(url: str, table: str) -> list[tuple]:
    with get_engine(url).connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table}")]


def _column(url: str, query: str) -> list:
    with get_engine(url).connect() as connection:
        return list(connection.exec_driver_sql(query).scalars())


@pytest.mark.parametrize("table", list(CHANGES))
@pytest.mark.parametrize("change", ["update", "delete"])
def test_rows_of_the_history_cannot_be_changed_or_deleted(db_url, table, change):
    _history(db_url)
    before = _rows(db_url, table)
    assert before
    statement = CHANGES[table][0 if change == "update" else 1]
    with (
        pytest.raises(sa.exc.IntegrityError, match=f"{table} is append-only"),
        get_engine(db_url).begin() as connection,
    ):
        connection.exec_driver_sql(statement)
    assert _rows(db_url, table) == before


def test_the_history_still_grows(db_url):
    _history(db_url)
    (lead,) = _column(db_url, "SELECT staff_id FROM access_log")
    auth.log_access(url=db_url, staff_id=lead, action=AccessAction.OPEN_PANEL,
                    now=NOW + timedelta(minutes=1))  # fmt: skip
    assert len(_rows(db_url, "access_log")) == 2
    assert len(_rows(db_url, "status_change")) == 1


def test_the_demo_clinic_is_still_replaced_with_its_history(db_url):
    from ketadash.demo import build_demo_clinic

    build_demo_clinic(url=db_url, patients=12, history_days=20, now=NOW)
    lead = _column(db_url, "SELECT min(id) FROM staff")[0]
    auth.log_access(url=db_url, staff_id=lead, action=AccessAction.EXPORT, detail="x.csv",
                    now=NOW)  # fmt: skip
    build_demo_clinic(url=db_url, patients=12, history_days=20, now=NOW + timedelta(days=1),
                      replace_demo=True)  # fmt: skip
    assert _rows(db_url, "access_log") == []
    assert _rows(db_url, "status_change")


def test_a_real_clinic_marked_nowhere_as_demo_keeps_its_history_on_delete(db_url):
    _history(db_url)
    with (
        pytest.raises(sa.exc.IntegrityError, match="access_log is append-only"),
        get_engine(db_url).begin() as connection,
    ):
        connection.exec_driver_sql("DELETE FROM access_log")
        connection.exec_driver_sql("INSERT INTO clinic_info (key, value) VALUES ('x', 'y')")
    assert _rows(db_url, "clinic_info") == []


def test_downgrading_0005_lifts_the_guard_and_upgrading_restores_it(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    migrate(url)
    _history(url)
    command.downgrade(alembic_config(url), "0003")
    with get_engine(url).begin() as connection:
        connection.exec_driver_sql("UPDATE access_log SET detail = 'before 0005'")
    migrate(url)
    with (
        pytest.raises(sa.exc.IntegrityError, match="access_log is append-only"),
        get_engine(url).begin() as connection,
    ):
        connection.exec_driver_sql("UPDATE access_log SET detail = 'after 0005'")
    assert _column(url, "SELECT detail FROM access_log") == ["before 0005"]
    get_engine(url).dispose()
