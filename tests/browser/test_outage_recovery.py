"""Issue 6 item 19 in Chromium: every page comes back by itself after a database outage.

The server reaches PostgreSQL through a small TCP relay of the test's own, and
the outage is the relay going away (connections cut, new ones refused), which is
what a nurse's screen sees when the database server or the network drops. A page
left open shows its last board under "Not updated since"; a page opened during
the outage on a warm server shows what the server last read; a page on a server
started during the outage shows the outage page. When the relay comes back,
all three show the live board without a click.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ketadash.clock import utc_now
from ketadash.db import get_engine, migrate
from tests.browser.conftest import SCREEN, find_free_port, screenshot, wait_for_app_idle
from tests.conftest import _postgres_server_url, with_search_path
from tests.utils.factories import make_clinic, make_patient, make_session, mark_as_demo

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

# The board refreshes every 5 s with a 5 s cache; the outage page retries every 10 s.
NOTICE_WAIT_MS = 40_000


class Relay:
    """A TCP relay from a local port to PostgreSQL that the test can cut and restore."""

    def __init__(self, *, target_port: int) -> None:
        self.port = find_free_port()
        self._target = ("127.0.0.1", target_port)
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop every open one, as a dead server would."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update({client, server})
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relayed_clinic() -> Iterator[tuple[str, Relay]]:
    """A small clinic in a schema of its own, and the relayed URL the server is given."""
    server = _postgres_server_url()
    schema = f"ketadash_outage_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    direct = with_search_path(server, schema)
    migrate(direct)
    clinic = make_clinic(url=direct)
    mark_as_demo(direct)  # signed in as the demo's nurse, Dana Reyes
    patient = make_patient(url=direct, first="Robin", last="Outage", site_id=clinic.site_id)
    make_session(url=direct, clinic=clinic, patient_id=patient,
                 scheduled_start=utc_now() + timedelta(minutes=30))  # fmt: skip
    get_engine(direct).dispose()
    parsed = sa.engine.make_url(direct)
    relay = Relay(target_port=parsed.port or 5432)
    relay.start()
    relayed = parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    yield relayed, relay
    relay.cut()
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def _board_shows_the_patient(page, *, timeout: int = NOTICE_WAIT_MS) -> None:
    from playwright.sync_api import expect

    expect(page.locator('.kd-lane[data-lane="expected"]')).to_contain_text(
        "Robin Outage", timeout=timeout
    )


def test_every_page_comes_back_by_itself(fresh_server, browser, relayed_clinic):
    from playwright.sync_api import expect

    url, relay = relayed_clinic
    warm = fresh_server(url)
    contexts = []

    def open_today(server):
        context = browser.new_context(viewport=SCREEN)
        contexts.append(context)
        page = context.new_page()
        # Actions wait this long; assertions are given the same wait where they need it
        # (Playwright's expect has its own 5 s default).
        page.set_default_timeout(NOTICE_WAIT_MS)
        page.goto(f"{server.base_url}/today")
        wait_for_app_idle(page)
        return page

    try:
        left_open = open_today(warm)
        _board_shows_the_patient(left_open)

        relay.cut()
        # The page left open keeps its board, says since when, and keeps trying.
        expect(left_open.get_by_text("Not updated since")).to_be_visible(timeout=NOTICE_WAIT_MS)
        _board_shows_the_patient(left_open, timeout=1_000)
        screenshot(left_open, "outage-left-open")

        # A page opened during the outage on the same server shows what it last read.
        opened_during = open_today(warm)
        expect(opened_during.get_by_text("Not updated since")).to_be_visible(timeout=NOTICE_WAIT_MS)
        _board_shows_the_patient(opened_during, timeout=1_000)

        # A server started during the outage has nothing to show: the outage page,
        # which says it tries again by itself.
        cold = fresh_server(url)
        cold_page = open_today(cold)
        expect(cold_page.get_by_text("The clinic database cannot be reached")).to_be_visible(
            timeout=NOTICE_WAIT_MS
        )
        expect(cold_page.get_by_text("Trying again every")).to_be_visible(timeout=NOTICE_WAIT_MS)
        screenshot(cold_page, "outage-cold-server")

        relay.start()
        # No click anywhere: every page catches up.
        for page in (left_open, opened_during, cold_page):
            _board_shows_the_patient(page)
            expect(page.get_by_text("Not updated since")).to_have_count(0, timeout=NOTICE_WAIT_MS)
            expect(page.get_by_text("cannot be reached")).to_have_count(0, timeout=NOTICE_WAIT_MS)
            expect(page.get_by_role("button", name="Try again")).to_have_count(0)
        screenshot(cold_page, "outage-recovered")
    finally:
        for context in contexts:
            context.close()
