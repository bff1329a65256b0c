"""The visits read layer: one Visit per session, its standing timeline, what counts for it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ketadash.db import read_session
from ketadash.lifecycle import record_phq9, record_vitals, take_step, undo_last_step
from ketadash.models import SessionStatus as S
from ketadash.visits import fold_timeline, load_open_visits, load_site_day, load_visit
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.visits import CALM, NINE


def test_a_correction_folds_the_step_it_takes_back_out_of_the_timeline():
    rows = [
        (2, S.SCHEDULED, S.CHECKED_IN, NINE, 1, None, False),
        (3, S.CHECKED_IN, S.INFUSING, NINE + minutes(10), 1, None, False),
        (4, S.INFUSING, S.CHECKED_IN, NINE + minutes(11), 2, "wrong chair", True),
        (5, S.CHECKED_IN, S.INFUSING, NINE + minutes(20), 1, None, False),
        (6, S.INFUSING, S.RECOVERY, NINE + minutes(60), 1, None, False),
    ]
    timeline = fold_timeline(list(reversed(rows)))  # any order in, version order out
    assert [(step.status, step.at) for step in timeline] == [
        (S.CHECKED_IN, NINE),
        (S.INFUSING, NINE + minutes(20)),
        (S.RECOVERY, NINE + minutes(60)),
    ]


def test_a_no_show_taken_back_leaves_nothing_standing():
    rows = [
        (2, S.SCHEDULED, S.NO_SHOW, NINE, 1, "not here", False),
        (3, S.NO_SHOW, S.SCHEDULED, NINE + minutes(5), 1, "arrived late", True),
    ]
    assert fold_timeline(rows) == ()


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url, chairs=3)


def _step(url, clinic, session_id, step, at, version, **extra):
    return take_step(url=url, session_id=session_id, step=step, staff_id=clinic.nurse_id,
                     expected_version=version, now=at, **extra)  # fmt: skip


def test_a_visit_carries_its_timeline_readings_and_public_facts(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id, alias="Blue Heron")
    session_id = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    _step(db_url, clinic, session_id, Step.CHECK_IN, NINE, 1)
    record_phq9(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, total=11, item9=0,
                now=NINE + minutes(2))  # fmt: skip
    record_vitals(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, vitals=CALM,
                  now=NINE + minutes(3))  # fmt: skip
    _step(db_url, clinic, session_id, Step.START_INFUSION, NINE + minutes(10), 2, dose_mg=35,
          weight_kg=70)  # fmt: skip
    undo_last_step(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                   expected_version=3, reason="Pump not primed",
                   now=NINE + minutes(11))  # fmt: skip
    with read_session(db_url) as db:
        visit = load_visit(db=db, session_id=session_id, now=NINE + minutes(12))
    assert visit.status == S.CHECKED_IN
    assert [step.status for step in visit.timeline] == [S.CHECKED_IN]
    assert (visit.phq9_total, visit.baseline.vitals) == (11, CALM)
    assert visit.display_alias == "Blue Heron"
    assert visit.public_label("alias_or_chair") == "Blue Heron"
    assert visit.public_label("chair_only") == "Chair 1"
    # The start taken back may still have been a dose: it counts for a second start.
    assert visit.doses_started_recently == 1
    assert visit.given_dose_mg is None


def test_readings_of_an_earlier_visit_the_same_day_do_not_count(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    first = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    second = make_session(url=db_url, clinic=clinic, patient_id=patient,
                          scheduled_start=NINE + minutes(180), chair_index=1)  # fmt: skip
    _step(db_url, clinic, first, Step.CHECK_IN, NINE, 1)
    record_phq9(url=db_url, session_id=first, staff_id=clinic.nurse_id, total=11, item9=0,
                now=NINE + minutes(2))  # fmt: skip
    _step(db_url, clinic, first, Step.CANCEL, NINE + minutes(30), 2, reason="Felt unwell")
    _step(db_url, clinic, second, Step.CHECK_IN, NINE + minutes(180), 1)
    with read_session(db_url) as db:
        visit = load_visit(db=db, session_id=second, now=NINE + minutes(181))
    assert visit.phq9_total is None


def test_a_site_day_and_its_open_visits(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    other = make_patient(url=db_url, mrn="MRN-2", site_id=clinic.site_id)
    today = make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)
    left_open = make_session(url=db_url, clinic=clinic, patient_id=other,
                             scheduled_start=NINE - timedelta(days=2), status=S.RECOVERY,
                             chair_index=2)  # fmt: skip
    make_session(url=db_url, clinic=clinic, patient_id=patient,
                 scheduled_start=NINE + timedelta(days=1))  # fmt: skip
    with read_session(db_url) as db:
        day = load_site_day(db=db, site_id=clinic.site_id, day=date(2026, 11, 24), now=NINE)
        open_visits = load_open_visits(db=db, site_id=clinic.site_id, now=NINE)
    assert [v.session_id for v in day.visits] == [left_open, today]
    assert [v.earlier_day for v in day.visits] == [True, False]
    assert [v.session_id for v in open_visits] == [left_open]
