"""The throughput page's reads, cold and figure by figure, and a check that two codes agree.

Not a test: it prints numbers for docs/measured.md. Each run is a fresh process (empty
caches; the operating system's and the database server's caches are as they are), and
does what the page's two cached reads do for a period ending today at the first site,
all sites: the report with its charts (``cached_report``) and the booster flags turned
into bookings with their chart (``cached_booster_follow_up``). The parts are timed as
they run, wall and this process's CPU:

    python benchmarks/bench_throughput_reads.py --url sqlite:////tmp/large.sqlite --weeks 52
    python benchmarks/bench_throughput_reads.py --url postgresql://…  --weeks 52

``--code DIR`` runs another checkout's ``ketadash`` (e.g. a worktree of the commit
before), and ``--dump FILE`` keeps every figure; ``--compare A B`` says whether two dumps
hold the same figures (frames equal to the last bit, counts and dates the same):

    python benchmarks/bench_throughput_reads.py --url … --code /tmp/before --dump before.pkl
    python benchmarks/bench_throughput_reads.py --url … --dump after.pkl
    python benchmarks/bench_throughput_reads.py --compare before.pkl after.pkl

``--now`` fixes the moment (default: now), so that two runs judge the same bookings.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# The reads timed apart when the code has them (module, function), in the order they run.
PARTS = (
    ("ketadash.throughput", "load_sites"),
    ("ketadash.throughput", "read_visits"),
    ("ketadash.throughput", "read_visit_totals"),
    ("ketadash.throughput", "read_first_series_doses"),
    ("ketadash.throughput", "read_finished_series"),
    ("ketadash.throughput", "count_steps_taken_back"),
    ("ketadash.throughput", "build_report"),
    ("ketadash.booster_follow_up", "_sites_with_stored_flags"),
    ("ketadash.booster_follow_up", "_stored_rows"),
    ("ketadash.booster_follow_up", "load_patient_histories"),
    ("ketadash.booster_follow_up", "boosters_fell_due"),
    ("ketadash.booster_follow_up", "_visits_after"),
)
TIMES: dict[str, list[float]] = {}


def _clock(name: str, function: Callable) -> Callable:
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent = TIMES.setdefault(name, [0.0, 0.0, 0])
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu
            spent[2] += 1

    return timed


def _time_the_parts() -> None:
    import importlib

    for module_name, name in PARTS:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            setattr(module, name, _clock(name, getattr(module, name)))


def _timed(name: str, function: Callable[[], Any]) -> Any:
    return _clock(name, function)()


def measure(
    *, url: str, weeks: int, now: datetime, site: int | None = None, follow_up: bool = True
) -> dict[str, Any]:
    """The page's two reads for the ``weeks`` up to today, timed; the figures they give
    (one ``site`` or all; without the booster follow-up unless ``follow_up``)."""
    from ketadash.booster_follow_up import booster_follow_up
    from ketadash.clinic import list_sites
    from ketadash.clock import local_today
    from ketadash.throughput import Period, last_weeks, throughput_report
    from ketadash.ui.throughput import arrow_spec, booster_follow_up_chart, chart_specs

    zone = list_sites(url=url)[0].time_zone
    period = last_weeks(today=local_today(zone, now=now), weeks=weeks)
    period = Period(first_day=period.first_day, last_day=period.last_day)
    site_ids = None if site is None else (site,)
    report = _timed(
        "throughput_report",
        lambda: throughput_report(url=url, period=period, site_ids=site_ids),
    )
    _timed("chart_specs", lambda: chart_specs(report=report))
    if not follow_up:
        return {"period": str(period), "report": report, "follow_up": None}
    done = _timed(
        "booster_follow_up",
        lambda: booster_follow_up(url=url, period=period, site_ids=site_ids, now=now),
    )
    _timed("follow-up chart", lambda: arrow_spec(booster_follow_up_chart(follow_up=done)))
    return {"period": str(period), "report": report, "follow_up": done}


def figures(measured: dict[str, Any]) -> dict[str, Any]:
    """Every figure the page shows, in plain values and frames (what a dump keeps)."""
    report, follow_up = measured["report"], measured["follow_up"]
    out: dict[str, Any] = {"period": measured["period"]}
    for name in (
        "visits",
        "phase_summary",
        "phase_histogram",
        "completed_by_day",
        "occupancy",
        "phases_by_week",
        "no_shows_by_weekday",
        "no_shows_by_hour",
        "no_shows_by_lead_time",
    ):
        out[name] = getattr(report, name).reset_index(drop=True)
    out["headlines"] = [(h.name, h.value, h.previous) for h in report.headlines]
    outcomes = report.outcomes
    out["outcomes"] = {
        name: getattr(outcomes, name)
        for name in (
            "finished_series",
            "scored",
            "responding",
            "in_remission",
            "boosters_booked",
            "discharges",
        )
    }
    out["escort_exceptions"] = outcomes.escort_exceptions
    out["steps_taken_back"] = report.steps_taken_back
    if follow_up is not None:
        out["boosters_fell_due"] = follow_up.boosters.reset_index(drop=True)
        out["booster_counts"] = dict(follow_up.counts)
        out["stored_sites"] = tuple(follow_up.stored_sites)
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The figures that differ between two dumps (empty: all the same)."""
    import pandas as pd

    differ = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(a, b, check_exact=True)
            except AssertionError as error:
                differ.append(f"{name}: {str(error).splitlines()[0:3]}")
        elif a != b:
            differ.append(f"{name}: {a!r} != {b!r}")
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--now", type=datetime.fromisoformat, help="aware ISO moment")
    parser.add_argument("--site", type=int, help="one site's id (default: all sites)")
    parser.add_argument(
        "--no-follow-up", action="store_true", help="time the report only, not the boosters"
    )
    parser.add_argument("--code", type=Path, help="the checkout whose ketadash to run")
    parser.add_argument("--dump", type=Path, help="keep every figure in this file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    sys.path.insert(0, str(args.code or ROOT))
    if args.compare:
        dumps = [pickle.loads(path.read_bytes()) for path in args.compare]
        differ = compare(*dumps)
        for line in differ:
            print("differs:", line)
        print(f"{len(dumps[0]) - len(differ)} figures the same, {len(differ)} different")
        return 1 if differ else 0
    if not args.url:
        parser.error("--url is needed to measure")
    now = args.now or datetime.now(UTC)
    started = time.perf_counter()
    _time_the_parts()
    measured = measure(
        url=args.url, weeks=args.weeks, now=now, site=args.site, follow_up=not args.no_follow_up
    )
    total = time.perf_counter() - started
    import ketadash

    print(f"code: {Path(ketadash.__file__).parent.parent}; period {measured['period']}")
    print(f"{'part':<28} {'wall ms':>9} {'CPU ms':>9} {'calls':>6}")
    for name, (wall, cpu, calls) in TIMES.items():
        print(f"{name:<28} {wall * 1000:>9.0f} {cpu * 1000:>9.0f} {calls:>6}")
    follow_up = measured["follow_up"]
    reads = ("throughput_report", "chart_specs", "booster_follow_up", "follow-up chart")
    wall, cpu = (sum(TIMES[name][n] for name in reads if name in TIMES) for n in (0, 1))
    boosters = (
        f"boosters fell due {follow_up.fell_due:,} (stored sites {list(follow_up.stored_sites)})"
        if follow_up is not None
        else "boosters not timed"
    )
    print(
        f"visits {len(measured['report'].visits):,}; {boosters}; "
        f"the page's reads {wall:.2f} s wall, {cpu:.2f} s CPU; process {total:.2f} s"
    )
    if args.dump:
        args.dump.write_bytes(pickle.dumps(figures(measured)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
