"""Importing a clinic's history from CSV: checked whole, written whole, never twice."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

import ketadash.importer as importer
from ketadash.__main__ import main
from ketadash.db import read_session
from ketadash.importer import ImportRejected, RowProblem, import_files
from ketadash.models import (
    Chair,
    OutcomeScore,
    Patient,
    SessionStatus,
    Site,
    StatusChange,
    SymptomReturn,
    TreatmentSession,
)
from ketadash.roster import ensure_site
from tests.utils.factories import make_clinic, make_patient, make_session

SAMPLES = Path(__file__).parent / "data" / "import"
FILES = ("patients", "sessions", "scores", "symptom_returns")
TABLES = (Patient, TreatmentSession, StatusChange, OutcomeScore, SymptomReturn, Chair)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Copies of the sample files, free to be spoiled by a test."""
    copies = {}
    for name in FILES:
        copies[name] = tmp_path / f"{name}.csv"
        shutil.copy(SAMPLES / f"{name}.csv", copies[name])
    return copies


def run_import(
    *,
    url: str,
    files: dict[str, Path],
    now: datetime | None = None,
    add_chairs: bool = False,
) -> importer.ImportReport:
    return import_files(
        url=url,
        patients=files["patients"],
        sessions=files["sessions"],
        scores=files["scores"],
        symptom_returns=files["symptom_returns"],
        now=now,
        add_chairs=add_chairs,
    )


def set_line(path: Path, line: int, text: str) -> None:
    """Replace (or with line past the end, append) one spreadsheet row of a CSV file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if line > len(lines):
        lines.append(text)
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def line_of(path: Path, line: int) -> str:
    return path.read_text(encoding="utf-8").splitlines()[line - 1]


def counts(url: str) -> dict[str, int]:
    with read_session(url) as db:
        return {
            table.__name__: db.exec(select(func.count()).select_from(table)).one()
            for table in TABLES
        }


def rejected(
    *, url: str, files: dict[str, Path], now: datetime | None = None, add_chairs: bool = False
) -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        run_import(url=url, files=files, now=now, add_chairs=add_chairs)
    return [str(problem) for problem in caught.value.problems]


def session_by_ref(url: str, ref: str) -> TreatmentSession:
    with read_session(url) as db:
        return db.exec(select(TreatmentSession).where(TreatmentSession.external_ref == ref)).one()


# --- a clean import ------------------------------------------------------------------


def test_valid_import_writes_every_row(db_url, files):
    clinic = make_clinic(url=db_url)

    report = run_import(url=db_url, files=files)

    assert (report.patients_added, report.sessions_added, report.scores_added) == (3, 5, 4)
    assert report.symptom_returns_added == 2
    assert report.chairs_added == 0  # issue 6 item 16: chairs are added only when asked
    assert counts(db_url) == {
        "Patient": 3,
        "TreatmentSession": 5,
        "StatusChange": 13,
        "OutcomeScore": 4,
        "SymptomReturn": 2,
        "Chair": 6,
    }
    with read_session(db_url) as db:
        jordan = db.exec(select(Patient).where(Patient.mrn == "A-1001")).one()
        assert (jordan.first_name, jordan.date_of_birth) == ("Jordan", date(1984, 6, 2))
        assert jordan.care_flags == "anxiety;needle_phobia"
        assert jordan.home_site_id == clinic.site_id
        assert jordan.display_alias == "Blue Heron"
        score = db.exec(select(OutcomeScore).where(OutcomeScore.item9 == 1)).one()
        assert score.session_id == session_by_ref(db_url, "EHR-5001").id
    assert "patients 3 added" in str(report)


def test_importing_twice_changes_nothing(db_url, files):
    make_clinic(url=db_url)
    run_import(url=db_url, files=files)
    before = counts(db_url)

    again = run_import(url=db_url, files=files)

    assert counts(db_url) == before
    assert (again.patients_added, again.patients_updated, again.patients_unchanged) == (0, 0, 3)
    assert (again.sessions_added, again.sessions_unchanged, again.sessions_differing) == (0, 5, 0)
    assert (again.scores_added, again.scores_unchanged) == (0, 4)
    assert (again.symptom_returns_added, again.symptom_returns_unchanged) == (0, 2)
    assert again.status_changes_added == again.chairs_added == 0


def test_reimport_corrects_patients_but_leaves_imported_sessions(db_url, files):
    make_clinic(url=db_url)
    run_import(url=db_url, files=files)
    set_line(files["patients"], 2, "A-1001,Jordan,Lee-Park,1984-06-02,,,,")
    changed = line_of(files["sessions"], 2).replace(",0.5,", ",0.6,")
    set_line(files["sessions"], 2, changed)

    report = run_import(url=db_url, files=files)

    assert (report.patients_updated, report.sessions_differing) == (1, 1)
    with read_session(db_url) as db:
        jordan = db.exec(select(Patient).where(Patient.mrn == "A-1001")).one()
    assert jordan.last_name == "Lee-Park"
    # A blank cell keeps what is stored.
    assert (jordan.phone, jordan.care_flags) == ("555-0101", "anxiety;needle_phobia")
    assert session_by_ref(db_url, "EHR-5001").dose_mg_per_kg == 0.5


def test_patients_already_in_the_database_can_be_referenced(db_url, files):
    make_clinic(url=db_url)
    make_patient(url=db_url, mrn="A-2000")
    set_line(
        files["sessions"], 7, "EHR-6000,A-2000,main,,2030-02-01 09:00,iv,series,,0.5,,scheduled"
    )

    report = run_import(url=db_url, files=files)

    assert report.sessions_added == 6


# --- nothing is written unless everything is right -----------------------------------------


def test_bad_row_writes_nothing_and_names_file_line_and_reason(db_url, files):
    make_clinic(url=db_url)
    set_line(
        files["sessions"],
        3,
        line_of(files["sessions"], 3).replace("2025-03-10 09:00", "2025-13-01 09:00", 1),
    )

    problems = rejected(url=db_url, files=files)

    assert problems == [
        "sessions.csv line 3: scheduled_start '2025-13-01 09:00' is not a date and time "
        "(YYYY-MM-DD HH:MM)"
    ]
    assert counts(db_url)["Patient"] == 0
    assert counts(db_url)["Chair"] == 6


def test_every_problem_in_every_file_is_reported_at_once(db_url, files):
    make_clinic(url=db_url)
    set_line(files["patients"], 3, "A-1002,,Shah,1979-02-30,,,,")
    set_line(files["scores"], 5, "A-1003,madrs,2025-03-01 10:00,61,,")

    with pytest.raises(ImportRejected) as caught:
        run_import(url=db_url, files=files)

    assert caught.value.problems == [
        RowProblem("patients.csv", 3, "first_name is required but empty"),
        RowProblem("patients.csv", 3, "date_of_birth '1979-02-30' is not a date (YYYY-MM-DD)"),
        RowProblem("scores.csv", 5, "total 61 is out of range for MADRS (0 to 60)"),
    ]
    message = str(caught.value)
    assert message.startswith("Nothing was imported: 3 problems")
    assert "scores.csv line 5: total 61 is out of range for MADRS (0 to 60)" in message


def test_one_row_with_several_problems_reports_each(db_url, files):
    make_clinic(url=db_url)
    set_line(
        files["sessions"],
        2,
        "EHR-5001,A-1001,main,Chair 1,2025-03-07 09:00,im,series,40,0.5,,discharged,"
        "2025-03-07 09:10,2025-03-07 09:05,2025-03-07 09:45,2025-03-07 10:20,2025-03-07 10:31,",
    )

    assert rejected(url=db_url, files=files) == [
        "sessions.csv line 2: route 'im' is not one of: iv, esketamine, lozenge",
        "sessions.csv line 2: step times out of order: infusion_started_at is before checked_in_at",
    ]


def test_database_failing_mid_way_writes_nothing(db_url, files, monkeypatch):
    make_clinic(url=db_url)

    def fail(**_kwargs):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(importer.write, "_write_scores", fail)
    with pytest.raises(RuntimeError):
        run_import(url=db_url, files=files)

    assert counts(db_url) == {name: 0 for name in counts(db_url)} | {"Chair": 6}


# --- each kind of problem ------------------------------------------------------------------

SESSION_HEADER = (
    "session_ref,mrn,site,chair,scheduled_start,route,kind,planned_minutes,dose_mg_per_kg,"
    "dose_mg,status,checked_in_at,infusion_started_at,infusion_ended_at,ready_at,"
    "discharged_at,close_reason"
)


@pytest.mark.parametrize(
    ("file", "line", "text", "expected"),
    [
        pytest.param(
            "patients",
            1,
            "mrn,last_name,dob",
            "patients.csv line 1: missing required column(s): first_name",
            id="missing-column",
        ),
        pytest.param(
            "patients",
            1,
            "mrn,first_name,last_name,dob",
            "patients.csv line 1: unknown column(s): dob; the columns are: mrn, first_name,",
            id="unknown-column",
        ),
        pytest.param(
            "sessions",
            2,
            ",A-1001,main,,2025-03-07 09:00,iv,series,,0.5,,scheduled",
            "sessions.csv line 2: session_ref is required but empty",
            id="empty-required",
        ),
        pytest.param(
            "symptom_returns",
            2,
            "A-1001,04/02/2025,",
            "symptom_returns.csv line 2: reported_on '04/02/2025' is not a date (YYYY-MM-DD)",
            id="bad-date",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,im,series,,0.5,,scheduled",
            "sessions.csv line 6: route 'im' is not one of: iv, esketamine, lozenge",
            id="unknown-route",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,iv,series,,0.5,,infusing",
            "sessions.csv line 6: status 'infusing' cannot be imported: a session under way "
            "is run from the dashboard; use one of: scheduled, discharged, cancelled, no_show",
            id="status-under-way",
        ),
        pytest.param(
            "patients",
            4,
            "A-1003,Sam,Carter,,,,fear_of_heights,",
            "patients.csv line 4: care_flags 'fear_of_heights' is not one of: hypertension,",
            id="unknown-care-flag",
        ),
        pytest.param(
            "scores",
            5,
            "B-9999,madrs,2025-03-01 10:00,31,,",
            "scores.csv line 5: mrn 'B-9999' is not in patients.csv or the database",
            id="unknown-mrn",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5001,A-1003,main,,2030-01-15 10:00,iv,series,,0.5,,scheduled",
            "sessions.csv line 6: session_ref 'EHR-5001' is also on line 2",
            id="duplicate-session-ref",
        ),
        pytest.param(
            "patients",
            4,
            "A-1001,Sam,Carter,,,,,",
            "patients.csv line 4: mrn 'A-1001' is also on line 2",
            id="duplicate-mrn",
        ),
        pytest.param(
            "symptom_returns",
            3,
            "A-1001,2025-04-02,again",
            "symptom_returns.csv line 3: a symptom return for mrn 'A-1001' on 2025-04-02 "
            "is also on line 2",
            id="duplicate-symptom-return",
        ),
        pytest.param(
            "scores",
            2,
            "A-1001,phq9,2025-03-07 08:55,28,1,EHR-5001",
            "scores.csv line 2: total 28 is out of range for PHQ-9 (0 to 27)",
            id="phq9-out-of-range",
        ),
        pytest.param(
            "scores",
            2,
            "A-1001,phq9,2025-03-07 08:55,19,4,EHR-5001",
            "scores.csv line 2: item9 4 is out of range for PHQ-9 item 9 (0 to 3)",
            id="item9-out-of-range",
        ),
        pytest.param(
            "scores",
            4,
            "A-1001,cadss,2025-03-07 10:00,14,1,EHR-5001",
            "scores.csv line 4: item9 is only for PHQ-9, not CADSS",
            id="item9-on-cadss",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,iv,series,,35,,scheduled",
            "sessions.csv line 6: dose_mg_per_kg 35 is out of range (0.01 to 3)",
            id="dose-in-mg-per-kg-column",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,east,,2030-01-15 10:00,iv,series,,0.5,,scheduled",
            "sessions.csv line 6: site 'east' is not a known site code (main)",
            id="unknown-site",
        ),
        pytest.param(
            "sessions",
            2,
            "EHR-5001,A-1001,main,Chair 1,2025-03-07 09:00,iv,series,40,0.5,,discharged,"
            "2025-03-07 08:52,2025-03-07 09:05,2025-03-07 09:45,2025-03-07 09:40,"
            "2025-03-07 10:31,",
            "sessions.csv line 2: step times out of order: ready_at is before infusion_ended_at",
            id="steps-out-of-order",
        ),
        pytest.param(
            "sessions",
            2,
            "EHR-5001,A-1001,main,Chair 1,2025-03-07 09:00,iv,series,40,0.5,,discharged,"
            "2025-03-07 08:52,2025-03-07 09:05,,,2025-03-07 10:31,",
            "sessions.csv line 2: a discharged session needs infusion_ended_at, ready_at",
            id="discharged-without-times",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,iv,series,,0.5,,scheduled,2030-01-15 09:55",
            "sessions.csv line 6: a scheduled session has no step times, but checked_in_at "
            "is filled in",
            id="scheduled-with-steps",
        ),
        pytest.param(
            "sessions",
            5,
            "EHR-5004,A-1002,main,Chair 3,2025-03-12 13:00,iv,booster,,0.75,,cancelled,"
            "2025-03-12 12:50,2025-03-12 13:05,,,,",
            "sessions.csv line 5: a cancelled session has at most checked_in_at, but "
            "infusion_started_at is filled in",
            id="cancelled-after-dose-started",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2025-03-09 02:30,iv,series,,0.5,,scheduled",
            "sessions.csv line 6: scheduled_start '2025-03-09 02:30' does not exist in "
            "America/New_York (the clocks went forward that night)",
            id="time-skipped-by-dst",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,iv,series,,0.5,,scheduled,,,,,,,extra",
            "sessions.csv line 6: has 18 values but line 1 names 17 columns",
            id="too-many-values",
        ),
        pytest.param(
            "scores",
            4,
            "A-1001,cadss,2025-03-07 10:00,14,,EHR-0000",
            "scores.csv line 4: session_ref 'EHR-0000' is not in sessions.csv or the database",
            id="score-unknown-session",
        ),
        pytest.param(
            "scores",
            4,
            "A-1003,cadss,2025-03-07 10:00,14,,EHR-5001",
            "scores.csv line 4: session_ref 'EHR-5001' is a session of another patient "
            "(mrn 'A-1001')",
            id="score-session-of-another-patient",
        ),
    ],
)
def test_each_kind_of_problem_is_named(db_url, files, file, line, text, expected):
    make_clinic(url=db_url)
    set_line(files[file], line, text)

    problems = rejected(url=db_url, files=files)

    assert any(problem.startswith(expected) for problem in problems), problems
    assert counts(db_url)["Patient"] == 0


def test_unknown_site_when_the_database_has_none(db_url, files):
    problems = rejected(url=db_url, files=files)

    assert problems[0] == (
        "patients.csv line 2: home_site 'main' is not a known site code: the database has "
        "no sites yet; create the clinic's sites before importing"
    )


def test_missing_file_is_named(db_url, files, tmp_path):
    make_clinic(url=db_url)
    files["scores"] = tmp_path / "nowhere.csv"

    assert rejected(url=db_url, files=files) == [
        f"nowhere.csv: file not found: {tmp_path / 'nowhere.csv'}"
    ]


def test_excel_bom_and_blank_rows_are_accepted(db_url, files):
    make_clinic(url=db_url)
    text = files["patients"].read_text(encoding="utf-8")
    files["patients"].write_text("\ufeff" + text + ",,,,,,,\n", encoding="utf-8")

    assert run_import(url=db_url, files=files).patients_added == 3


# --- what lands in the database -------------------------------------------------------------


def test_status_history_agrees_with_the_session_rows(db_url, files):
    make_clinic(url=db_url)
    run_import(url=db_url, files=files)

    with read_session(db_url) as db:
        sessions = db.exec(select(TreatmentSession)).all()
        for session in sessions:
            history = db.exec(
                select(StatusChange)
                .where(StatusChange.session_id == session.id)
                .order_by(StatusChange.version)
            ).all()
            assert session.version == 1 + len(history)
            assert [change.version for change in history] == list(range(2, 2 + len(history)))
            previous = SessionStatus.SCHEDULED
            for change in history:
                assert change.from_status == previous
                assert change.reason == "imported"
                previous = change.to_status
            assert previous == session.status
            times = [change.changed_at for change in history]
            assert times == sorted(times)
            by_status = {change.to_status: change.changed_at for change in history}
            assert by_status.get(SessionStatus.CHECKED_IN) == session.checked_in_at
            assert by_status.get(SessionStatus.INFUSING) == session.infusion_started_at
            assert by_status.get(SessionStatus.RECOVERY) == session.infusion_ended_at
            assert by_status.get(SessionStatus.READY) == session.ready_at
            assert by_status.get(SessionStatus.DISCHARGED) == session.discharged_at

    discharged = session_by_ref(db_url, "EHR-5001")
    # As in the dashboard, only a cancel or a no-show stamps closed_at.
    assert (discharged.version, discharged.closed_at) == (6, None)
    cancelled = session_by_ref(db_url, "EHR-5004")
    # Cancelled after checking in: closed at its last recorded step.
    assert cancelled.version == 3
    assert cancelled.closed_at == cancelled.checked_in_at
    assert cancelled.close_reason == "blood pressure too high"
    no_show = session_by_ref(db_url, "EHR-5003")
    assert (no_show.version, no_show.closed_at) == (2, no_show.scheduled_start)
    booked = session_by_ref(db_url, "EHR-5005")
    assert (booked.version, booked.status, booked.closed_at) == (1, "scheduled", None)


def test_site_local_times_land_as_utc_across_daylight_saving(db_url, files):
    make_clinic(url=db_url, time_zone="America/New_York")
    set_line(
        files["sessions"],
        7,
        # A no-show, not a booking: a booking for a past day is a problem (issue 6 item 14).
        "EHR-5006,A-1003,main,,2025-11-03T09:00:00-05:00,iv,series,,0.5,,no_show",
    )
    run_import(url=db_url, files=files)

    before_change = session_by_ref(db_url, "EHR-5001")  # 2025-03-07 09:00 EST
    after_change = session_by_ref(db_url, "EHR-5002")  # 2025-03-10 09:00 EDT
    assert before_change.scheduled_start == datetime(2025, 3, 7, 14, 0, tzinfo=UTC)
    assert before_change.discharged_at == datetime(2025, 3, 7, 15, 31, tzinfo=UTC)
    assert after_change.scheduled_start == datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
    assert after_change.checked_in_at == datetime(2025, 3, 10, 12, 55, tzinfo=UTC)
    assert session_by_ref(db_url, "EHR-5006").scheduled_start == datetime(
        2025, 11, 3, 14, 0, tzinfo=UTC
    )


def test_score_times_use_the_patients_home_site_else_utc(db_url, files):
    make_clinic(url=db_url, time_zone="America/New_York")
    set_line(files["scores"], 5, "A-1003,madrs,2025-03-01 15:00,31,,")
    run_import(url=db_url, files=files)

    with read_session(db_url) as db:
        taken = {
            (score.instrument, score.total): score.taken_at
            for score in db.exec(select(OutcomeScore))
        }
    assert taken[("phq9", 19)] == datetime(2025, 3, 7, 13, 55, tzinfo=UTC)  # home site: EST
    assert taken[("madrs", 31)] == datetime(2025, 3, 1, 15, 0, tzinfo=UTC)  # no home site


# --- sites and the command line ------------------------------------------------------------


def test_ensure_site_creates_once(db_url):
    first = ensure_site(url=db_url, code="east", name="East Side", time_zone="America/Chicago")

    assert ensure_site(url=db_url, code="east", name="East", time_zone="America/Chicago") == first
    with pytest.raises(ValueError, match="time zone"):
        ensure_site(url=db_url, code="east", name="East", time_zone="America/Denver")
    with pytest.raises(ValueError, match="unknown time zone"):
        ensure_site(url=db_url, code="west", name="West", time_zone="Mars/Olympus")
    with read_session(db_url) as db:
        assert db.exec(select(Site.code)).all() == ["east"]


def test_cli_rejects_bad_files_with_exit_1_and_prints_the_problem(db_url, files, capsys):
    make_clinic(url=db_url)
    set_line(files["sessions"], 4, line_of(files["sessions"], 4).replace("no_show", "noshowed"))

    code = main(
        [
            "import",
            "--url",
            db_url,
            "--patients",
            str(files["patients"]),
            "--sessions",
            str(files["sessions"]),
        ]
    )

    assert code == 1
    err = capsys.readouterr().err
    assert "sessions.csv line 4: status 'noshowed' is not one of:" in err
    assert counts(db_url)["Patient"] == 0


def test_cli_imports_and_prints_the_summary(db_url, files, capsys):
    make_clinic(url=db_url)
    # The scores file is optional.
    code = main(
        [
            "import",
            "--url",
            db_url,
            "--patients",
            str(files["patients"]),
            "--sessions",
            str(files["sessions"]),
            "--symptom-returns",
            str(files["symptom_returns"]),
        ]
    )

    assert code == 0
    assert "sessions 5 added (13 status changes)" in capsys.readouterr().out
    assert counts(db_url)["SymptomReturn"] == 2


def test_real_patients_are_never_imported_into_the_demo_clinic(tmp_path):
    from ketadash.demo import build_demo_clinic

    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    now = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    build_demo_clinic(url=url, patients=20, history_days=30, now=now)
    with pytest.raises(ImportRejected, match="holds the synthetic demo clinic"):
        import_files(url=url, patients=SAMPLES / "patients.csv", sessions=SAMPLES / "sessions.csv")


# --- issue 6: safety of the import ------------------------------------------------------
# Each test names its item of issue 6 in its docstring.

# 10:00 in New York (the test clinic's time zone), a Friday.
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
TODAY = "2026-11-27"


def discharged_today(*, ref: str = "EHR-5001", times: tuple[str, ...]) -> str:
    """A discharged IV session of A-1001 booked today at 09:00 in Chair 1, step times given."""
    return (
        f"{ref},A-1001,main,Chair 1,{TODAY} 09:00,iv,series,40,0.5,,discharged,"
        + ",".join(f"{TODAY} {t}" for t in times)
        + ","
    )


@pytest.mark.parametrize(
    ("file", "line", "text", "expected"),
    [
        pytest.param(
            "scores",
            2,
            "A-1001,phq9,2026-11-28 08:55,19,1,",
            "scores.csv line 2: taken_at '2026-11-28 08:55' is in the future",
            id="score-tomorrow",
        ),
        pytest.param(
            "scores",
            2,
            f"A-1001,phq9,{TODAY} 10:06,19,1,",
            f"scores.csv line 2: taken_at '{TODAY} 10:06' is in the future",
            id="score-beyond-clock-skew",
        ),
        pytest.param(
            "sessions",
            2,
            discharged_today(times=("08:52", "09:05", "09:45", "10:20", "10:31")),
            f"sessions.csv line 2: ready_at '{TODAY} 10:20' is in the future",
            id="ready-and-discharged-later-today",
        ),
        pytest.param(
            "sessions",
            5,
            "EHR-5004,A-1002,main,Chair 3,2026-12-01 13:00,iv,booster,,0.75,,cancelled,,,,,,"
            "blood pressure too high,2026-11-30 09:00",
            "sessions.csv line 5: closed_at '2026-11-30 09:00' is in the future",
            id="closed-at-in-the-future",
        ),
    ],
)
def test_times_in_the_future_are_problems(db_url, files, file, line, text, expected):
    """Issue 6 item 3 (import side): scores, steps and closing times in the future are refused."""
    make_clinic(url=db_url)
    if file == "sessions" and line == 5:
        set_line(files["sessions"], 1, SESSION_HEADER + ",closed_at")
    set_line(files[file], line, text)

    problems = rejected(url=db_url, files=files, now=NOW)

    assert any(problem.startswith(expected) for problem in problems), problems
    assert counts(db_url)["Patient"] == 0


def test_times_within_the_clock_skew_are_accepted(db_url, files):
    """Issue 6 item 3: a few minutes ahead of this server's clock is clock skew, not the future."""
    make_clinic(url=db_url)
    set_line(files["scores"], 2, f"A-1001,phq9,{TODAY} 10:04,19,1,")
    set_line(
        files["sessions"], 2, discharged_today(times=("08:30", "08:40", "09:20", "09:50", "10:04"))
    )

    assert run_import(url=db_url, files=files, now=NOW).scores_added == 4


def test_now_defaults_to_the_clock(db_url, files, monkeypatch):
    """Issue 6 item 3: without ``now`` the import reads the clock (once)."""
    make_clinic(url=db_url)
    monkeypatch.setattr(importer, "utc_now", lambda: datetime(2025, 3, 7, 14, 0, tzinfo=UTC))

    problems = rejected(url=db_url, files=files)

    # On 2025-03-07 at 09:00 in New York, that morning's visit had not ended yet.
    assert (
        "sessions.csv line 2: infusion_ended_at '2025-03-07 09:45' is in the future: only "
        "what has already happened can be imported"
    ) in problems


def test_a_naive_now_is_refused(db_url, files):
    """Issue 6 item 3: "now" is a moment, so it needs its time zone."""
    with pytest.raises(ValueError, match="aware"):
        run_import(url=db_url, files=files, now=datetime(2026, 11, 27, 10, 0))


HIDDEN = [
    pytest.param("patients", 2, "A-1001,Jo\u202ehn,Lee,,,,,main", "\\u202e", id="bidi-override"),
    pytest.param(
        "patients", 3, "A-1002,Priya,Sh\u200bah,,,,,main", "\\u200b", id="zero-width-space"
    ),
    pytest.param(
        "sessions",
        5,
        "EHR-5004,A-1002,main,Chair 3,2025-03-12 13:00,iv,booster,,0.75,,cancelled,"
        "2025-03-12 12:50,,,,,\x1b[2J\x1b[31mBP too high",
        "\\u001b[2J",
        id="ansi-escape",
    ),
    pytest.param("symptom_returns", 2, "A-1001,2025-04-02,low\x00 mood", "\\u0000", id="nul-byte"),
    pytest.param("scores", 5, "A-1003,madrs,2025-03-01 15:00,31,,\u2066x", "\\u2066", id="isolate"),
]


@pytest.mark.parametrize(("file", "line", "text", "escaped"), HIDDEN)
def test_hidden_characters_are_a_problem_shown_escaped(db_url, files, file, line, text, escaped):
    """Issue 6 item 11 (import side): control, escape, NUL and invisible characters in a
    cell are a line-numbered problem, never stored, and the message shows them escaped."""
    make_clinic(url=db_url)
    set_line(files[file], line, text)

    with pytest.raises(ImportRejected) as caught:
        run_import(url=db_url, files=files, now=NOW)

    message = str(caught.value)
    hidden_line = [p for p in caught.value.problems if "control or invisible" in str(p)]
    assert [(p.file, p.line) for p in hidden_line] == [(f"{file}.csv", line)]
    assert escaped in str(hidden_line[0])
    assert str(hidden_line[0]).count("U+") == 1 or "U+001B" in str(hidden_line[0])
    assert not any(ch in message for ch in "\x00\x1b\u202e\u200b\u2066")
    assert counts(db_url)["Patient"] == 0


def test_hidden_characters_never_reach_the_terminal(db_url, files, capsys):
    """Issue 6 item 11: an ANSI escape in a cell is printed escaped by the command."""
    make_clinic(url=db_url)
    set_line(files["patients"], 2, "A-1001,\x1b]0;pwned\x07Jordan,Lee,,,,,main")

    code = main(
        [
            "import", "--url", db_url, "--patients", str(files["patients"]),
            "--sessions", str(files["sessions"]),
        ]
    )  # fmt: skip

    err = capsys.readouterr().err
    assert code == 1
    assert "patients.csv line 2: first_name '\\u001b]0;pwned\\u0007Jordan'" in err
    assert "U+001B ESCAPE" in err
    assert "\x1b" not in err and "\x07" not in err


def test_hidden_character_in_a_header_is_a_problem(db_url, files):
    """Issue 6 item 11: a column name is a cell too."""
    make_clinic(url=db_url)
    set_line(
        files["patients"],
        1,
        "mrn,first_name\u200b,last_name,date_of_birth,phone,display_alias,care_flags,home_site",
    )

    problems = rejected(url=db_url, files=files, now=NOW)

    assert problems[0].startswith("patients.csv line 1: column 2 'first_name\\u200b' holds")


@pytest.mark.parametrize(
    ("file", "line", "text", "expected"),
    [
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,9999-12-31 23:30,iv,series,,0.5,,scheduled",
            "sessions.csv line 6: scheduled_start '9999-12-31 23:30' is out of range "
            "(years 1900 to 2100)",
            id="year-9999-local",
        ),
        pytest.param(
            "scores",
            5,
            "A-1003,madrs,0001-01-01T00:00+05:00,31,,",
            "scores.csv line 5: taken_at '0001-01-01T00:00+05:00' is out of range "
            "(years 1900 to 2100)",
            id="year-0001-with-offset",
        ),
        pytest.param(
            "symptom_returns",
            2,
            "A-1001,0001-01-01,",
            "symptom_returns.csv line 2: reported_on '0001-01-01' is out of range",
            id="day-0001",
        ),
    ],
)
def test_out_of_range_dates_are_problems_not_tracebacks(db_url, files, file, line, text, expected):
    """Issue 6 item 13: year 9999 local and year 0001 with an offset give a line-numbered
    problem, not an OverflowError."""
    make_clinic(url=db_url)
    set_line(files[file], line, text)

    problems = rejected(url=db_url, files=files, now=NOW)

    assert any(problem.startswith(expected) for problem in problems), problems


@pytest.mark.parametrize(
    ("file", "line", "text", "expected"),
    [
        pytest.param(
            "patients",
            3,
            "A-1002,Priya,Shah,2090-01-01,,,,main",
            "patients.csv line 3: date_of_birth '2090-01-01' is in the future",
            id="born-in-the-future",
        ),
        pytest.param(
            "patients",
            3,
            "A-1002,Priya,Shah,1800-01-01,,,,main",
            "patients.csv line 3: date_of_birth '1800-01-01' is out of range",
            id="born-in-1800",
        ),
        pytest.param(
            "patients",
            3,
            "A-1002,Priya,Shah,1901-06-01,,,,main",
            "patients.csv line 3: date_of_birth '1901-06-01' makes the patient 125; "
            "no patient is older than 120",
            id="older-than-120",
        ),
        pytest.param(
            "patients",
            3,
            "A-1002,Priya,Shah,2016-01-01,,,,main",
            "patients.csv line 3: date_of_birth '2016-01-01' makes the patient 10; "
            "patients are 16 or older",
            id="younger-than-16",
        ),
        pytest.param(
            "sessions",
            2,
            "EHR-5001,A-1001,main,Chair 1,2025-03-07 09:00,iv,series,40,0.5,,discharged,"
            "2022-03-07 08:52,2025-03-07 09:05,2025-03-07 09:45,2025-03-07 10:20,"
            "2025-03-07 10:31,",
            "sessions.csv line 2: checked_in_at '2022-03-07 08:52' is more than a day before "
            "scheduled_start",
            id="check-in-years-before-booking",
        ),
        pytest.param(
            "sessions",
            5,
            "EHR-5004,A-1002,main,Chair 3,2025-03-12 13:00,iv,booster,,0.75,,cancelled,"
            "2025-03-13 12:50,,,,,blood pressure too high",
            "sessions.csv line 5: checked_in_at '2025-03-13 12:50' is more than 12 hours after "
            "scheduled_start",
            id="check-in-a-day-after-booking",
        ),
        pytest.param(
            "sessions",
            2,
            "EHR-5001,A-1001,main,Chair 1,2025-03-07 09:00,iv,series,40,0.5,,discharged,"
            "2025-03-07 08:52,2025-03-07 09:05,2025-03-07 09:45,2025-03-07 10:20,"
            "2026-03-07 10:31,",
            "sessions.csv line 2: discharged_at is more than a day after checked_in_at",
            id="visit-lasting-a-year",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,iv,series,,0.5,,no_show",
            "sessions.csv line 6: a no_show session booked for the future",
            id="no-show-in-the-future",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2030-01-15 10:00,iv,series,,0.5,,cancelled",
            "sessions.csv line 6: a cancelled future booking needs closed_at",
            id="cancelled-future-booking-without-closed-at",
        ),
        pytest.param(
            "sessions",
            6,
            "EHR-5005,A-1003,main,,2026-11-26 10:00,iv,series,,0.5,,scheduled",
            "sessions.csv line 6: a scheduled session booked for a past day (2026-11-26)",
            id="booking-for-a-past-day",
        ),
        pytest.param(
            "symptom_returns",
            2,
            "A-1001,2026-11-28,",
            "symptom_returns.csv line 2: reported_on '2026-11-28' is in the future",
            id="symptom-return-tomorrow",
        ),
    ],
)
def test_implausible_dates_are_problems(db_url, files, file, line, text, expected):
    """Issue 6 item 14: each plausibility rule (docs/importing.md) is a line-numbered problem."""
    make_clinic(url=db_url)
    set_line(files[file], line, text)

    problems = rejected(url=db_url, files=files, now=NOW)

    assert any(problem.startswith(expected) for problem in problems), problems
    assert counts(db_url)["Patient"] == 0


def test_plausible_edges_are_accepted(db_url, files):
    """Issue 6 item 14: a booking earlier today, a cancelled future booking with its
    cancelling time, and a 16-year-old are all fine."""
    make_clinic(url=db_url)
    set_line(files["patients"], 4, "A-1003,Sam,Carter,2010-11-27,,,,")
    set_line(files["sessions"], 1, SESSION_HEADER + ",closed_at")
    set_line(
        files["sessions"],
        6,
        f"EHR-5005,A-1003,main,Chair 4,{TODAY} 08:00,iv,series,,0.5,,scheduled",
    )
    set_line(
        files["sessions"],
        7,
        "EHR-5006,A-1003,main,,2026-12-04 10:00,iv,series,,0.5,,cancelled,,,,,,moved away,"
        "2026-11-20 16:00",
    )

    report = run_import(url=db_url, files=files, now=NOW)

    assert report.sessions_added == 6
    assert session_by_ref(db_url, "EHR-5006").closed_at == datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


def test_mrns_and_session_refs_match_ignoring_case_and_spaces(db_url, files):
    """Issue 6 item 16: 'a-1001' and 'A-1001' are one patient; the first spelling is kept."""
    make_clinic(url=db_url)
    make_patient(url=db_url, mrn="B-2000")
    set_line(files["patients"], 5, " b-2000 ,Robin,Hale,,,,,")
    set_line(
        files["sessions"],
        7,
        "EHR-6000, a-1001 ,MAIN, chair 2 ,2025-03-14 09:00,iv,series,,0.5,,no_show",
    )
    set_line(files["scores"], 6, "a-1001,madrs,2025-03-07 10:05,20,,ehr-5001")

    report = run_import(url=db_url, files=files, now=NOW)

    assert (report.patients_added, report.patients_updated) == (3, 1)
    with read_session(db_url) as db:
        assert sorted(db.exec(select(Patient.mrn)).all()) == [
            "A-1001",
            "A-1002",
            "A-1003",
            "B-2000",
        ]
        robin = db.exec(select(Patient).where(Patient.mrn == "B-2000")).one()
        assert robin.first_name == "Robin"
    jordan_session = session_by_ref(db_url, "EHR-6000")
    assert jordan_session.patient_id == session_by_ref(db_url, "EHR-5001").patient_id
    assert jordan_session.chair_id == session_by_ref(db_url, "EHR-5002").chair_id

    set_line(files["sessions"], 2, line_of(files["sessions"], 2).replace("EHR-5001", "ehr-5001"))
    again = run_import(url=db_url, files=files, now=NOW)
    assert (again.sessions_added, again.sessions_unchanged, again.sessions_differing) == (0, 6, 0)


def test_one_mrn_spelled_two_ways_in_a_file_is_a_duplicate(db_url, files):
    """Issue 6 item 16: a file with both spellings of one MRN names both lines."""
    make_clinic(url=db_url)
    set_line(files["patients"], 5, "a-1001,Jordan,Lee,,,,,")

    assert rejected(url=db_url, files=files, now=NOW) == [
        "patients.csv line 5: mrn 'a-1001' is also on line 2 (as 'A-1001': MRNs match "
        "ignoring case)"
    ]


def test_unknown_chair_is_a_problem_naming_the_known_chairs(db_url, files):
    """Issue 6 item 16: a chair typo no longer adds a permanent chair."""
    make_clinic(url=db_url, chairs=3)
    set_line(files["sessions"], 6, line_of(files["sessions"], 6).replace("Chair 4", "Chiar 1"))

    problems = rejected(url=db_url, files=files, now=NOW)

    assert problems == [
        "sessions.csv line 6: chair 'Chiar 1' is not a chair at site 'main' (its chairs: "
        "Chair 1, Chair 2, Chair 3); correct the name, or run the import with --add-chairs "
        "to add it"
    ]
    assert counts(db_url)["Chair"] == 3


def test_chairs_are_added_when_the_import_is_told_to(db_url, files, capsys):
    """Issue 6 item 16: --add-chairs (add_chairs=True) adds each new chair once."""
    make_clinic(url=db_url, chairs=3)
    set_line(
        files["sessions"],
        7,
        "EHR-5006,A-1003,main,chair 4,2030-01-16 10:00,iv,series,,0.5,,scheduled",
    )

    code = main(
        [
            "import", "--url", db_url, "--patients", str(files["patients"]),
            "--sessions", str(files["sessions"]), "--add-chairs",
        ]
    )  # fmt: skip

    assert code == 0
    assert "chairs 1 added" in capsys.readouterr().out
    with read_session(db_url) as db:
        added = db.exec(select(Chair).where(Chair.name == "Chair 4")).one()
    assert added.position == 4
    assert session_by_ref(db_url, "EHR-5006").chair_id == added.id
    assert session_by_ref(db_url, "EHR-5005").chair_id == added.id


def test_checking_does_not_hold_the_write_lock(sqlite_url, files, monkeypatch):
    """Issue 6 item 17: while the files are checked a nurse can still save (SQLite)."""
    import sqlite3

    make_clinic(url=sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    check = importer.checks.check_rows
    nurse_saved = []

    def check_while_a_nurse_saves(**kwargs):
        nurse = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            nurse.execute("BEGIN IMMEDIATE")
            nurse.execute("UPDATE site SET name = 'Main St' WHERE code = 'main'")
            nurse.execute("COMMIT")
            nurse_saved.append(True)
        finally:
            nurse.close()
        return check(**kwargs)

    monkeypatch.setattr(importer.checks, "check_rows", check_while_a_nurse_saves)

    assert run_import(url=sqlite_url, files=files, now=NOW).sessions_added == 5
    assert nurse_saved == [True]


def test_rows_added_while_checking_do_not_collide_with_the_import(db_url, files, monkeypatch):
    """Issue 6 item 17: ids are planned before the write lock; rows another writer adds
    meanwhile (here a patient and a booking) are kept and the import still links right."""
    clinic = make_clinic(url=db_url)
    check = importer.checks.check_rows

    def check_while_another_writer_adds(**kwargs):
        rows = check(**kwargs)
        patient_id = make_patient(url=db_url, mrn="Z-0001")
        make_session(url=db_url, clinic=clinic, patient_id=patient_id, scheduled_start=NOW)
        return rows

    monkeypatch.setattr(importer.checks, "check_rows", check_while_another_writer_adds)
    still_free = importer.write._ids_still_free
    verdicts = []
    monkeypatch.setattr(
        importer.write,
        "_ids_still_free",
        lambda **kwargs: verdicts.append(still_free(**kwargs)) or verdicts[-1],
    )

    assert run_import(url=db_url, files=files, now=NOW).sessions_added == 5
    # SQLite planned the ids after the largest it saw, found them taken and planned again;
    # PostgreSQL's come from sequences, so nothing can take them.
    assert verdicts == [not db_url.startswith("sqlite")]
    with read_session(db_url) as db:
        mrn_of = {
            ref: mrn
            for ref, mrn in db.exec(
                select(TreatmentSession.external_ref, Patient.mrn).join(
                    Patient, Patient.id == TreatmentSession.patient_id
                )
            )
        }
    assert mrn_of["EHR-5001"] == "A-1001" and mrn_of["EHR-5005"] == "A-1003"
    assert mrn_of[None] == "Z-0001"
    assert counts(db_url)["Patient"] == 4


def test_busy_database_is_reported_as_busy_not_unreachable(sqlite_url, files, monkeypatch, capsys):
    """Issue 6 item 17: SQLite 'database is locked' after the busy timeout says busy."""
    import sqlite3

    from ketadash import db as database
    from ketadash.db import DatabaseBusy

    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 100)
    make_clinic(url=sqlite_url)
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseBusy, match="busy; try again in a moment"):
            run_import(url=sqlite_url, files=files, now=NOW)
        code = main(
            [
                "import", "--url", sqlite_url, "--patients", str(files["patients"]),
                "--sessions", str(files["sessions"]),
            ]
        )  # fmt: skip
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert code == 2
    err = capsys.readouterr().err
    assert "The clinic database is busy; try again in a moment" in err
    assert "cannot be reached" not in err
    assert counts(sqlite_url)["Patient"] == 0


def test_excel_trailing_empty_columns_are_ignored(db_url, files):
    """Issue 6 item 18: blank header cells at the end of line 1 (with blank cells below)."""
    make_clinic(url=db_url)
    for name in ("patients", "sessions"):
        lines = files[name].read_text(encoding="utf-8").splitlines()
        files[name].write_text("\n".join(f"{line},," for line in lines) + "\n", encoding="utf-8")

    report = run_import(url=db_url, files=files, now=NOW)

    assert (report.patients_added, report.sessions_added) == (3, 5)


def test_a_value_under_a_trailing_empty_column_is_still_a_problem(db_url, files):
    """Issue 6 item 18: only blank trailing columns are ignored; a middle one needs a name."""
    make_clinic(url=db_url)
    lines = files["patients"].read_text(encoding="utf-8").splitlines()
    lines = [f"{line},," for line in lines]
    lines[2] += "stray"
    files["patients"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    set_line(files["symptom_returns"], 1, "mrn,,note")

    problems = rejected(url=db_url, files=files, now=NOW)

    assert "patients.csv line 3: has 10 values but line 1 names 8 columns" in problems
    assert "symptom_returns.csv line 1: column 2 has no name" in problems
    # The patient on that line is reported there only, not again where it is referred to.
    assert not any("mrn 'A-1002' is not in" in problem for problem in problems)


def test_reimport_summary_says_truthfully_what_happens_to_differing_sessions(db_url, files):
    """Issue 6 item 20 (import part): no "correct them in the dashboard"."""
    make_clinic(url=db_url)
    run_import(url=db_url, files=files, now=NOW)
    set_line(files["sessions"], 3, line_of(files["sessions"], 3).replace(",0.5,", ",0.6,"))

    report = run_import(url=db_url, files=files, now=NOW)

    assert report.differing_session_refs == ("EHR-5002",)
    text = str(report)
    assert "dashboard" not in text
    assert "1 already-imported session differs from the file and was left as stored (EHR-5002)" in (
        text
    )
    assert "cancelled on the board on its day and imported again under a new session_ref" in text


def test_dose_mg_is_the_plan_and_a_discharged_session_was_given_it(db_url, files):
    """Migration 0002: dose_mg is the planned fixed dose; given_dose_mg only when given."""
    make_clinic(url=db_url)
    set_line(
        files["sessions"],
        7,
        "EHR-5006,A-1003,main,Chair 5,2025-03-14 09:00,esketamine,series,120,,84,discharged,"
        "2025-03-14 08:50,2025-03-14 09:00,2025-03-14 09:10,2025-03-14 11:05,2025-03-14 11:15,",
    )

    run_import(url=db_url, files=files, now=NOW)

    given = session_by_ref(db_url, "EHR-5006")
    assert (given.dose_mg, given.given_dose_mg) == (84, 84)
    per_kg = session_by_ref(db_url, "EHR-5001")  # 0.5 mg/kg, no weight: mg given unknown
    assert (per_kg.dose_mg_per_kg, per_kg.dose_mg, per_kg.given_dose_mg) == (0.5, None, None)
    no_show = session_by_ref(db_url, "EHR-5003")  # 84 mg planned, never given
    assert (no_show.dose_mg, no_show.given_dose_mg) == (84, None)


def test_an_esketamine_plan_must_be_whole_devices(db_url, files):
    """Issue 6 item 1: esketamine comes in 28 mg devices, in the import as on the board."""
    make_clinic(url=db_url)
    set_line(
        files["sessions"],
        7,
        "EHR-5006,A-1003,main,Chair 5,2025-03-14 09:00,esketamine,series,120,,50,discharged,"
        "2025-03-14 08:50,2025-03-14 09:00,2025-03-14 09:10,2025-03-14 11:05,2025-03-14 11:15,",
    )

    problems = rejected(url=db_url, files=files, now=NOW)

    assert any(
        p.startswith("sessions.csv line 7: dose_mg 50 is not a whole number of esketamine devices")
        for p in problems
    ), problems
    assert counts(db_url)["Patient"] == 0


# --- when each session was booked (optional booked_at) ----------------------------------


def _with_booked_at(path: Path, values: dict[int, str]) -> None:
    """Add a booked_at column to the sessions file, with ``values`` by line (else blank)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] += ",booked_at"
    for number in range(2, len(lines) + 1):
        lines[number - 1] += "," + values.get(number, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_booked_at_is_site_local_and_optional(db_url, files):
    """A booked_at column is read like every session time; without it (or blank) it is
    not recorded."""
    make_clinic(url=db_url)
    _with_booked_at(
        files["sessions"],
        {2: "2025-03-01 16:30", 3: "2025-03-10T07:45-05:00", 6: "2026-11-20 10:00"},
    )

    run_import(url=db_url, files=files, now=NOW)

    # New York is UTC-5 in early March 2025 (the clocks go forward on the 9th).
    assert session_by_ref(db_url, "EHR-5001").booked_at == datetime(2025, 3, 1, 21, 30, tzinfo=UTC)
    assert session_by_ref(db_url, "EHR-5002").booked_at == datetime(2025, 3, 10, 12, 45, tzinfo=UTC)
    assert session_by_ref(db_url, "EHR-5003").booked_at is None  # blank: not recorded
    assert session_by_ref(db_url, "EHR-5005").booked_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert session_by_ref(db_url, "EHR-5005").booked_by is None


def test_without_a_booked_at_column_nothing_is_recorded(db_url, files):
    make_clinic(url=db_url)

    run_import(url=db_url, files=files, now=NOW)

    with read_session(db_url) as db:
        booked = db.exec(select(TreatmentSession.booked_at)).all()
    assert booked == [None] * 5


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            {2: "2025-03-07 09:01"},
            "sessions.csv line 2: booked_at '2025-03-07 09:01' is after scheduled_start "
            "'2025-03-07 09:00': a visit is booked before it starts",
            id="after-the-booked-time",
        ),
        pytest.param(
            {6: "2026-11-28 09:00"},
            "sessions.csv line 6: booked_at '2026-11-28 09:00' is in the future",
            id="in-the-future",
        ),
        pytest.param(
            {4: "2025-03-0 10:00"},
            "sessions.csv line 4: booked_at '2025-03-0 10:00' is not a date and time",
            id="not-a-time",
        ),
    ],
)
def test_a_wrong_booked_at_is_a_problem_on_its_line(db_url, files, values, expected):
    make_clinic(url=db_url)
    _with_booked_at(files["sessions"], values)

    problems = rejected(url=db_url, files=files, now=NOW)

    assert any(problem.startswith(expected) for problem in problems), problems
    assert counts(db_url)["TreatmentSession"] == 0


def test_booked_at_at_the_booked_time_is_accepted(db_url, files):
    """A visit booked the minute it starts (a walk-in written down as it begins) is fine."""
    make_clinic(url=db_url)
    _with_booked_at(files["sessions"], {2: "2025-03-07 09:00"})

    run_import(url=db_url, files=files, now=NOW)

    assert session_by_ref(db_url, "EHR-5001").booked_at == datetime(2025, 3, 7, 14, 0, tzinfo=UTC)
