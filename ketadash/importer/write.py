"""Writing: one short transaction of bulk inserts, with ids planned before the write lock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, Table, bindparam, func, select, update

from ketadash.importer.checks import SessionIn
from ketadash.importer.files import BOOKED_AT, CLOSED_AT, IMPORT_REASON, STEP_COLUMNS
from ketadash.importer.known import Known, in_chunks
from ketadash.importer.plan import PATIENT_FIELDS, Prepared, WritePlan, status_history
from ketadash.models import (
    Chair,
    OutcomeScore,
    Patient,
    SessionStatus,
    StatusChange,
    SymptomReturn,
    TreatmentSession,
    core_table,
)

_WRITE_CHUNK = 5000


# --- writing: one short transaction of bulk inserts -------------------------------------

_PATIENT_COLUMNS = ("id", "mrn", *PATIENT_FIELDS)
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


def prepare(*, connection: Connection, plan: WritePlan, known: Known) -> Prepared:
    first_ids: dict[Table, int] = {}

    def new_ids(table: Table, count: int) -> list[int]:
        ids = _new_ids(connection=connection, table=table, count=count)
        if ids:
            first_ids[table] = ids[0]
        return ids

    def bound(table: Table, columns: tuple[str, ...], rows: Iterable[tuple]) -> list[tuple]:
        return _bound(connection=connection, table=table, columns=columns, rows=rows)

    chair_ids = {key: id_ for key, (id_, _name) in known.chairs.items()}
    ids = new_ids(core_table(Chair), len(plan.chairs))
    chair_ids |= {
        (site_id, key): id_ for (site_id, key, _, _), id_ in zip(plan.chairs, ids, strict=True)
    }
    chairs = bound(
        core_table(Chair),
        _CHAIR_COLUMNS,
        (
            (id_, site_id, name, position, True)
            for (site_id, _chair, name, position), id_ in zip(plan.chairs, ids, strict=True)
        ),
    )

    patient_ids = {key: patient.id for key, patient in known.patients.items()}
    ids = new_ids(core_table(Patient), len(plan.new_patients))
    patient_ids |= {row.key: id_ for row, id_ in zip(plan.new_patients, ids, strict=True)}
    patients = bound(
        core_table(Patient),
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
    ids = new_ids(core_table(TreatmentSession), len(plan.new_sessions))
    session_ids |= {row.key: id_ for row, id_ in zip(plan.new_sessions, ids, strict=True)}
    sessions = bound(
        core_table(TreatmentSession),
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
                1 + len(status_history(row)),
            )
            for row in plan.new_sessions
        ),
    )
    status_changes = bound(
        core_table(StatusChange),
        _STATUS_CHANGE_COLUMNS,
        (
            change
            for row in plan.new_sessions
            for change in _status_changes(row=row, session_id=session_ids[row.key])
        ),
    )
    scores = bound(
        core_table(OutcomeScore),
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
        core_table(SymptomReturn),
        _SYMPTOM_RETURN_COLUMNS,
        ((patient_ids[row.mrn_key], row.reported_on, row.note) for row in plan.symptom_returns),
    )
    return Prepared(
        chairs=chairs,
        patients=patients,
        sessions=sessions,
        status_changes=status_changes,
        scores=scores,
        symptom_returns=symptom_returns,
        first_ids=first_ids,
    )


def write_plan(*, connection: Connection, plan: WritePlan, known: Known) -> None:
    """Inside the write transaction: hand the prepared rows to the database."""
    prepared = plan.prepared
    if prepared is None:
        raise ValueError("The rows to write are prepared while the files are checked: none were.")
    if not _ids_still_free(connection=connection, first_ids=prepared.first_ids):
        # Rows were added to these tables since the check (another import): the ids
        # planned without the lock are taken, so they are planned again, under it.
        prepared = prepare(connection=connection, plan=plan, known=known)
    _append(
        connection=connection, table=core_table(Chair), columns=_CHAIR_COLUMNS, rows=prepared.chairs
    )
    _append(
        connection=connection,
        table=core_table(Patient),
        columns=_PATIENT_COLUMNS,
        rows=prepared.patients,
    )
    if plan.patient_updates:
        table = core_table(Patient)
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(f"new_{name}") for name in PATIENT_FIELDS})
        )
        for chunk in in_chunks(plan.patient_updates, _WRITE_CHUNK):
            connection.execute(statement, chunk)
    _append(
        connection=connection,
        table=core_table(TreatmentSession),
        columns=_SESSION_COLUMNS,
        rows=prepared.sessions,
    )
    _append(
        connection=connection,
        table=core_table(StatusChange),
        columns=_STATUS_CHANGE_COLUMNS,
        rows=prepared.status_changes,
    )
    _write_scores(connection=connection, rows=prepared.scores)
    _write_symptom_returns(connection=connection, rows=prepared.symptom_returns)


def _status_changes(*, row: SessionIn, session_id: int) -> Iterator[tuple]:
    previous = SessionStatus.SCHEDULED
    for version, (status, moment) in enumerate(status_history(row), start=2):
        yield (session_id, version, previous.value, status.value, moment, IMPORT_REASON, False)
        previous = status


def _write_scores(*, connection: Connection, rows: list[tuple]) -> None:
    _append(
        connection=connection, table=core_table(OutcomeScore), columns=_SCORE_COLUMNS, rows=rows
    )


def _write_symptom_returns(*, connection: Connection, rows: list[tuple]) -> None:
    _append(
        connection=connection,
        table=core_table(SymptomReturn),
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
    if raw is None:
        raise ValueError("The import appends through the driver's own connection: it has none.")
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
