"""What the benchmarks and soaks share: a free port, a ``streamlit run dashboard.py`` of
their own on a given checkout and database, Debian's Chromium through Playwright, and a
process's CPU seconds and memory read from /proc.

Not a test fixture (tests/browser/conftest.py has its own, which fail a test instead of
ending a run): a benchmark that cannot start its server stops with ``SystemExit``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ketadash.config import DATABASE_URL_VARIABLE, PROJECT_ROOT

CHROMIUM = os.environ.get("KETADASH_CHROMIUM", "/usr/bin/chromium")
# A screen in a background context must keep its timers and its rendering running as a
# screen on the wall does, or the browser, not the server, sets the pace.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-background-timer-throttling",
                 "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]  # fmt: skip
APP_IDLE = (
    '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
    '[data-test-script-state="notRunning"]'
)
START_SECONDS = 60
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    url: str,
    port: int,
    *,
    code: Path = PROJECT_ROOT,
    log: Path | None = None,
    watch_files: bool = True,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen:
    """``streamlit run dashboard.py`` from the checkout ``code`` on the database ``url``, in
    a process group of its own; returns once its health check answers.

    ``watch_files=False`` stops Streamlit watching the tree (an edit elsewhere in the
    checkout during a long run would reload its modules); ``extra`` adds options.
    """
    log = log or Path("/tmp") / f"bench-server-{port}.log"
    env = {**os.environ, DATABASE_URL_VARIABLE: url}
    watch = [] if watch_files else ["--server.fileWatcherType", "none"]
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", *watch, *extra],
        cwd=code, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    wait_healthy(f"http://127.0.0.1:{port}", process=process, log=log)
    return process


def wait_healthy(
    base: str, *, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Wait until ``base``'s health check answers (a server, or a proxy in front of one)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server at {base} exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    if process is not None:
        stop(process)
    raise SystemExit(f"{base} did not answer within {START_SECONDS} s; see {log}")


def stop(process: subprocess.Popen) -> None:
    """End a process started here (and its group), by its own id; SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def launch_chromium(playwright):
    """Debian's Chromium (``KETADASH_CHROMIUM`` or /usr/bin/chromium), headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Until the page is connected and no script run is going on."""
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)


def cpu_seconds(pid: int) -> float:
    """The user and system CPU seconds ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime: the 14th and 15th fields of the line, 12th and 13th after the name.
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    """The memory ``pid`` holds (resident set), MiB."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20
