"""The bulk writer: the demo's rows, buffered per table and written in bulk.

Rows are plain tuples in the column order below; ids are handed out here, so the
demo never asks the database for one. PostgreSQL gets COPY; SQLite a prepared
``executemany``. Everything is written inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection

# The columns written in bulk, in the order each row is built.
COLUMNS = {
    "patient": (
        "id", "mrn", "first_name", "last_name", "date_of_birth", "phone", "display_alias",
        "care_flags", "home_site_id",
    ),
    "treatment_course": (
        "id", "patient_id", "route", "series_target_infusions", "series_window_days",
        "started_on", "ended_on",
    ),
    "treatment_session": (
        "id", "site_id", "chair_id", "patient_id", "course_id", "scheduled_start",
        "planned_minutes", "route", "kind", "dose_mg_per_kg", "dose_mg", "given_dose_mg",
        "weight_kg", "status", "checked_in_at", "infusion_started_at", "infusion_ended_at",
        "ready_at", "discharged_at", "closed_at", "close_reason", "booked_at", "version",
    ),
    "status_change": (
        "id", "session_id", "version", "from_status", "to_status", "changed_at", "staff_id",
        "reason", "is_correction",
    ),
    "vitals_reading": (
        "id", "session_id", "taken_at", "phase", "systolic", "diastolic", "heart_rate", "spo2",
        "staff_id",
    ),
    "side_effect_observation": (
        "id", "session_id", "observed_at", "effect", "severity", "staff_id",
    ),
    "outcome_score": (
        "id", "patient_id", "session_id", "instrument", "taken_at", "total", "item9", "staff_id",
    ),
    "symptom_return": ("id", "patient_id", "reported_on", "note"),
    "ride": (
        "id", "session_id", "driver_name", "driver_phone", "relationship",
        "expected_pickup_at", "on_the_way_at", "eta_at", "arrived_at", "version",
    ),
    "ride_change": (
        "id", "session_id", "version", "state", "changed_at", "staff_id", "reason",
        "is_correction",
    ),
    "rems_record": (
        "id", "session_id", "started_at", "started_by", "device_lot", "benzodiazepines",
        "non_benzo_sedative_hypnotics", "psychostimulants", "maois", "ready_to_leave_at",
        "monitoring_provider_id", "submitted_at", "submitted_by", "version",
    ),
    "rems_record_change": (
        "id", "session_id", "version", "action", "changed_at", "staff_id", "detail",
    ),
}  # fmt: skip
TABLES_WITH_IDS = ("site", "chair", "staff", *COLUMNS)
# SQLite's page cache while the demo is written, in KiB (negative: a size, not pages).
BULK_CACHE_KIB = -256 * 1024


class StampFormat:
    """Epoch seconds as the text each backend stores for an aware UTC datetime.

    SQLite gets SQLAlchemy's own storage format for naive UTC (what UTCDateTime writes);
    PostgreSQL gets an explicit ``+00`` so the session's TimeZone cannot shift it.
    """

    def __init__(self, *, dialect: str) -> None:
        self.suffix = ".000000" if dialect == "sqlite" else "+00"
        self.days: dict[int, str] = {}
        self.clock = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]

    def __call__(self, moment: int) -> str:
        day, second = divmod(moment, 86_400)
        text = self.days.get(day)
        if text is None:
            text = self.days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + " "
        return text + self.clock[second] + self.suffix

    def maybe(self, moment: int | None) -> str | None:
        """The stamp of ``moment``, or None for a step not taken."""
        return None if moment is None else self(moment)


class Rows:
    """Row buffers per table, with the next id of each and what has been written so far."""

    def __init__(self, *, connection: Connection) -> None:
        self.dialect = connection.dialect.name
        raw = connection.connection.driver_connection
        if raw is None:
            raise ValueError(
                "The demo writes through the driver's own connection, and this one has none "
                "(it was closed)."
            )
        self.raw = raw
        self.stamp = StampFormat(dialect=self.dialect)
        self.pending: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
        self.next_id = dict.fromkeys(COLUMNS, 1)
        self.counts: dict[str, int] = dict.fromkeys(TABLES_WITH_IDS, 0)
        self.sqlite_cache_size: int | None = None
        if self.dialect == "sqlite":
            # Millions of rows go into indexed tables: a page cache large enough for the
            # indexes' hot pages saves re-reading them (restored by ``finish``).
            cursor = self.raw.cursor()
            self.sqlite_cache_size = cursor.execute("PRAGMA cache_size").fetchone()[0]
            cursor.execute(f"PRAGMA cache_size={BULK_CACHE_KIB}")
            cursor.close()

    def finish(self) -> None:
        """Write what is left and give the connection its own page cache size back."""
        self.flush()
        if self.sqlite_cache_size is not None:
            cursor = self.raw.cursor()
            cursor.execute(f"PRAGMA cache_size={self.sqlite_cache_size}")
            cursor.close()

    def take_id(self, table: str) -> int:
        """A new id for a row of ``table``, which the caller then appends to ``pending``."""
        new_id = self.next_id[table]
        self.next_id[table] = new_id + 1
        return new_id

    def flush(self) -> None:
        """Write every buffered row and empty the buffers."""
        for table, rows in self.pending.items():
            self._write(table, rows)
            self.counts[table] += len(rows)
            rows.clear()

    def _write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = COLUMNS[table]
        names = ", ".join(f'"{name}"' for name in columns)
        if self.dialect == "postgresql":
            with (
                self.raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cursor = self.raw.cursor()
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            cursor.close()
