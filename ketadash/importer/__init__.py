"""Bring a clinic's history in from CSV files: patients, sessions, scores, symptom returns.

Rows are keyed by the clinic's own references (MRN, session reference), matched
ignoring case and surrounding spaces, so the same files can be imported again
without adding anything twice. Every row of every file is checked first, with
read-only queries that never take the write lock, so nurses keep saving while a
large import is checked. Then everything is written in one short transaction of
bulk inserts: an import either lands whole or not at all. The format and the
rules are described for clinic admins in docs/importing.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from ketadash.clinic import DEMO_KEY
from ketadash.clock import utc_now
from ketadash.config import normalise_url
from ketadash.db import has_schema, migrate, read_session, write_session
from ketadash.importer import checks, write
from ketadash.importer.files import (
    PATIENT_COLUMNS,
    SCORE_COLUMNS,
    SESSION_COLUMNS,
    SYMPTOM_RETURN_COLUMNS,
    InputTables,
    read_table,
)
from ketadash.importer.known import Known
from ketadash.importer.plan import plan_write
from ketadash.importer.report import ImportRejected, ImportReport, RowProblem
from ketadash.models import ClinicInfo
from ketadash.settings import load_clinic_settings

# The package's public names: what callers import from ``ketadash.importer``.
__all__ = ["ImportRejected", "ImportReport", "RowProblem", "import_files"]


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
    tables = InputTables(
        patients=read_table(path=patients, columns=PATIENT_COLUMNS, problems=problems),
        sessions=read_table(path=sessions, columns=SESSION_COLUMNS, problems=problems),
        scores=read_table(path=scores, columns=SCORE_COLUMNS, problems=problems)
        if scores
        else None,
        symptom_returns=read_table(
            path=symptom_returns, columns=SYMPTOM_RETURN_COLUMNS, problems=problems
        )
        if symptom_returns
        else None,
    )
    if not has_schema(url):
        migrate(url)
    with read_session(url) as db:
        connection = db.connection()
        demo_mark = select(col(ClinicInfo.key)).where(col(ClinicInfo.key) == DEMO_KEY)
        if connection.execute(demo_mark).first():
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
        known = Known.load(connection=connection, tables=tables)
        known.planned_minutes = {
            site.id: load_clinic_settings(db=db, site_id=site.id).planned_infusion_minutes
            for site in known.sites.values()
        }
        rows = checks.check_rows(
            tables=tables, known=known, add_chairs=add_chairs, now=now, problems=problems
        )
        if problems:
            raise ImportRejected(problems)
        plan = plan_write(connection=connection, rows=rows, known=known)
        plan.prepared = write.prepare(connection=connection, plan=plan, known=known)
    try:
        with write_session(url) as db:
            write.write_plan(connection=db.connection(), plan=plan, known=known)
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
