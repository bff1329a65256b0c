"""Import 100k sessions from CSV into a fresh SQLite file (and PostgreSQL schema) and print
wall time and peak memory.

    python benchmarks/bench_import.py [--postgres postgresql://postgres@127.0.0.1/test]
        [--sessions 100000] [--patients 10000]

The files (patients, sessions with their step times, PHQ-9 scores, symptom returns) are
generated in a temporary folder. Each backend is measured in a child process of its own,
so its peak memory (max RSS, from getrusage) is the import's and nothing else's; the
child imports the files twice: the first import writes everything, the second finds it
all already there. Each PostgreSQL run gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ketadash.clock import utc_now  # noqa: E402
from ketadash.config import normalise_url  # noqa: E402
from ketadash.db import get_engine, migrate  # noqa: E402

TIME_ZONE = "America/New_York"
CHAIRS = 16
HISTORY_DAYS = 5 * 365


def write_files(*, folder: Path, sessions: int, patients: int, now: datetime, seed: int) -> None:
    """Patients, their sessions over five years (with a few future bookings), a PHQ-9
    before about a third of the visits and a symptom return for some patients."""
    rng = random.Random(seed)
    zone = ZoneInfo(TIME_ZONE)
    local_now = now.astimezone(zone)

    def local(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M")

    with (folder / "patients.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["mrn", "first_name", "last_name", "date_of_birth", "home_site"])
        for n in range(patients):
            born = f"{rng.randint(1940, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            out.writerow([f"M-{n:06d}", f"First{n}", f"Last{n}", born, "main"])

    with (
        (folder / "sessions.csv").open("w", newline="", encoding="utf-8") as session_file,
        (folder / "scores.csv").open("w", newline="", encoding="utf-8") as score_file,
    ):
        out = csv.writer(session_file)
        scores = csv.writer(score_file)
        out.writerow(
            [
                "session_ref", "mrn", "site", "chair", "scheduled_start", "route", "kind",
                "planned_minutes", "dose_mg_per_kg", "dose_mg", "status", "checked_in_at",
                "infusion_started_at", "infusion_ended_at", "ready_at", "discharged_at",
                "close_reason",
            ]
        )  # fmt: skip
        scores.writerow(["mrn", "instrument", "taken_at", "total", "item9", "session_ref"])
        span = HISTORY_DAYS // -(-sessions // patients)
        for n in range(sessions):
            mrn = f"M-{n % patients:06d}"
            chair = f"Chair {n % CHAIRS + 1}"
            future = rng.random() < 0.02
            # Each patient's visits in turn, on days of their own: one visit a day.
            visit = n // patients
            days = rng.randint(1, 30) if future else -(1 + visit * span + rng.randint(0, span - 2))
            day = (local_now + timedelta(days=days)).date()
            start = datetime(day.year, day.month, day.day, rng.randint(8, 15), 0, tzinfo=zone)
            ref = f"EHR-{n:07d}"
            esketamine = rng.random() < 0.2
            route, dose_kg, dose_mg = ("esketamine", "", "84") if esketamine else ("iv", "0.5", "")
            row = [ref, mrn, "main", chair, local(start), route, "series", "", dose_kg, dose_mg]
            if future:
                out.writerow([*row, "scheduled", "", "", "", "", "", ""])
                continue
            outcome = rng.random()
            if outcome < 0.05:
                out.writerow([*row, "no_show", "", "", "", "", "", "did not come"])
                continue
            checked_in = start - timedelta(minutes=rng.randint(0, 15))
            if outcome < 0.08:
                out.writerow([*row, "cancelled", local(checked_in), "", "", "", "", "BP high"])
                continue
            started = checked_in + timedelta(minutes=rng.randint(5, 20))
            ended = started + timedelta(minutes=40)
            ready = ended + timedelta(minutes=rng.randint(30, 60))
            gone = ready + timedelta(minutes=rng.randint(2, 20))
            out.writerow(
                [*row, "discharged", *(local(t) for t in (checked_in, started, ended, ready, gone))]
            )
            if n % 3 == 0:
                total = rng.randint(3, 24)
                taken = checked_in + timedelta(minutes=2)
                scores.writerow([mrn, "phq9", local(taken), total, min(total, 1), ref])

    with (folder / "symptom_returns.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["mrn", "reported_on", "note"])
        for n in range(0, patients, 4):
            day = (local_now - timedelta(days=rng.randint(1, HISTORY_DAYS))).date()
            out.writerow([f"M-{n:06d}", day.isoformat(), "low mood back"])


def prepare(url: str) -> None:
    """A migrated clinic with one site and its chairs, as a deployment sets it up."""
    from ketadash.roster import ensure_chairs, ensure_site

    migrate(url)
    site_id = ensure_site(url=url, code="main", name="Main Street", time_zone=TIME_ZONE)
    ensure_chairs(url=url, site_id=site_id, count=CHAIRS)
    get_engine(url).dispose()


def run_one(*, url: str, folder: Path, now: datetime) -> dict[str, object]:
    """In the child process: import the files twice; time each, then the peak RSS."""
    import ketadash.importer as importer
    from ketadash.importer import import_files

    # How long the write transaction lasts: on SQLite the only part holding the write lock.
    write, writing = importer.write.write_plan, []

    def timed_write(**kwargs) -> None:
        started = time.perf_counter()
        write(**kwargs)
        writing.append(time.perf_counter() - started)

    importer.write.write_plan = timed_write

    files = {
        "patients": folder / "patients.csv",
        "sessions": folder / "sessions.csv",
        "scores": folder / "scores.csv",
        "symptom_returns": folder / "symptom_returns.csv",
    }
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, started = _cpu(), time.perf_counter()
    first = import_files(url=url, now=now, **files)
    first_seconds, first_cpu = time.perf_counter() - started, _cpu() - cpu
    after_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, started = _cpu(), time.perf_counter()
    again = import_files(url=url, now=now, **files)
    again_seconds, again_cpu = time.perf_counter() - started, _cpu() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "first_seconds": round(first_seconds, 1),
        "first_cpu": round(first_cpu, 1),
        "first_write_seconds": round(writing[0], 1),
        "again_seconds": round(again_seconds, 1),
        "again_cpu": round(again_cpu, 1),
        "baseline_mb": round(baseline / 1024),
        "first_peak_mb": round(after_first / 1024),
        "peak_mb": round(peak / 1024),
        "sessions_added": first.sessions_added,
        "status_changes_added": first.status_changes_added,
        "patients_added": first.patients_added,
        "scores_added": first.scores_added,
        "sessions_unchanged_again": again.sessions_unchanged,
    }


def _cpu() -> float:
    """Seconds of CPU this process used: on a shared machine, steadier than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(*, backend: str, url: str, folder: Path, now: datetime) -> dict[str, object]:
    prepare(url)
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            url,
            "--folder",
            str(folder),
            "--now",
            now.isoformat(),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"{backend} import failed:\n{child.stderr[-4000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"{backend}: first import {result['first_seconds']} s wall, {result['first_cpu']} s "
        f"CPU in the importer, of which the write transaction (on SQLite, the write lock) "
        f"{result['first_write_seconds']} s wall; peak RSS {result['first_peak_mb']} MB "
        f"(Python and modules alone: {result['baseline_mb']} MB); importing the same files again "
        f"{result['again_seconds']} s wall, {result['again_cpu']} s CPU, peak RSS "
        f"{result['peak_mb']} MB"
    )
    print(
        f"  added {result['patients_added']:,} patients, {result['sessions_added']:,} sessions, "
        f"{result['status_changes_added']:,} status changes, {result['scores_added']:,} scores; "
        f"second run: {result['sessions_unchanged_again']:,} sessions already there"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL to benchmark as well")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        now = datetime.fromisoformat(args.now)
        print(json.dumps(run_one(url=args.child, folder=args.folder, now=now)))
        return 0

    now = utc_now().astimezone(UTC)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        started = time.perf_counter()
        write_files(folder=folder, sessions=args.sessions, patients=args.patients, now=now, seed=7)
        size = sum(path.stat().st_size for path in folder.glob("*.csv")) / 1e6
        print(
            f"files: {args.sessions:,} sessions of {args.patients:,} patients, "
            f"{size:.1f} MB of CSV, written in {time.perf_counter() - started:.1f} s"
        )
        if not args.skip_sqlite:
            measure(
                backend="SQLite",
                url=f"sqlite:///{folder / 'clinic.sqlite'}",
                folder=folder,
                now=now,
            )
        if args.postgres:
            server = normalise_url(args.postgres)
            schema = f"ketadash_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(server)
            with admin.begin() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
            joiner = "&" if "?" in server else "?"
            url = f"{server}{joiner}options=-csearch_path%3D{schema}"
            try:
                measure(backend="PostgreSQL", url=url, folder=folder, now=now)
            finally:
                get_engine(url).dispose()
                with admin.begin() as connection:
                    connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
