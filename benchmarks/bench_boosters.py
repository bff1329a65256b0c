"""Boosters: back-test of the due dates on the demo clinic, and the worklist's timing.

Not a test: it prints numbers for the README.

    python -m benchmarks.bench_boosters backtest --url sqlite:////tmp/demo.db
    python -m benchmarks.bench_boosters timing --url sqlite:////tmp/demo.db \\
        --large-url sqlite:////tmp/large.db

Back-test: for several past mornings (``--as-of``), take every patient whose relief
episode was running that morning and later ended in a relapse signal (known from the
later history). A due date is *in time* when it falls before the day relief ended;
*days early* is how long before. Three ways of choosing the due date are compared:
this method, a fixed 28 days after the last infusion, and the patient's last gap
between infusions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from ketadash.boosters import (
    BoosterFlag,
    as_of_morning,
    local_day,
    plan_boosters,
    relief_episodes,
)
from ketadash.clock import utc_now
from ketadash.db import read_session
from ketadash.histories import load_patient_histories
from ketadash.models import Site
from ketadash.settings import load_clinic_settings

ROOT = Path(__file__).resolve().parent.parent
FIXED_DAYS = 28
METHODS = ("this method", f"fixed {FIXED_DAYS} days", "last gap")


@dataclass
class Tally:
    in_time: int = 0
    early: list[int] | None = None
    total: int = 0

    def add(self, due: date, end: date) -> None:
        self.total += 1
        if due < end:
            self.in_time += 1
            self.early = (self.early or []) + [(end - due).days]

    def row(self) -> tuple[str, str]:
        share = f"{100 * self.in_time / self.total:.0f}%" if self.total else "–"
        median = f"{statistics.median(self.early):.0f}" if self.early else "–"
        return share, median


def backtest(
    *, url: str, as_of_days: list[date], now: datetime, overrides: dict[str, int]
) -> dict[str, Tally]:
    tallies = {name: Tally() for name in METHODS}
    with read_session(url) as db:
        sites = db.exec(select(Site.id, Site.time_zone)).all()
        for site_id, zone in sites:
            settings = replace(load_clinic_settings(db=db, site_id=site_id), **overrides)
            full = load_patient_histories(
                db=db, as_of=now, history_days=settings.booster_history_days * 4, site_id=site_id
            )
            # Relief as the later history tells it: episode start -> the day it ended.
            ends: dict[tuple[int, date], date] = {}
            for history in full:
                for episode in relief_episodes(history=history, settings=settings, as_of=now):
                    if episode.relapsed:
                        ends[(history.patient_id, episode.start)] = episode.end
            for day in as_of_days:
                as_of = as_of_morning(day=day, time_zone=zone)
                histories = load_patient_histories(
                    db=db, as_of=as_of, history_days=settings.booster_history_days, site_id=site_id
                )
                plans, _ = plan_boosters(histories=histories, settings=settings, as_of=as_of)
                by_id = {h.patient_id: h for h in histories}
                for plan in plans:
                    if plan.flag in (BoosterFlag.IN_SERIES, BoosterFlag.OUT_OF_CARE):
                        continue
                    if not plan.episodes or plan.episodes[-1].relapsed or plan.booster_due is None:
                        continue
                    end = ends.get((plan.patient_id, plan.episodes[-1].start))
                    if end is None or end < day:
                        continue
                    infusions = by_id[plan.patient_id].infusions
                    last = local_day(infusions[-1].at, zone)
                    tallies[METHODS[0]].add(plan.booster_due, end)
                    tallies[METHODS[1]].add(last + timedelta(days=FIXED_DAYS), end)
                    if len(infusions) >= 2:
                        gap = last - local_day(infusions[-2].at, zone)
                        tallies[METHODS[2]].add(last + gap, end)
    return tallies


def timing(*, url: str, repeats: int = 5) -> dict[str, float]:
    """Median seconds for one site (the page's unit): wall clock and this process's CPU.

    On SQLite the database works inside this process, so CPU time counts database and
    pandas work alike and is steadier than wall time on a shared, loaded machine.
    """
    from ketadash.histories import boosters_worklist

    measured: dict[str, list[float]] = {"read": [], "read_cpu": [], "all": [], "all_cpu": []}
    rows = 0
    now = utc_now()
    with read_session(url) as db:
        site_id = db.exec(select(Site.id).order_by(Site.id)).first()
    for _ in range(repeats):
        with read_session(url) as db:
            wall, cpu = time.perf_counter(), time.process_time()
            settings = load_clinic_settings(db=db, site_id=site_id)
            load_patient_histories(
                db=db, as_of=now, history_days=settings.booster_history_days, site_id=site_id
            )
            measured["read"].append(time.perf_counter() - wall)
            measured["read_cpu"].append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            frame = boosters_worklist(db=db, as_of=now, site_ids=[site_id])
            measured["all"].append(time.perf_counter() - wall)
            measured["all_cpu"].append(time.process_time() - cpu)
            rows = len(frame)
    result = {name: statistics.median(values) for name, values in measured.items()}
    result["rows"] = rows
    return result


def page_timing(url: str, *, reruns: int = 5) -> dict[str, float]:
    """The Boosters page's script time through AppTest: first run and warm reruns (ms)."""
    import os as os_module

    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        # As on a warm server: navigation mode, not the legacy pages/ mode (see
        # tests/pages/conftest.py).
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    os_module.environ["KETADASH_DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=180)
    app.run()
    app.switch_page("pages/boosters.py")
    start = time.perf_counter()
    app.run()
    first = (time.perf_counter() - start) * 1000
    if app.exception:
        raise SystemExit(f"the page failed: {app.exception}")
    warm = []
    for _ in range(reruns):
        start = time.perf_counter()
        app.run()
        warm.append((time.perf_counter() - start) * 1000)
    PagesManager.__init__ = original
    return {"first": first, "warm": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="what", required=True)
    back = commands.add_parser("backtest")
    back.add_argument("--url", required=True)
    back.add_argument("--every-days", type=int, default=30)
    back.add_argument("--dates", type=int, default=12)
    back.add_argument("--skip-days", type=int, default=60, help="leave the last days out")
    back.add_argument("--quantile", type=int, help="booster_quantile_percent to try")
    back.add_argument("--lead", type=int, help="booster_lead_days to try")
    timed = commands.add_parser("timing")
    timed.add_argument("--url", required=True)
    timed.add_argument("--large-url")
    timed.add_argument("--page", action="store_true", help="also time the page (AppTest)")
    args = parser.parse_args()
    now = utc_now()
    if args.what == "backtest":
        today = now.date()
        days = [
            today - timedelta(days=args.skip_days + n * args.every_days) for n in range(args.dates)
        ]
        overrides = {
            name: value
            for name, value in (
                ("booster_quantile_percent", args.quantile),
                ("booster_lead_days", args.lead),
            )
            if value is not None
        }
        tallies = backtest(url=args.url, as_of_days=sorted(days), now=now, overrides=overrides)
        print(f"settings tried: {overrides or 'defaults'}")
        print(f"as-of mornings: {days[-1]} to {days[0]}, every {args.every_days} days")
        print("| due date from | patients | in time | median days early |")
        print("|---|---|---|---|")
        for name, tally in tallies.items():
            share, median = tally.row()
            print(f"| {name} | {tally.total} | {share} | {median} |")
    else:
        for label, url in (("default demo", args.url), ("large demo", args.large_url)):
            if url is None:
                continue
            t = timing(url=url)
            print(
                f"{label}: one site's histories read in {t['read'] * 1000:.0f} ms "
                f"(CPU {t['read_cpu'] * 1000:.0f} ms); worklist (read + plan + frame) "
                f"{t['all'] * 1000:.0f} ms (CPU {t['all_cpu'] * 1000:.0f} ms); "
                f"{t['rows']:.0f} rows"
            )
        if args.page:
            pages = {
                label: page_timing(url)
                for label, url in (("default demo", args.url), ("large demo", args.large_url))
                if url is not None
            }
            for label, t in pages.items():
                print(f"{label}: page first run {t['first']:.0f} ms, warm {t['warm']:.0f} ms")
            if len(pages) == 2:
                default, large = pages.values()
                print(f"warm page, large ÷ default: {large['warm'] / default['warm']:.2f}×")
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
