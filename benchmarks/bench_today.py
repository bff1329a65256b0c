"""How long the today page's script takes, on the default demo and on a large one.

Not a test: it prints numbers for docs/measured.md. Each database is measured in the
same process against an empty Streamlit page, through AppTest (the page's own
script time, without a browser):

    python benchmarks/bench_today.py                      # builds the default demo
    python benchmarks/bench_today.py --large sqlite:////tmp/large.sqlite

"first" is the first run of a fresh app (cold caches, and what a server process does
once: SQLAlchemy builds and compiles each query the first time it is used);
"new session's first" is another browser opening the page on that warm server
with cold data caches (what every nurse's first look costs); "warm" is a rerun with
the board cache still valid (what most refreshes cost); "warm, fresh reads" is a
rerun after the cache was cleared (what the refresh after a write, or after the
TTL, costs: every query of the board runs).

Two checkouts on the same board, e.g. this one against the code before a change
(each checkout's page and ``load_board`` run in a process of its own, in turns, one
run each, so a busy spell on a shared machine hits both alike):

    git worktree add /tmp/before <commit>
    python benchmarks/bench_today.py --default URL --against /tmp/before --against-url URL2

This prints medians of the page script's own time (timed inside the script run,
without AppTest's polling), of AppTest's run, and of ``load_board`` alone, with
the median of the paired ratios. ``--processes`` fresh pairs of processes each
give one "first"; each then takes ``--reruns`` warm runs, fresh runs and reads.
A PostgreSQL URL for code older than issue 7 must name its driver
(``postgresql+psycopg://``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
# A worker measuring another checkout imports that checkout's ketadash instead.
CHECKOUT = Path(sys.argv[sys.argv.index("--root") + 1]) if "--root" in sys.argv else ROOT
sys.path.insert(0, str(CHECKOUT))

import streamlit as st  # noqa: E402
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

EMPTY_PAGE = "import streamlit as st\nst.title('Empty')\n"


def _stay_in_navigation_mode() -> None:
    # AppTest resets Streamlit's legacy pages/ flag before every run (see
    # tests/pages/conftest.py); a warm server has it cleared once and for all.
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def measure_today(url: str, *, reruns: int) -> dict[str, float]:
    os.environ["KETADASH_DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
    app.run()
    app.switch_page("pages/today.py")
    st.cache_data.clear()
    first = _timed(app.run)
    if app.exception:
        raise SystemExit(f"the page failed: {app.exception}")
    warm = [_timed(app.run) for _ in range(reruns)]
    fresh = []
    for _ in range(reruns):
        st.cache_data.clear()
        fresh.append(_timed(app.run))
    sessions = sum(h.value.count('class="kd-card') for h in app.get("html"))
    return {
        "first": first,
        "warm": statistics.median(warm),
        "fresh": statistics.median(fresh),
        "cards": sessions,
    }


def measure_empty(*, reruns: int) -> dict[str, float]:
    app = AppTest.from_string(EMPTY_PAGE)
    first = _timed(app.run)
    warm = [_timed(app.run) for _ in range(reruns)]
    return {"first": first, "warm": statistics.median(warm), "fresh": statistics.median(warm)}


# --- two checkouts in turns ------------------------------------------------------------------

PAIRED_MEASURES = (
    ("first", "first run, script ms"),
    ("session", "new session's first, script ms"),
    ("warm", "warm rerun, script ms"),
    ("fresh", "warm, fresh reads, script ms"),
    ("warm_apptest", "warm rerun, AppTest ms"),
    ("fresh_apptest", "warm, fresh reads, AppTest ms"),
    ("load_board", "load_board alone ms"),
)


class _ScriptClock:
    """The page script's own time: from the start to the end of each script run."""

    def __init__(self) -> None:
        from streamlit.runtime.scriptrunner import script_runner

        self.last = float("nan")
        original = script_runner.ScriptRunner._run_script
        clock = self

        def timed(runner, rerun_data):
            start = time.perf_counter()
            try:
                return original(runner, rerun_data)
            finally:
                clock.last = (time.perf_counter() - start) * 1000

        script_runner.ScriptRunner._run_script = timed


def _first_site(url: str) -> tuple[int, str]:
    from sqlalchemy import text

    from ketadash.db import read_session

    with read_session(url) as db:
        row = db.execute(text("SELECT id, time_zone FROM site ORDER BY id LIMIT 1")).one()
    return row.id, row.time_zone


def worker(url: str) -> None:
    """Answer one measurement per line read (first, warm, fresh, load_board) as JSON."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # nothing else may write to the answers
    _stay_in_navigation_mode()
    clock = _ScriptClock()
    os.environ["KETADASH_DATABASE_URL"] = url
    from ketadash.board import load_board

    site_id, time_zone = _first_site(url)
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(CHECKOUT / "dashboard.py"), default_timeout=120)
    app.run()
    app.switch_page("pages/today.py")
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        what = line.strip()
        if what == "load_board":
            read = functools.partial(
                load_board, url=url, site_id=site_id, day=datetime.now(ZoneInfo(time_zone)).date()
            )
            spent = _timed(read)
            answers.write(json.dumps({"load_board": spent}) + "\n")
            continue
        if what == "session":
            # Another browser opening Today on this warm server, with cold data caches.
            other = AppTest.from_file(str(CHECKOUT / "dashboard.py"), default_timeout=120)
            other.run()
            other.switch_page("pages/today.py")
            st.cache_data.clear()
            spent = _timed(other.run)
            answers.write(json.dumps({what: clock.last, f"{what}_apptest": spent}) + "\n")
            continue
        if what in ("first", "fresh"):
            st.cache_data.clear()
        spent = _timed(app.run)
        if app.exception:
            raise SystemExit(f"the page failed in {CHECKOUT}: {app.exception}")
        cards = sum(h.value.count('class="kd-card') for h in app.get("html"))
        answer = {what: clock.last, f"{what}_apptest": spent, "cards": cards}
        answers.write(json.dumps(answer) + "\n")


class _Worker:
    def __init__(self, checkout: Path, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", url,
             "--root", str(checkout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=checkout,
        )  # fmt: skip
        self.read()

    def ask(self, what: str) -> dict:
        self.process.stdin.write(what + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a worker stopped (exit {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def compare(*, this_url: str, other: Path, other_url: str, reruns: int, processes: int) -> None:
    """This checkout's Today against ``other``'s, in turns; prints medians and ratios."""
    names = ("this", "other")
    samples: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in names}
    cards: dict[str, set[int]] = {name: set() for name in names}
    for round_ in range(processes):
        workers = {"this": _Worker(ROOT, this_url), "other": _Worker(other, other_url)}
        # Who goes first changes every time, so neither always runs right after the other.
        turns = [names, names[::-1]]
        for step, what in enumerate(
            ["first", "session"] + ["warm", "fresh", "load_board"] * reruns, start=round_
        ):
            for name in turns[step % 2]:
                answer = workers[name].ask(what)
                cards[name].add(answer.pop("cards", None))
                for key, value in answer.items():
                    samples[name][key].append(value)
        for each in workers.values():
            each.close()
    print(f"this checkout: {ROOT}  ({this_url})")
    print(f"other checkout: {other}  ({other_url})")
    print(f"cards on the board: this {sorted(cards['this'] - {None})}, "
          f"other {sorted(cards['other'] - {None})}")  # fmt: skip
    print(f"{'median of':<32} {'this':>9} {'other':>9} {'this/other':>11} {'samples':>8}")
    for key, label in PAIRED_MEASURES:
        mine, theirs = samples["this"][key], samples["other"][key]
        ratio = statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
        print(
            f"{label:<32} {statistics.median(mine):>9.2f} {statistics.median(theirs):>9.2f} "
            f"{ratio:>10.2f}x {len(mine):>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--default", help="URL of a default demo (built in a temp file if absent)")
    parser.add_argument("--large", help="URL of a large demo (see docs/measured.md)")
    parser.add_argument("--reruns", type=int, default=30)
    parser.add_argument("--against", type=Path, help="another checkout to measure in turns")
    parser.add_argument("--against-url", help="its database (default: the same as --default)")
    parser.add_argument("--processes", type=int, default=5, help="pairs of processes (--against)")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    _stay_in_navigation_mode()

    default_url = args.default
    if not default_url:
        from ketadash.demo import build_demo_clinic

        path = Path(tempfile.mkdtemp()) / "default.sqlite"
        default_url = f"sqlite:///{path}"
        build_demo_clinic(url=default_url, now=datetime.now(UTC))

    if args.against:
        compare(
            this_url=default_url,
            other=args.against.resolve(),
            other_url=args.against_url or default_url,
            reruns=args.reruns,
            processes=args.processes,
        )
        return
    rows = [("empty page", measure_empty(reruns=args.reruns))]
    rows.append(("today, default demo", measure_today(default_url, reruns=args.reruns)))
    if args.large:
        rows.append(("today, large demo", measure_today(args.large, reruns=args.reruns)))
    rows.append(("empty page (again)", measure_empty(reruns=args.reruns)))

    print(f"{'page':<22} {'first ms':>9} {'warm ms':>9} {'warm, fresh reads ms':>21} {'cards':>6}")
    for name, row in rows:
        cards = row.get("cards", "")
        print(
            f"{name:<22} {row['first']:>9.1f} {row['warm']:>9.1f} {row['fresh']:>21.1f} "
            f"{cards!s:>6}"
        )
    if args.large:
        default, large = rows[1][1], rows[2][1]
        print(
            f"large / default: warm {large['warm'] / default['warm']:.2f}x, "
            f"warm with fresh reads {large['fresh'] / default['fresh']:.2f}x (budget 1.3x)"
        )


if __name__ == "__main__":
    main()
