"""Checking every row: each cell read against its format and the clinic's rules, and each
row against the others and what the database holds. Problems are collected, never raised.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import TypeVar
from zoneinfo import ZoneInfo

from ketadash.clock import local_today
from ketadash.gates import plan_problems, standard_plan
from ketadash.importer.files import (
    BOOKED_AT,
    CANCELLED_STAMPS,
    CHECKED_IN_AT,
    CLOSED_AT,
    IMPORTABLE_STATUSES,
    STEP_COLUMNS,
    InputRow,
    InputTable,
    InputTables,
)
from ketadash.importer.known import Known, KnownSession, KnownSite
from ketadash.importer.report import RowProblem, reference_key
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
    Instrument,
    Route,
    SessionKind,
    SessionStatus,
    StaffRole,
)
from ketadash.text import clean_text
from ketadash.vocabulary import (
    IN_WORDS,
    OPEN_STATUSES,
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

# --- plausibility: what a typing slip looks like (docs/importing.md, Plausibility) ---
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


# --- checking every row -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientIn:
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
class SessionIn:
    line: int
    key: str
    ref: str
    mrn_key: str
    site: KnownSite
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
class ScoreIn:
    line: int
    mrn_key: str
    instrument: Instrument
    taken_at: datetime
    total: int
    item9: int | None
    session_key: str | None


@dataclass(frozen=True, slots=True)
class SymptomReturnIn:
    line: int
    mrn_key: str
    reported_on: date
    note: str | None


@dataclass(frozen=True)
class CheckedRows:
    patients: list[PatientIn]
    sessions: list[SessionIn]
    scores: list[ScoreIn]
    symptom_returns: list[SymptomReturnIn]
    # Chairs named in the file but not yet at their site (only with add_chairs):
    # (site id, chair key) -> the first spelling seen.
    new_chairs: dict[tuple[int, str], str]


E = TypeVar("E", bound=StrEnum)
V = TypeVar("V")

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


def _required(value: V | None, column: str) -> V:
    """A required value of a row without problems: a required cell left empty or unreadable
    is a problem of its row, so a row that is ok has every one of them."""
    if value is None:
        raise ValueError(f"{column} is required, yet a row without problems has none")
    return value


class _Cells:
    """One row's values, read by type; a bad value becomes a problem and reads as None."""

    def __init__(self, *, row: InputRow, problems: list[RowProblem]) -> None:
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


def check_rows(
    *,
    tables: InputTables,
    known: Known,
    add_chairs: bool,
    now: datetime,
    problems: list[RowProblem],
) -> CheckedRows:
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
    return CheckedRows(
        patients=patients,
        sessions=sessions,
        scores=scores,
        symptom_returns=symptom_returns,
        new_chairs=new_chairs,
    )


def _refuse_ambiguous_mrn(cells: _Cells, *, mrn: str, known: Known) -> bool:
    """A problem on the line (and True) when stored patients differ only in the MRN's case."""
    spellings = known.ambiguous_mrns.get(reference_key(mrn))
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
    known: Known
    patients_file: InputTable
    file_mrns: set[str]

    def patient_key(self, cells: _Cells) -> str | None:
        """The row's MRN key if it names a patient in the patients file or the database."""
        mrn = cells.text("mrn", required=True, max_length=64)
        if mrn is None:
            return None
        key = reference_key(mrn)
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
    *, table: InputTable, known: Known, now: datetime, problems: list[RowProblem]
) -> list[PatientIn]:
    seen = _FirstSeen()
    patients = []
    today = now.date()
    for row in table.rows(problems):
        cells = _Cells(row=row, problems=problems)
        mrn = cells.text("mrn", required=True, max_length=64)
        if mrn is not None:
            seen.duplicate(
                key=reference_key(mrn),
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
            mrn = _required(mrn, "mrn")
            stored = known.patients.get(reference_key(mrn))
            patients.append(
                PatientIn(
                    line=row.line,
                    key=reference_key(mrn),
                    # The stored spelling is the first one seen: the database's, else the file's.
                    mrn=stored.mrn if stored else mrn,
                    first_name=_required(first_name, "first_name"),
                    last_name=_required(last_name, "last_name"),
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


def _site(cells: _Cells, *, column: str, known: Known) -> KnownSite | None:
    code = cells.text(column, required=True, max_length=40)
    if code is None:
        return None
    site = known.sites.get(reference_key(code))
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
    table: InputTable,
    known: Known,
    mrn_check: _MrnCheck,
    add_chairs: bool,
    new_chairs: dict[tuple[int, str], str],
    now: datetime,
    problems: list[RowProblem],
) -> list[SessionIn]:
    seen = _FirstSeen()
    sessions = []
    for row in table.rows(problems):
        cells = _Cells(row=row, problems=problems)
        ref, mrn_key, stored = _session_ref(cells, seen=seen, known=known, mrn_check=mrn_check)
        site = _site(cells, column="site", known=known)
        # With an unknown site, times are still read (as UTC) to report their format.
        time_zone = site.time_zone if site else "UTC"
        scheduled_start = cells.moment("scheduled_start", time_zone=time_zone, required=True)
        route = cells.choice("route", Route)
        kind = cells.choice("kind", SessionKind)
        planned_minutes = cells.whole(
            "planned_minutes", low=PLANNED_MINUTES_RANGE[0], high=PLANNED_MINUTES_RANGE[1]
        )
        dose_mg_per_kg, dose_mg = _planned_dose(cells, route=route)
        plan_reason = _plan_reason(cells, route=route, dose_mg=dose_mg, known=known)
        status = _status(cells)
        steps, closed_at, times_read = _step_times(cells, time_zone=time_zone)
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
            ref, site = _required(ref, "session_ref"), _required(site, "site")
            status = _required(status, "status")
            sessions.append(
                SessionIn(
                    line=row.line,
                    key=reference_key(ref),
                    # The stored spelling is the first one seen: the database's, else the file's.
                    ref=stored.ref if stored else ref,
                    mrn_key=_required(mrn_key, "mrn"),
                    site=site,
                    chair_key=chair_key,
                    chair_name=chair_name,
                    scheduled_start=_required(scheduled_start, "scheduled_start"),
                    route=_required(route, "route"),
                    kind=_required(kind, "kind"),
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


def _session_ref(
    cells: _Cells, *, seen: _FirstSeen, known: Known, mrn_check: _MrnCheck
) -> tuple[str | None, str | None, KnownSession | None]:
    """The row's session_ref, its patient's key and the stored session of that reference;
    a reference given twice, or stored for another patient, is a problem."""
    ref = cells.text("session_ref", required=True, max_length=80)
    if ref is not None:
        seen.duplicate(
            key=reference_key(ref),
            cells=cells,
            what=f"session_ref '{ref}'",
            spelling=ref,
            rule="session references match ignoring case",
        )
    mrn_key = mrn_check.patient_key(cells)
    stored = known.sessions.get(reference_key(ref)) if ref else None
    if stored is not None and mrn_key and reference_key(stored.mrn) != mrn_key:
        cells.problem(
            f"session_ref '{ref}' is already in the database for another patient "
            f"(mrn '{stored.mrn}')"
        )
    return ref, mrn_key, stored


def _planned_dose(cells: _Cells, *, route: Route | None) -> tuple[float | None, float | None]:
    """The planned dose (mg/kg, mg): one of them is needed; esketamine in whole devices."""
    dose_mg_per_kg = cells.amount(
        "dose_mg_per_kg", low=DOSE_MG_PER_KG_RANGE[0], high=DOSE_MG_PER_KG_RANGE[1]
    )
    dose_mg = cells.amount("dose_mg", low=DOSE_MG_RANGE[0], high=DOSE_MG_RANGE[1])
    if not cells.has("dose_mg_per_kg") and not cells.has("dose_mg"):
        cells.problem("dose_mg_per_kg is required but empty (or give dose_mg instead)")
    if route is Route.ESKETAMINE and dose_mg is not None and not whole_esketamine_devices(dose_mg):
        cells.problem(
            f"dose_mg {dose_mg:g} is not a whole number of esketamine devices "
            f"({ESKETAMINE_DEVICE_MG} mg each: {esketamine_plans_text()} mg)"
        )
    return dose_mg_per_kg, dose_mg


def _step_times(
    cells: _Cells, *, time_zone: str
) -> tuple[dict[str, datetime], datetime | None, bool]:
    """The step times and closed_at as given, and whether all of them could be read."""
    before_times = cells.count
    steps = {
        column: moment
        for column, _step in STEP_COLUMNS
        if (moment := cells.moment(column, time_zone=time_zone)) is not None
    }
    closed_at = cells.moment(CLOSED_AT, time_zone=time_zone)
    times_read = cells.count == before_times and not cells.row.hidden & _TIME_COLUMNS
    return steps, closed_at, times_read


def _plan_reason(
    cells: _Cells, *, route: Route | None, dose_mg: float | None, known: Known
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
    site: KnownSite | None,
    known: Known,
    add_chairs: bool,
    new_chairs: dict[tuple[int, str], str],
) -> tuple[str | None, str | None]:
    """The chair's key and name at the site; an unknown one is a problem unless added."""
    name = cells.text("chair", max_length=60)
    if name is None or site is None:
        return None, None
    key = (site.id, reference_key(name))
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
    given = [column for column, _step in STEP_COLUMNS if column in steps]
    if not _steps_fit_status(
        cells=cells, status=status, steps=steps, closed_at=closed_at, close_reason=close_reason
    ):
        return None
    if not _steps_in_order_and_past(cells=cells, steps=steps, closed_at=closed_at, now=now):
        return None
    _check_visit_length(cells=cells, steps=steps, scheduled_start=scheduled_start)
    if status is SessionStatus.SCHEDULED:
        _check_booked_day(
            cells=cells, scheduled_start=scheduled_start, time_zone=time_zone, now=now
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
        return _closed_at(
            cells=cells,
            scheduled_start=scheduled_start,
            last=given[-1] if given else None,
            last_step=last_step,
            closed_at=closed_at,
            now=now,
        )
    return None


def _filled_in(columns: list[str]) -> str:
    return f"{', '.join(columns)} {'is' if len(columns) == 1 else 'are'} filled in"


def _steps_fit_status(
    *,
    cells: _Cells,
    status: SessionStatus,
    steps: dict[str, datetime],
    closed_at: datetime | None,
    close_reason: str | None,
) -> bool:
    """Whether the step columns filled in are the ones the status has (else one problem)."""
    order = [column for column, _step in STEP_COLUMNS]
    given = [column for column in order if column in steps]
    beyond = [column for column in given if column not in CANCELLED_STAMPS]
    missing = [column for column in order if column not in steps]
    problem = None
    if status in (SessionStatus.SCHEDULED, SessionStatus.NO_SHOW) and given:
        problem = f"a {status.value} session has no step times, but {_filled_in(given)}"
    elif status is SessionStatus.DISCHARGED and missing:
        problem = f"a discharged session needs {', '.join(missing)}"
    elif status is SessionStatus.CANCELLED and beyond:
        problem = (
            f"a cancelled session has at most {', '.join(CANCELLED_STAMPS)}, but "
            f"{_filled_in(beyond)}"
        )
    elif closed_at is not None and status not in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        problem = f"{CLOSED_AT} is only for cancelled or no-show sessions"
    elif close_reason is not None and status is SessionStatus.SCHEDULED:
        problem = "close_reason is only for sessions that are over"
    if problem is not None:
        cells.problem(problem)
    return problem is None


def _steps_in_order_and_past(
    *, cells: _Cells, steps: dict[str, datetime], closed_at: datetime | None, now: datetime
) -> bool:
    """Whether the step times follow the lifecycle's order and none lies in the future."""
    given = [column for column, _step in STEP_COLUMNS if column in steps]
    for earlier, later in pairwise(given):
        if steps[later] < steps[earlier]:
            cells.problem(f"step times out of order: {later} is before {earlier}")
            return False
    before = cells.count
    for column in given:
        cells.not_future(column, steps[column], now=now)
    cells.not_future(CLOSED_AT, closed_at, now=now)
    return cells.count == before


def _check_visit_length(
    *, cells: _Cells, steps: dict[str, datetime], scheduled_start: datetime
) -> None:
    """A check-in far from the booked time, or a visit longer than a day, is a mistyped date."""
    if CHECKED_IN_AT not in steps:
        return
    last = [column for column, _step in STEP_COLUMNS if column in steps][-1]
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
    elif steps[last] - checked_in > LONGEST_VISIT:
        cells.problem(
            f"{last} is more than {_hours(LONGEST_VISIT)} after {CHECKED_IN_AT}: "
            "a visit lasts hours; check the date"
        )


def _check_booked_day(
    *, cells: _Cells, scheduled_start: datetime, time_zone: str, now: datetime
) -> None:
    """A scheduled session is booked for today or later at its site."""
    today = local_today(time_zone, now=now)
    booked = scheduled_start.astimezone(ZoneInfo(time_zone)).date()
    if booked < today:
        cells.problem(
            f"a scheduled session booked for a past day ({booked}): import what "
            "happened instead (discharged, cancelled or no_show)"
        )


def _closed_at(
    *,
    cells: _Cells,
    scheduled_start: datetime,
    last: str | None,
    last_step: datetime | None,
    closed_at: datetime | None,
    now: datetime,
) -> datetime | None:
    """When a cancelled or no-show session closed: as given, or else at its last step."""
    if closed_at is None:
        # Without a stated time, a session is taken to have closed at its
        # last recorded step, or at its booked time if it never started.
        closed_at = last_step or scheduled_start
        if beyond_clock_skew(closed_at, now=now):
            cells.problem(f"a cancelled future booking needs {CLOSED_AT}: when it was cancelled")
            return None
        return closed_at
    if last_step is not None and closed_at < last_step:
        cells.problem(f"step times out of order: {CLOSED_AT} is before {last}")
        return None
    return closed_at


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return "a day" if hours == 24 else f"{hours} hours"


def _check_scores(
    *,
    table: InputTable,
    known: Known,
    mrn_check: _MrnCheck,
    file_patients: dict[str, PatientIn],
    file_sessions: dict[str, str],
    sessions_table: InputTable,
    now: datetime,
    problems: list[RowProblem],
) -> list[ScoreIn]:
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
        total, item9 = _score_values(cells, instrument=instrument)
        session_ref = cells.text("session_ref", max_length=80)
        session_key = reference_key(session_ref) if session_ref else None
        if session_key and mrn_key:
            _check_score_session(
                cells,
                session_ref=session_ref,
                session_key=session_key,
                mrn_key=mrn_key,
                known=known,
                file_patients=file_patients,
                file_sessions=file_sessions,
                sessions_table=sessions_table,
                sessions_table_refs=sessions_table_refs,
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
                ScoreIn(
                    line=row.line,
                    mrn_key=_required(mrn_key, "mrn"),
                    instrument=_required(instrument, "instrument"),
                    taken_at=_required(taken_at, "taken_at"),
                    total=_required(total, "total"),
                    item9=item9,
                    session_key=session_key,
                )
            )
    return scores


def _score_values(cells: _Cells, *, instrument: Instrument | None) -> tuple[int | None, int | None]:
    """The total on the instrument's scale, and item 9 (PHQ-9 only, at most the total)."""
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
    return total, item9


def _check_score_session(
    cells: _Cells,
    *,
    session_ref: str | None,
    session_key: str,
    mrn_key: str,
    known: Known,
    file_patients: dict[str, PatientIn],
    file_sessions: dict[str, str],
    sessions_table: InputTable,
    sessions_table_refs: set[str],
) -> None:
    """A score's session_ref names a closed session of the same patient, in the files
    or the database."""
    stored = known.sessions.get(session_key)
    session_mrn = file_sessions.get(session_key) or (reference_key(stored.mrn) if stored else None)
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


def _mrn_spelling(key: str, known: Known, file_patients: dict[str, PatientIn]) -> str:
    if key in known.patients:
        return known.patients[key].mrn
    return file_patients[key].mrn if key in file_patients else key


def _patient_time_zone(
    *, mrn_key: str | None, known: Known, file_patients: dict[str, PatientIn]
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
    table: InputTable,
    known: Known,
    mrn_check: _MrnCheck,
    file_patients: dict[str, PatientIn],
    now: datetime,
    problems: list[RowProblem],
) -> list[SymptomReturnIn]:
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
                SymptomReturnIn(
                    line=row.line,
                    mrn_key=_required(mrn_key, "mrn"),
                    reported_on=_required(reported_on, "reported_on"),
                    note=note,
                )
            )
    return returns
