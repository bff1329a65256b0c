"""The Boosters page under AppTest: the worklist, a patient's timeline, booking a booster."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.models import SessionKind, SessionStatus, TreatmentSession
from tests.utils.relief import make_open_clinic, make_relief_patient

DASHBOARD = str(Path(__file__).resolve().parents[2] / "dashboard.py")


@pytest.fixture
def clinic(sqlite_url, monkeypatch):
    monkeypatch.setenv("KETADASH_DATABASE_URL", sqlite_url)
    now = utc_now()
    clinic = make_open_clinic(url=sqlite_url, now=now)
    # Relief of about 20 days, the last booster 25 days ago: overdue.
    overdue = make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn="KD-OVERDUE", relief=20, episodes=4,
        days_since_last=25, first="![t](http://host/x.png)", last="Lund",
    )  # fmt: skip
    # The last booster 2 days ago: not due yet, so not on the default worklist.
    make_relief_patient(
        url=sqlite_url, clinic=clinic, now=now, mrn="KD-LATER", relief=30, episodes=3,
        days_since_last=2,
    )  # fmt: skip
    return sqlite_url, clinic, overdue


def _open_boosters() -> AppTest:
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.run()
    at.switch_page("pages/boosters.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _select(at: AppTest, label: str):
    return next(s for s in at.selectbox if s.label == label)


def test_worklist_lists_those_to_call_most_urgent_first_with_the_factors(clinic):
    at = _open_boosters()
    (table,) = at.dataframe
    assert list(table.value["Patient"]) == ["KD-OVERDUE"]
    assert list(table.value["Flag"]) == ["Overdue"]
    assert table.value["Past relief (days)"].iloc[0] == "20, 20, 20, 20, 25+"
    assert {m.label for m in at.metric} >= {
        "Overdue",
        "Baseline PHQ-9",
        "Series response",
        "Expected relief",
        "Booster due now",
    }
    assert next(m for m in at.metric if m.label == "Baseline PHQ-9").value == "21"
    assert at.get("download_button"), "the worklist can be downloaded as CSV"
    assert at.get("vega_lite_chart"), "the patient's timeline is drawn"


def test_names_from_the_database_are_shown_as_text_not_markdown(clinic):
    at = _open_boosters()
    header = next(m.value for m in at.markdown if "KD" in m.value and "OVERDUE" in m.value)
    assert "![t](http://host/x.png)" not in header
    assert r"\!\[t\]\(http\:" in header


def test_flag_filter_widens_the_list_to_patients_not_due_yet(clinic):
    at = _open_boosters()
    from ketadash.boosters import BoosterFlag

    at.multiselect(key="kd_boosters_flags").set_value(
        [BoosterFlag.OVERDUE, BoosterFlag.LATER]
    ).run()
    (table,) = at.dataframe
    assert list(table.value["Patient"]) == ["KD-OVERDUE", "KD-LATER"]


def test_booking_from_the_worklist_creates_a_scheduled_booster_and_the_flag_turns(clinic):
    url, ids, patient_id = clinic
    at = _open_boosters()
    at.button(key=f"kd_book_{patient_id}").click().run()
    assert not at.exception, at.exception
    assert any("Booster booked for KD" in s.value for s in at.success), [e.value for e in at.error]
    assert any("Dana Reyes" in s.value for s in at.success)
    with read_session(url) as db:
        (booked,) = db.exec(
            select(TreatmentSession).where(
                TreatmentSession.patient_id == patient_id,
                TreatmentSession.status == SessionStatus.SCHEDULED,
            )
        ).all()
    assert booked.kind == SessionKind.BOOSTER
    assert booked.chair_id in ids.chair_ids
    (table,) = at.dataframe
    assert list(table.value["Flag"]) == ["Booked"]
    assert any("Booked for" in i.value for i in at.info)


def test_a_positive_latest_item9_is_on_the_worklist_and_in_the_booking_dialog(clinic):
    from datetime import timedelta

    from ketadash.db import write_session
    from ketadash.models import Instrument, OutcomeScore

    url, _ids, patient_id = clinic
    with write_session(url) as db:
        db.add(OutcomeScore(patient_id=patient_id, instrument=Instrument.PHQ9, total=16,
                            item9=2, taken_at=utc_now() - timedelta(days=1)))  # fmt: skip
    at = _open_boosters()
    (table,) = at.dataframe
    assert list(table.value["PHQ-9 item 9"]) == ["⚠ 2: self-harm thoughts"]
    assert "PHQ-9 item 9" in _select(at, "Patient").format_func(patient_id)
    warnings = [e.value for e in at.error if "item 9 answered 2" in e.value]
    assert warnings and all("C-SSRS" in w for w in warnings)
    assert at.button(key=f"kd_book_{patient_id}"), "the booking dialog is on the same screen"


def test_autolinks_in_names_are_broken_in_the_header_and_the_booking_message(clinic):
    # Escaping alone leaves "a@b.org" and "www." for GFM to autolink: ``literal`` breaks them.
    from ketadash.db import write_session
    from ketadash.models import Chair, Patient
    from ketadash.ui.text import literal

    url, ids, patient_id = clinic
    with write_session(url) as db:
        db.get(Patient, patient_id).first_name = "a@b.org"
        for number, chair_id in enumerate(ids.chair_ids):
            db.get(Chair, chair_id).name = f"www.chair{number}.org"
    at = _open_boosters()
    header = next(m.value for m in at.markdown if "OVERDUE" in m.value)
    assert literal("a@b.org") in header and "a@b" not in header, header
    at.button(key=f"kd_book_{patient_id}").click().run()
    assert not at.exception, at.exception
    (booked,) = [s.value for s in at.success if "Booster booked for" in s.value]
    assert literal("www.chair") in booked and "www." not in booked, booked
    assert all("www." not in t.value for t in at.toast)


def test_a_later_score_without_item9_leaves_the_positive_answer_on_the_worklist(clinic):
    from datetime import timedelta

    from ketadash.db import write_session
    from ketadash.models import Instrument, OutcomeScore

    url, _ids, patient_id = clinic
    with write_session(url) as db:
        db.add(OutcomeScore(patient_id=patient_id, instrument=Instrument.PHQ9, total=16,
                            item9=2, taken_at=utc_now() - timedelta(days=2)))  # fmt: skip
        # Scored at home, item 9 left empty: the answer of two days ago still stands.
        db.add(OutcomeScore(patient_id=patient_id, instrument=Instrument.PHQ9, total=15,
                            item9=None, taken_at=utc_now() - timedelta(days=1)))  # fmt: skip
    at = _open_boosters()
    (table,) = at.dataframe
    (shown,) = table.value["PHQ-9 item 9"]
    assert shown.startswith("⚠ 2: self-harm thoughts") and "latest did not record" in shown
    warnings = [e.value for e in at.error if "item 9 answered 2" in e.value]
    assert warnings and all("latest did not record item 9" in w for w in warnings)


def test_the_booking_form_states_the_plan_rule_for_the_chosen_time_in_the_gates_words(
    clinic, monkeypatch
):
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    import ketadash.ui.boosters as page
    from ketadash.db import write_session
    from ketadash.gates import as_sentences, plan_problems
    from ketadash.models import Route, Site
    from ketadash.ui.text import literal

    url, ids, patient_id = clinic
    with write_session(url) as db:
        # The last plan copied: an esketamine plan outside the label's 56 and 84 mg.
        db.add(
            TreatmentSession(
                site_id=ids.site_id,
                chair_id=ids.chair_ids[0],
                patient_id=patient_id,
                scheduled_start=utc_now() - timedelta(days=1),
                route=Route.ESKETAMINE,
                kind=SessionKind.BOOSTER,
                status=SessionStatus.DISCHARGED,
                dose_mg=112,
            )
        )
        zone = ZoneInfo(db.get(Site, ids.site_id).time_zone)
    asked: list[datetime] = []
    real = page.booster_plan_problems

    def spy(**kwargs):
        asked.append(kwargs["start"])
        return real(**kwargs)

    monkeypatch.setattr(page, "booster_plan_problems", spy)
    at = _open_boosters()
    words = literal(as_sentences(plan_problems(route=Route.ESKETAMINE, dose_mg=112,
                                               plan_reason=None, staff_role=None)))  # fmt: skip
    assert any(w.value == words for w in at.warning), [w.value for w in at.warning]
    # A later time is chosen: the plan asked about is the one before that time.
    day = next(d for d in at.date_input if d.label == "Day").value
    chosen = time(23, 0)
    next(t for t in at.time_input if t.label == "Time").set_value(chosen).run()
    assert not at.exception, at.exception
    assert asked[-1] == datetime.combine(day, chosen, tzinfo=zone)


def test_the_first_open_of_the_day_stores_the_morning_and_the_list_reads_it(clinic):
    import streamlit as st

    from ketadash.db import write_session
    from ketadash.models import BoosterFlagMorning, BoosterFlagRow

    url, ids, overdue = clinic
    _open_boosters()
    with read_session(url) as db:
        mornings = db.exec(select(BoosterFlagMorning)).all()
        rows = db.exec(select(BoosterFlagRow)).all()
    assert [m.site_id for m in mornings] == [ids.site_id]
    assert [(r.patient_id, r.flag) for r in rows] == [(overdue, "overdue")]
    # What the morning stored is what the list shows (here made to differ from the live
    # flag, as a change in the day would): a later open reads it, it does not write again.
    with write_session(url) as db:
        row = db.exec(select(BoosterFlagRow)).one()
        row.flag = "due_soon"
        db.add(row)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = _open_boosters()
    (table,) = at.dataframe
    assert list(table.value["Flag"]) == ["Due soon"]
    assert any(": 1 on it." in c.value for c in at.caption)
    with read_session(url) as db:
        assert len(db.exec(select(BoosterFlagMorning)).all()) == 1


def test_the_caller_sees_name_phone_item9_and_planned_now_dates_without_more_columns(clinic):
    from datetime import timedelta

    from ketadash.boosters import BoosterFlag
    from ketadash.db import write_session
    from ketadash.models import AccessLog, Instrument, OutcomeScore, Patient
    from ketadash.ui.boosters import CALLER_COLUMNS

    url, _ids, overdue = clinic
    with write_session(url) as db:
        patient = db.get(Patient, overdue)
        patient.phone = "617-555-0142"
        db.add(patient)
        db.add(
            OutcomeScore(
                patient_id=overdue,
                instrument=Instrument.PHQ9,
                taken_at=utc_now() - timedelta(days=1),
                total=8,
                item9=2,
            )
        )
    at = _open_boosters()
    (table,) = at.dataframe
    assert list(table.value.columns) == list(CALLER_COLUMNS)
    row = table.value.iloc[0]
    assert row["Patient"] == "KD-OVERDUE"
    assert row["Name"] == "![t](http://host/x.png) Lund"  # shown as text in a table cell
    assert row["Phone"] == "617-555-0142"
    assert row["PHQ-9 item 9"] == "⚠ 2: self-harm thoughts"
    assert row["Flag"] == BoosterFlag.OVERDUE.label
    planned, now = row["Booster planned / now"].split(" / ")
    assert planned and now and planned != now  # relief outlasted the first plan's date
    with read_session(url) as db:
        logged = db.exec(select(AccessLog.detail).where(AccessLog.patient_id.is_(None))).all()
    assert "call list, names and phones: 1 listed" in logged
