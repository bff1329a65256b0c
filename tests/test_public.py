"""The public projection: no personal field in its type, no personal column in its query."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from ketadash.db import write_session
from ketadash.models import Patient, Ride, Site, SiteSetting, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.public import (
    PublicPlace,
    PublicRecoveryArea,
    PublicRecoveryPatient,
    UnknownSite,
    first_site_code,
    load_public_recovery_area,
    public_label,
    public_recovery_query,
)
from ketadash.rides import arrange_ride, ride_arrived
from tests.utils.factories import make_clinic, make_patient, make_session, minutes

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
# Every column of the patient table but the alias, and the driver's details: none may be read.
PERSONAL_COLUMNS = [
    column.name
    for column in Patient.__table__.columns
    if column.name not in ("id", "display_alias", "home_site_id")
] + ["driver_name", "driver_phone", "relationship", "dose_mg", "weight_kg", "systolic"]
PERSONAL_WORDS = ("name", "mrn", "birth", "phone", "dose", "vital", "score", "flag", "weight")


def test_the_public_type_has_no_personal_field():
    for kind in (PublicRecoveryPatient, PublicRecoveryArea):
        names = {f.name for f in dataclasses.fields(kind)}
        assert not {n for n in names if any(word in n for word in PERSONAL_WORDS)} - {
            "site_name"
        }, names
    assert {f.name for f in dataclasses.fields(PublicRecoveryPatient)} == {
        "label",
        "place",
        "since",
    }


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_the_public_query_never_selects_a_personal_column(dialect):
    query = public_recovery_query(site_id=1, now=NINE)
    sql = str(query.compile(dialect=dialect)).lower()
    for column in PERSONAL_COLUMNS:
        assert column not in sql, column
    selected = {column.key for column in query.selected_columns}
    assert selected == {
        "chair",
        "alias",
        "status",
        "infusion_ended_at",
        "ready_at",
        "ride_arrived_at",
    }


def test_label_rule_alias_else_chair():
    assert public_label(alias="Blue Heron", chair="Chair 3", rule="alias_or_chair") == "Blue Heron"
    assert public_label(alias="  \u200b ", chair="Chair 3", rule="alias_or_chair") == "Chair 3"
    assert public_label(alias=None, chair="Chair 3", rule="alias_or_chair") == "Chair 3"
    assert public_label(alias="Blue Heron", chair="Chair 3", rule="chair_only") == "Chair 3"
    assert public_label(alias="\u202eHeron", chair="Chair 3", rule="alias_or_chair") == "Heron"
    assert public_label(alias=None, chair=None, rule="alias_or_chair") == "In recovery"


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


def _put(url, session_id, **values):
    with write_session(url) as db:
        db.execute(
            update(TreatmentSession).where(TreatmentSession.id == session_id).values(**values)
        )


def _visit(url, clinic, *, mrn, alias, chair, status, ended, ready=None):
    patient = make_patient(url=url, mrn=mrn, first="Secret", last=f"Person{mrn}", alias=alias)
    session_id = make_session(
        url=url, clinic=clinic, patient_id=patient, scheduled_start=NINE, chair_index=chair
    )
    _put(url, session_id, status=status, infusion_ended_at=ended, ready_at=ready)
    return session_id


def test_the_wall_shows_recovery_and_ready_with_place_and_since(db_url, clinic):
    resting = _visit(db_url, clinic, mrn="A1", alias="Blue Heron", chair=0, status=S.RECOVERY,
                     ended=NINE + minutes(40))  # fmt: skip
    waiting = _visit(db_url, clinic, mrn="A2", alias=None, chair=1, status=S.READY,
                     ended=NINE + minutes(30), ready=NINE + minutes(70))  # fmt: skip
    here = _visit(db_url, clinic, mrn="A3", alias="Oak", chair=2, status=S.READY,
                  ended=NINE + minutes(20), ready=NINE + minutes(60))  # fmt: skip
    _visit(db_url, clinic, mrn="A4", alias="Gone", chair=3, status=S.DISCHARGED,
           ended=NINE)  # fmt: skip
    _visit(db_url, clinic, mrn="A5", alias="Dosing", chair=4, status=S.INFUSING,
           ended=None)  # fmt: skip
    arrange_ride(url=db_url, session_id=here, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo", now=NINE)  # fmt: skip
    ride_arrived(url=db_url, session_id=here, staff_id=clinic.nurse_id, expected_ride_version=1,
                 now=NINE + minutes(75))  # fmt: skip
    # The driver of the resting patient is here early: they still rest.
    arrange_ride(url=db_url, session_id=resting, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Kim", arrived=True,
                 now=NINE + minutes(50))  # fmt: skip
    area = load_public_recovery_area(url=db_url, site_code="main", now=NINE + minutes(80))
    assert (area.site_code, area.site_name, area.read_at) == (
        "main",
        "Main Street",
        NINE + minutes(80),
    )
    assert [(p.label, p.place, p.since) for p in area.patients] == [
        ("Oak", PublicPlace.RIDE_ARRIVED, NINE + minutes(75)),
        ("Chair 2", PublicPlace.WAITING_FOR_RIDE, NINE + minutes(70)),
        ("Blue Heron", PublicPlace.RESTING, NINE + minutes(40)),
    ]
    assert waiting


def test_chair_only_setting_hides_aliases(db_url, clinic):
    _visit(db_url, clinic, mrn="A1", alias="Blue Heron", chair=2, status=S.RECOVERY,
           ended=NINE)  # fmt: skip
    with write_session(db_url) as db:
        db.add(SiteSetting(site_id=clinic.site_id, name="wall_label", value="chair_only",
                           updated_at=NINE))  # fmt: skip
    area = load_public_recovery_area(url=db_url, site_code="main", now=NINE + minutes(5))
    assert [p.label for p in area.patients] == ["Chair 3"]


def test_a_wall_for_one_site_shows_nothing_of_another(db_url, clinic):
    _visit(db_url, clinic, mrn="A1", alias="Main One", chair=0, status=S.RECOVERY,
           ended=NINE)  # fmt: skip
    with write_session(db_url) as db:
        db.add(Site(code="east", name="East Side", time_zone="America/New_York"))
    east = load_public_recovery_area(url=db_url, site_code="east", now=NINE + minutes(5))
    assert east.patients == ()
    assert east.site_name == "East Side"
    with pytest.raises(UnknownSite):
        load_public_recovery_area(url=db_url, site_code="nowhere", now=NINE)
    assert first_site_code(url=db_url) == "main"


def test_visits_from_long_ago_left_open_are_not_on_the_wall(db_url, clinic):
    old = _visit(db_url, clinic, mrn="A1", alias="Old", chair=0, status=S.RECOVERY,
                 ended=NINE)  # fmt: skip
    _put(db_url, old, scheduled_start=NINE - minutes(60 * 30))
    assert load_public_recovery_area(url=db_url, site_code="main", now=NINE).patients == ()


def test_rides_do_not_leak_into_the_public_area(db_url, clinic):
    session_id = _visit(db_url, clinic, mrn="A1", alias=None, chair=0, status=S.READY,
                        ended=NINE, ready=NINE + minutes(30))  # fmt: skip
    with write_session(db_url) as db:
        db.add(Ride(session_id=session_id, driver_name="Driver Name", driver_phone="555-0199",
                    arrived_at=NINE + minutes(40)))  # fmt: skip
    area = load_public_recovery_area(url=db_url, site_code="main", now=NINE + minutes(45))
    assert "Driver Name" not in repr(area) and "555-0199" not in repr(area)
    assert "Secret" not in repr(area) and "A1" not in repr(area)


def test_two_patients_recorded_in_one_chair_are_two_people_on_the_wall(db_url, clinic):
    # Data from before the chair gate may hold two visits in one chair: the wall shows each
    # person once (by alias, or both by the chair), never one of them twice or neither.
    _visit(db_url, clinic, mrn="A1", alias="Blue Heron", chair=1, status=S.RECOVERY,
           ended=NINE)  # fmt: skip
    _visit(db_url, clinic, mrn="A2", alias=None, chair=1, status=S.READY, ended=NINE,
           ready=NINE + minutes(30))  # fmt: skip
    area = load_public_recovery_area(url=db_url, site_code="main", now=NINE + minutes(40))
    assert sorted(p.label for p in area.patients) == ["Blue Heron", "Chair 2"]
    with write_session(db_url) as db:
        db.add(SiteSetting(site_id=clinic.site_id, name="wall_label", value="chair_only",
                           updated_at=NINE))  # fmt: skip
    area = load_public_recovery_area(url=db_url, site_code="main", now=NINE + minutes(40))
    assert [p.label for p in area.patients] == ["Chair 2", "Chair 2"]
