"""How long the throughput page's script takes, on the default demo and on a large one.

Not a test: it prints numbers for the README. Each database is measured in the
same process against an empty Streamlit page, through AppTest (the page's own
script time, without a browser), for the last 4 weeks and the last 52 weeks of all
sites:

    python benchmarks/bench_throughput.py                      # builds the default demo
    python benchmarks/bench_throughput.py --large sqlite:////tmp/large.sqlite

"cold" is a run with the leads' report cache empty (every query runs: what the
first lead after a restart, or after the 10-minute TTL, waits for); "warm" is a
rerun with the report cached (what every later look costs, and what a nurse's save
no longer throws away).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from benchmarks.bench_today import EMPTY_PAGE, _stay_in_navigation_mode, _timed  # noqa: E402

RANGES = {"4 weeks": "Last 4 weeks", "52 weeks": "Last 52 weeks"}


def measure_throughput(url: str, *, period: str, reruns: int) -> dict[str, float]:
    from ketadash.ui.throughput import clear_leads_cache

    os.environ["KETADASH_DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    app.run()
    app.switch_page("pages/throughput.py")
    app.run()
    if period != "Last 4 weeks":
        app.selectbox(key="throughput_period").set_value(period)
    clear_leads_cache()
    cold = _timed(app.run)
    if app.exception:
        raise SystemExit(f"the page failed: {app.exception}")
    warm = [_timed(app.run) for _ in range(reruns)]
    completed = next(m for m in app.metric if m.label == "Infusions completed").value
    return {"cold": cold, "warm": statistics.median(warm), "completed": completed}


def measure_empty(*, reruns: int) -> dict[str, float]:
    app = AppTest.from_string(EMPTY_PAGE)
    first = _timed(app.run)
    warm = [_timed(app.run) for _ in range(reruns)]
    return {"cold": first, "warm": statistics.median(warm), "completed": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--default", help="URL of a default demo (built in a temp file if absent)")
    parser.add_argument("--large", help="URL of a large demo (see the README)")
    parser.add_argument("--reruns", type=int, default=15)
    args = parser.parse_args()
    _stay_in_navigation_mode()

    default_url = args.default
    if not default_url:
        from ketadash.demo import build_demo_clinic

        path = Path(tempfile.mkdtemp()) / "default.sqlite"
        default_url = f"sqlite:///{path}"
        build_demo_clinic(url=default_url, now=datetime.now(UTC))

    rows = [("empty page", measure_empty(reruns=args.reruns))]
    databases = [("default", default_url)] + ([("large", args.large)] if args.large else [])
    for name, url in databases:
        for label, period in RANGES.items():
            started = time.perf_counter()
            row = measure_throughput(url, period=period, reruns=args.reruns)
            rows.append((f"{name} demo, {label}", row))
            print(f"  measured {name}, {label} in {time.perf_counter() - started:.0f} s")
    rows.append(("empty page (again)", measure_empty(reruns=args.reruns)))

    print(f"{'page (all sites)':<24} {'cold ms':>10} {'warm ms':>9} {'completed':>10}")
    for name, row in rows:
        print(f"{name:<24} {row['cold']:>10.1f} {row['warm']:>9.1f} {row['completed']!s:>10}")
    if args.large:
        by_name = dict(rows)
        for label in RANGES:
            default, large = by_name[f"default demo, {label}"], by_name[f"large demo, {label}"]
            ratio = large["warm"] / default["warm"]
            print(f"{label}: large / default warm {ratio:.2f}x (budget 2x)")


if __name__ == "__main__":
    main()
