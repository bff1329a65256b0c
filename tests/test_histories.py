"""Patient histories for boosters: the database filters by site and by ``as_of``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from ketadash.boosters import BoosterFlag, plan_boosters, worklist_frame
from ketadash.db import get_engine, read_session, write_session
from ketadash.histories import load_patient_histories
from ketadash.models import (
    Chair,
    Instrument,
    OutcomeScore,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    SymptomReturn,
    TreatmentSession,
)
from ketadash.settings import ClinicSettings
from tests.utils.factories import ClinicIds, make_clinic, make_patient

SETTINGS = ClinicSettings()
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York


def at(day: float) -> datetime:
    return START + timedelta(days=day)


def infusion(*, url: str, clinic: ClinicIds, patient_id: int, day: float, kind: str) -> None:
    with write_session(url) as db:
        db.add(
            TreatmentSession(
                site_id=clinic.site_id,
                chair_id=clinic.chair_ids[0],
                patient_id=patient_id,
                scheduled_start=at(day),
                route=Route.IV,
                kind=SessionKind(kind),
                status=SessionStatus.DISCHARGED,
                infusion_started_at=at(day) + timedelta(minutes=20),
                infusion_ended_at=at(day) + timedelta(minutes=60),
                discharged_at=at(day) + timedelta(minutes=110),
                dose_mg_per_kg=0.5,
            )
        )


def score(*, url: str, patient_id: int, day: float, total: int) -> None:
    with write_session(url) as db:
        db.add(
            OutcomeScore(
                patient_id=patient_id, instrument=Instrument.PHQ9, taken_at=at(day), total=total
            )
        )


def symptom_return(*, url: str, patient_id: int, day: int) -> None:
    with write_session(url) as db:
        db.add(SymptomReturn(patient_id=patient_id, reported_on=at(day).date()))


def a_patient(*, url: str, clinic: ClinicIds, mrn: str, relief: int, boosters: int) -> int:
    """A series of six, then relief of ``relief`` days, a booster 3 days after each return."""
    patient_id = make_patient(url=url, mrn=mrn, site_id=clinic.site_id)
    score(url=url, patient_id=patient_id, day=-1, total=20)
    for n in range(6):
        infusion(url=url, clinic=clinic, patient_id=patient_id, day=2 * n, kind="series")
    anchor = 10
    for _ in range(boosters):
        symptom_return(url=url, patient_id=patient_id, day=anchor + relief)
        score(url=url, patient_id=patient_id, day=anchor + relief + 2.9, total=15)
        anchor += relief + 3
        infusion(url=url, clinic=clinic, patient_id=patient_id, day=anchor, kind="booster")
    return patient_id


def worklist(url: str, *, as_of: datetime, site_id: int | None = None):
    with read_session(url) as db:
        histories = load_patient_histories(
            db=db, as_of=as_of, history_days=SETTINGS.booster_history_days, site_id=site_id
        )
    plans, _ = plan_boosters(histories=histories, settings=SETTINGS, as_of=as_of)
    return histories, worklist_frame(plans=plans, flags=tuple(BoosterFlag))


def test_history_holds_infusions_scores_returns_and_the_booking(db_url):
    clinic = make_clinic(url=db_url)
    patient_id = a_patient(url=db_url, clinic=clinic, mrn="A", relief=20, boosters=2)
    with write_session(db_url) as db:
        db.add(
            TreatmentSession(
                site_id=clinic.site_id,
                chair_id=clinic.chair_ids[1],
                patient_id=patient_id,
                scheduled_start=at(70),
                route=Route.IV,
                kind=SessionKind.BOOSTER,
                status=SessionStatus.SCHEDULED,
            )
        )
    histories, _ = worklist(db_url, as_of=at(60))
    (history,) = histories
    assert [i.kind for i in history.infusions] == ["series"] * 6 + ["booster"] * 2
    assert history.symptom_returns == (at(30).date(), at(53).date())
    assert [s.total for s in history.scores] == [20, 15, 15]
    assert history.baseline_phq9 == 20
    assert history.booking is not None and history.booking.scheduled_start == at(70)
    assert history.time_zone == clinic.time_zone


def test_nothing_after_as_of_changes_the_answer(db_url):
    clinic = make_clinic(url=db_url)
    for n, relief in enumerate((14, 21, 30, 18)):
        a_patient(url=db_url, clinic=clinic, mrn=f"P{n}", relief=relief, boosters=3)
    as_of = at(75)
    _, before = worklist(db_url, as_of=as_of)
    # The later history: more boosters, scores and returns, all after as_of.
    patient_id = make_patient(url=db_url, mrn="LATE", site_id=clinic.site_id)
    infusion(url=db_url, clinic=clinic, patient_id=patient_id, day=80, kind="series")
    with read_session(db_url) as db:
        histories = load_patient_histories(db=db, as_of=as_of, history_days=730)
    patients = [h.patient_id for h in histories]
    for pid in patients:
        infusion(url=db_url, clinic=clinic, patient_id=pid, day=76, kind="booster")
        score(url=db_url, patient_id=pid, day=75.5, total=25)
        symptom_return(url=db_url, patient_id=pid, day=75)
    _, after = worklist(db_url, as_of=as_of)
    assert before.equals(after)
    _, later = worklist(db_url, as_of=at(90))
    assert not before.equals(later)


def test_one_site_reads_only_its_own_patients(db_url):
    clinic = make_clinic(url=db_url)
    a_patient(url=db_url, clinic=clinic, mrn="HERE", relief=20, boosters=2)
    with write_session(db_url) as db:
        other = Site(code="other", name="Other", time_zone="America/Chicago")
        db.add(other)
        db.flush()
        chair = Chair(site_id=other.id, name="Chair 1")
        db.add(chair)
        db.flush()
        other_clinic = ClinicIds(
            site_id=other.id, chair_ids=[chair.id], nurse_id=0, other_nurse_id=0, lead_id=0,
            time_zone="America/Chicago",
        )  # fmt: skip
    a_patient(url=db_url, clinic=other_clinic, mrn="THERE", relief=20, boosters=2)
    _, here = worklist(db_url, as_of=at(60), site_id=clinic.site_id)
    _, everywhere = worklist(db_url, as_of=at(60))
    assert list(here["patient_ref"]) == ["HERE"]
    assert sorted(everywhere["patient_ref"]) == ["HERE", "THERE"]


def test_histories_are_read_in_a_fixed_number_of_queries(db_url):
    clinic = make_clinic(url=db_url)
    for n in range(12):
        a_patient(url=db_url, clinic=clinic, mrn=f"P{n:02d}", relief=15 + n, boosters=2)
    statements: list[str] = []
    engine = get_engine(db_url)

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with read_session(db_url) as db:
            histories = load_patient_histories(db=db, as_of=at(80), history_days=730)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(histories) == 12
    assert len(statements) <= 7


def test_window_leaves_out_patients_not_seen_for_longer_than_the_history(db_url):
    clinic = make_clinic(url=db_url)
    a_patient(url=db_url, clinic=clinic, mrn="OLD", relief=20, boosters=1)
    with read_session(db_url) as db:
        assert load_patient_histories(db=db, as_of=at(35), history_days=730)
        assert not load_patient_histories(db=db, as_of=at(35 + 800), history_days=730)


def test_command_prints_the_worklist_as_csv_with_the_agreed_columns(db_url, capsys):
    from ketadash.__main__ import main
    from ketadash.boosters import as_of_morning

    clinic = make_clinic(url=db_url)
    for n, relief in enumerate((14, 21, 30, 18)):
        a_patient(url=db_url, clinic=clinic, mrn=f"P{n}", relief=relief, boosters=3)
    assert main(["boosters", "--url", db_url, "--site", "main", "--as-of", "2026-05-20",
                 "--all", "--format", "csv"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "patient_ref,last_infusion,episodes,expected_relief_days,booster_due,flag"
    )
    as_of = as_of_morning(day=datetime(2026, 5, 20).date(), time_zone=clinic.time_zone)
    _, frame = worklist(db_url, as_of=as_of)
    in_care = frame[frame["flag"] != "out_of_care"]
    assert [line.split(",")[0] for line in lines[1:]] == list(in_care["patient_ref"])


def test_command_csv_writes_formula_like_references_as_text(sqlite_url, capsys):
    from ketadash.__main__ import main

    clinic = make_clinic(url=sqlite_url)
    a_patient(url=sqlite_url, clinic=clinic, mrn="=1+2", relief=20, boosters=3)
    assert main(["boosters", "--url", sqlite_url, "--as-of", "2026-05-20", "--all",
                 "--format", "csv"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["'=1+2"]
