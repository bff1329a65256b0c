"""Browser tests: a real ``streamlit run dashboard.py`` driven by Debian's Chromium.

Plain ``playwright.sync_api``, no pytest plugin. Chromium is found at
``KETADASH_CHROMIUM`` or ``/usr/bin/chromium``; without it the tests skip (and
fail under CI). Each server reads a small demo clinic built once per test session.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ketadash.config import DATABASE_URL_VARIABLE, PROJECT_ROOT
from ketadash.db import get_engine
from tests.conftest import skip_or_fail

CHROMIUM_VARIABLE = "KETADASH_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOT_DIR = PROJECT_ROOT / "artifacts" / "screenshots"
SCREEN = {"width": 1920, "height": 1080}
APP_IDLE = (
    '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
    '[data-test-script-state="notRunning"]'
)
SKELETONS = (
    '[data-testid="stSkeleton"], [data-testid="stSkeletonElement"], [data-testid="stAppSkeleton"]'
)
SERVER_START_TIMEOUT_S = 30
# Known noise (see shared/streamlit-notes.md): a deep link polls /<page>/_stcore/health
# and 404s; the icon font is fetched from the internet, which these machines cannot reach.
CONSOLE_NOISE = (
    re.compile(r"/_stcore/health"),
    re.compile(r"/_stcore/host-config"),
    re.compile(r"fonts\.(googleapis|gstatic)\.com"),
    re.compile(r"net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISCONNECTED|CONNECTION_REFUSED)"),
)


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium_path() -> str:
    path = os.environ.get(CHROMIUM_VARIABLE, "").strip() or DEFAULT_CHROMIUM
    if not Path(path).is_file():
        skip_or_fail(
            f"Chromium not found at {path} (install it with `apt-get install -y chromium` "
            f"or point {CHROMIUM_VARIABLE} at one)"
        )
    return path


@pytest.fixture(scope="session")
def demo_database_url(tmp_path_factory) -> str:
    """A small demo clinic (80 patients, 90 days), built once for the browser tests."""
    from ketadash.clock import utc_now
    from ketadash.demo import build_demo_clinic

    path = tmp_path_factory.mktemp("browser-db") / "demo.sqlite"
    url = f"sqlite:///{path}"
    # The servers show the real clock's day: the demo is laid out around it.
    build_demo_clinic(url=url, patients=80, history_days=90, now=utc_now())
    # The servers open the file themselves; keep no connection to it here.
    get_engine(url).dispose()
    return url


@dataclass
class AppServer:
    """A ``streamlit run dashboard.py`` of our own, in its own process group."""

    base_url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_server(
    *,
    database_url: str,
    log_dir: Path,
    port: int | None = None,
    secrets: Path | None = None,
    env: dict[str, str] | None = None,
) -> AppServer:
    """Start a fresh server (on a free port unless ``port`` says) and wait for its health check.

    ``secrets`` names a secrets.toml to read instead of the usual ones (for an ``[auth]``
    section): Streamlit's ``secrets.files`` option, so nothing is written into the
    project's ``.streamlit/``, whose config.toml still applies.
    """
    port = port or find_free_port()
    log_path = log_dir / f"streamlit-{port}.log"
    env = {**os.environ, **(env or {}), DATABASE_URL_VARIABLE: database_url}
    # The option replaces Streamlit's default locations (~/.streamlit/ and the project's
    # .streamlit/), so a developer's own secrets.toml cannot change what such a server sees.
    secrets_flags = ["--secrets.files", str(secrets)] if secrets is not None else []
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard.py",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                *secrets_flags,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"streamlit did not answer within {SERVER_START_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture(scope="session")
def app_server(demo_database_url, tmp_path_factory) -> Iterator[AppServer]:
    """One server shared by the tests that do not care about a first visit."""
    server = start_server(
        database_url=demo_database_url, log_dir=tmp_path_factory.mktemp("server-logs")
    )
    yield server
    server.stop()


@pytest.fixture
def fresh_server(demo_database_url, tmp_path) -> Iterator[Callable[..., AppServer]]:
    """Start brand-new servers (no session has run yet): for first-visit tests.

    ``fresh_server()`` serves the demo clinic; ``fresh_server(url)`` another database;
    ``env`` adds variables to the server's environment.
    """
    started: list[AppServer] = []

    def start(database_url: str | None = None, *, env: dict[str, str] | None = None) -> AppServer:
        server = start_server(
            database_url=database_url or demo_database_url, log_dir=tmp_path, env=env
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


NGINX = "/usr/sbin/nginx"
# The cookie a test sets to choose the backend behind the proxy (a real clinic's proxy
# hashes Streamlit's own cookie instead: see docs/deployment.md, "Several servers").
BACKEND_COOKIE = "kd_backend"


@dataclass
class Proxy:
    """Debian's nginx in front of several servers, as in docs/deployment.md, run by a test."""

    base_url: str
    process: subprocess.Popen
    folder: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)

    def websockets_to(self, port: int) -> int:
        """How many websockets (Streamlit sessions) the proxy has sent to ``port`` and seen
        closed (nginx logs a request when it ends)."""
        log = (self.folder / "access.log").read_text()
        return len(re.findall(rf"/_stcore/stream \S+ 101 -> 127\.0\.0\.1:{port}\b", log))


def start_proxy(*, backends: dict[str, int], folder: Path, port: int) -> Proxy:
    """nginx on ``port`` in front of ``backends`` (name to port): a browser whose
    BACKEND_COOKIE names one is sent there, any other to the first. Websockets proxied
    as docs/deployment.md's configuration does."""
    if not Path(NGINX).is_file():
        skip_or_fail(f"nginx not found at {NGINX} (apt-get install -y nginx)")
    first, *_ = backends.values()
    routes = "".join(f"    {name} 127.0.0.1:{p};\n" for name, p in backends.items())
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / temp).mkdir(exist_ok=True)
    (folder / "nginx.conf").write_text(
        f"user root;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
        "http {\n"
        '  log_format up "$request $status -> $upstream_addr";\n'
        f"  access_log {folder}/access.log up;\n"
        f"  client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;\n"
        f"  fastcgi_temp_path {folder}/fastcgi; uwsgi_temp_path {folder}/uwsgi;\n"
        f"  scgi_temp_path {folder}/scgi;\n"
        f"  map $cookie_{BACKEND_COOKIE} $backend {{\n{routes}"
        f"    default 127.0.0.1:{first};\n  }}\n"
        "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n"
        "      proxy_pass http://$backend;\n      proxy_http_version 1.1;\n"
        "      proxy_set_header Upgrade $http_upgrade;\n"
        "      proxy_set_header Connection $connection_upgrade;\n"
        "      proxy_set_header Host $host;\n      proxy_read_timeout 86400;\n"
        "    }\n  }\n}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=(folder / "nginx.out").open("wb"),
        start_new_session=True,
    )  # fmt: skip
    proxy = Proxy(base_url=f"http://127.0.0.1:{port}", process=process, folder=folder)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {(folder / 'nginx.out').read_text()}")
        try:
            with urllib.request.urlopen(f"{proxy.base_url}/_stcore/health", timeout=2):
                return proxy
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    proxy.stop()
    pytest.fail("nginx did not answer")


# How long an expect() waits for the app to show something. Playwright's own default
# (5 s) is short for a 2-core CI machine running a server, Chromium and the tests at once;
# waiting longer only costs time when a test is about to fail anyway.
EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = chromium_path()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (requirements-dev.txt)")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught page errors, less the known noise."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, message) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        text = f"{message.text} ({where})" if where else message.text
        if not any(noise.search(text) for noise in CONSOLE_NOISE):
            self.errors.append(text)

    def on_page_error(self, error) -> None:
        self.errors.append(f"page error: {error}")


@pytest.fixture
def page(browser) -> Iterator:
    """A 1920×1080 page; console errors or an exception shown at the end fail the test."""
    context = browser.new_context(viewport=SCREEN)
    new_page = context.new_page()
    watch = ConsoleWatch()
    new_page.on("console", watch.on_console)
    new_page.on("pageerror", watch.on_page_error)
    new_page.set_default_timeout(20_000)
    yield new_page
    shown_exceptions = new_page.get_by_test_id("stException").all_inner_texts()
    page_not_found = new_page.get_by_text("Page not found").count()
    context.close()
    assert not watch.errors, "browser console errors:\n" + "\n".join(watch.errors)
    assert not shown_exceptions, "the app showed an exception:\n" + "\n".join(shown_exceptions)
    assert not page_not_found, 'the app showed "Page not found"'


def another_station_writes(url: str) -> None:
    """A write that changes nothing shown but moves every site's data version (the
    triggers fire on any UPDATE): what makes live screens redraw, as another station's
    save would."""
    from sqlalchemy import text

    from ketadash.db import write_session

    with write_session(url) as db:
        db.connection().execute(text("UPDATE site SET name = name"))


def wait_for_app_idle(page, *, timeout_ms: int = 30_000) -> None:
    """Wait until the app is connected, its script has finished and nothing is still loading.

    For a few hundred ms after a run ends Streamlit may still show loading skeletons
    (seen on the first visit after the legacy-mode rerun), so wait for them to go too.
    """
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)
    page.wait_for_function(
        f"() => !document.querySelector('{SKELETONS}')", timeout=timeout_ms, polling=50
    )
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)


def assert_no_page_errors(page) -> None:
    """No Streamlit exception box and no "Page not found" dialog on the page."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("Page not found")).to_have_count(0)


def screenshot(page, name: str) -> Path:
    """Save a 1920×1080 PNG under artifacts/screenshots/ and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.set_viewport_size(SCREEN)
    page.screenshot(path=str(path))
    return path


def demo_sign_in_as(page, person: str) -> None:
    """Switch the demo sign-in to ``person`` ("Nurse", "Clinic lead" or "Front desk").

    The switch reruns the page twice (the click, then the sign-in's own rerun), and for a
    moment after the click the app still reads idle from the run before: wait for the
    sidebar to name the new role, then for the app to be idle, so the next click is not
    sent into a run that is about to be replaced."""
    from playwright.sync_api import expect

    page.get_by_role("radio", name=person, exact=True).click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text(person.lower(), timeout=30_000)
    wait_for_app_idle(page)
