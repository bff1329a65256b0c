"""The live room (issue 18): how fast a change reaches the other screens, and what the
screens cost the server while nothing (or a little) changes.

    python benchmarks/bench_live_room.py --backend sqlite|postgres [--code DIR]
        [--changes 50] [--screens 20] [--cpu-minutes 3] [--two-processes CHANGES]
        [--skip-latency] [--skip-cpu]

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
3. with ``--two-processes CHANGES`` (PostgreSQL): two ``streamlit run`` servers behind
   Debian's nginx (tests/browser/conftest.py's ``start_proxy``, sticky by a cookie); a
   nurse at the first's Recovery, in Chromium, records a ride's arrival and takes it back
   CHANGES times (always possible, whatever the clinic's state); when Today, Recovery and
   the wall served by the second show each: from the press, and after the first's own
   screen showed it; p50, p95, max;
4. then, the same two ports with ``[auth]`` (a local OpenID Connect provider,
   oidc-provider-mock): a nurse signs in through the first, the same sign-in opens Today
   on the second, she signs out through the first; whether the second's tab is signed
   out by itself, and if not, at its next run.

Not a test: it times things, and tests never do.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlalchemy import select

from benchmarks.harness import APP_IDLE as IDLE
from benchmarks.harness import cpu_seconds, free_port, launch_chromium, rss_mib, stop
from benchmarks.harness import start_server as start_streamlit
from ketadash.clock import utc_now
from ketadash.config import PROJECT_ROOT, normalise_url
from ketadash.db import get_engine, read_session, write_session
from ketadash.models import (
    Chair,
    Patient,
    Ride,
    RideChange,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    Staff,
    StaffRole,
    TreatmentSession,
)
from ketadash.rides import arrange_ride, ride_arrived, take_back_ride_arrival

SCREEN = {"width": 1600, "height": 1000}
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


def start_server(code: Path, url: str, port: int, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    log = Path("/tmp") / f"bench-live-{port}.log"
    return start_streamlit(url, port, code=code, log=log, extra=extra)


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


def two_processes(browser, code: Path, url: str, changes: int, riders) -> None:
    """Two servers behind nginx (as docs/deployment.md serves them): ``changes`` changes
    made through the first, seen on screens the second serves; then a sign-out."""
    from tests.browser.conftest import start_proxy

    site_id, nurse_id, rider_list = riders or add_riders(url)
    folder = Path(tempfile.mkdtemp(prefix="bench-live-two-"))
    proxy_port, first, second = free_port(), free_port(), free_port()
    servers = [start_server(code, url, first), start_server(code, url, second)]
    proxy = start_proxy(backends={"first": first, "second": second}, folder=folder,
                        port=proxy_port)  # fmt: skip
    try:
        cross_process_changes(browser, proxy.base_url, url, site_id, rider_list[0], changes)
        for server in servers:
            stop(server)
        cross_process_sign_out(browser, proxy, code, url, nurse_id, (first, second))
    finally:
        proxy.stop()
        for server in servers:
            stop(server)


def open_behind(browser, base: str, path: str, backend: str, cookies: tuple = ()):
    """A screen opened through the proxy, served by ``backend`` (its routing cookie)."""
    from tests.browser.conftest import BACKEND_COOKIE

    context = browser.new_context(viewport=SCREEN)
    context.add_cookies([*cookies, {"name": BACKEND_COOKIE, "value": backend, "url": base}])
    page = context.new_page()
    page.add_init_script(WATCH)
    page.goto(f"{base}{path}", timeout=180_000)
    page.wait_for_selector(IDLE, state="attached", timeout=120_000)
    return context, page


def press_ride_change(station, arrive: bool) -> float:
    """At the first server's Recovery: "Ride has arrived", or the correction that takes it
    back; returns the moment (epoch ms) of the press."""
    if arrive:
        button = station.get_by_role("button", name="Ride has arrived")
        button.wait_for(timeout=60_000)
    else:
        expander = station.get_by_test_id("stExpander").filter(has_text="Correct a mistake")
        if not expander.get_by_label("Why").is_visible():
            expander.locator("summary").click()
        expander.get_by_label("Why").fill("benchmark")
        button = expander.get_by_role("button", name="Take back the arrival")
    pressed = time.time() * 1000
    button.click()
    return pressed


def open_station(browser, base: str, site_id: int, name: str):
    """The first server's Recovery, a demo nurse, the rider chosen."""
    _, station = open_behind(browser, base, f"/recovery?site={site_id}", "first")
    station.get_by_role("radio", name="Nurse", exact=True).click()
    station.wait_for_selector(IDLE, state="attached", timeout=60_000)
    station.get_by_test_id("stSelectbox").filter(has_text="Patient").click()
    station.keyboard.type(name)
    station.get_by_role("option", name=re.compile(re.escape(name))).first.click()
    station.wait_for_selector(IDLE, state="attached", timeout=60_000)
    return station


def last_ride_change(url: str, session_id: int) -> tuple[int, float]:
    """The ride's last change: its version and when it was written (epoch ms)."""
    with read_session(url) as db:
        version, at = db.execute(
            select(RideChange.version, RideChange.changed_at)
            .where(RideChange.session_id == session_id)
            .order_by(RideChange.version.desc())
        ).first()
    return version, at.timestamp() * 1000


def cross_process_changes(browser, base: str, url: str, site_id: int, rider, changes: int):
    """A nurse at the first server records a ride's arrival and takes it back, ``changes``
    times (always possible); Today, Recovery and the wall served by the second show each."""
    session_id, name, label = rider
    with read_session(url) as db:
        code = db.execute(select(Site.code).where(Site.id == site_id)).scalar_one()
    station = open_station(browser, base, site_id, name)
    screens = {
        "Today": (f"/today?site={site_id}", "kdToday", name),
        "Recovery": (f"/recovery?site={site_id}", "kdRecovery", session_id),
        "Wall": (f"/wall?site={code}&embed=true", "kdWall", label),
    }
    pages = {n: open_behind(browser, base, path, "second")[1] for n, (path, _, _) in
             screens.items()}  # fmt: skip
    from_write: dict[str, list[float]] = {n: [] for n in screens}
    after_own: dict[str, list[float]] = {n: [] for n in screens}
    missed, unanswered = 0, 0
    for change in range(changes):
        with read_session(url) as db:
            arrive = db.execute(
                select(Ride.arrived_at).where(Ride.session_id == session_id)
            ).scalar_one() is None  # fmt: skip
        before, _ = last_ride_change(url, session_id)
        for n, (_, test, field) in screens.items():
            pages[n].evaluate(f"a => window.__kdArm('{test}', a)", [field, arrive])
        station.evaluate("a => window.__kdArm('kdRecovery', a)", [session_id, arrive])
        try:
            press_ride_change(station, arrive)
            station.wait_for_function("() => window.__kdSeen !== null", timeout=60_000)
        except Exception:  # the press went unanswered: counted, the station opened again
            unanswered += 1
            station.context.close()
            station = open_station(browser, base, site_id, name)
            continue
        own = station.evaluate("window.__kdSeen")
        version, written = last_ride_change(url, session_id)
        if version != before + 1:
            raise SystemExit("the ride was changed by someone else during the benchmark")
        for n, page in pages.items():
            try:
                page.wait_for_function("() => window.__kdSeen !== null", timeout=30_000,
                                       polling=50)  # fmt: skip
                seen = page.evaluate("window.__kdSeen")
            except Exception:  # a miss is counted, not fatal
                missed += 1
                seen = written + 30_000
            from_write[n].append(max(0.0, (seen - written) / 1000))
            after_own[n].append(max(0.0, (seen - own) / 1000))
        station.wait_for_selector(IDLE, state="attached", timeout=60_000)
        time.sleep(1.0 + (change % 7) * 0.3)
    done = len(from_write["Today"])
    print(f"\n3. Two processes behind nginx: {done} changes made through the first (a ride's "
          "arrival recorded and taken back at its Recovery), shown by the second's "
          "screens")  # fmt: skip
    for title, values in (("s from the write (its ride_change row's time)", from_write),
                          ("s after the first's own screen showed it", after_own)):  # fmt: skip
        print(f"   {title}\n   screen     p50    p95    max")
        every = [v for vs in values.values() for v in vs]
        for n, vs in values.items():
            print(f"   {n:9s} {statistics.median(vs):5.2f}  {pct(vs, 0.95):5.2f}  {max(vs):5.2f}")
        print(f"   all       {statistics.median(every):5.2f}  {pct(every, 0.95):5.2f}  "
              f"{max(every):5.2f}")  # fmt: skip
    print(f"   {missed} not shown within 30 s; {unanswered} presses at the first unanswered "
          "within 60 s")  # fmt: skip
    for page in [station, *pages.values()]:
        page.context.close()


SIGN_OUT_EMAIL = "bench.nurse@clinic.test"
# The second tab checks its sign-in every 60 s on its own (ui/auth.py, IDLE_CHECK_SECONDS).
BY_ITSELF_SECONDS = 90


def cross_process_sign_out(browser, proxy, code: Path, url: str, nurse_id: int,
                           ports: tuple[int, int]) -> None:  # fmt: skip
    """The same two ports with ``[auth]`` (a local OpenID Connect provider): a nurse signs in
    through the first, the same sign-in opens Today on the second, she signs out through
    the first; whether the second's tab signs out by itself, and on its next run."""
    import logging
    import secrets

    from oidc_provider_mock import User, run_server_in_thread

    from ketadash.screens import TODAY

    with write_session(url) as db:
        db.get(Staff, nurse_id).email = SIGN_OUT_EMAIL
    base = proxy.base_url
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    users = [User(sub=SIGN_OUT_EMAIL, claims={"email": SIGN_OUT_EMAIL, "name": "Bench"})]
    with run_server_in_thread(port=0, user_claims=users) as provider:
        secrets_file = proxy.folder / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "{base}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "ketadash-bench"\nclient_secret = "not-a-secret"\n'
            f'server_metadata_url = "http://127.0.0.1:{provider.server_port}'
            '/.well-known/openid-configuration"\n'
        )
        auth = ("--secrets.files", str(secrets_file))
        servers = [start_server(code, url, port, auth) for port in ports]
        try:
            _, first = open_behind(browser, base, "/today", "first")
            first.get_by_role("button", name="Sign in").click()
            first.wait_for_url("**/oauth2/authorize?**")
            first.locator('input[name="sub"]').fill(SIGN_OUT_EMAIL)
            first.get_by_role("button", name="Authorize", exact=True).click()
            first.wait_for_url(f"{base}/")
            first.wait_for_selector(IDLE, state="attached", timeout=60_000)
            # The same sign-in (its identity cookie) in a tab the second process serves.
            identity = [c for c in first.context.cookies() if c["name"].startswith("_streamlit")]
            served_before = proxy.websockets_to(ports[1])
            context, other = open_behind(browser, base, TODAY.path, "second", tuple(identity))
            try:
                other.get_by_role("button", name="Sign out").first.wait_for(timeout=30_000)
                signed_in = True
            except Exception:
                signed_in = False
            first.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
            first.wait_for_url("**/oauth2/end_session?**")
            first.get_by_role("button", name="End session").click()
            first.wait_for_url(f"{base}/")
            signed_out = time.monotonic()
            gone = re.compile(r"/oauth2/end_session\?")
            try:
                other.wait_for_url(gone, timeout=BY_ITSELF_SECONDS * 1000)
                by_itself = f"by itself after {time.monotonic() - signed_out:.1f} s"
            except Exception:
                by_itself = f"not by itself within {BY_ITSELF_SECONDS} s"
                clicked = time.monotonic()
                other.get_by_test_id("stSidebar").get_by_role("link", name=TODAY.title).click()
                try:
                    other.wait_for_url(gone, timeout=30_000)
                    after = time.monotonic() - clicked
                    by_itself += f"; at its next run (a menu click) after {after:.1f} s"
                except Exception:
                    by_itself += "; NOT at its next run (a menu click) within 30 s"
            context.close()
            first.context.close()
            served = proxy.websockets_to(ports[1]) - served_before
        finally:
            for server in servers:
                stop(server)
            secrets_file.unlink(missing_ok=True)
    print("\n4. Sign-out across the two processes (behind nginx, [auth] with a local provider)")
    print(f"   the second's tab signed in with the same sign-in: {signed_in}; its websocket "
          f"went to the second server: {served >= 1}")  # fmt: skip
    print(f"   signed out through the first; the second's tab was signed out {by_itself}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--code", type=Path, default=PROJECT_ROOT,
                        help="the checkout whose servers to run (default: this one)")  # fmt: skip
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--cpu-minutes", type=float, default=3)
    parser.add_argument("--two-processes", type=int, default=0, metavar="CHANGES")
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
            browser = launch_chromium(playwright)
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
                two_processes(browser, args.code.resolve(), url, args.two_processes, riders)
            browser.close()
    finally:
        stop(server)
        clean()


if __name__ == "__main__":
    main()
