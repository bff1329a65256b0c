"""Bring a clinic's history in from CSV files: patients, sessions, scores, symptom returns.

Rows are keyed by the clinic's own references (MRN, session reference), matched
ignoring case and surrounding spaces, so the same files can be imported again
without adding anything twice. Every row of every file is checked first, with
read-only queries that never take the write lock, so nurses keep saving while a
large import is checked. Then everything is written in one short transaction of
bulk inserts: an import either lands whole or not at all. The format and the
rules are described for clinic admins in the README (Importing a clinic's history).
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import islice, pairwise
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from ketadash.clinic import DEMO_KEY
from ketadash.clock import local_today, utc_now
from ketadash.config import normalise_url
from ketadash.db import has_schema, migrate, read_session, write_session
from ketadash.gates import plan_problems, standard_plan
from ketadash.limits import (
    ESKETAMINE_DEVICE_MG,
    MAX_CLOCK_SKEW,
    MAX_DOSE_MG,
    PHQ9_ITEM_RANGE,
    PHQ9_TOTAL_RANGE,
    beyond_clock_skew,
    esketamine_plans_text,
    whole_esketamine_devices,
)
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
    Staff,
    StaffRole,
    StatusChange,
    SymptomReturn,
    TreatmentSession,
)
from ketadash.settings import load_clinic_settings
from ketadash.text import clean_text, has_hidden_characters
from ketadash.vocabulary import (
    CLOSED_STATUSES,
    IN_WORDS,
    OPEN_STATUSES,
    STAMP_OF_STATUS,
    TRANSITIONS,
    Step,
)

IMPORT_REASON = "imported"

# The states a session can be imported in: the final states of history and
# future bookings. A session under way belongs to the monitoring room's board.
IMPORTABLE_STATUSES = tuple(
    status
    for status in SessionStatus
    if status is SessionStatus.SCHEDULED or status in CLOSED_STATUSES
)

# Each step time and the state the session entered at that moment, in lifecycle order.
STEP_COLUMNS = tuple((stamp, status) for status, stamp in STAMP_OF_STATUS.items())
CHECKED_IN_AT = TRANSITIONS[Step.CHECK_IN].stamp
# When a cancelled or no-show session closed: the column those two steps stamp.
CLOSED_AT = TRANSITIONS[Step.CANCEL].stamp
# When the booking was made (optional): what no-shows by lead time are counted from.
BOOKED_AT = "booked_at"
# As in the dashboard, a session is cancelled before its dose starts: it carries at
# most the stamps of the states a cancel may leave.
CANCELLED_STAMPS = tuple(
    column for column, status in STEP_COLUMNS if status in TRANSITIONS[Step.CANCEL].sources
)

SCORE_RANGES = {
    Instrument.PHQ9: ("PHQ-9", *PHQ9_TOTAL_RANGE),
    Instrument.MADRS: ("MADRS", 0, 60),
    Instrument.CADSS: ("CADSS", 0, 92),
}

# Wide enough for every protocol in use, narrow enough to catch a dose in mg
# typed into the mg/kg column.
DOSE_MG_PER_KG_RANGE = (0.01, 3.0)
DOSE_MG_RANGE = (1.0, float(MAX_DOSE_MG))
PLANNED_MINUTES_RANGE = (5, 480)

# --- plausibility: what a typing slip looks like (README, Importing: Plausibility) ---
# These catch typos in an export, not clinical limits, so they are not clinic settings.
# How far ahead of this server's clock a record may be is ketadash.limits.MAX_CLOCK_SKEW.
# Every date and time lies in these years: beyond them is a typo (9999, 0001) and
# would overflow on its way to UTC.
YEAR_RANGE = (1900, 2100)
# Patients are adults or older adolescents: a birth date giving an age under 16
# is almost always a mistyped year (2016 for 1961), one over 120 a mistyped century.
YOUNGEST_PATIENT_YEARS = 16
OLDEST_PATIENT_YEARS = 120
# A patient checks in on the day of the visit: not more than a day before the
# booked time, nor more than half a day after it.
CHECK_IN_EARLY = timedelta(hours=24)
CHECK_IN_LATE = timedelta(hours=12)
# A visit lasts hours (esketamine: at least 2 h of observation), never more than a day.
LONGEST_VISIT = timedelta(hours=24)

_QUERY_CHUNK = 1000
_WRITE_CHUNK = 5000

T = TypeVar("T")


def _key(reference: str) -> str:
    """How references match: MRN, site code, chair name and session_ref ignore case
    and surrounding spaces (``a-1001 `` is ``A-1001``)."""
    return reference.strip().casefold()


def shown(text: str) -> str:
    """``text`` with every control or invisible character written as an escape
    (``\\u202e``), so a message can be printed or shown without being turned around."""
    if not has_hidden_characters(text):
        return text
    return "".join(_escape(ch) if has_hidden_characters(ch) else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_CONTROL_NAMES = {0x00: "NUL", 0x1B: "ESCAPE (terminal control)", 0x7F: "DELETE"}


def _character_names(text: str) -> str:
    hidden = dict.fromkeys(ch for ch in text if has_hidden_characters(ch))
    names = [
        f"U+{ord(ch):04X} {unicodedata.name(ch, '') or _CONTROL_NAMES.get(ord(ch), 'control')}"
        for ch in hidden
    ]
    return ", ".join(names)


# --- what an import says ----------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in one file; ``line`` is the spreadsheet row (header is 1, 0 = file)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        if self.line == 0:
            return shown(f"{self.file}: {self.reason}")
        return shown(f"{self.file} line {self.line}: {self.reason}")


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


# How many differing session references the summary names before "and N more".
_DIFFERING_SHOWN = 10


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """What an import changed. ``sessions_differing`` counts already-imported sessions
    whose row in the file no longer matches the database (``differing_session_refs``
    names them); they were left as they are."""

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
    differing_session_refs: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = (
            f"Imported: patients {self.patients_added} added, {self.patients_updated} updated, "
            f"{self.patients_unchanged} unchanged; chairs {self.chairs_added} added; "
            f"sessions {self.sessions_added} added ({self.status_changes_added} status changes), "
            f"{self.sessions_unchanged} already there; scores {self.scores_added} added, "
            f"{self.scores_unchanged} already there; symptom returns "
            f"{self.symptom_returns_added} added, {self.symptom_returns_unchanged} already there."
        )
        if self.sessions_differing:
            refs = ", ".join(self.differing_session_refs[:_DIFFERING_SHOWN])
            more = self.sessions_differing - min(_DIFFERING_SHOWN, self.sessions_differing)
            if more:
                refs += f" and {more} more"
            one = self.sessions_differing == 1
            text += (
                f"\n{self.sessions_differing} already-imported session{'' if one else 's'} "
                f"differ{'s' if one else ''} from the file and {'was' if one else 'were'} "
                f"left as stored ({refs}): an import never changes a session it has "
                "written. A booking that changed can be cancelled on the board on its day "
                "and imported again under a new session_ref; a past session keeps what "
                "was first imported."
            )
        return shown(text)


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.differing: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def report(self) -> ImportReport:
        return ImportReport(**self.counts, differing_session_refs=tuple(self.differing))


# --- the entry point ------------------------------------------------------------


def import_files(
    *,
    url: str,
    patients: Path,
    sessions: Path,
    scores: Path | None = None,
    symptom_returns: Path | None = None,
    add_chairs: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Check every row of the files, then write them all in one transaction.

    Raises ImportRejected, having written nothing, if any row has a problem. Checking
    reads the database without the write lock; the write lock is held only while the
    rows are written (DatabaseBusy if another writer holds it past the busy timeout).
    Idempotent: importing the same files again adds nothing. Sites must exist already
    (see ``ensure_site``); a chair name unknown at its site is a problem unless
    ``add_chairs``. ``now`` (aware; default: the clock, read once) is what "in the
    future" and "a past day" are judged against; a naive one is a ValueError.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be an aware datetime, e.g. 2026-11-27T09:30+00:00")
    url = normalise_url(url)
    now = (utc_now() if now is None else now).astimezone(UTC)
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
    with read_session(url) as db:
        connection = db.connection()
        if connection.execute(select(ClinicInfo.key).where(ClinicInfo.key == DEMO_KEY)).first():
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
        known = _Known.load(connection=connection, tables=tables)
        known.planned_minutes = {
            site.id: load_clinic_settings(db=db, site_id=site.id).planned_infusion_minutes
            for site in known.sites.values()
        }
        rows = _check(tables=tables, known=known, add_chairs=add_chairs, now=now, problems=problems)
        if problems:
            raise ImportRejected(problems)
        plan = _plan(connection=connection, rows=rows, known=known)
        plan.prepared = _prepare(connection=connection, plan=plan, known=known)
    try:
        with write_session(url) as db:
            _write(connection=db.connection(), plan=plan, known=known)
    except IntegrityError as error:
        # Another import (or a person) added one of these keys between the check and
        # the write: the transaction rolled back whole, so running again is safe.
        raise ImportRejected(
            [
                RowProblem(
                    file=sessions.name,
                    line=0,
                    reason="the database changed while the files were being checked "
                    "(another import at the same time?); nothing was written, run the "
                    f"import again ({type(error.orig).__name__})",
                )
            ]
        ) from error
    return plan.tally.report()


# --- reading the files --------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # Reference columns whose values are gathered before any row is checked, so that
    # one query finds what the database already holds.
    keys: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


PATIENT_COLUMNS = _Columns(
    required=("mrn", "first_name", "last_name"),
    optional=("date_of_birth", "phone", "display_alias", "care_flags", "home_site"),
    keys=("mrn",),
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
        CLOSED_AT,
        "close_reason",
        BOOKED_AT,
        "plan_reason",
        "plan_lead",
    ),
    keys=("session_ref", "mrn"),
)
SCORE_COLUMNS = _Columns(
    required=("mrn", "instrument", "taken_at", "total"),
    optional=("item9", "session_ref"),
    keys=("session_ref", "mrn"),
)
SYMPTOM_RETURN_COLUMNS = _Columns(
    required=("mrn", "reported_on"), optional=("note",), keys=("mrn",)
)


@dataclass(frozen=True, slots=True)
class _Row:
    file: str
    line: int
    cells: dict[str, str]
    # Columns whose cell holds a control or invisible character: reported once when
    # read, then treated as unreadable (never stored, never echoed).
    hidden: frozenset[str]


@dataclass
class _Table:
    """One CSV file, read twice: once for its references, once row by row to check
    them, so that a large file is never held in memory as text."""

    path: Path
    file: str
    header: list[str]
    # False when the file or its header has problems: its rows are not read,
    # so other files' references to it cannot be checked either.
    usable: bool
    # The matching keys (see _key) of each reference column, over all rows.
    keys: dict[str, set[str]] = field(default_factory=dict)

    def rows(self, problems: list[RowProblem] | None) -> Iterator[_Row]:
        """Every non-blank row; with ``problems``, a row's shape problems are reported."""
        if not self.usable:
            return
        width = len(self.header)
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            for line, record in _records(handle=handle, file=self.file, problems=problems):
                if line == 1:
                    continue
                values = [cell.strip() for cell in record]
                if not any(values):
                    continue
                # A row too wide is still read for its references (problems is None),
                # so that they are not reported again where another file refers to them.
                if any(values[width:]) and problems is not None:
                    filled = max(n for n, value in enumerate(values, start=1) if value)
                    problems.append(
                        RowProblem(
                            self.file, line, f"has {filled} values but line 1 names {width} columns"
                        )
                    )
                    continue
                cells = dict(zip(self.header, values, strict=False))
                hidden = _NONE
                if not _plain("".join(values)):
                    hidden = frozenset(
                        column for column, value in cells.items() if has_hidden_characters(value)
                    )
                if hidden and problems is not None:
                    for column in self.header:
                        if column in hidden:
                            problems.append(
                                RowProblem(self.file, line, _hidden_reason(column, cells[column]))
                            )
                yield _Row(file=self.file, line=line, cells=cells, hidden=hidden)


_NONE: frozenset[str] = frozenset()
# The control characters has_hidden_characters finds in ASCII text: the fast path
# for the usual cell, so a large file is not judged character by character in Python.
_ASCII_HIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _plain(text: str) -> bool:
    """True when ``text`` certainly has no hidden characters (ASCII without controls)."""
    return text.isascii() and _ASCII_HIDDEN.search(text) is None


def _hidden_reason(column: str, value: str) -> str:
    return (
        f"{column} '{shown(value)}' holds a control or invisible character "
        f"({_character_names(value)}), which is never stored: retype the cell"
    )


@dataclass(frozen=True)
class _Tables:
    patients: _Table
    sessions: _Table
    scores: _Table | None
    symptom_returns: _Table | None


def _read_table(*, path: Path, columns: _Columns, problems: list[RowProblem]) -> _Table:
    name = path.name
    unusable = _Table(path=path, file=name, header=[], usable=False)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = next(_records(handle=handle, file=name, problems=problems), None)
    except FileNotFoundError:
        problems.append(RowProblem(name, 0, f"file not found: {path}"))
        return unusable
    except UnicodeDecodeError:
        problems.append(RowProblem(name, 0, _NOT_UTF8))
        return unusable
    if first is None or not any(cell.strip() for cell in first[1]):
        if first is not None or not any(p.file == name for p in problems):
            problems.append(RowProblem(name, 1, "the file is empty; line 1 must name the columns"))
        return unusable

    header = [cell.strip().lower() for cell in first[1]]
    # Excel saves a column that once held something as an empty header cell at the
    # end of line 1: such trailing columns are ignored (their cells must be blank).
    while header and not header[-1]:
        header.pop()
    before = len(problems)
    if len(header) == 1 and ";" in header[0]:
        problems.append(RowProblem(name, 1, "the columns must be separated by commas, not ';'"))
        return unusable
    for number, column in enumerate(header, start=1):
        if has_hidden_characters(column):
            problems.append(RowProblem(name, 1, _hidden_reason(f"column {number}", column)))
        elif not column:
            problems.append(RowProblem(name, 1, f"column {number} has no name"))
    if len(problems) > before:
        return unusable
    missing = [column for column in columns.required if column not in header]
    if missing:
        problems.append(RowProblem(name, 1, f"missing required column(s): {', '.join(missing)}"))
    for column in sorted({c for c in header if header.count(c) > 1}):
        problems.append(RowProblem(name, 1, f"column '{column}' appears more than once"))
    unknown = [column for column in header if column not in columns.all]
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

    table = _Table(path=path, file=name, header=header, usable=True)
    table.keys = {column: set() for column in columns.keys if column in header}
    try:
        for row in table.rows(problems=None):
            for column, keys in table.keys.items():
                value = row.cells.get(column)
                if value:
                    keys.add(_key(value))
    except UnicodeDecodeError:
        problems.append(RowProblem(name, 0, _NOT_UTF8))
        return unusable
    return table


_NOT_UTF8 = "is not UTF-8 text; save it from the spreadsheet as 'CSV UTF-8'"


def _records(
    *, handle: Iterable[str], file: str, problems: list[RowProblem] | None
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
            if problems is not None:
                problems.append(RowProblem(file, line, f"cannot be read as CSV ({error})"))
            return
        yield line, record


# --- what the database already holds -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Site:
    id: int
    code: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class _KnownPatient:
    id: int
    mrn: str
    home_site_id: int | None


@dataclass(frozen=True, slots=True)
class _KnownSession:
    id: int
    ref: str
    patient_id: int
    mrn: str
    status: str | None = None


@dataclass
class _Known:
    """What the database holds that the files refer to, keyed as references match."""

    sites: dict[str, _Site]
    sites_by_id: dict[int, _Site]
    # (site id, chair key) -> (chair id, name); positions for chairs to add.
    chairs: dict[tuple[int, str], tuple[int, str]]
    last_position: dict[int, int]
    patients: dict[str, _KnownPatient]
    sessions: dict[str, _KnownSession]
    # Active clinic leads by e-mail (lower-case): who may record a reason for a plan.
    leads: dict[str, str] = field(default_factory=dict)
    # MRN keys that more than one stored patient matches ignoring case, with spellings.
    ambiguous_mrns: dict[str, list[str]] = field(default_factory=dict)
    # Each site's planned_infusion_minutes setting: the default for a blank cell.
    planned_minutes: dict[int, int] = field(default_factory=dict)

    @classmethod
    def load(cls, *, connection: Connection, tables: _Tables) -> _Known:
        sites = [
            _Site(id=id_, code=code, time_zone=zone)
            for id_, code, zone in connection.execute(select(Site.id, Site.code, Site.time_zone))
        ]
        chairs: dict[tuple[int, str], tuple[int, str]] = {}
        last_position: dict[int, int] = {}
        for id_, site_id, name, position in connection.execute(
            select(Chair.id, Chair.site_id, Chair.name, Chair.position)
        ):
            chairs[(site_id, _key(name))] = (id_, name)
            last_position[site_id] = max(last_position.get(site_id, 0), position)
        mrns = _all_keys(tables, "mrn")
        refs = _all_keys(tables, "session_ref")
        # One streamed pass over each table's keys rather than one query per key:
        # matching ignores case, which no index of the key columns serves.
        patients = {}
        ambiguous: dict[str, list[str]] = {}
        if mrns:
            query = select(Patient.id, Patient.mrn, Patient.home_site_id)
            for id_, mrn, home_site_id in _stream(connection, query):
                if _key(mrn) in mrns:
                    if _key(mrn) in patients:
                        # Two stored patients one MRN apart only in case: matching
                        # would pick one of them silently (and a score could land on
                        # the other patient's record).
                        first = patients[_key(mrn)].mrn
                        ambiguous.setdefault(_key(mrn), [first]).append(mrn)
                    patients[_key(mrn)] = _KnownPatient(id=id_, mrn=mrn, home_site_id=home_site_id)
        sessions = {}
        if refs:
            query = (
                select(
                    TreatmentSession.id,
                    TreatmentSession.external_ref,
                    TreatmentSession.patient_id,
                    Patient.mrn,
                    TreatmentSession.status,
                )
                .join(Patient, Patient.id == TreatmentSession.patient_id)
                .where(TreatmentSession.external_ref.is_not(None))
            )
            for id_, ref, patient_id, mrn, status in _stream(connection, query):
                if _key(ref) in refs:
                    sessions[_key(ref)] = _KnownSession(
                        id=id_, ref=ref, patient_id=patient_id, mrn=mrn, status=status
                    )
        leads = {
            email.lower(): name
            for email, name in connection.execute(
                select(Staff.email, Staff.name).where(
                    Staff.role == StaffRole.LEAD, Staff.active.is_(True), Staff.email.is_not(None)
                )
            )
        }
        return cls(
            leads=leads,
            ambiguous_mrns=ambiguous,
            sites={_key(site.code): site for site in sites},
            sites_by_id={site.id: site for site in sites},
            chairs=chairs,
            last_position=last_position,
            patients=patients,
            sessions=sessions,
        )

    def site_codes(self) -> str:
        return ", ".join(sorted(site.code for site in self.sites.values())) or "none"

    def chair_names(self, site_id: int) -> str:
        names = [name for (site, _chair), (_id, name) in self.chairs.items() if site == site_id]
        return ", ".join(sorted(names)) or "none"


def _all_keys(tables: _Tables, column: str) -> set[str]:
    keys: set[str] = set()
    for table in (tables.patients, tables.sessions, tables.scores, tables.symptom_returns):
        if table is not None:
            keys |= table.keys.get(column, set())
    return keys


def _stream(connection: Connection, query) -> Iterator[Any]:
    yield from connection.execution_options(yield_per=10_000).execute(query)


def _chunks(values: Iterable[T], size: int = _QUERY_CHUNK) -> Iterator[list[T]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- checking every row -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PatientIn:
    line: int
    key: str
    mrn: str
    first_name: str
    last_name: str
    # None: the file says nothing, and a stored value is kept.
    date_of_birth: date | None
    phone: str | None
    display_alias: str | None
    care_flags: str | None
    home_site_id: int | None


@dataclass(frozen=True, slots=True)
class _SessionIn:
    line: int
    key: str
    ref: str
    mrn_key: str
    site: _Site
    chair_key: str | None
    chair_name: str | None
    scheduled_start: datetime
    route: Route
    kind: SessionKind
    planned_minutes: int
    dose_mg_per_kg: float | None
    dose_mg: float | None
    given_dose_mg: float | None
    status: SessionStatus
    steps: dict[str, datetime]
    closed_at: datetime | None
    close_reason: str | None
    booked_at: datetime | None
    plan_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _ScoreIn:
    line: int
    mrn_key: str
    instrument: Instrument
    taken_at: datetime
    total: int
    item9: int | None
    session_key: str | None


@dataclass(frozen=True, slots=True)
class _SymptomReturnIn:
    line: int
    mrn_key: str
    reported_on: date
    note: str | None


@dataclass(frozen=True)
class _Rows:
    patients: list[_PatientIn]
    sessions: list[_SessionIn]
    scores: list[_ScoreIn]
    symptom_returns: list[_SymptomReturnIn]
    # Chairs named in the file but not yet at their site (only with add_chairs):
    # (site id, chair key) -> the first spelling seen.
    new_chairs: dict[tuple[int, str], str]


E = TypeVar("E", bound=StrEnum)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?")
_WHOLE = re.compile(r"[+-]?\d+(\.0*)?")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


@functools.lru_cache(maxsize=4096)
def _enum_key(text: str) -> str:
    return re.sub(r"[\s_-]", "", text.lower())


@functools.cache
def _members(kind: type[E]) -> dict[str, E]:
    return {_enum_key(member.value): member for member in kind}


class _Cells:
    """One row's values, read by type; a bad value becomes a problem and reads as None."""

    def __init__(self, *, row: _Row, problems: list[RowProblem]) -> None:
        self.row = row
        self.problems = problems
        # False once the row has a problem (a hidden character counts): it is not written.
        self.ok = not row.hidden
        self.count = 0

    def problem(self, reason: str) -> None:
        self.ok = False
        self.count += 1
        self.problems.append(RowProblem(self.row.file, self.row.line, reason))

    def has(self, column: str) -> bool:
        return bool(self.row.cells.get(column))

    def text(self, column: str, *, required: bool = False, max_length: int = 200) -> str | None:
        if column in self.row.hidden:
            return None  # reported when read
        value = self.row.cells.get(column, "")
        if not value:
            if required:
                self.problem(f"{column} is required but empty")
            return None
        if len(value) > max_length:
            self.problem(f"{column} is longer than {max_length} characters")
            return None
        return value

    def words(self, column: str, *, required: bool = False, max_length: int = 200) -> str | None:
        """Text typed by people (names, reasons, notes), normalised as the forms do."""
        value = self.text(column, required=required, max_length=max_length)
        return clean_text(value) or None if value is not None else None

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
        member = _members(kind).get(_enum_key(value))
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
            day = date.fromisoformat(value)
        except ValueError:
            self.problem(f"{column} '{value}' is not a date (YYYY-MM-DD)")
            return None
        if not YEAR_RANGE[0] <= day.year <= YEAR_RANGE[1]:
            self.problem(f"{column} '{value}' is out of range (years {_years()})")
            return None
        return day

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
        try:
            if not YEAR_RANGE[0] <= moment.year <= YEAR_RANGE[1]:
                raise OverflowError(value)
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
            offset = _day_offset(time_zone, moment.date())
            if offset is not None:
                return (moment - offset).replace(tzinfo=UTC)
            zone = ZoneInfo(time_zone)
            utc = moment.replace(tzinfo=zone).astimezone(UTC)
        except OverflowError:
            self.problem(f"{column} '{value}' is out of range (years {_years()})")
            return None
        # zoneinfo silently shifts a wall-clock time that the spring change
        # skipped; such a time was typed wrong, so it is refused, not guessed.
        # In the autumn hour that happens twice, the first (summer) one is taken.
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

    def not_future(self, column: str, moment: datetime | None, *, now: datetime) -> None:
        if moment is not None and beyond_clock_skew(moment, now=now):
            self.problem(
                f"{column} '{self.row.cells[column]}' is in the future: "
                "only what has already happened can be imported"
            )


@functools.lru_cache(maxsize=16_384)
def _day_offset(time_zone: str, day: date) -> timedelta | None:
    """The zone's UTC offset all through ``day``, or None on a day its clocks change.

    Most of a large file's times fall on ordinary days: one offset a day spares a time
    zone conversion per cell; a day with a clock change takes the careful path.
    """
    zone = ZoneInfo(time_zone)
    first = datetime.combine(day, time.min, tzinfo=zone).utcoffset()
    last = datetime.combine(day, time(23, 59, 59), tzinfo=zone).utcoffset()
    return first if first == last else None


def _years() -> str:
    return f"{YEAR_RANGE[0]} to {YEAR_RANGE[1]}"


def _check(
    *,
    tables: _Tables,
    known: _Known,
    add_chairs: bool,
    now: datetime,
    problems: list[RowProblem],
) -> _Rows:
    patients = _check_patients(table=tables.patients, known=known, now=now, problems=problems)
    file_patients = {patient.key: patient for patient in patients}
    mrn_check = _MrnCheck(
        known=known,
        patients_file=tables.patients,
        file_mrns=tables.patients.keys.get("mrn", set()),
    )
    new_chairs: dict[tuple[int, str], str] = {}
    sessions = _check_sessions(
        table=tables.sessions,
        known=known,
        mrn_check=mrn_check,
        add_chairs=add_chairs,
        new_chairs=new_chairs,
        now=now,
        problems=problems,
    )
    scores = (
        _check_scores(
            table=tables.scores,
            known=known,
            mrn_check=mrn_check,
            file_patients=file_patients,
            file_sessions={session.key: session.mrn_key for session in sessions},
            sessions_table=tables.sessions,
            now=now,
            problems=problems,
        )
        if tables.scores
        else []
    )
    symptom_returns = (
        _check_symptom_returns(
            table=tables.symptom_returns,
            known=known,
            mrn_check=mrn_check,
            file_patients=file_patients,
            now=now,
            problems=problems,
        )
        if tables.symptom_returns
        else []
    )
    return _Rows(
        patients=patients,
        sessions=sessions,
        scores=scores,
        symptom_returns=symptom_returns,
        new_chairs=new_chairs,
    )


def _refuse_ambiguous_mrn(cells: _Cells, *, mrn: str, known: _Known) -> bool:
    """A problem on the line (and True) when stored patients differ only in the MRN's case."""
    spellings = known.ambiguous_mrns.get(_key(mrn))
    if not spellings:
        return False
    cells.problem(
        f"mrn '{mrn}' matches more than one patient in the database "
        f"({', '.join(repr(m) for m in spellings)}, which differ only in case): merge or "
        "rename them there first"
    )
    return True


@dataclass(frozen=True)
class _MrnCheck:
    known: _Known
    patients_file: _Table
    file_mrns: set[str]

    def patient_key(self, cells: _Cells) -> str | None:
        """The row's MRN key if it names a patient in the patients file or the database."""
        mrn = cells.text("mrn", required=True, max_length=64)
        if mrn is None:
            return None
        key = _key(mrn)
        if _refuse_ambiguous_mrn(cells, mrn=mrn, known=self.known):
            return None
        # A patient row with its own problems is reported once, where it is.
        in_file = key in self.file_mrns or not self.patients_file.usable
        if not in_file and key not in self.known.patients:
            cells.problem(f"mrn '{mrn}' is not in {self.patients_file.file} or the database")
            return None
        return key


class _FirstSeen:
    """Reports a key that already appeared on an earlier line of the same file."""

    def __init__(self) -> None:
        self.seen: dict[object, tuple[int, str]] = {}

    def duplicate(
        self, *, key: object, cells: _Cells, what: str, spelling: str = "", rule: str = ""
    ) -> bool:
        line, first = self.seen.setdefault(key, (cells.row.line, spelling))
        if line != cells.row.line:
            also = f" (as '{first}': {rule})" if first != spelling else ""
            cells.problem(f"{what} is also on line {line}{also}")
            return True
        return False


def _check_patients(
    *, table: _Table, known: _Known, now: datetime, problems: list[RowProblem]
) -> list[_PatientIn]:
    seen = _FirstSeen()
    patients = []
    today = now.date()
    for row in table.rows(problems):
        cells = _Cells(row=row, problems=problems)
        mrn = cells.text("mrn", required=True, max_length=64)
        if mrn is not None:
            seen.duplicate(
                key=_key(mrn),
                cells=cells,
                what=f"mrn '{mrn}'",
                spelling=mrn,
                rule="MRNs match ignoring case",
            )
            _refuse_ambiguous_mrn(cells, mrn=mrn, known=known)
        first_name = cells.words("first_name", required=True)
        last_name = cells.words("last_name", required=True)
        date_of_birth = cells.day("date_of_birth")
        if date_of_birth is not None:
            _check_birth(cells, date_of_birth=date_of_birth, today=today)
        care_flags = _care_flags(cells)
        phone = cells.words("phone", max_length=40)
        display_alias = cells.words("display_alias", max_length=60)
        home_site_id = None
        if cells.has("home_site"):
            site = _site(cells, column="home_site", known=known)
            home_site_id = site.id if site else None
        if cells.ok:
            stored = known.patients.get(_key(mrn))
            patients.append(
                _PatientIn(
                    line=row.line,
                    key=_key(mrn),
                    # The stored spelling is the first one seen: the database's, else the file's.
                    mrn=stored.mrn if stored else mrn,
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


def _check_birth(cells: _Cells, *, date_of_birth: date, today: date) -> None:
    value = cells.row.cells["date_of_birth"]
    if date_of_birth > today:
        cells.problem(f"date_of_birth '{value}' is in the future")
        return
    age = (
        today.year
        - date_of_birth.year
        - ((today.month, today.day) < date_of_birth.timetuple()[1:3])
    )
    if age < YOUNGEST_PATIENT_YEARS:
        cells.problem(
            f"date_of_birth '{value}' makes the patient {age}; patients are "
            f"{YOUNGEST_PATIENT_YEARS} or older: check the year"
        )
    elif age > OLDEST_PATIENT_YEARS:
        cells.problem(
            f"date_of_birth '{value}' makes the patient {age}; no patient is older than "
            f"{OLDEST_PATIENT_YEARS}: check the year"
        )


def _care_flags(cells: _Cells) -> str | None:
    value = cells.text("care_flags", max_length=500)
    if value is None:
        return None
    by_key = _members(CareFlag)
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


def _site(cells: _Cells, *, column: str, known: _Known) -> _Site | None:
    code = cells.text(column, required=True, max_length=40)
    if code is None:
        return None
    site = known.sites.get(_key(code))
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
    *,
    table: _Table,
    known: _Known,
    mrn_check: _MrnCheck,
    add_chairs: bool,
    new_chairs: dict[tuple[int, str], str],
    now: datetime,
    problems: list[RowProblem],
) -> list[_SessionIn]:
    seen = _FirstSeen()
    sessions = []
    for row in table.rows(problems):
        cells = _Cells(row=row, problems=problems)
        ref = cells.text("session_ref", required=True, max_length=80)
        if ref is not None:
            seen.duplicate(
                key=_key(ref),
                cells=cells,
                what=f"session_ref '{ref}'",
                spelling=ref,
                rule="session references match ignoring case",
            )
        mrn_key = mrn_check.patient_key(cells)
        stored = known.sessions.get(_key(ref)) if ref else None
        if stored is not None and mrn_key and _key(stored.mrn) != mrn_key:
            cells.problem(
                f"session_ref '{ref}' is already in the database for another patient "
                f"(mrn '{stored.mrn}')"
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
        if (
            route is Route.ESKETAMINE
            and dose_mg is not None
            and not whole_esketamine_devices(dose_mg)
        ):
            cells.problem(
                f"dose_mg {dose_mg:g} is not a whole number of esketamine devices "
                f"({ESKETAMINE_DEVICE_MG} mg each: {esketamine_plans_text()} mg)"
            )
        plan_reason = _plan_reason(cells, route=route, dose_mg=dose_mg, known=known)
        status = _status(cells)
        before_times = cells.count
        steps = {
            column: moment
            for column, _step in STEP_COLUMNS
            if (moment := cells.moment(column, time_zone=time_zone)) is not None
        }
        closed_at = cells.moment(CLOSED_AT, time_zone=time_zone)
        times_read = cells.count == before_times and not row.hidden & _TIME_COLUMNS
        booked_at = _booked_at(cells, scheduled_start=scheduled_start, time_zone=time_zone, now=now)
        close_reason = cells.words("close_reason", max_length=200)
        chair_key, chair_name = _chair(
            cells, site=site, known=known, add_chairs=add_chairs, new_chairs=new_chairs
        )
        if status is not None and scheduled_start is not None and times_read:
            closed_at = _check_steps(
                cells=cells,
                status=status,
                scheduled_start=scheduled_start,
                time_zone=time_zone,
                steps=steps,
                closed_at=closed_at,
                close_reason=close_reason,
                now=now,
            )
        if cells.ok:
            sessions.append(
                _SessionIn(
                    line=row.line,
                    key=_key(ref),
                    # The stored spelling is the first one seen: the database's, else the file's.
                    ref=stored.ref if stored else ref,
                    mrn_key=mrn_key,
                    site=site,
                    chair_key=chair_key,
                    chair_name=chair_name,
                    scheduled_start=scheduled_start,
                    route=route,
                    kind=kind,
                    planned_minutes=planned_minutes or known.planned_minutes[site.id],
                    dose_mg_per_kg=dose_mg_per_kg,
                    dose_mg=dose_mg,
                    # dose_mg is the planned fixed dose; a discharged session was given it.
                    # With only mg/kg planned and no weight, the mg given is not known.
                    given_dose_mg=dose_mg if status is SessionStatus.DISCHARGED else None,
                    status=status,
                    steps=steps,
                    closed_at=closed_at,
                    close_reason=close_reason,
                    booked_at=booked_at,
                    plan_reason=plan_reason,
                )
            )
    return sessions


def _plan_reason(
    cells: _Cells, *, route: Route | None, dose_mg: float | None, known: _Known
) -> str | None:
    """A plan outside the label's doses (``gates.plan_problems``) is imported only with
    ``plan_reason`` and, in ``plan_lead``, the e-mail of an active clinic lead on the
    roster; what is stored names the lead."""
    reason = cells.words("plan_reason", max_length=200)
    email = cells.text("plan_lead", max_length=254)
    lead = known.leads.get(email.strip().lower()) if email else None
    if route is None or dose_mg is None:
        return None
    problems = plan_problems(
        route=route,
        dose_mg=dose_mg,
        plan_reason=reason,
        staff_role=StaffRole.LEAD if lead else None,
    )
    for problem in problems:
        who = (
            f"plan_lead '{email}' is not a clinic lead on the staff roster"
            if email and lead is None
            else "give plan_reason and, in plan_lead, the e-mail of a clinic lead on the roster"
        )
        cells.problem(f"dose_mg: {problem} ({who})")
    if problems or standard_plan(route=route, dose_mg=dose_mg):
        return None
    return f"{reason} (lead: {lead})"


def _booked_at(
    cells: _Cells, *, scheduled_start: datetime | None, time_zone: str, now: datetime
) -> datetime | None:
    """When the booking was made: not in the future, and at or before the booked time."""
    booked_at = cells.moment(BOOKED_AT, time_zone=time_zone)
    if booked_at is None:
        return None
    if beyond_clock_skew(booked_at, now=now):
        cells.not_future(BOOKED_AT, booked_at, now=now)
        return None
    if scheduled_start is not None and booked_at > scheduled_start:
        cells.problem(
            f"{BOOKED_AT} '{cells.row.cells[BOOKED_AT]}' is after scheduled_start "
            f"'{cells.row.cells['scheduled_start']}': a visit is booked before it starts"
        )
        return None
    return booked_at


_TIME_COLUMNS = frozenset({*(column for column, _status in STEP_COLUMNS), CLOSED_AT})


def _chair(
    cells: _Cells,
    *,
    site: _Site | None,
    known: _Known,
    add_chairs: bool,
    new_chairs: dict[tuple[int, str], str],
) -> tuple[str | None, str | None]:
    """The chair's key and name at the site; an unknown one is a problem unless added."""
    name = cells.text("chair", max_length=60)
    if name is None or site is None:
        return None, None
    key = (site.id, _key(name))
    if key in known.chairs:
        return key[1], known.chairs[key][1]
    if add_chairs:
        return key[1], new_chairs.setdefault(key, clean_text(name))
    cells.problem(
        f"chair '{name}' is not a chair at site '{site.code}' (its chairs: "
        f"{known.chair_names(site.id)}); correct the name, or run the import with "
        "--add-chairs to add it"
    )
    return None, None


def _status(cells: _Cells) -> SessionStatus | None:
    value = cells.text("status", required=True)
    if value is None:
        return None
    allowed = ", ".join(status.value for status in IMPORTABLE_STATUSES)
    member = _members(SessionStatus).get(_enum_key(value))
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
    time_zone: str,
    steps: dict[str, datetime],
    closed_at: datetime | None,
    close_reason: str | None,
    now: datetime,
) -> datetime | None:
    """Report step times that disagree with the status or are implausible; return when
    a cancelled or no-show session closed (the dashboard stamps closed_at for those only)."""
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
    beyond = [column for column in given if column not in CANCELLED_STAMPS]
    if status is SessionStatus.CANCELLED and beyond:
        cells.problem(
            f"a cancelled session has at most {', '.join(CANCELLED_STAMPS)}, but "
            f"{', '.join(beyond)} {'is' if len(beyond) == 1 else 'are'} filled in"
        )
        return None
    if closed_at is not None and status not in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        cells.problem(f"{CLOSED_AT} is only for cancelled or no-show sessions")
        return None
    if close_reason is not None and status is SessionStatus.SCHEDULED:
        cells.problem("close_reason is only for sessions that are over")
        return None

    for earlier, later in pairwise(given):
        if steps[later] < steps[earlier]:
            cells.problem(f"step times out of order: {later} is before {earlier}")
            return None
    before = cells.count
    for column in given:
        cells.not_future(column, steps[column], now=now)
    cells.not_future(CLOSED_AT, closed_at, now=now)
    if cells.count > before:
        return None
    if CHECKED_IN_AT in steps:
        checked_in = steps[CHECKED_IN_AT]
        if checked_in < scheduled_start - CHECK_IN_EARLY:
            cells.problem(
                f"{CHECKED_IN_AT} '{cells.row.cells[CHECKED_IN_AT]}' is more than "
                f"{_hours(CHECK_IN_EARLY)} before scheduled_start: check the date"
            )
        elif checked_in > scheduled_start + CHECK_IN_LATE:
            cells.problem(
                f"{CHECKED_IN_AT} '{cells.row.cells[CHECKED_IN_AT]}' is more than "
                f"{_hours(CHECK_IN_LATE)} after scheduled_start: check the date"
            )
        elif steps[given[-1]] - checked_in > LONGEST_VISIT:
            cells.problem(
                f"{given[-1]} is more than {_hours(LONGEST_VISIT)} after {CHECKED_IN_AT}: "
                "a visit lasts hours; check the date"
            )
    if status is SessionStatus.SCHEDULED:
        today = local_today(time_zone, now=now)
        booked = scheduled_start.astimezone(ZoneInfo(time_zone)).date()
        if booked < today:
            cells.problem(
                f"a scheduled session booked for a past day ({booked}): import what "
                "happened instead (discharged, cancelled or no_show)"
            )
        return None
    if status is SessionStatus.NO_SHOW and beyond_clock_skew(scheduled_start, now=now):
        cells.problem(
            f"a no_show session booked for the future ({cells.row.cells['scheduled_start']}): "
            "a patient cannot miss a visit that has not come yet"
        )
        return None
    if status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        last_step = steps[given[-1]] if given else None
        if closed_at is None:
            # Without a stated time, a session is taken to have closed at its
            # last recorded step, or at its booked time if it never started.
            closed_at = last_step or scheduled_start
            if beyond_clock_skew(closed_at, now=now):
                cells.problem(
                    f"a cancelled future booking needs {CLOSED_AT}: when it was cancelled"
                )
                return None
            return closed_at
        if last_step is not None and closed_at < last_step:
            cells.problem(f"step times out of order: {CLOSED_AT} is before {given[-1]}")
            return None
        return closed_at
    return None


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return "a day" if hours == 24 else f"{hours} hours"


def _check_scores(
    *,
    table: _Table,
    known: _Known,
    mrn_check: _MrnCheck,
    file_patients: dict[str, _PatientIn],
    file_sessions: dict[str, str],
    sessions_table: _Table,
    now: datetime,
    problems: list[RowProblem],
) -> list[_ScoreIn]:
    sessions_table_refs = sessions_table.keys.get("session_ref", set())
    seen = _FirstSeen()
    scores = []
    for row in table.rows(problems):
        cells = _Cells(row=row, problems=problems)
        mrn_key = mrn_check.patient_key(cells)
        instrument = cells.choice("instrument", Instrument)
        time_zone = _patient_time_zone(mrn_key=mrn_key, known=known, file_patients=file_patients)
        taken_at = cells.moment("taken_at", time_zone=time_zone, required=True)
        cells.not_future("taken_at", taken_at, now=now)
        total = item9 = None
        if instrument is not None:
            name, low, high = SCORE_RANGES[instrument]
            total = cells.whole("total", low=low, high=high, required=True, scale=name)
            if cells.has("item9") and instrument is not Instrument.PHQ9:
                cells.problem(f"item9 is only for PHQ-9, not {name}")
            else:
                low, high = PHQ9_ITEM_RANGE
                item9 = cells.whole("item9", low=low, high=high, scale="PHQ-9 item 9")
            if total is not None and item9 is not None and item9 > total:
                cells.problem(f"item9 {item9} is more than the total {total}")
        session_ref = cells.text("session_ref", max_length=80)
        session_key = _key(session_ref) if session_ref else None
        if session_key and mrn_key:
            stored = known.sessions.get(session_key)
            session_mrn = file_sessions.get(session_key) or (_key(stored.mrn) if stored else None)
            # A session row with its own problems is reported there, not again here.
            if session_mrn is None and session_key not in sessions_table_refs:
                cells.problem(
                    f"session_ref '{session_ref}' is not in {sessions_table.file} or the database"
                )
            elif session_mrn is not None and session_mrn != mrn_key:
                cells.problem(
                    f"session_ref '{session_ref}' is a session of another patient "
                    f"(mrn '{_mrn_spelling(session_mrn, known, file_patients)}')"
                )
            elif stored is not None and stored.status in OPEN_STATUSES:
                # The visit's own PHQ-9 is what the start checks and its item 9 is what
                # the nurse must act on: it is recorded at the chair, never imported.
                cells.problem(
                    f"session_ref '{session_ref}' is a visit under way (the patient is "
                    f"{IN_WORDS[SessionStatus(stored.status)]}): record its scores on the "
                    "board, not by import"
                )
        if mrn_key and instrument and taken_at:
            seen.duplicate(
                key=(mrn_key, instrument, taken_at),
                cells=cells,
                what=f"a {instrument.value} score for mrn '{row.cells['mrn']}' "
                f"at {row.cells['taken_at']}",
            )
        if cells.ok:
            scores.append(
                _ScoreIn(
                    line=row.line,
                    mrn_key=mrn_key,
                    instrument=instrument,
                    taken_at=taken_at,
                    total=total,
                    item9=item9,
                    session_key=session_key,
                )
            )
    return scores


def _mrn_spelling(key: str, known: _Known, file_patients: dict[str, _PatientIn]) -> str:
    if key in known.patients:
        return known.patients[key].mrn
    return file_patients[key].mrn if key in file_patients else key


def _patient_time_zone(
    *, mrn_key: str | None, known: _Known, file_patients: dict[str, _PatientIn]
) -> str:
    """The patient's home site's time zone (the file's, else the database's), else UTC."""
    home_site_id = None
    if mrn_key in file_patients:
        home_site_id = file_patients[mrn_key].home_site_id
    if home_site_id is None and mrn_key in known.patients:
        home_site_id = known.patients[mrn_key].home_site_id
    site = known.sites_by_id.get(home_site_id) if home_site_id is not None else None
    return site.time_zone if site else "UTC"


def _check_symptom_returns(
    *,
    table: _Table,
    known: _Known,
    mrn_check: _MrnCheck,
    file_patients: dict[str, _PatientIn],
    now: datetime,
    problems: list[RowProblem],
) -> list[_SymptomReturnIn]:
    seen = _FirstSeen()
    returns = []
    for row in table.rows(problems):
        cells = _Cells(row=row, problems=problems)
        mrn_key = mrn_check.patient_key(cells)
        reported_on = cells.day("reported_on", required=True)
        if reported_on is not None:
            zone = _patient_time_zone(mrn_key=mrn_key, known=known, file_patients=file_patients)
            if reported_on > local_today(zone, now=now + MAX_CLOCK_SKEW):
                cells.problem(
                    f"reported_on '{row.cells['reported_on']}' is in the future: "
                    "only what has already happened can be imported"
                )
        if mrn_key and reported_on:
            seen.duplicate(
                key=(mrn_key, reported_on),
                cells=cells,
                what=f"a symptom return for mrn '{row.cells['mrn']}' on {reported_on}",
            )
        note = cells.words("note", max_length=1000)
        if cells.ok:
            returns.append(
                _SymptomReturnIn(line=row.line, mrn_key=mrn_key, reported_on=reported_on, note=note)
            )
    return returns


# --- planning the write (read-only) -----------------------------------------------------

_PATIENT_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "phone",
    "display_alias",
    "care_flags",
    "home_site_id",
)


@dataclass
class _Plan:
    """Everything the write transaction does, worked out beforehand without the lock."""

    chairs: list[tuple[int, str, str, int]]  # site id, key, name, position
    new_patients: list[_PatientIn]
    patient_updates: list[dict[str, Any]]
    new_sessions: list[_SessionIn]
    scores: list[_ScoreIn]
    symptom_returns: list[_SymptomReturnIn]
    tally: _Tally
    prepared: _Prepared | None = None


def _plan(*, connection: Connection, rows: _Rows, known: _Known) -> _Plan:
    tally = _Tally()
    chairs = []
    for (site_id, key), name in rows.new_chairs.items():
        known.last_position[site_id] = known.last_position.get(site_id, 0) + 1
        chairs.append((site_id, key, name, known.last_position[site_id]))
    tally.add("chairs_added", len(chairs))

    new_patients = [row for row in rows.patients if row.key not in known.patients]
    tally.add("patients_added", len(new_patients))
    patient_updates = _patient_updates(connection=connection, rows=rows.patients, known=known)
    tally.add("patients_updated", len(patient_updates))
    tally.add("patients_unchanged", len(rows.patients) - len(new_patients) - len(patient_updates))

    new_sessions = [row for row in rows.sessions if row.key not in known.sessions]
    tally.add("sessions_added", len(new_sessions))
    tally.add("sessions_unchanged", len(rows.sessions) - len(new_sessions))
    tally.differing = _differing_sessions(connection=connection, rows=rows.sessions, known=known)
    tally.add("sessions_differing", len(tally.differing))
    tally.add("status_changes_added", sum(len(_history(row)) for row in new_sessions))

    stored_scores = _stored_keys(
        connection=connection,
        columns=(OutcomeScore.patient_id, OutcomeScore.instrument, OutcomeScore.taken_at),
        patient_ids={
            known.patients[r.mrn_key].id for r in rows.scores if r.mrn_key in known.patients
        },
    )
    scores = [
        row
        for row in rows.scores
        if row.mrn_key not in known.patients
        or (known.patients[row.mrn_key].id, row.instrument.value, row.taken_at) not in stored_scores
    ]
    tally.add("scores_added", len(scores))
    tally.add("scores_unchanged", len(rows.scores) - len(scores))

    stored_returns = _stored_keys(
        connection=connection,
        columns=(SymptomReturn.patient_id, SymptomReturn.reported_on),
        patient_ids={
            known.patients[r.mrn_key].id
            for r in rows.symptom_returns
            if r.mrn_key in known.patients
        },
    )
    returns = [
        row
        for row in rows.symptom_returns
        if row.mrn_key not in known.patients
        or (known.patients[row.mrn_key].id, row.reported_on) not in stored_returns
    ]
    tally.add("symptom_returns_added", len(returns))
    tally.add("symptom_returns_unchanged", len(rows.symptom_returns) - len(returns))
    return _Plan(
        chairs=chairs,
        new_patients=new_patients,
        patient_updates=patient_updates,
        new_sessions=new_sessions,
        scores=scores,
        symptom_returns=returns,
        tally=tally,
    )


def _patient_updates(
    *, connection: Connection, rows: list[_PatientIn], known: _Known
) -> list[dict[str, Any]]:
    """The stored patients the file corrects, each as its full new row (``_id`` = id)."""
    by_id = {known.patients[row.key].id: row for row in rows if row.key in known.patients}
    columns = [getattr(Patient, name) for name in _PATIENT_FIELDS]
    updates = []
    for chunk in _chunks(sorted(by_id)):
        query = select(Patient.id, *columns).where(Patient.id.in_(chunk))
        for id_, *stored in connection.execute(query):
            row = by_id[id_]
            merged = dict(zip(_PATIENT_FIELDS, stored, strict=True))
            changed = False
            # A blank cell keeps what is stored: an import adds and corrects, never erases.
            for name in _PATIENT_FIELDS:
                value = getattr(row, name)
                if value is not None and value != "" and merged[name] != value:
                    merged[name] = value
                    changed = True
            if changed:
                updates.append({"_id": id_, **{f"new_{k}": v for k, v in merged.items()}})
    return updates


_SESSION_COMPARED = (
    "site_id",
    "chair_id",
    "patient_id",
    "scheduled_start",
    "planned_minutes",
    "route",
    "kind",
    "dose_mg_per_kg",
    "dose_mg",
    "given_dose_mg",
    "status",
    *(column for column, _status in STEP_COLUMNS),
    BOOKED_AT,
)


def _differing_sessions(
    *, connection: Connection, rows: list[_SessionIn], known: _Known
) -> list[str]:
    """The references of already-imported sessions whose stored row differs from the file."""
    by_id = {known.sessions[row.key].id: row for row in rows if row.key in known.sessions}
    columns = [getattr(TreatmentSession, name) for name in _SESSION_COMPARED]
    differing = []
    for chunk in _chunks(sorted(by_id)):
        query = select(TreatmentSession.id, *columns).where(TreatmentSession.id.in_(chunk))
        for id_, *stored in connection.execute(query):
            row = by_id[id_]
            chair = known.chairs.get((row.site.id, row.chair_key)) if row.chair_key else None
            in_file = (
                row.site.id,
                chair[0] if chair else None,
                known.patients[row.mrn_key].id,
                row.scheduled_start,
                row.planned_minutes,
                row.route.value,
                row.kind.value,
                row.dose_mg_per_kg,
                row.dose_mg,
                row.given_dose_mg,
                row.status.value,
                *(row.steps.get(column) for column, _status in STEP_COLUMNS),
                row.booked_at,
            )
            if tuple(stored) != in_file:
                differing.append((row.line, known.sessions[row.key].ref))
    return [ref for _line, ref in sorted(differing)]


def _stored_keys(*, connection: Connection, columns: tuple, patient_ids: set[int]) -> set[tuple]:
    stored: set[tuple] = set()
    for chunk in _chunks(sorted(patient_ids)):
        query = select(*columns).where(columns[0].in_(chunk))
        stored.update(tuple(row) for row in connection.execute(query))
    return stored


def _history(row: _SessionIn) -> list[tuple[SessionStatus, datetime]]:
    """Each step the session took after being booked, and when, oldest first."""
    history = [
        (status, row.steps[column]) for column, status in STEP_COLUMNS if column in row.steps
    ]
    if row.status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        history.append((row.status, row.closed_at))
    return history


# --- writing: one short transaction of bulk inserts -------------------------------------

_PATIENT_COLUMNS = ("id", "mrn", *_PATIENT_FIELDS)
_SESSION_COLUMNS = (
    "id",
    "site_id",
    "chair_id",
    "patient_id",
    "external_ref",
    "scheduled_start",
    "planned_minutes",
    "route",
    "kind",
    "dose_mg_per_kg",
    "dose_mg",
    "given_dose_mg",
    "status",
    *(column for column, _status in STEP_COLUMNS),
    CLOSED_AT,
    "close_reason",
    BOOKED_AT,
    "plan_reason",
    "version",
)
_STATUS_CHANGE_COLUMNS = (
    "session_id",
    "version",
    "from_status",
    "to_status",
    "changed_at",
    "reason",
    "is_correction",
)


_CHAIR_COLUMNS = ("id", "site_id", "name", "position", "active")
_SCORE_COLUMNS = ("patient_id", "session_id", "instrument", "taken_at", "total", "item9")
_SYMPTOM_RETURN_COLUMNS = ("patient_id", "reported_on", "note")


@dataclass
class _Prepared:
    """Every row to insert, with its ids and values as the database stores them.

    Built before the write transaction, so the write lock is held only while the rows
    are handed to the database. ``first_ids`` are the first id planned in each table:
    on SQLite they are checked again under the lock (PostgreSQL's come from sequences).
    """

    chairs: list[tuple]
    patients: list[tuple]
    sessions: list[tuple]
    status_changes: list[tuple]
    scores: list[tuple]
    symptom_returns: list[tuple]
    first_ids: dict[Table, int]


def _prepare(*, connection: Connection, plan: _Plan, known: _Known) -> _Prepared:
    first_ids: dict[Table, int] = {}

    def new_ids(table: Table, count: int) -> list[int]:
        ids = _new_ids(connection=connection, table=table, count=count)
        if ids:
            first_ids[table] = ids[0]
        return ids

    def bound(table: Table, columns: tuple[str, ...], rows: Iterable[tuple]) -> list[tuple]:
        return _bound(connection=connection, table=table, columns=columns, rows=rows)

    chair_ids = {key: id_ for key, (id_, _name) in known.chairs.items()}
    ids = new_ids(Chair.__table__, len(plan.chairs))
    chair_ids |= {
        (site_id, key): id_ for (site_id, key, _, _), id_ in zip(plan.chairs, ids, strict=True)
    }
    chairs = bound(
        Chair.__table__,
        _CHAIR_COLUMNS,
        (
            (id_, site_id, name, position, True)
            for (site_id, _chair, name, position), id_ in zip(plan.chairs, ids, strict=True)
        ),
    )

    patient_ids = {key: patient.id for key, patient in known.patients.items()}
    ids = new_ids(Patient.__table__, len(plan.new_patients))
    patient_ids |= {row.key: id_ for row, id_ in zip(plan.new_patients, ids, strict=True)}
    patients = bound(
        Patient.__table__,
        _PATIENT_COLUMNS,
        (
            (
                patient_ids[row.key],
                row.mrn,
                row.first_name,
                row.last_name,
                row.date_of_birth,
                row.phone,
                row.display_alias,
                row.care_flags or "",
                row.home_site_id,
            )
            for row in plan.new_patients
        ),
    )

    session_ids = {key: session.id for key, session in known.sessions.items()}
    ids = new_ids(TreatmentSession.__table__, len(plan.new_sessions))
    session_ids |= {row.key: id_ for row, id_ in zip(plan.new_sessions, ids, strict=True)}
    sessions = bound(
        TreatmentSession.__table__,
        _SESSION_COLUMNS,
        (
            (
                session_ids[row.key],
                row.site.id,
                chair_ids[(row.site.id, row.chair_key)] if row.chair_key else None,
                patient_ids[row.mrn_key],
                row.ref,
                row.scheduled_start,
                row.planned_minutes,
                row.route.value,
                row.kind.value,
                row.dose_mg_per_kg,
                row.dose_mg,
                row.given_dose_mg,
                row.status.value,
                *(row.steps.get(column) for column, _status in STEP_COLUMNS),
                row.closed_at,
                row.close_reason,
                row.booked_at,
                row.plan_reason,
                1 + len(_history(row)),
            )
            for row in plan.new_sessions
        ),
    )
    status_changes = bound(
        StatusChange.__table__,
        _STATUS_CHANGE_COLUMNS,
        (
            change
            for row in plan.new_sessions
            for change in _status_changes(row=row, session_id=session_ids[row.key])
        ),
    )
    scores = bound(
        OutcomeScore.__table__,
        _SCORE_COLUMNS,
        (
            (
                patient_ids[row.mrn_key],
                session_ids[row.session_key] if row.session_key else None,
                row.instrument.value,
                row.taken_at,
                row.total,
                row.item9,
            )
            for row in plan.scores
        ),
    )
    symptom_returns = bound(
        SymptomReturn.__table__,
        _SYMPTOM_RETURN_COLUMNS,
        ((patient_ids[row.mrn_key], row.reported_on, row.note) for row in plan.symptom_returns),
    )
    return _Prepared(
        chairs=chairs,
        patients=patients,
        sessions=sessions,
        status_changes=status_changes,
        scores=scores,
        symptom_returns=symptom_returns,
        first_ids=first_ids,
    )


def _write(*, connection: Connection, plan: _Plan, known: _Known) -> None:
    """Inside the write transaction: hand the prepared rows to the database."""
    prepared = plan.prepared
    if not _ids_still_free(connection=connection, first_ids=prepared.first_ids):
        # Rows were added to these tables since the check (another import): the ids
        # planned without the lock are taken, so they are planned again, under it.
        prepared = _prepare(connection=connection, plan=plan, known=known)
    _append(
        connection=connection, table=Chair.__table__, columns=_CHAIR_COLUMNS, rows=prepared.chairs
    )
    _append(
        connection=connection,
        table=Patient.__table__,
        columns=_PATIENT_COLUMNS,
        rows=prepared.patients,
    )
    if plan.patient_updates:
        table = Patient.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(f"new_{name}") for name in _PATIENT_FIELDS})
        )
        for chunk in _chunks(plan.patient_updates, _WRITE_CHUNK):
            connection.execute(statement, chunk)
    _append(
        connection=connection,
        table=TreatmentSession.__table__,
        columns=_SESSION_COLUMNS,
        rows=prepared.sessions,
    )
    _append(
        connection=connection,
        table=StatusChange.__table__,
        columns=_STATUS_CHANGE_COLUMNS,
        rows=prepared.status_changes,
    )
    _write_scores(connection=connection, rows=prepared.scores)
    _write_symptom_returns(connection=connection, rows=prepared.symptom_returns)


def _status_changes(*, row: _SessionIn, session_id: int) -> Iterator[tuple]:
    previous = SessionStatus.SCHEDULED
    for version, (status, moment) in enumerate(_history(row), start=2):
        yield (session_id, version, previous.value, status.value, moment, IMPORT_REASON, False)
        previous = status


def _write_scores(*, connection: Connection, rows: list[tuple]) -> None:
    _append(connection=connection, table=OutcomeScore.__table__, columns=_SCORE_COLUMNS, rows=rows)


def _write_symptom_returns(*, connection: Connection, rows: list[tuple]) -> None:
    _append(
        connection=connection,
        table=SymptomReturn.__table__,
        columns=_SYMPTOM_RETURN_COLUMNS,
        rows=rows,
    )


def _ids_still_free(*, connection: Connection, first_ids: dict[Table, int]) -> bool:
    if connection.dialect.name == "postgresql":
        return True  # ids from sequences are never handed out twice
    for table, first in first_ids.items():
        largest = connection.execute(select(func.max(table.c.id))).scalar_one() or 0
        if largest >= first:
            return False
    return True


def _new_ids(*, connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` ids for new rows of ``table``.

    PostgreSQL hands them out from the table's sequence (never twice, whatever else
    writes). On SQLite they are the ids after the largest: taken before the write lock,
    they are checked again under it (``_ids_still_free``).
    """
    if not count:
        return []
    if connection.dialect.name == "postgresql":
        query = (
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            f"FROM generate_series(1, {count:d})"
        )
        return sorted(id_ for (id_,) in connection.exec_driver_sql(query))
    largest = connection.execute(select(func.max(table.c.id))).scalar_one() or 0
    return list(range(largest + 1, largest + 1 + count))


def _bound(
    *, connection: Connection, table: Table, columns: tuple[str, ...], rows: Iterable[tuple]
) -> list[tuple]:
    """The rows with each value as the column's type stores it (UTCDateTime among them),
    exactly as SQLAlchemy would bind it; PostgreSQL's COPY adapts values itself."""
    if connection.dialect.name == "postgresql":
        return list(rows)
    processors = [
        (n, process)
        for n, name in enumerate(columns)
        if (process := table.c[name].type._cached_bind_processor(connection.dialect)) is not None
    ]
    if not processors:
        return list(rows)
    bound = []
    for row in rows:
        values = list(row)
        for n, process in processors:
            values[n] = process(values[n])
        bound.append(tuple(values))
    return bound


def _append(
    *, connection: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple]
) -> None:
    """Append bound rows in bulk: COPY on PostgreSQL, else the driver's executemany."""
    if not rows:
        return
    raw = connection.connection.driver_connection
    names = ", ".join(f'"{name}"' for name in columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    statement = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    cursor = raw.cursor()
    try:
        cursor.executemany(statement, rows)
    finally:
        cursor.close()
