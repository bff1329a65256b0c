"""Bring a clinic's history in from CSV files: patients, sessions, scores, symptom returns.

Rows are keyed by the clinic's own references (MRN, session reference), so the
same files can be imported again without adding anything twice. Every row of
every file is checked before anything is written, and everything is written in
one transaction: an import either lands whole or not at all. The format is
described for clinic admins in the README (Importing a clinic's history).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import TextIO, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from ketadash.clinic import DEMO_KEY
from ketadash.config import normalise_url
from ketadash.db import has_schema, migrate, write_session
from ketadash.models import (
    CareFlag,
    Chair,
    ClinicInfo,
    Instrument,
    OutcomeScore,
    Patient,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    StatusChange,
    SymptomReturn,
    TreatmentSession,
)
from ketadash.settings import load_clinic_settings

IMPORT_REASON = "imported"

# The states a session can be imported in: the final states of history and
# future bookings. A session under way belongs to the monitoring room's board.
IMPORTABLE_STATUSES = (
    SessionStatus.SCHEDULED,
    SessionStatus.DISCHARGED,
    SessionStatus.CANCELLED,
    SessionStatus.NO_SHOW,
)

# Each step time and the state the session entered at that moment, in order.
STEP_COLUMNS = (
    ("checked_in_at", SessionStatus.CHECKED_IN),
    ("infusion_started_at", SessionStatus.INFUSING),
    ("infusion_ended_at", SessionStatus.RECOVERY),
    ("ready_at", SessionStatus.READY),
    ("discharged_at", SessionStatus.DISCHARGED),
)

SCORE_RANGES = {
    Instrument.PHQ9: ("PHQ-9", 0, 27),
    Instrument.MADRS: ("MADRS", 0, 60),
    Instrument.CADSS: ("CADSS", 0, 92),
}

# Wide enough for every protocol in use, narrow enough to catch a dose in mg
# typed into the mg/kg column.
DOSE_MG_PER_KG_RANGE = (0.01, 3.0)
DOSE_MG_RANGE = (1.0, 500.0)
PLANNED_MINUTES_RANGE = (5, 480)

_QUERY_CHUNK = 500

K = TypeVar("K", str, int)


# --- what an import says ----------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in one file; ``line`` is the spreadsheet row (header is 1, 0 = file)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        if self.line == 0:
            return f"{self.file}: {self.reason}"
        return f"{self.file} line {self.line}: {self.reason}"


class ImportRejected(Exception):
    """The files have problems; nothing was written. ``problems`` lists every one."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = (
            f"Nothing was imported: {count} problem{'s' if count != 1 else ''} "
            "to fix in the files, then run the import again."
        )
        super().__init__("\n".join([heading, *(str(problem) for problem in self.problems)]))


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """What an import changed. ``sessions_differing`` counts already-imported sessions
    whose row in the file no longer matches the database; they were left as they are."""

    patients_added: int = 0
    patients_updated: int = 0
    patients_unchanged: int = 0
    chairs_added: int = 0
    sessions_added: int = 0
    sessions_unchanged: int = 0
    sessions_differing: int = 0
    status_changes_added: int = 0
    scores_added: int = 0
    scores_unchanged: int = 0
    symptom_returns_added: int = 0
    symptom_returns_unchanged: int = 0

    def __str__(self) -> str:
        text = (
            f"Imported: patients {self.patients_added} added, {self.patients_updated} updated, "
            f"{self.patients_unchanged} unchanged; chairs {self.chairs_added} added; "
            f"sessions {self.sessions_added} added ({self.status_changes_added} status changes), "
            f"{self.sessions_unchanged} already there; scores {self.scores_added} added, "
            f"{self.scores_unchanged} already there; symptom returns "
            f"{self.symptom_returns_added} added, {self.symptom_returns_unchanged} already there"
        )
        if self.sessions_differing:
            text += (
                f"; {self.sessions_differing} already-imported sessions differ from the file "
                "and were left as they are (correct them in the dashboard)"
            )
        return text + "."


# --- the entry points ------------------------------------------------------------


def import_files(
    *,
    url: str,
    patients: Path,
    sessions: Path,
    scores: Path | None = None,
    symptom_returns: Path | None = None,
) -> ImportReport:
    """Check every row of the files, then write them all in one transaction.

    Raises ImportRejected, having written nothing, if any row has a problem.
    Idempotent: importing the same files again adds nothing. Sites must exist
    already (see ``ensure_site``); unknown chairs at a known site are added.
    """
    url = normalise_url(url)
    problems: list[RowProblem] = []
    tables = _Tables(
        patients=_read_table(path=patients, columns=PATIENT_COLUMNS, problems=problems),
        sessions=_read_table(path=sessions, columns=SESSION_COLUMNS, problems=problems),
        scores=_read_table(path=scores, columns=SCORE_COLUMNS, problems=problems)
        if scores
        else None,
        symptom_returns=_read_table(
            path=symptom_returns, columns=SYMPTOM_RETURN_COLUMNS, problems=problems
        )
        if symptom_returns
        else None,
    )
    if not has_schema(url):
        migrate(url)
    with write_session(url) as db:
        if db.get(ClinicInfo, DEMO_KEY) is not None:
            raise ImportRejected(
                [
                    RowProblem(
                        file=patients.name,
                        line=0,
                        reason="this database holds the synthetic demo clinic; import real "
                        "patients into the clinic's own database (--url)",
                    )
                ]
            )
        known = _Known.load(db=db, tables=tables)
        rows = _check(tables=tables, known=known, problems=problems)
        if problems:
            raise ImportRejected(problems)
        return _write(db=db, rows=rows, known=known)


# --- reading the files --------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


PATIENT_COLUMNS = _Columns(
    required=("mrn", "first_name", "last_name"),
    optional=("date_of_birth", "phone", "display_alias", "care_flags", "home_site"),
)
SESSION_COLUMNS = _Columns(
    required=(
        "session_ref",
        "mrn",
        "site",
        "scheduled_start",
        "route",
        "kind",
        "dose_mg_per_kg",
        "status",
    ),
    optional=(
        "chair",
        "planned_minutes",
        "dose_mg",
        *(column for column, _status in STEP_COLUMNS),
        "closed_at",
        "close_reason",
    ),
)
SCORE_COLUMNS = _Columns(
    required=("mrn", "instrument", "taken_at", "total"),
    optional=("item9", "session_ref"),
)
SYMPTOM_RETURN_COLUMNS = _Columns(required=("mrn", "reported_on"), optional=("note",))


@dataclass(frozen=True)
class _Row:
    file: str
    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class _Table:
    file: str
    rows: list[_Row]
    # False when the file or its header has problems: its rows were not read,
    # so other files' references to it cannot be checked either.
    usable: bool


@dataclass(frozen=True)
class _Tables:
    patients: _Table
    sessions: _Table
    scores: _Table | None
    symptom_returns: _Table | None


def _read_table(*, path: Path, columns: _Columns, problems: list[RowProblem]) -> _Table:
    name = path.name
    unusable = _Table(file=name, rows=[], usable=False)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            records = list(_records(handle=handle, file=name, problems=problems))
    except FileNotFoundError:
        problems.append(RowProblem(name, 0, f"file not found: {path}"))
        return unusable
    except UnicodeDecodeError:
        problems.append(
            RowProblem(name, 0, "is not UTF-8 text; save it from the spreadsheet as 'CSV UTF-8'")
        )
        return unusable
    if not records or not any(cell.strip() for cell in records[0][1]):
        problems.append(RowProblem(name, 1, "the file is empty; line 1 must name the columns"))
        return unusable

    header = [cell.strip().lower() for cell in records[0][1]]
    before = len(problems)
    if len(header) == 1 and ";" in header[0]:
        problems.append(RowProblem(name, 1, "the columns must be separated by commas, not ';'"))
        return unusable
    missing = [column for column in columns.required if column not in header]
    if missing:
        problems.append(RowProblem(name, 1, f"missing required column(s): {', '.join(missing)}"))
    for column in sorted({c for c in header if header.count(c) > 1}):
        problems.append(RowProblem(name, 1, f"column '{column}' appears more than once"))
    unknown = [column for column in header if column and column not in columns.all]
    if unknown:
        problems.append(
            RowProblem(
                name,
                1,
                f"unknown column(s): {', '.join(unknown)}; "
                f"the columns are: {', '.join(columns.all)}",
            )
        )
    if len(problems) > before:
        return unusable

    rows = []
    for line, record in records[1:]:
        values = [cell.strip() for cell in record]
        if not any(values):
            continue
        if any(values[len(header) :]):
            problems.append(
                RowProblem(
                    name,
                    line,
                    f"has {len(values)} values but line 1 names {len(header)} columns",
                )
            )
            continue
        values += [""] * (len(header) - len(values))
        rows.append(_Row(file=name, line=line, cells=dict(zip(header, values, strict=False))))
    return _Table(file=name, rows=rows, usable=True)


def _records(
    *, handle: TextIO, file: str, problems: list[RowProblem]
) -> Iterator[tuple[int, list[str]]]:
    # The line is the record's number, as a spreadsheet numbers its rows, even
    # when a quoted cell spans several lines of the file.
    reader = csv.reader(handle)
    line = 0
    while True:
        line += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problems.append(RowProblem(file, line, f"cannot be read as CSV ({error})"))
            return
        yield line, record


# --- what the database already holds -------------------------------------------------


@dataclass
class _Known:
    sites: dict[str, Site]
    sites_by_id: dict[int, Site]
    chairs: dict[tuple[int, str], Chair]
    patients: dict[str, Patient]
    sessions: dict[str, TreatmentSession]
    session_mrns: dict[str, str]
    # Each site's planned_infusion_minutes setting: the default for a blank cell.
    planned_minutes: dict[int, int]

    @classmethod
    def load(cls, *, db: Session, tables: _Tables) -> _Known:
        sites = list(db.exec(select(Site)))
        chairs = {(chair.site_id, chair.name.casefold()): chair for chair in db.exec(select(Chair))}
        all_rows = [row for table in _present(tables) for row in table.rows]
        mrns = {row.cells.get("mrn", "") for row in all_rows} - {""}
        refs = {row.cells.get("session_ref", "") for row in all_rows} - {""}
        patients = {
            patient.mrn: patient
            for chunk in _chunks(mrns)
            for patient in db.exec(select(Patient).where(col(Patient.mrn).in_(chunk)))
        }
        sessions: dict[str, TreatmentSession] = {}
        session_mrns: dict[str, str] = {}
        for chunk in _chunks(refs):
            query = (
                select(TreatmentSession, Patient.mrn)
                .join(Patient, col(Patient.id) == col(TreatmentSession.patient_id))
                .where(col(TreatmentSession.external_ref).in_(chunk))
            )
            for session, mrn in db.exec(query):
                sessions[session.external_ref] = session
                session_mrns[session.external_ref] = mrn
        return cls(
            sites={site.code: site for site in sites},
            sites_by_id={site.id: site for site in sites},
            chairs=chairs,
            patients=patients,
            sessions=sessions,
            session_mrns=session_mrns,
            planned_minutes={
                site.id: load_clinic_settings(db=db, site_id=site.id).planned_infusion_minutes
                for site in sites
            },
        )

    def site_codes(self) -> str:
        return ", ".join(sorted(self.sites)) or "none"


def _present(tables: _Tables) -> list[_Table]:
    return [
        table
        for table in (tables.patients, tables.sessions, tables.scores, tables.symptom_returns)
        if table is not None
    ]


def _values(*, table: _Table, column: str) -> set[str]:
    return {row.cells.get(column, "") for row in table.rows} - {""}


def _chunks(values: Iterable[K]) -> Iterator[list[K]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _QUERY_CHUNK):
        yield ordered[start : start + _QUERY_CHUNK]


# --- checking every row -------------------------------------------------------------


@dataclass(frozen=True)
class _PatientIn:
    line: int
    mrn: str
    first_name: str
    last_name: str
    # None: the file says nothing, and a stored value is kept.
    date_of_birth: date | None
    phone: str | None
    display_alias: str | None
    care_flags: str | None
    home_site_id: int | None


@dataclass(frozen=True)
class _SessionIn:
    line: int
    ref: str
    mrn: str
    site: Site
    chair_name: str | None
    scheduled_start: datetime
    route: Route
    kind: SessionKind
    planned_minutes: int
    dose_mg_per_kg: float | None
    dose_mg: float | None
    status: SessionStatus
    steps: dict[str, datetime]
    closed_at: datetime | None
    close_reason: str | None


@dataclass(frozen=True)
class _ScoreIn:
    line: int
    mrn: str
    instrument: Instrument
    taken_at: datetime
    total: int
    item9: int | None
    session_ref: str | None


@dataclass(frozen=True)
class _SymptomReturnIn:
    line: int
    mrn: str
    reported_on: date
    note: str | None


@dataclass(frozen=True)
class _Rows:
    patients: list[_PatientIn]
    sessions: list[_SessionIn]
    scores: list[_ScoreIn]
    symptom_returns: list[_SymptomReturnIn]


E = TypeVar("E", bound=StrEnum)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?")
_WHOLE = re.compile(r"[+-]?\d+(\.0*)?")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _enum_key(text: str) -> str:
    return re.sub(r"[\s_-]", "", text.lower())


class _Cells:
    """One row's values, read by type; a bad value becomes a problem and reads as None."""

    def __init__(self, *, row: _Row, problems: list[RowProblem]) -> None:
        self.row = row
        self.problems = problems

    def problem(self, reason: str) -> None:
        self.problems.append(RowProblem(self.row.file, self.row.line, reason))

    def has(self, column: str) -> bool:
        return bool(self.row.cells.get(column))

    def text(self, column: str, *, required: bool = False, max_length: int = 200) -> str | None:
        value = self.row.cells.get(column, "")
        if not value:
            if required:
                self.problem(f"{column} is required but empty")
            return None
        if len(value) > max_length:
            self.problem(f"{column} is longer than {max_length} characters")
            return None
        return value

    def choice(
        self,
        column: str,
        kind: type[E],
        *,
        allowed: Sequence[E] | None = None,
        required: bool = True,
    ) -> E | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        allowed = list(allowed or kind)
        by_key = {_enum_key(member.value): member for member in kind}
        member = by_key.get(_enum_key(value))
        if member is None or member not in allowed:
            self.problem(f"{column} '{value}' is not one of: {', '.join(m.value for m in allowed)}")
            return None
        return member

    def day(self, column: str, *, required: bool = False) -> date | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.problem(f"{column} '{value}' is not a date (YYYY-MM-DD)")
            return None

    def moment(self, column: str, *, time_zone: str, required: bool = False) -> datetime | None:
        """An aware UTC time: site-local 'YYYY-MM-DD HH:MM', or ISO 8601 with an offset."""
        value = self.text(column, required=required)
        if value is None:
            return None
        try:
            if not _MOMENT.fullmatch(value):
                raise ValueError(value)
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.problem(f"{column} '{value}' is not a date and time (YYYY-MM-DD HH:MM)")
            return None
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
        zone = ZoneInfo(time_zone)
        # zoneinfo silently shifts a wall-clock time that the spring change
        # skipped; such a time was typed wrong, so it is refused, not guessed.
        # In the autumn hour that happens twice, the first (summer) one is taken.
        utc = moment.replace(tzinfo=zone).astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) != moment:
            self.problem(
                f"{column} '{value}' does not exist in {time_zone} "
                "(the clocks went forward that night)"
            )
            return None
        return utc

    def whole(
        self,
        column: str,
        *,
        low: int,
        high: int,
        required: bool = False,
        scale: str | None = None,
    ) -> int | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        if not _WHOLE.fullmatch(value):
            self.problem(f"{column} '{value}' is not a whole number")
            return None
        number = int(float(value))
        if not low <= number <= high:
            where = f" for {scale}" if scale else ""
            self.problem(f"{column} {number} is out of range{where} ({low} to {high})")
            return None
        return number

    def amount(
        self, column: str, *, low: float, high: float, required: bool = False
    ) -> float | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        if not _NUMBER.fullmatch(value):
            self.problem(f"{column} '{value}' is not a number")
            return None
        number = float(value)
        if not low <= number <= high:
            self.problem(f"{column} {value} is out of range ({low:g} to {high:g})")
            return None
        return number


def _check(*, tables: _Tables, known: _Known, problems: list[RowProblem]) -> _Rows:
    patients = _check_patients(table=tables.patients, known=known, problems=problems)
    file_patients = {patient.mrn: patient for patient in patients}
    mrn_check = _MrnCheck(
        known=known,
        patients_file=tables.patients,
        file_mrns=_values(table=tables.patients, column="mrn"),
    )
    sessions = _check_sessions(
        table=tables.sessions, known=known, mrn_check=mrn_check, problems=problems
    )
    scores = (
        _check_scores(
            table=tables.scores,
            known=known,
            mrn_check=mrn_check,
            file_patients=file_patients,
            file_sessions={session.ref: session for session in sessions},
            sessions_table=tables.sessions,
            problems=problems,
        )
        if tables.scores
        else []
    )
    symptom_returns = (
        _check_symptom_returns(table=tables.symptom_returns, mrn_check=mrn_check, problems=problems)
        if tables.symptom_returns
        else []
    )
    return _Rows(
        patients=patients, sessions=sessions, scores=scores, symptom_returns=symptom_returns
    )


@dataclass(frozen=True)
class _MrnCheck:
    known: _Known
    patients_file: _Table
    file_mrns: set[str]

    def patient_mrn(self, cells: _Cells) -> str | None:
        """The row's MRN if it names a patient in the patients file or the database."""
        mrn = cells.text("mrn", required=True, max_length=64)
        if mrn is None:
            return None
        # A patient row with its own problems is reported once, where it is.
        in_file = mrn in self.file_mrns or not self.patients_file.usable
        if not in_file and mrn not in self.known.patients:
            cells.problem(f"mrn '{mrn}' is not in {self.patients_file.file} or the database")
            return None
        return mrn


class _FirstSeen:
    """Reports a key that already appeared on an earlier line of the same file."""

    def __init__(self) -> None:
        self.lines: dict[object, int] = {}

    def duplicate(self, *, key: object, cells: _Cells, what: str) -> bool:
        first = self.lines.setdefault(key, cells.row.line)
        if first != cells.row.line:
            cells.problem(f"{what} is also on line {first}")
            return True
        return False


def _check_patients(
    *, table: _Table, known: _Known, problems: list[RowProblem]
) -> list[_PatientIn]:
    seen = _FirstSeen()
    patients = []
    for row in table.rows:
        cells = _Cells(row=row, problems=problems)
        before = len(problems)
        mrn = cells.text("mrn", required=True, max_length=64)
        if mrn is not None:
            seen.duplicate(key=mrn, cells=cells, what=f"mrn '{mrn}'")
        first_name = cells.text("first_name", required=True)
        last_name = cells.text("last_name", required=True)
        date_of_birth = cells.day("date_of_birth")
        care_flags = _care_flags(cells)
        phone = cells.text("phone", max_length=40)
        display_alias = cells.text("display_alias", max_length=60)
        home_site_id = None
        if cells.has("home_site"):
            site = _site(cells, column="home_site", known=known)
            home_site_id = site.id if site else None
        if len(problems) == before:
            patients.append(
                _PatientIn(
                    line=row.line,
                    mrn=mrn,
                    first_name=first_name,
                    last_name=last_name,
                    date_of_birth=date_of_birth,
                    phone=phone,
                    display_alias=display_alias,
                    care_flags=care_flags,
                    home_site_id=home_site_id,
                )
            )
    return patients


def _care_flags(cells: _Cells) -> str | None:
    value = cells.text("care_flags", max_length=500)
    if value is None:
        return None
    by_key = {_enum_key(flag.value): flag for flag in CareFlag}
    flags: list[str] = []
    for part in (part.strip() for part in value.split(";")):
        flag = by_key.get(_enum_key(part)) if part else None
        if part and flag is None:
            cells.problem(
                f"care_flags '{part}' is not one of: {', '.join(f.value for f in CareFlag)} "
                "(separate several with ';')"
            )
        elif flag and flag.value not in flags:
            flags.append(flag.value)
    return ";".join(flags)


def _site(cells: _Cells, *, column: str, known: _Known) -> Site | None:
    code = cells.text(column, required=True, max_length=40)
    if code is None:
        return None
    site = known.sites.get(code) or next(
        (site for site in known.sites.values() if site.code.casefold() == code.casefold()), None
    )
    if site is None:
        if known.sites:
            cells.problem(f"{column} '{code}' is not a known site code ({known.site_codes()})")
        else:
            cells.problem(
                f"{column} '{code}' is not a known site code: the database has no sites yet; "
                "create the clinic's sites before importing"
            )
    return site


def _check_sessions(
    *, table: _Table, known: _Known, mrn_check: _MrnCheck, problems: list[RowProblem]
) -> list[_SessionIn]:
    seen = _FirstSeen()
    sessions = []
    for row in table.rows:
        cells = _Cells(row=row, problems=problems)
        before = len(problems)
        ref = cells.text("session_ref", required=True, max_length=80)
        if ref is not None:
            seen.duplicate(key=ref, cells=cells, what=f"session_ref '{ref}'")
        mrn = mrn_check.patient_mrn(cells)
        if ref and mrn and ref in known.sessions and known.session_mrns[ref] != mrn:
            cells.problem(
                f"session_ref '{ref}' is already in the database for another patient "
                f"(mrn '{known.session_mrns[ref]}')"
            )
        site = _site(cells, column="site", known=known)
        # With an unknown site, times are still read (as UTC) to report their format.
        time_zone = site.time_zone if site else "UTC"
        scheduled_start = cells.moment("scheduled_start", time_zone=time_zone, required=True)
        route = cells.choice("route", Route)
        kind = cells.choice("kind", SessionKind)
        planned_minutes = cells.whole(
            "planned_minutes", low=PLANNED_MINUTES_RANGE[0], high=PLANNED_MINUTES_RANGE[1]
        )
        dose_mg_per_kg = cells.amount(
            "dose_mg_per_kg", low=DOSE_MG_PER_KG_RANGE[0], high=DOSE_MG_PER_KG_RANGE[1]
        )
        dose_mg = cells.amount("dose_mg", low=DOSE_MG_RANGE[0], high=DOSE_MG_RANGE[1])
        if not cells.has("dose_mg_per_kg") and not cells.has("dose_mg"):
            cells.problem("dose_mg_per_kg is required but empty (or give dose_mg instead)")
        status = _status(cells)
        before_times = len(problems)
        steps = {
            column: moment
            for column, _step in STEP_COLUMNS
            if (moment := cells.moment(column, time_zone=time_zone)) is not None
        }
        closed_at = cells.moment("closed_at", time_zone=time_zone)
        times_read = len(problems) == before_times
        close_reason = cells.text("close_reason", max_length=200)
        chair_name = cells.text("chair", max_length=60)
        if status is not None and scheduled_start is not None and times_read:
            closed_at = _check_steps(
                cells=cells,
                status=status,
                scheduled_start=scheduled_start,
                steps=steps,
                closed_at=closed_at,
                close_reason=close_reason,
            )
        if len(problems) == before:
            sessions.append(
                _SessionIn(
                    line=row.line,
                    ref=ref,
                    mrn=mrn,
                    site=site,
                    chair_name=chair_name,
                    scheduled_start=scheduled_start,
                    route=route,
                    kind=kind,
                    planned_minutes=planned_minutes or known.planned_minutes[site.id],
                    dose_mg_per_kg=dose_mg_per_kg,
                    dose_mg=dose_mg,
                    status=status,
                    steps=steps,
                    closed_at=closed_at,
                    close_reason=close_reason,
                )
            )
    return sessions


def _status(cells: _Cells) -> SessionStatus | None:
    value = cells.text("status", required=True)
    if value is None:
        return None
    allowed = ", ".join(status.value for status in IMPORTABLE_STATUSES)
    member = {_enum_key(s.value): s for s in SessionStatus}.get(_enum_key(value))
    if member is None:
        cells.problem(f"status '{value}' is not one of: {allowed}")
        return None
    if member not in IMPORTABLE_STATUSES:
        cells.problem(
            f"status '{value}' cannot be imported: a session under way is run from the "
            f"dashboard; use one of: {allowed}"
        )
        return None
    return member


def _check_steps(
    *,
    cells: _Cells,
    status: SessionStatus,
    scheduled_start: datetime,
    steps: dict[str, datetime],
    closed_at: datetime | None,
    close_reason: str | None,
) -> datetime | None:
    """Report step times that disagree with the status; return when a cancelled or
    no-show session closed (the dashboard stamps closed_at for those steps only)."""
    order = [column for column, _step in STEP_COLUMNS]
    given = [column for column in order if column in steps]
    if status in (SessionStatus.SCHEDULED, SessionStatus.NO_SHOW) and given:
        cells.problem(
            f"a {status.value} session has no step times, but {', '.join(given)} "
            f"{'is' if len(given) == 1 else 'are'} filled in"
        )
        return None
    if status is SessionStatus.DISCHARGED:
        missing = [column for column in order if column not in steps]
        if missing:
            cells.problem(f"a discharged session needs {', '.join(missing)}")
            return None
    # As in the dashboard (ketadash.lifecycle), a session is cancelled before
    # its dose starts: at most it was checked in.
    beyond_check_in = [column for column in given if column != "checked_in_at"]
    if status is SessionStatus.CANCELLED and beyond_check_in:
        cells.problem(
            "a cancelled session has at most checked_in_at, but "
            f"{', '.join(beyond_check_in)} {'is' if len(beyond_check_in) == 1 else 'are'} "
            "filled in"
        )
        return None
    if closed_at is not None and status not in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        cells.problem("closed_at is only for cancelled or no-show sessions")
        return None
    if close_reason is not None and status is SessionStatus.SCHEDULED:
        cells.problem("close_reason is only for sessions that are over")
        return None

    for earlier, later in pairwise(given):
        if steps[later] < steps[earlier]:
            cells.problem(f"step times out of order: {later} is before {earlier}")
            return None
    if status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        last_step = steps[given[-1]] if given else None
        if closed_at is None:
            # Without a stated time, a session is taken to have closed at its
            # last recorded step, or at its booked time if it never started.
            return last_step or scheduled_start
        if last_step is not None and closed_at < last_step:
            cells.problem(f"step times out of order: closed_at is before {given[-1]}")
            return None
        return closed_at
    return None


def _check_scores(
    *,
    table: _Table,
    known: _Known,
    mrn_check: _MrnCheck,
    file_patients: dict[str, _PatientIn],
    file_sessions: dict[str, _SessionIn],
    sessions_table: _Table,
    problems: list[RowProblem],
) -> list[_ScoreIn]:
    sessions_table_refs = _values(table=sessions_table, column="session_ref")
    seen = _FirstSeen()
    scores = []
    for row in table.rows:
        cells = _Cells(row=row, problems=problems)
        before = len(problems)
        mrn = mrn_check.patient_mrn(cells)
        instrument = cells.choice("instrument", Instrument)
        time_zone = _patient_time_zone(mrn=mrn, known=known, file_patients=file_patients)
        taken_at = cells.moment("taken_at", time_zone=time_zone, required=True)
        total = item9 = None
        if instrument is not None:
            name, low, high = SCORE_RANGES[instrument]
            total = cells.whole("total", low=low, high=high, required=True, scale=name)
            if cells.has("item9") and instrument is not Instrument.PHQ9:
                cells.problem(f"item9 is only for PHQ-9, not {name}")
            else:
                item9 = cells.whole("item9", low=0, high=3, scale="PHQ-9 item 9")
            if total is not None and item9 is not None and item9 > total:
                cells.problem(f"item9 {item9} is more than the total {total}")
        session_ref = cells.text("session_ref", max_length=80)
        if session_ref and mrn:
            session_mrn = (
                file_sessions[session_ref].mrn
                if session_ref in file_sessions
                else known.session_mrns.get(session_ref)
            )
            # A session row with its own problems is reported there, not again here.
            if session_mrn is None and session_ref not in sessions_table_refs:
                cells.problem(
                    f"session_ref '{session_ref}' is not in {sessions_table.file} or the database"
                )
            elif session_mrn is not None and session_mrn != mrn:
                cells.problem(
                    f"session_ref '{session_ref}' is a session of another patient "
                    f"(mrn '{session_mrn}')"
                )
        if mrn and instrument and taken_at:
            seen.duplicate(
                key=(mrn, instrument, taken_at),
                cells=cells,
                what=f"a {instrument.value} score for mrn '{mrn}' at {row.cells['taken_at']}",
            )
        if len(problems) == before:
            scores.append(
                _ScoreIn(
                    line=row.line,
                    mrn=mrn,
                    instrument=instrument,
                    taken_at=taken_at,
                    total=total,
                    item9=item9,
                    session_ref=session_ref,
                )
            )
    return scores


def _patient_time_zone(
    *, mrn: str | None, known: _Known, file_patients: dict[str, _PatientIn]
) -> str:
    """The patient's home site's time zone (the file's, else the database's), else UTC."""
    home_site_id = None
    if mrn in file_patients:
        home_site_id = file_patients[mrn].home_site_id
    if home_site_id is None and mrn in known.patients:
        home_site_id = known.patients[mrn].home_site_id
    site = known.sites_by_id.get(home_site_id) if home_site_id is not None else None
    return site.time_zone if site else "UTC"


def _check_symptom_returns(
    *, table: _Table, mrn_check: _MrnCheck, problems: list[RowProblem]
) -> list[_SymptomReturnIn]:
    seen = _FirstSeen()
    returns = []
    for row in table.rows:
        cells = _Cells(row=row, problems=problems)
        before = len(problems)
        mrn = mrn_check.patient_mrn(cells)
        reported_on = cells.day("reported_on", required=True)
        if mrn and reported_on:
            seen.duplicate(
                key=(mrn, reported_on),
                cells=cells,
                what=f"a symptom return for mrn '{mrn}' on {reported_on}",
            )
        note = cells.text("note", max_length=1000)
        if len(problems) == before:
            returns.append(
                _SymptomReturnIn(line=row.line, mrn=mrn, reported_on=reported_on, note=note)
            )
    return returns


# --- writing ---------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.counts = {field.name: 0 for field in fields(ImportReport)}

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def report(self) -> ImportReport:
        return ImportReport(**self.counts)


def _write(*, db: Session, rows: _Rows, known: _Known) -> ImportReport:
    tally = _Tally()
    patients = _write_patients(db=db, rows=rows.patients, known=known, tally=tally)
    sessions = _write_sessions(
        db=db, rows=rows.sessions, known=known, patients=patients, tally=tally
    )
    _write_scores(db=db, rows=rows.scores, patients=patients, sessions=sessions, tally=tally)
    _write_symptom_returns(db=db, rows=rows.symptom_returns, patients=patients, tally=tally)
    db.flush()
    return tally.report()


def _write_patients(
    *, db: Session, rows: list[_PatientIn], known: _Known, tally: _Tally
) -> dict[str, Patient]:
    patients = dict(known.patients)
    for row in rows:
        patient = patients.get(row.mrn)
        if patient is None:
            patients[row.mrn] = Patient(
                mrn=row.mrn,
                first_name=row.first_name,
                last_name=row.last_name,
                date_of_birth=row.date_of_birth,
                phone=row.phone,
                display_alias=row.display_alias,
                care_flags=row.care_flags or "",
                home_site_id=row.home_site_id,
            )
            db.add(patients[row.mrn])
            tally.add("patients_added")
            continue
        changed = False
        # A blank cell keeps what is stored: an import adds and corrects, never erases.
        for name in (
            "first_name",
            "last_name",
            "date_of_birth",
            "phone",
            "display_alias",
            "care_flags",
            "home_site_id",
        ):
            value = getattr(row, name)
            if value is not None and value != "" and getattr(patient, name) != value:
                setattr(patient, name, value)
                changed = True
        tally.add("patients_updated" if changed else "patients_unchanged")
    db.flush()
    return patients


def _write_sessions(
    *,
    db: Session,
    rows: list[_SessionIn],
    known: _Known,
    patients: dict[str, Patient],
    tally: _Tally,
) -> dict[str, TreatmentSession]:
    sessions = dict(known.sessions)
    added: list[tuple[TreatmentSession, list[tuple[SessionStatus, datetime]]]] = []
    for row in rows:
        existing = sessions.get(row.ref)
        if existing is not None:
            tally.add("sessions_unchanged")
            if _differs(existing=existing, row=row, patients=patients, known=known):
                tally.add("sessions_differing")
            continue
        history = _history(row)
        session = TreatmentSession(
            site_id=row.site.id,
            chair_id=_chair(db=db, site=row.site, name=row.chair_name, known=known, tally=tally),
            patient_id=patients[row.mrn].id,
            external_ref=row.ref,
            scheduled_start=row.scheduled_start,
            planned_minutes=row.planned_minutes,
            route=row.route,
            kind=row.kind,
            dose_mg_per_kg=row.dose_mg_per_kg,
            dose_mg=row.dose_mg,
            status=row.status,
            closed_at=row.closed_at,
            close_reason=row.close_reason,
            version=1 + len(history),
            **row.steps,
        )
        db.add(session)
        sessions[row.ref] = session
        added.append((session, history))
        tally.add("sessions_added")
    db.flush()
    for session, history in added:
        previous = SessionStatus.SCHEDULED
        for version, (status, moment) in enumerate(history, start=2):
            db.add(
                StatusChange(
                    session_id=session.id,
                    version=version,
                    from_status=previous,
                    to_status=status,
                    changed_at=moment,
                    reason=IMPORT_REASON,
                )
            )
            previous = status
        tally.add("status_changes_added", len(history))
    db.flush()
    return sessions


def _history(row: _SessionIn) -> list[tuple[SessionStatus, datetime]]:
    """Each step the session took after being booked, and when, oldest first."""
    history = [
        (status, row.steps[column]) for column, status in STEP_COLUMNS if column in row.steps
    ]
    if row.status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        history.append((row.status, row.closed_at))
    return history


def _chair(
    *, db: Session, site: Site, name: str | None, known: _Known, tally: _Tally
) -> int | None:
    if name is None:
        return None
    key = (site.id, name.casefold())
    chair = known.chairs.get(key)
    if chair is None:
        positions = [c.position for (site_id, _), c in known.chairs.items() if site_id == site.id]
        chair = Chair(site_id=site.id, name=name, position=max(positions, default=0) + 1)
        db.add(chair)
        db.flush()
        known.chairs[key] = chair
        tally.add("chairs_added")
    return chair.id


def _differs(
    *, existing: TreatmentSession, row: _SessionIn, patients: dict[str, Patient], known: _Known
) -> bool:
    chair = known.chairs.get((row.site.id, row.chair_name.casefold())) if row.chair_name else None
    stored = (
        existing.site_id,
        existing.chair_id,
        existing.patient_id,
        existing.scheduled_start,
        existing.planned_minutes,
        existing.route,
        existing.kind,
        existing.dose_mg_per_kg,
        existing.dose_mg,
        existing.status,
        *(getattr(existing, column) for column, _status in STEP_COLUMNS),
    )
    in_file = (
        row.site.id,
        chair.id if chair else None,
        patients[row.mrn].id,
        row.scheduled_start,
        row.planned_minutes,
        row.route,
        row.kind,
        row.dose_mg_per_kg,
        row.dose_mg,
        row.status,
        *(row.steps.get(column) for column, _status in STEP_COLUMNS),
    )
    return stored != in_file


def _write_scores(
    *,
    db: Session,
    rows: list[_ScoreIn],
    patients: dict[str, Patient],
    sessions: dict[str, TreatmentSession],
    tally: _Tally,
) -> None:
    patient_ids = {patients[row.mrn].id for row in rows}
    stored = set()
    for chunk in _chunks(patient_ids):
        query = select(
            OutcomeScore.patient_id, OutcomeScore.instrument, OutcomeScore.taken_at
        ).where(col(OutcomeScore.patient_id).in_(chunk))
        stored.update((p, str(i), t) for p, i, t in db.exec(query))
    for row in rows:
        patient_id = patients[row.mrn].id
        if (patient_id, row.instrument.value, row.taken_at) in stored:
            tally.add("scores_unchanged")
            continue
        db.add(
            OutcomeScore(
                patient_id=patient_id,
                session_id=sessions[row.session_ref].id if row.session_ref else None,
                instrument=row.instrument,
                taken_at=row.taken_at,
                total=row.total,
                item9=row.item9,
            )
        )
        tally.add("scores_added")


def _write_symptom_returns(
    *,
    db: Session,
    rows: list[_SymptomReturnIn],
    patients: dict[str, Patient],
    tally: _Tally,
) -> None:
    patient_ids = {patients[row.mrn].id for row in rows}
    stored = set()
    for chunk in _chunks(patient_ids):
        query = select(SymptomReturn.patient_id, SymptomReturn.reported_on).where(
            col(SymptomReturn.patient_id).in_(chunk)
        )
        stored.update(tuple(pair) for pair in db.exec(query))
    for row in rows:
        patient_id = patients[row.mrn].id
        if (patient_id, row.reported_on) in stored:
            tally.add("symptom_returns_unchanged")
            continue
        db.add(SymptomReturn(patient_id=patient_id, reported_on=row.reported_on, note=row.note))
        tally.add("symptom_returns_added")
