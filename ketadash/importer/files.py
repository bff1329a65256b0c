"""Reading the files: the columns each file has, and every row read as text with its
line number (a file that cannot be read, or a cell with hidden characters, is a problem).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ketadash.importer.report import RowProblem, character_names, reference_key, shown
from ketadash.models import (
    SessionStatus,
)
from ketadash.text import has_hidden_characters
from ketadash.vocabulary import (
    CLOSED_STATUSES,
    STAMP_OF_STATUS,
    TRANSITIONS,
    Step,
)

# --- the file format: the step columns and what they stamp ---------------------------

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
class InputRow:
    file: str
    line: int
    cells: dict[str, str]
    # Columns whose cell holds a control or invisible character: reported once when
    # read, then treated as unreadable (never stored, never echoed).
    hidden: frozenset[str]


@dataclass
class InputTable:
    """One CSV file, read twice: once for its references, once row by row to check
    them, so that a large file is never held in memory as text."""

    path: Path
    file: str
    header: list[str]
    # False when the file or its header has problems: its rows are not read,
    # so other files' references to it cannot be checked either.
    usable: bool
    # The matching keys (see reference_key) of each reference column, over all rows.
    keys: dict[str, set[str]] = field(default_factory=dict)

    def rows(self, problems: list[RowProblem] | None) -> Iterator[InputRow]:
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
                yield InputRow(file=self.file, line=line, cells=cells, hidden=hidden)


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
        f"({character_names(value)}), which is never stored: retype the cell"
    )


@dataclass(frozen=True)
class InputTables:
    patients: InputTable
    sessions: InputTable
    scores: InputTable | None
    symptom_returns: InputTable | None


def read_table(*, path: Path, columns: _Columns, problems: list[RowProblem]) -> InputTable:
    """Read a file's header and the keys its rows name; a file that cannot be used is
    reported in ``problems`` and comes back unusable (its rows are never read)."""
    name = path.name
    unusable = InputTable(path=path, file=name, header=[], usable=False)
    header = _read_header(path=path, problems=problems)
    if header is None:
        return unusable
    header_problems = _header_problems(header=header, file=name)
    if not header_problems:
        header_problems = _column_problems(header=header, columns=columns, file=name)
    if header_problems:
        problems.extend(header_problems)
        return unusable
    table = InputTable(path=path, file=name, header=header, usable=True)
    table.keys = {column: set() for column in columns.keys if column in header}
    try:
        for row in table.rows(problems=None):
            for column, keys in table.keys.items():
                value = row.cells.get(column)
                if value:
                    keys.add(reference_key(value))
    except UnicodeDecodeError:
        problems.append(RowProblem(name, 0, _NOT_UTF8))
        return unusable
    return table


def _read_header(*, path: Path, problems: list[RowProblem]) -> list[str] | None:
    """Line 1's column names, lower case, without Excel's empty trailing columns; None
    (with the problem reported) when the file is missing, not UTF-8 or empty."""
    name = path.name
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = next(_records(handle=handle, file=name, problems=problems), None)
    except FileNotFoundError:
        problems.append(RowProblem(name, 0, f"file not found: {path}"))
        return None
    except UnicodeDecodeError:
        problems.append(RowProblem(name, 0, _NOT_UTF8))
        return None
    if first is None or not any(cell.strip() for cell in first[1]):
        if first is not None or not any(p.file == name for p in problems):
            problems.append(RowProblem(name, 1, "the file is empty; line 1 must name the columns"))
        return None
    header = [cell.strip().lower() for cell in first[1]]
    # Excel saves a column that once held something as an empty header cell at the
    # end of line 1: such trailing columns are ignored (their cells must be blank).
    while header and not header[-1]:
        header.pop()
    return header


def _header_problems(*, header: list[str], file: str) -> list[RowProblem]:
    """What makes line 1 unreadable as column names: ';' separators, hidden characters,
    a column without a name."""
    if len(header) == 1 and ";" in header[0]:
        return [RowProblem(file, 1, "the columns must be separated by commas, not ';'")]
    problems = []
    for number, column in enumerate(header, start=1):
        if has_hidden_characters(column):
            problems.append(RowProblem(file, 1, _hidden_reason(f"column {number}", column)))
        elif not column:
            problems.append(RowProblem(file, 1, f"column {number} has no name"))
    return problems


def _column_problems(*, header: list[str], columns: _Columns, file: str) -> list[RowProblem]:
    """Columns missing, given twice or unknown to the file's format."""
    problems = []
    missing = [column for column in columns.required if column not in header]
    if missing:
        problems.append(RowProblem(file, 1, f"missing required column(s): {', '.join(missing)}"))
    for column in sorted({c for c in header if header.count(c) > 1}):
        problems.append(RowProblem(file, 1, f"column '{column}' appears more than once"))
    unknown = [column for column in header if column not in columns.all]
    if unknown:
        problems.append(
            RowProblem(
                file,
                1,
                f"unknown column(s): {', '.join(unknown)}; "
                f"the columns are: {', '.join(columns.all)}",
            )
        )
    return problems


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
