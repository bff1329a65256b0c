"""How long the throughput page's script takes, on the default demo and on a large one.

Not a test: it prints numbers for docs/measured.md. Each database is measured in the
same process against an empty Streamlit page, through AppTest (the page's own
script time, without a browser), for the last 4 weeks and the last 52 weeks of all
sites:

    python benchmarks/bench_throughput.py                      # builds the default demo
    python benchmarks/bench_throughput.py --large sqlite:////tmp/large.sqlite

"cold" is the first run with the leads' report cache empty (every query runs: what the
first lead after a restart, or after the 10-minute TTL, waits for); "of which boosters"
is the part of it spent working out the boosters that fell due (drawn last, so the
rest of the page shows meanwhile); "warm" is a rerun with the report cached (what every
later look costs, and what a nurse's save no longer throws away). Warm reruns of all
pages take turns, so a busy spell on a shared machine hits them alike.
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
from ketadash.models import StaffRole  # noqa: E402
from ketadash.ui.auth import DEMO_ROLE_KEY  # noqa: E402

RANGES = {"4 weeks": "Last 4 weeks", "52 weeks": "Last 52 weeks"}
# Milliseconds spent in the boosters that fell due, per call, as the page makes them.
FOLLOW_UP_MS: list[float] = []


def _time_the_follow_up() -> None:
    import ketadash.ui.throughput as ui

    work_out = ui.booster_follow_up

    def timed(**kwargs):
        started = time.perf_counter()
        try:
            return work_out(**kwargs)
        finally:
            FOLLOW_UP_MS.append((time.perf_counter() - started) * 1000)

    ui.booster_follow_up = timed


def open_throughput(url: str, *, period: str) -> tuple[AppTest, float]:
    """An AppTest on the page for ``period``, and its first run's time.

    Each database and period is a report of its own, so the first run that asks for
    it finds the cache empty (main clears every cache once, before anything runs).
    """
    os.environ["KETADASH_DATABASE_URL"] = url
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    # The demo signs in as a nurse; Throughput is the lead's.
    app.secrets.pop("auth", None)
    app.user = {"is_logged_in": False}
    app.session_state[DEMO_ROLE_KEY] = StaffRole.LEAD
    app.run()
    app.switch_page("pages/throughput.py")
    if period == "Last 4 weeks":
        FOLLOW_UP_MS.clear()
        cold = _timed(app.run)
    else:
        app.run()
        app.selectbox(key="throughput_period").set_value(period)
        FOLLOW_UP_MS.clear()
        cold = _timed(app.run)
    if app.exception:
        raise SystemExit(f"the page failed: {app.exception}")
    return app, cold


def warm_rounds(apps: dict[str, tuple[AppTest, str | None]], *, reruns: int) -> dict[str, float]:
    """Median warm rerun of each app, taking turns so that a busy spell hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(reruns):
        for name, (app, url) in apps.items():
            if url is not None:
                os.environ["KETADASH_DATABASE_URL"] = url
            times[name].append(_timed(app.run))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--default", help="URL of a default demo (built in a temp file if absent)")
    parser.add_argument("--large", help="URL of a large demo (see docs/measured.md)")
    parser.add_argument("--reruns", type=int, default=30)
    args = parser.parse_args()
    _stay_in_navigation_mode()
    _time_the_follow_up()

    default_url = args.default
    if not default_url:
        from ketadash.demo import build_demo_clinic

        path = Path(tempfile.mkdtemp()) / "default.sqlite"
        default_url = f"sqlite:///{path}"
        build_demo_clinic(url=default_url, now=datetime.now(UTC))

    st.cache_data.clear()
    st.cache_resource.clear()
    empty = AppTest.from_string(EMPTY_PAGE)
    cold = {"empty page": _timed(empty.run)}
    apps: dict[str, tuple[AppTest, str | None]] = {"empty page": (empty, None)}
    completed = {}
    boosters: dict[str, float] = {}
    databases = [("default", default_url)] + ([("large", args.large)] if args.large else [])
    for name, url in databases:
        for label, period in RANGES.items():
            started = time.perf_counter()
            app, cold[f"{name} demo, {label}"] = open_throughput(url, period=period)
            boosters[f"{name} demo, {label}"] = sum(FOLLOW_UP_MS)
            apps[f"{name} demo, {label}"] = (app, url)
            completed[f"{name} demo, {label}"] = next(
                m for m in app.metric if m.label == "Infusions completed"
            ).value
            print(f"  opened {name}, {label} in {time.perf_counter() - started:.0f} s")
    warm = warm_rounds(apps, reruns=args.reruns)

    print(
        f"{'page (all sites)':<24} {'cold ms':>10} {'of which boosters':>18} {'warm ms':>9} "
        f"{'completed':>10}"
    )
    for name in apps:
        of_which = f"{boosters[name]:.1f}" if name in boosters else ""
        print(
            f"{name:<24} {cold[name]:>10.1f} {of_which:>18} {warm[name]:>9.1f} "
            f"{completed.get(name, '')!s:>10}"
        )
    if args.large:
        for label in RANGES:
            ratio = warm[f"large demo, {label}"] / warm[f"default demo, {label}"]
            print(f"{label}: large / default warm {ratio:.2f}x (budget 2x)")


if __name__ == "__main__":
    main()
