"""Planning the write (read-only): what is new, what is already there and the same, and
what differs from what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlmodel import col

from ketadash.importer.checks import CheckedRows, PatientIn, ScoreIn, SessionIn, SymptomReturnIn
from ketadash.importer.files import BOOKED_AT, STEP_COLUMNS
from ketadash.importer.known import Known, in_chunks
from ketadash.importer.report import Tally
from ketadash.models import (
    OutcomeScore,
    Patient,
    SessionStatus,
    SymptomReturn,
    TreatmentSession,
)

# --- planning the write (read-only) -----------------------------------------------------

PATIENT_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "phone",
    "display_alias",
    "care_flags",
    "home_site_id",
)


@dataclass
class Prepared:
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


@dataclass
class WritePlan:
    """Everything the write transaction does, worked out beforehand without the lock."""

    chairs: list[tuple[int, str, str, int]]  # site id, key, name, position
    new_patients: list[PatientIn]
    patient_updates: list[dict[str, Any]]
    new_sessions: list[SessionIn]
    scores: list[ScoreIn]
    symptom_returns: list[SymptomReturnIn]
    tally: Tally
    prepared: Prepared | None = None


def plan_write(*, connection: Connection, rows: CheckedRows, known: Known) -> WritePlan:
    tally = Tally()
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
    tally.add("status_changes_added", sum(len(status_history(row)) for row in new_sessions))

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
    return WritePlan(
        chairs=chairs,
        new_patients=new_patients,
        patient_updates=patient_updates,
        new_sessions=new_sessions,
        scores=scores,
        symptom_returns=returns,
        tally=tally,
    )


def _patient_updates(
    *, connection: Connection, rows: list[PatientIn], known: Known
) -> list[dict[str, Any]]:
    """The stored patients the file corrects, each as its full new row (``_id`` = id)."""
    by_id = {known.patients[row.key].id: row for row in rows if row.key in known.patients}
    columns = [getattr(Patient, name) for name in PATIENT_FIELDS]
    updates = []
    for chunk in in_chunks(sorted(by_id)):
        query = select(col(Patient.id), *columns).where(col(Patient.id).in_(chunk))
        for id_, *stored in connection.execute(query):
            row = by_id[id_]
            merged = dict(zip(PATIENT_FIELDS, stored, strict=True))
            changed = False
            # A blank cell keeps what is stored: an import adds and corrects, never erases.
            for name in PATIENT_FIELDS:
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
    *, connection: Connection, rows: list[SessionIn], known: Known
) -> list[str]:
    """The references of already-imported sessions whose stored row differs from the file."""
    by_id = {known.sessions[row.key].id: row for row in rows if row.key in known.sessions}
    columns = [getattr(TreatmentSession, name) for name in _SESSION_COMPARED]
    differing = []
    for chunk in in_chunks(sorted(by_id)):
        query = select(col(TreatmentSession.id), *columns).where(
            col(TreatmentSession.id).in_(chunk)
        )
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
    for chunk in in_chunks(sorted(patient_ids)):
        query = select(*columns).where(columns[0].in_(chunk))
        stored.update(tuple(row) for row in connection.execute(query))
    return stored


def status_history(row: SessionIn) -> list[tuple[SessionStatus, datetime]]:
    """Each step the session took after being booked, and when, oldest first."""
    history = [
        (status, row.steps[column]) for column, status in STEP_COLUMNS if column in row.steps
    ]
    if row.status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW):
        if row.closed_at is None:
            raise ValueError(
                f"line {row.line}: the checks give every cancelled or no-show session its closed_at"
            )
        history.append((row.status, row.closed_at))
    return history
