"""How long the today page's script takes, on the default demo and on a large one.

Not a test: it prints numbers for the README. Each database is measured in the
same process against an empty Streamlit page, through AppTest (the page's own
script time, without a browser):

    python benchmarks/bench_today.py                      # builds the default demo
    python benchmarks/bench_today.py --large sqlite:////tmp/large.sqlite

"first" is the first run of a fresh app (cold caches); "warm" is a rerun with
the board cache still valid (what most refreshes cost); "warm, fresh reads" is a
rerun after the cache was cleared (what the refresh after a write, or after the
TTL, costs: every query of the board runs).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--default", help="URL of a default demo (built in a temp file if absent)")
    parser.add_argument("--large", help="URL of a large demo (see the README)")
    parser.add_argument("--reruns", type=int, default=30)
    args = parser.parse_args()
    _stay_in_navigation_mode()

    default_url = args.default
    if not default_url:
        from ketadash.demo import build_demo_clinic

        path = Path(tempfile.mkdtemp()) / "default.sqlite"
        default_url = f"sqlite:///{path}"
        build_demo_clinic(url=default_url, now=datetime.now(UTC))

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
