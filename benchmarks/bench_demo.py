"""Build the large demo clinic on SQLite (and PostgreSQL if given) and print time and row counts.

    python benchmarks/bench_demo.py [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Each PostgreSQL run gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ketadash.config import normalise_url
from ketadash.db import get_engine
from ketadash.demo import DemoSummary, build_demo_clinic

# The size; chairs are left to the demo (enough for the patients: 16 a site).
LARGE = {"sites": 10, "patients": 50_000, "history_days": 1825}


def bench_sqlite(*, size: dict[str, int], keep: Path | None) -> DemoSummary:
    """The large demo in a new SQLite file (a temporary one unless ``keep`` names one)."""
    with tempfile.TemporaryDirectory() as folder:
        path = keep or Path(folder) / "demo.sqlite"
        url = f"sqlite:///{path}"
        cpu = time.process_time()
        summary = build_demo_clinic(url=url, now=datetime.now(UTC), **size)
        # On a shared machine the wall time says as much about the neighbours as about
        # the demo: this process's CPU seconds say what the build itself cost.
        print(f"SQLite build: {time.process_time() - cpu:.1f} s of CPU in this process")
        get_engine(url).dispose()
        print(f"SQLite file: {path.stat().st_size / 1e9:.2f} GB")
        return summary


def bench_postgres(*, server: str, size: dict[str, int]) -> DemoSummary:
    """The large demo in a fresh schema of the PostgreSQL database at ``server``."""
    server = normalise_url(server)
    schema = f"ketadash_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in server else "?"
    url = f"{server}{joiner}options=-csearch_path%3D{schema}"
    try:
        return build_demo_clinic(url=url, now=datetime.now(UTC), **size)
    finally:
        get_engine(url).dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def report(backend: str, summary: DemoSummary) -> None:
    print(f"{backend}: {summary.elapsed_seconds:.1f} s")
    for name, value in vars(summary).items():
        if name != "elapsed_seconds":
            print(f"  {name:16} {value:>12,}")
    total = sum(v for k, v in vars(summary).items() if k != "elapsed_seconds")
    print(f"  {'all rows':16} {total:>12,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL to benchmark as well")
    parser.add_argument("--patients", type=int, default=LARGE["patients"])
    parser.add_argument("--keep-sqlite", type=Path, help="write the SQLite demo here and keep it")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    size = {**LARGE, "patients": args.patients}
    print(f"demo size: {size}")
    if not args.skip_sqlite:
        report("SQLite", bench_sqlite(size=size, keep=args.keep_sqlite))
    if args.postgres:
        report("PostgreSQL", bench_postgres(server=args.postgres, size=size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
