"""Issue 18: each site's data version moves in the same transaction as every write a screen
shows (database triggers, migration 0007), and never on a write that did not happen."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from ketadash.booking import book_booster
from ketadash.db import DatabaseUnavailable, read_session, write_session
from ketadash.importer import import_files
from ketadash.lifecycle import StepNotAllowed, record_phq9, record_vitals
from ketadash.live_versions import SiteVersions, VersionWatch, read_versions
from ketadash.models import ClinicInfo, Site, TreatmentSession, VitalsPhase, VitalsReading
from ketadash.rides import arrange_ride
from ketadash.settings import change_site_setting
from ketadash.vocabulary import Step
from tests.test_histories import a_patient
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.steps import step_at
from tests.utils.visits import CALM

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
SAMPLES = Path(__file__).parent / "data" / "import"


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


@pytest.fixture
def other_site(db_url, clinic) -> int:
    with write_session(db_url) as db:
        site = Site(code="north", name="North")
        db.add(site)
        db.flush()
        return site.id


@pytest.fixture
def visit(db_url, clinic, other_site) -> int:
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    return make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)


def version(url: str, site_id: int) -> int:
    return read_versions(url=url).of(site_id)


class Moves:
    """The site's version before and after a write, and the other site's."""

    def __init__(self, url: str, site_id: int, other_id: int) -> None:
        self.url, self.site_id, self.other_id = url, site_id, other_id
        self.before = version(url, site_id)
        self.other_before = version(url, other_id)

    def moved(self) -> bool:
        return version(self.url, self.site_id) > self.before

    def other_moved(self) -> bool:
        return version(self.url, self.other_id) != self.other_before


def test_a_new_site_has_a_version(db_url, clinic, other_site):
    versions = read_versions(url=db_url)
    assert versions.of(clinic.site_id) >= 1 and versions.of(other_site) >= 1


def test_a_lifecycle_step_moves_its_site_only(db_url, clinic, other_site, visit):
    moves = Moves(db_url, clinic.site_id, other_site)
    step_at(db_url, clinic, visit, Step.CHECK_IN, NINE)
    assert moves.moved() and not moves.other_moved()


def test_vitals_a_phq9_and_a_ride_each_move_it(db_url, clinic, other_site, visit):
    step_at(db_url, clinic, visit, Step.CHECK_IN, NINE)
    moves = Moves(db_url, clinic.site_id, other_site)
    record_vitals(url=db_url, session_id=visit, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(1))  # fmt: skip
    assert moves.moved() and not moves.other_moved()
    moves = Moves(db_url, clinic.site_id, other_site)
    record_phq9(url=db_url, session_id=visit, staff_id=clinic.nurse_id, total=12, item9=0,
                now=NINE + minutes(2))  # fmt: skip
    assert moves.moved() and not moves.other_moved()
    moves = Moves(db_url, clinic.site_id, other_site)
    arrange_ride(url=db_url, session_id=visit, staff_id=clinic.nurse_id,
                expected_ride_version=None, driver_name="Jo Morgan",
                now=NINE + minutes(3))  # fmt: skip
    assert moves.moved() and not moves.other_moved()


def test_a_booking_moves_it(db_url):
    clinic = make_clinic(url=db_url, chairs=2)
    patient_id = a_patient(url=db_url, clinic=clinic, mrn="A", relief=20, boosters=2)
    before = version(db_url, clinic.site_id)
    book_booster(url=db_url, patient_id=patient_id, site_id=clinic.site_id,
                 start=datetime(2026, 12, 1, 15, 0, tzinfo=UTC), staff_id=clinic.nurse_id,
                 now=datetime(2026, 11, 27, 14, 0, tzinfo=UTC))  # fmt: skip
    assert version(db_url, clinic.site_id) > before


def test_a_setting_moves_it(db_url, clinic, other_site):
    moves = Moves(db_url, clinic.site_id, other_site)
    change_site_setting(url=db_url, site_id=clinic.site_id, name="hold_systolic", value="150",
                        staff_id=clinic.lead_id, now=NINE)  # fmt: skip
    assert moves.moved() and not moves.other_moved()


def test_an_import_moves_it(db_url, clinic, tmp_path):
    for name in ("patients", "sessions"):
        shutil.copy(SAMPLES / f"{name}.csv", tmp_path / f"{name}.csv")
    before = version(db_url, clinic.site_id)
    import_files(url=db_url, patients=tmp_path / "patients.csv",
                 sessions=tmp_path / "sessions.csv", add_chairs=True, now=NINE)  # fmt: skip
    assert version(db_url, clinic.site_id) > before


def test_a_clinic_wide_write_moves_every_site(db_url, clinic, other_site):
    moves = Moves(db_url, clinic.site_id, other_site)
    with write_session(db_url) as db:
        db.add(ClinicInfo(key="clinic_name", value="Calm Clinic"))
    assert moves.moved() and moves.other_moved()


def test_a_rolled_back_write_moves_nothing(db_url, clinic, other_site, visit):
    moves = Moves(db_url, clinic.site_id, other_site)
    with pytest.raises(RuntimeError), write_session(db_url) as db:
        db.add(VitalsReading(session_id=visit, taken_at=NINE, phase=VitalsPhase.BEFORE,
                             systolic=120, diastolic=80, heart_rate=70, spo2=98))  # fmt: skip
        db.flush()
        raise RuntimeError("the station lost power")
    assert not moves.moved() and not moves.other_moved()


def test_a_refused_write_moves_nothing(db_url, clinic, other_site, visit):
    moves = Moves(db_url, clinic.site_id, other_site)
    with pytest.raises(StepNotAllowed):
        step_at(db_url, clinic, visit, Step.DISCHARGE, NINE)
    assert not moves.moved()


def test_the_version_is_seen_only_with_the_write(db_url, clinic, other_site, visit):
    """Another connection sees the old version until the writing transaction commits, and the
    new version together with the written row: never one without the other."""
    moves = Moves(db_url, clinic.site_id, other_site)
    with write_session(db_url) as db:
        row = db.get(TreatmentSession, visit)
        row.weight_kg = 71.5
        db.add(row)
        db.flush()
        assert not moves.moved()
    assert moves.moved()
    with read_session(db_url) as db:
        assert db.exec(select(TreatmentSession.weight_kg).where(TreatmentSession.id == visit)).one()


def test_one_transaction_of_many_rows_moves_it_at_least_once(db_url, clinic, other_site, visit):
    moves = Moves(db_url, clinic.site_id, other_site)
    with write_session(db_url) as db:
        for n in range(5):
            db.add(VitalsReading(session_id=visit, taken_at=NINE + minutes(n),
                                 phase=VitalsPhase.BEFORE, systolic=120, diastolic=80,
                                 heart_rate=70, spo2=98))  # fmt: skip
    after = version(db_url, clinic.site_id)
    assert after > moves.before
    if db_url.startswith("postgresql"):
        assert after == moves.before + 1  # deferred to COMMIT, once per transaction


# --- the process's watch: pure, no database -------------------------------------------


def test_the_token_changes_exactly_when_a_version_does():
    one = SiteVersions(sites={1: 3, 2: 7})
    assert one.token() == SiteVersions(sites={2: 7, 1: 3}).token()
    assert one.token() != SiteVersions(sites={1: 4, 2: 7}).token()
    assert SiteVersions(down=True).token() == "down"
    assert one.of(1) == 3 and one.of(9) == 0 and one.of(None) == 10


def test_the_watch_reports_a_change_once_and_survives_an_outage():
    answers = [SiteVersions(sites={1: 1})]
    seen: list[SiteVersions] = []

    def read() -> SiteVersions:
        answer = answers[-1]
        if answer is None:
            raise DatabaseUnavailable("down")
        return answer

    watch = VersionWatch(url="unused", every_seconds=3600, on_change=seen.append, read=read)
    try:
        assert watch.current.of(1) == 1
        watch.check_now()
        assert seen == []
        answers.append(SiteVersions(sites={1: 2}))
        watch.check_now()
        watch.check_now()
        assert [s.of(1) for s in seen] == [2]
        answers.append(None)
        assert watch.check_now().down and watch.current.down
        answers.append(SiteVersions(sites={1: 2}))
        assert not watch.check_now().down
        assert len(seen) == 3
    finally:
        watch.stop()


def test_a_drivers_link_moves_its_site_only(db_url, clinic, other_site, visit):
    from ketadash.driver_link import make_driver_link, revoke_driver_link

    step_at(db_url, clinic, visit, Step.CHECK_IN, NINE)
    moves = Moves(db_url, clinic.site_id, other_site)
    make_driver_link(url=db_url, session_id=visit, staff_id=clinic.nurse_id, now=NINE)
    assert moves.moved() and not moves.other_moved()
    moves = Moves(db_url, clinic.site_id, other_site)
    revoke_driver_link(url=db_url, session_id=visit, staff_id=clinic.nurse_id, now=NINE)
    assert moves.moved() and not moves.other_moved()


def test_a_walls_token_check_moves_nothing_but_revoking_it_does(db_url, clinic, other_site):
    from ketadash.auth import register_display, revoke_display
    from ketadash.sign_ins import note_display_check

    with read_session(db_url) as db:
        code = db.get(Site, clinic.site_id).code
    moves = Moves(db_url, clinic.site_id, other_site)
    display_id, _token = register_display(url=db_url, site_code=code, name="Recovery TV", now=NINE)
    assert moves.moved()
    moves = Moves(db_url, clinic.site_id, other_site)
    note_display_check(url=db_url, display_id=display_id, now=NINE + minutes(5))
    assert not moves.moved(), "a wall's own check would redraw every screen each minute"
    revoke_display(url=db_url, display_id=display_id, now=NINE + minutes(6))
    assert moves.moved() and not moves.other_moved()
