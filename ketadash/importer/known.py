"""What the database already holds: the sites, chairs, patients and sessions the files
name, read in chunks with read-only queries (no write lock).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, select
from sqlmodel import col

from ketadash.importer.files import InputTables
from ketadash.importer.report import reference_key
from ketadash.models import (
    Chair,
    Patient,
    Site,
    Staff,
    StaffRole,
    TreatmentSession,
)

_QUERY_CHUNK = 1000

T = TypeVar("T")


# --- what the database already holds -------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownSite:
    id: int
    code: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class _KnownPatient:
    id: int
    mrn: str
    home_site_id: int | None


@dataclass(frozen=True, slots=True)
class KnownSession:
    id: int
    ref: str
    patient_id: int
    mrn: str
    status: str | None = None


@dataclass
class Known:
    """What the database holds that the files refer to, keyed as references match."""

    sites: dict[str, KnownSite]
    sites_by_id: dict[int, KnownSite]
    # (site id, chair key) -> (chair id, name); positions for chairs to add.
    chairs: dict[tuple[int, str], tuple[int, str]]
    last_position: dict[int, int]
    patients: dict[str, _KnownPatient]
    sessions: dict[str, KnownSession]
    # Active clinic leads by e-mail (lower-case): who may record a reason for a plan.
    leads: dict[str, str] = field(default_factory=dict)
    # MRN keys that more than one stored patient matches ignoring case, with spellings.
    ambiguous_mrns: dict[str, list[str]] = field(default_factory=dict)
    # Each site's planned_infusion_minutes setting: the default for a blank cell.
    planned_minutes: dict[int, int] = field(default_factory=dict)

    @classmethod
    def load(cls, *, connection: Connection, tables: InputTables) -> Known:
        # A stored site or chair always has its id.
        sites = [
            KnownSite(id=id_, code=code, time_zone=zone)
            for id_, code, zone in connection.execute(
                select(col(Site.id), col(Site.code), col(Site.time_zone))
            )
            if id_ is not None
        ]
        chairs: dict[tuple[int, str], tuple[int, str]] = {}
        last_position: dict[int, int] = {}
        for id_, site_id, name, position in connection.execute(
            select(col(Chair.id), col(Chair.site_id), col(Chair.name), col(Chair.position))
        ):
            if id_ is None:
                continue
            chairs[(site_id, reference_key(name))] = (id_, name)
            last_position[site_id] = max(last_position.get(site_id, 0), position)
        mrns = _all_keys(tables, "mrn")
        refs = _all_keys(tables, "session_ref")
        # One streamed pass over each table's keys rather than one query per key:
        # matching ignores case, which no index of the key columns serves.
        patients: dict[str, _KnownPatient] = {}
        ambiguous: dict[str, list[str]] = {}
        if mrns:
            query = select(col(Patient.id), col(Patient.mrn), col(Patient.home_site_id))
            for id_, mrn, home_site_id in _stream(connection, query):
                if reference_key(mrn) in mrns:
                    if reference_key(mrn) in patients:
                        # Two stored patients one MRN apart only in case: matching
                        # would pick one of them silently (and a score could land on
                        # the other patient's record).
                        first = patients[reference_key(mrn)].mrn
                        ambiguous.setdefault(reference_key(mrn), [first]).append(mrn)
                    patients[reference_key(mrn)] = _KnownPatient(
                        id=id_, mrn=mrn, home_site_id=home_site_id
                    )
        sessions: dict[str, KnownSession] = {}
        if refs:
            session_query = (
                select(
                    col(TreatmentSession.id),
                    col(TreatmentSession.external_ref),
                    col(TreatmentSession.patient_id),
                    col(Patient.mrn),
                    col(TreatmentSession.status),
                )
                .join(Patient, col(Patient.id) == col(TreatmentSession.patient_id))
                .where(col(TreatmentSession.external_ref).is_not(None))
            )
            for id_, ref, patient_id, mrn, status in _stream(connection, session_query):
                if reference_key(ref) in refs:
                    sessions[reference_key(ref)] = KnownSession(
                        id=id_, ref=ref, patient_id=patient_id, mrn=mrn, status=status
                    )
        leads = {
            email.lower(): name
            for email, name in connection.execute(
                select(col(Staff.email), col(Staff.name)).where(
                    col(Staff.role) == StaffRole.LEAD,
                    col(Staff.active).is_(True),
                    col(Staff.email).is_not(None),
                )
            )
            if email is not None  # the query's own filter: leads with an e-mail
        }
        return cls(
            leads=leads,
            ambiguous_mrns=ambiguous,
            sites={reference_key(site.code): site for site in sites},
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


def _all_keys(tables: InputTables, column: str) -> set[str]:
    keys: set[str] = set()
    for table in (tables.patients, tables.sessions, tables.scores, tables.symptom_returns):
        if table is not None:
            keys |= table.keys.get(column, set())
    return keys


def _stream(connection: Connection, query) -> Iterator[Any]:
    yield from connection.execution_options(yield_per=10_000).execute(query)


def in_chunks(values: Iterable[T], size: int = _QUERY_CHUNK) -> Iterator[list[T]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
