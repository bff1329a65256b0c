"""The live room (issue 18): how fast a change reaches the other screens, and what the
screens cost the server while nothing (or a little) changes.

    python benchmarks/bench_live_room.py --backend sqlite|postgres [--code DIR]
        [--changes 50] [--screens 20] [--cpu-minutes 3] [--two-processes]

``--code`` runs the servers from another checkout (``git worktree add /tmp/base main``)
to measure the timer it replaces on the same machine; the database is then built by
that checkout's own ``python -m ketadash demo``. PostgreSQL comes from
``KETADASH_TEST_POSTGRES_URL`` (a schema of its own, dropped at the end). Prints:

1. latency: a ride's arrival recorded and taken back (a station's write, through
   ketadash.rides) ``--changes`` times; for each, when a Today board, Recovery and the
   wall (each in its own browser context) show it, from the write's commit: p50, p95, max;
2. CPU: ``--screens`` screens (Today, Recovery and walls) open ``--cpu-minutes`` with no
   change, then as long again with a change every 10 s: the server process's
   CPU-seconds per minute, and per screen;
3. with ``--two-processes`` (PostgreSQL): two ``streamlit run`` servers; a nurse checks
   patients in through the first, in Chromium; when a Today board served by the second
   shows each.

Not a test: it times things, and tests never do.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlalchemy import select

from ketadash.clock import utc_now
from ketadash.config import DATABASE_URL_VARIABLE, PROJECT_ROOT, normalise_url
from ketadash.db import get_engine, read_session, write_session
from ketadash.models import (
    Chair,
    Patient,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    Staff,
    StaffRole,
    TreatmentSession,
)
from ketadash.rides import arrange_ride, ride_arrived, take_back_ride_arrival

CHROMIUM = os.environ.get("KETADASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-background-timer-throttling",
                 "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]  # fmt: skip
SCREEN = {"width": 1600, "height": 1000}
TICKS = os.sysconf("SC_CLK_TCK")
IDLE = (
    '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
    '[data-test-script-state="notRunning"]'
)
RIDERS = 3
# Notes the moment (epoch ms) a condition first holds after __kdArm(test, arg).
WATCH = """
window.__kdArm = (test, arg) => {
  window.__kdSeen = null;
  const check = () => {
    if (window.__kdSeen === null && window[test](arg)) window.__kdSeen = Date.now();
  };
  if (window.__kdObserver) window.__kdObserver.disconnect();
  window.__kdObserver = new MutationObserver(check);
  window.__kdObserver.observe(document, {subtree: true, childList: true, attributes: true,
                                         characterData: true});
  check();
};
window.kdToday = ([name, arrived]) => [...document.querySelectorAll('.kd-card')].some(
  c => c.innerText.includes(name) && c.innerText.includes('Ride here:') === arrived);
window.kdRecovery = ([session, arrived]) => {
  const card = document.querySelector(`.kr-card[data-session="${session}"]`);
  return !!card && !!card.querySelector('.kr-badge.arrived') === arrived;
};
window.kdWall = ([label, arrived]) => [...document.querySelectorAll('.kdw-tile')].some(
  t => t.querySelector('.kdw-label')?.innerText.trim() === label &&
       (t.dataset.place === 'ride_arrived') === arrived);
window.kdCheckedIn = (name) => [...document.querySelectorAll(
  '.kd-lane[data-lane="checked_in"] .kd-card')].some(c => c.innerText.includes(name));
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    """The process's resident memory (MiB): with runner.postScriptGC off it must stay flat."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_server(code: Path, url: str, port: int) -> subprocess.Popen:
    log = Path("/tmp") / f"bench-live-{port}.log"
    env = {**os.environ, DATABASE_URL_VARIABLE: url}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=code, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not start; see {log}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def database(backend: str, code: Path) -> tuple[str, callable]:
    """A fresh demo clinic built by ``code``'s own command line; its URL and a clean-up."""
    if backend == "sqlite":
        path = Path("/tmp") / f"bench-live-{uuid.uuid4().hex[:8]}.sqlite"
        url = f"sqlite:///{path}"

        def clean() -> None:
            get_engine(url).dispose()
            for leftover in path.parent.glob(f"{path.name}*"):
                leftover.unlink(missing_ok=True)

    else:
        server = normalise_url(os.environ["KETADASH_TEST_POSTGRES_URL"])
        schema = f"bench_live_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(server)
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{schema}"

        def clean() -> None:
            get_engine(url).dispose()
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()

    subprocess.run(
        [sys.executable, "-m", "ketadash", "demo", "--url", url, "--patients", "80",
         "--history-days", "30"],
        cwd=code, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return url, clean


def add_riders(url: str) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Three patients ready to go home at the first site, each with a ride arranged; returns
    the site, a nurse, and (session, name, wall label) of each."""
    now = utc_now()
    riders = []
    with write_session(url) as db:
        site = db.execute(select(Site).order_by(Site.id)).scalars().first()
        nurse = (
            db.execute(select(Staff).where(Staff.site_id == site.id, Staff.role == StaffRole.NURSE))
            .scalars()
            .first()
        )
        chairs = db.execute(select(Chair).where(Chair.site_id == site.id)).scalars().all()
        for n in range(RIDERS):
            patient = Patient(mrn=f"BENCH-{n}", first_name="Bench", last_name=f"Rider{n}",
                              display_alias=f"Rider {n}", home_site_id=site.id)  # fmt: skip
            db.add(patient)
            db.flush()
            session = TreatmentSession(
                site_id=site.id, chair_id=chairs[-1 - n].id, patient_id=patient.id,
                scheduled_start=now - timedelta(minutes=70), planned_minutes=40,
                route=Route.IV, kind=SessionKind.SERIES, status=SessionStatus.READY,
                dose_mg_per_kg=0.5, checked_in_at=now - timedelta(minutes=75),
                infusion_started_at=now - timedelta(minutes=60),
                infusion_ended_at=now - timedelta(minutes=20),
                ready_at=now - timedelta(minutes=5),
            )  # fmt: skip
            db.add(session)
            db.flush()
            riders.append((session.id, f"Bench Rider{n}", f"Rider {n}"))
        site_id, nurse_id = site.id, nurse.id
    for session_id, _, _ in riders:
        arrange_ride(url=url, session_id=session_id, staff_id=nurse_id,
                     expected_ride_version=None, driver_name="Jo Driver", now=now)  # fmt: skip
    return site_id, nurse_id, riders


def ride_version(url: str, session_id: int) -> int:
    from ketadash.models import Ride

    with read_session(url) as db:
        return db.execute(select(Ride.version).where(Ride.session_id == session_id)).scalar_one()


def flip(url: str, nurse_id: int, session_id: int) -> bool:
    """A station records the ride's arrival, or takes it back (as a nurse would);
    returns whether the ride is now arrived."""
    from ketadash.models import Ride

    with read_session(url) as db:
        version, arrived_at = db.execute(
            select(Ride.version, Ride.arrived_at).where(Ride.session_id == session_id)
        ).one()
    if arrived_at is not None:
        take_back_ride_arrival(url=url, session_id=session_id, staff_id=nurse_id,
                               expected_ride_version=version, reason="benchmark")  # fmt: skip
        return False
    ride_arrived(url=url, session_id=session_id, staff_id=nurse_id,
                 expected_ride_version=version)  # fmt: skip
    return True


def open_screen(browser, url: str):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    page.add_init_script(WATCH)
    page.goto(url, timeout=180_000)
    page.wait_for_selector(IDLE, state="attached", timeout=120_000)
    return context, page


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(browser, base: str, url: str, changes: int) -> None:
    site_id, nurse_id, riders = add_riders(url)
    with read_session(url) as db:
        code = db.execute(select(Site.code).where(Site.id == site_id)).scalar_one()
    screens = {
        "Today": (f"{base}/today?site={site_id}", "kdToday", 1),
        "Recovery": (f"{base}/recovery?site={site_id}", "kdRecovery", 0),
        "Wall": (f"{base}/wall?site={code}&embed=true", "kdWall", 2),
    }
    pages = {}
    for name, (address, _, _) in screens.items():
        pages[name] = open_screen(browser, address)
    # Every screen shows every rider before the first change.
    for name, (_, test, field) in screens.items():
        page = pages[name][1]
        for rider in riders:
            page.wait_for_function(f"a => window.{test}(a)", arg=[rider[field], False],
                                   timeout=120_000)  # fmt: skip
    arrived = [False] * RIDERS
    seen: dict[str, list[float]] = {name: [] for name in screens}
    missed = 0
    for change in range(changes):
        n = change % RIDERS
        session_id = riders[n][0]
        for name, (_, test, field) in screens.items():
            pages[name][1].evaluate(
                f"a => window.__kdArm('{test}', a)", [riders[n][field], not arrived[n]]
            )
        now_arrived = flip(url, nurse_id, session_id)
        committed = time.time() * 1000
        if now_arrived == arrived[n]:
            raise SystemExit("the ride was changed by someone else during the benchmark")
        arrived[n] = now_arrived
        for name in screens:
            page = pages[name][1]
            try:
                page.wait_for_function("() => window.__kdSeen !== null", timeout=30_000,
                                       polling=50)  # fmt: skip
                seen[name].append((page.evaluate("window.__kdSeen") - committed) / 1000)
            except Exception:  # a miss is counted, not fatal
                missed += 1
                seen[name].append(30.0)
        # Spread the changes out, off the minute tick's rhythm.
        time.sleep(1.0 + (change % 7) * 0.3)
    print(f"\n1. Latency over {changes} changes (s from the write's commit to the screen)")
    print("   screen     p50    p95    max")
    every = []
    for name, values in seen.items():
        every.extend(values)
        print(f"   {name:9s} {statistics.median(values):5.2f}  {pct(values, 0.95):5.2f}  "
              f"{max(values):5.2f}")  # fmt: skip
    print(f"   all       {statistics.median(every):5.2f}  {pct(every, 0.95):5.2f}  "
          f"{max(every):5.2f}   ({missed} not shown within 30 s)")  # fmt: skip
    for context, _ in pages.values():
        context.close()
    return site_id, nurse_id, riders


def cpu(browser, base: str, url: str, pid: int, screens: int, minutes: float, riders) -> None:
    _, nurse_id, rider_list = riders
    with read_session(url) as db:
        sites = [(row.id, row.code) for row in db.execute(select(Site.id, Site.code))]
    kinds = ["today", "recovery", "wall"]
    contexts = []
    for index in range(screens):
        sid, code = sites[index % len(sites)]
        kind = kinds[index % 3]
        address = (f"{base}/wall?site={code}&embed=true" if kind == "wall"
                   else f"{base}/{kind}?site={sid}")  # fmt: skip
        contexts.append(open_screen(browser, address)[0])
    time.sleep(15)
    print(f"\n2. CPU of the server process, {screens} screens (Today, Recovery, walls "
          f"over {len(sites)} sites; server {rss_mib(pid):.0f} MiB)")  # fmt: skip

    def measure(label: str, every: float | None) -> None:
        start_cpu, start = cpu_seconds(pid), time.monotonic()
        flips = 0
        while time.monotonic() - start < minutes * 60:
            if every is None:
                time.sleep(1)
                continue
            time.sleep(every)
            flip(url, nurse_id, rider_list[flips % len(rider_list)][0])
            flips += 1
        spent = time.monotonic() - start
        rate = (cpu_seconds(pid) - start_cpu) / spent * 60
        print(f"   {label:28s} {rate:6.2f} CPU-s/min, {rate / screens:5.3f} per screen "
              f"({spent / 60:.1f} min, {flips} changes; "
              f"server {rss_mib(pid):.0f} MiB)")  # fmt: skip

    measure("no change", None)
    measure("a change every 10 s", 10.0)
    for context in contexts:
        context.close()


def two_processes(browser, code: Path, url: str, checks: int) -> None:
    first, second = free_port(), free_port()
    servers = [start_server(code, url, first), start_server(code, url, second)]
    try:
        _, station = open_screen(browser, f"http://127.0.0.1:{first}/today")
        station.get_by_role("radio", name="Nurse", exact=True).click()
        station.wait_for_selector(IDLE, state="attached", timeout=60_000)
        _, other = open_screen(browser, f"http://127.0.0.1:{second}/today")
        times = []
        for attempt in range(checks * 4):
            if len(times) == checks:
                break
            box = station.get_by_test_id("stSelectbox").filter(has_text="Patient").first
            box.click()
            options = station.get_by_role("option", name=re.compile(r"— Expected$"))
            # An expected patient whose chair is still taken cannot be checked in: skip it.
            try:
                choice = options.nth(attempt % max(1, options.count()))
                name = choice.inner_text(timeout=5_000).split(" · ")[2].split(" — ")[0]
                choice.click(timeout=5_000)
            except Exception:  # the list redrew under the click: try the next one
                station.keyboard.press("Escape")
                continue
            station.wait_for_selector(IDLE, state="attached", timeout=60_000)
            if not station.get_by_role("button", name="Check in").is_enabled():
                continue
            other.evaluate("n => window.__kdArm('kdCheckedIn', n)", name)
            station.get_by_role("button", name="Check in").click()
            station.wait_for_function("n => window.kdCheckedIn(n)", arg=name, timeout=60_000)
            shown_here = time.time() * 1000
            other.wait_for_function("() => window.__kdSeen !== null", timeout=60_000)
            times.append(max(0.0, (other.evaluate("window.__kdSeen") - shown_here) / 1000))
            station.wait_for_selector(IDLE, state="attached", timeout=60_000)
            time.sleep(1.5)
        print(f"\n3. Two processes (ports {first} and {second}), {checks} check-ins through the "
              "first: the second's Today shows each after the first's own board did")  # fmt: skip
        print(
            f"   p50 {statistics.median(times):.2f} s, max {max(times):.2f} s: "
            + " ".join(f"{t:.2f}" for t in times)
        )
    finally:
        for server in servers:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--code", type=Path, default=PROJECT_ROOT,
                        help="the checkout whose servers to run (default: this one)")  # fmt: skip
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--cpu-minutes", type=float, default=3)
    parser.add_argument("--two-processes", type=int, default=0, metavar="CHECK_INS")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    url, clean = database(args.backend, args.code.resolve())
    print(f"{args.backend}, servers from {args.code.resolve()}")
    port = free_port()
    server = start_server(args.code.resolve(), url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            if args.skip_latency and args.skip_cpu:
                riders = None
            elif args.skip_latency:
                riders = add_riders(url)
            else:
                riders = latency(browser, base, url, args.changes)
            if not args.skip_cpu:
                cpu(browser, base, url, server.pid, args.screens, args.cpu_minutes, riders)
            stop(server)
            if args.two_processes:
                two_processes(browser, args.code.resolve(), url, args.two_processes)
            browser.close()
    finally:
        stop(server)
        clean()


if __name__ == "__main__":
    main()
