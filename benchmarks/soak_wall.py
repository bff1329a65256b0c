"""Soak the wall display: one wall open for a long time, then many screens at once.

    python benchmarks/soak_wall.py --url sqlite:////tmp/large.sqlite [--minutes 30]
        [--walls 10] [--boards 10] [--load-minutes 3]

Build the large demo first (``python -m ketadash demo --url … --sites 10 --patients 50000
--history-days 1825``). Starts its own ``streamlit run dashboard.py`` on that database and
drives Debian's Chromium. Prints:

1. one wall open for ``--minutes``: the server's memory (RSS) at the start and the end,
   and each refresh: when it happened, the gap since the previous one and how long the
   fragment's run took as the browser saw it (script state running → not running);
2. ``--walls`` walls and ``--boards`` Today boards open at once for ``--load-minutes``:
   the server's CPU-seconds per minute and its memory.

Not a test: it times things, and tests never do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from benchmarks.harness import (
    cpu_seconds,
    free_port,
    launch_chromium,
    rss_mib,
    start_server,
    stop,
    wait_idle,
)
from ketadash.db import read_session
from ketadash.models import Site

SCREEN = {"width": 1920, "height": 1080}
# Records every script run the browser sees: [start, end] in ms since the page opened.
WATCH_RUNS = """
window.__kdRuns = [];
new MutationObserver(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return;
  const state = app.getAttribute('data-test-script-state');
  const runs = window.__kdRuns;
  const open = runs.length && runs[runs.length - 1][1] === null;
  if (state === 'running' && !open) runs.push([performance.now(), null]);
  if (state !== 'running' && open) runs[runs.length - 1][1] = performance.now();
}).observe(document, {subtree: true, attributes: true,
                      attributeFilter: ['data-test-script-state']});
"""


def soak_one_wall(browser, base: str, code: str, pid: int, minutes: float) -> None:
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    page.add_init_script(WATCH_RUNS)
    page.goto(f"{base}/wall?site={code}&embed=true")
    wait_idle(page)
    page.locator(".kdw-updated").wait_for(timeout=120_000)
    start_rss = rss_mib(pid)
    print(f"\n1. One wall (/wall?site={code}) for {minutes:g} min")
    print(f"   server memory at start: {start_rss:.0f} MiB")
    print("   refresh  at (s)  gap (s)  run (ms)  updated")
    started = time.monotonic()
    last_text, last_at, seen = page.locator(".kdw-updated").inner_text(), started, 0
    gaps, next_report = [], started + 60
    while time.monotonic() - started < minutes * 60:
        page.wait_for_timeout(250)
        text = page.locator(".kdw-updated").inner_text()
        now = time.monotonic()
        if text != last_text:
            runs = page.evaluate("window.__kdRuns.filter(r => r[1] !== null)")
            run_ms = runs[-1][1] - runs[-1][0] if runs else float("nan")
            seen += 1
            gaps.append(now - last_at)
            print(
                f"   {seen:7d}  {now - started:6.1f}  {now - last_at:7.1f}  {run_ms:8.0f}  {text}"
            )
            last_text, last_at = text, now
        if now >= next_report:
            print(f"   -- {(now - started) / 60:.0f} min: server memory {rss_mib(pid):.0f} MiB")
            next_report += 60
    runs = page.evaluate("window.__kdRuns.filter(r => r[1] !== null).map(r => r[1] - r[0])")
    end_rss = rss_mib(pid)
    print(f"   server memory at end: {end_rss:.0f} MiB ({end_rss - start_rss:+.0f} MiB)")
    if gaps:
        print(
            f"   {seen} refreshes; gap median {statistics.median(gaps):.1f} s, "
            f"max {max(gaps):.1f} s"
        )
    if runs:
        print(
            f"   fragment runs: {len(runs)}, median {statistics.median(runs):.0f} ms, "
            f"max {max(runs):.0f} ms"
        )
    context.close()


def load_many(browser, base: str, sites: list[tuple[int, str]], pid: int, *, walls: int,
              boards: int, minutes: float) -> None:  # fmt: skip
    print(f"\n2. {walls} walls and {boards} Today boards open at once for {minutes:g} min")
    contexts = []
    idle_cpu_start = cpu_seconds(pid)
    time.sleep(20)
    idle_rate = (cpu_seconds(pid) - idle_cpu_start) / 20 * 60
    print(f"   server idle (no screen): {idle_rate:.2f} CPU-s/min")
    for index in range(walls + boards):
        site_id, code = sites[index % len(sites)]
        context = browser.new_context(viewport=SCREEN)
        page = context.new_page()
        if index < walls:
            page.goto(f"{base}/wall?site={code}&embed=true")
        else:
            page.goto(f"{base}/today?site={site_id}")
        wait_idle(page)
        contexts.append(context)
    time.sleep(10)
    rss_start, cpu_start, started = rss_mib(pid), cpu_seconds(pid), time.monotonic()
    per_minute = []
    while time.monotonic() - started < minutes * 60:
        minute_cpu, minute_start = cpu_seconds(pid), time.monotonic()
        time.sleep(max(0.0, min(60.0, minutes * 60 - (minute_start - started))))
        spent = time.monotonic() - minute_start
        per_minute.append((cpu_seconds(pid) - minute_cpu) / spent * 60)
        print(f"   minute {len(per_minute)}: {per_minute[-1]:.1f} CPU-s/min, "
              f"memory {rss_mib(pid):.0f} MiB")  # fmt: skip
    total = (cpu_seconds(pid) - cpu_start) / (time.monotonic() - started) * 60
    print(f"   server: {total:.1f} CPU-seconds per minute with {walls + boards} screens "
          f"({total / 60 * 100:.0f}% of one core); memory {rss_start:.0f} → "
          f"{rss_mib(pid):.0f} MiB")  # fmt: skip
    for context in contexts:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the (large demo) database to serve")
    parser.add_argument("--minutes", type=float, default=30, help="how long one wall stays open")
    parser.add_argument("--walls", type=int, default=10)
    parser.add_argument("--boards", type=int, default=10)
    parser.add_argument("--load-minutes", type=float, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with read_session(args.url) as db:
        sites = [(row.id, row.code) for row in db.execute(select(Site.id, Site.code))]
    port = free_port()
    log = Path("/tmp") / f"soak-wall-{port}.log"
    server = start_server(args.url, port, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        print(
            f"server pid {server.pid} on {base}; memory after start {rss_mib(server.pid):.0f} MiB"
        )
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            soak_one_wall(browser, base, sites[0][1], server.pid, args.minutes)
            load_many(browser, base, sites, server.pid, walls=args.walls, boards=args.boards,
                      minutes=args.load_minutes)  # fmt: skip
            browser.close()
    finally:
        stop(server)


if __name__ == "__main__":
    main()
