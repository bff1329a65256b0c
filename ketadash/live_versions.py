"""Sites' data versions: what a live screen watches to know that it must redraw.

Every write a screen shows moves its site's version in the same transaction, by
database triggers (migration 0007), so a version read here never runs ahead of the
data: once a reader sees version v, a read of the data sees every write up to v.

One ``VersionWatch`` per server process and database reads every site's version in
one small query a few times a second, from a thread of its own, whether one screen is
open or two hundred; screens only compare numbers (``SiteVersions``). No Streamlit here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from ketadash.db import DatabaseUnavailable, read_session

# How often a process asks the database. With the browser's own check each second this
# keeps a change within about 1.5 s of every screen (benchmarks/bench_live_room.py).
WATCH_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True)
class SiteVersions:
    """Every site's version as one read saw it; ``down`` when the database did not answer.

    A site with no row yet (a database from before 0007 upgraded with no writes since)
    reads as version 0.
    """

    sites: dict[int, int] = field(default_factory=dict)
    down: bool = False

    def of(self, site_id: int | None) -> int:
        """The site's version; for None (a screen of the whole clinic) the sum of all."""
        if site_id is None:
            return sum(self.sites.values())
        return self.sites.get(site_id, 0)

    def shown_as(self, site_id: int | None) -> str:
        """What a screen of ``site_id`` (None: every site) compares: its version, or "down"."""
        return "down" if self.down else str(self.of(site_id))

    def token(self) -> str:
        """Every version in one short text, for a browser to compare: it changes exactly
        when some site's version changes (or the database goes down or comes back)."""
        if self.down:
            return "down"
        return ",".join(f"{site}:{version}" for site, version in sorted(self.sites.items()))


def read_versions(*, url: str) -> SiteVersions:
    """Every site's version now; raises DatabaseUnavailable when the database cannot answer."""
    with read_session(url) as db:
        rows = db.connection().execute(text("SELECT site_id, version FROM site_version"))
        return SiteVersions(sites={int(site): int(version) for site, version in rows})


class VersionWatch:
    """Reads every site's version every ``every_seconds`` on a daemon thread, keeps the
    latest, and calls ``on_change`` (from that thread) when it differs from the last.

    ``current`` never touches the database: a screen may ask it on every run.
    """

    def __init__(
        self,
        *,
        url: str,
        every_seconds: float = WATCH_SECONDS,
        on_change: Callable[[SiteVersions], None] | None = None,
        read: Callable[[], SiteVersions] | None = None,
    ) -> None:
        self._read = read or (lambda: read_versions(url=url))
        self._every = every_seconds
        self._on_change = on_change
        self._lock = threading.Lock()
        self._current = self._read_once()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kd-version-watch", daemon=True)
        self._thread.start()

    def _read_once(self) -> SiteVersions:
        try:
            return self._read()
        except DatabaseUnavailable:
            return SiteVersions(down=True)

    def check_now(self) -> SiteVersions:
        """Read the versions now (also what the thread does); returns them."""
        got = self._read_once()
        with self._lock:
            changed = got != self._current
            self._current = got
        if changed and self._on_change is not None:
            self._on_change(got)
        return got

    @property
    def current(self) -> SiteVersions:
        with self._lock:
            return self._current

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.check_now()
            except Exception:  # the watch must outlive any one bad read
                time.sleep(self._every)

    def stop(self) -> None:
        self._stop.set()


class VersionHub:
    """Lets requests on an asyncio event loop wait until a site's version moves (the long
    poll behind the change watch), woken by the watch's thread: no polling, no timer.

    ``changed`` may be called from any thread; ``wait`` runs on the event loop (one loop
    per process: the web server's).
    """

    def __init__(self, current: Callable[[], SiteVersions]) -> None:
        self._current = current
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moved: asyncio.Future[None] | None = None
        self._closing = False

    def close(self) -> None:
        """On the event loop, when the server stops: every wait answers now (a web server
        waits for open requests before it exits) and later ones do not wait."""
        self._closing = True
        self._wake()

    def changed(self) -> None:
        """Wake every waiter, from any thread (the watch calls this on each change)."""
        with self._lock:
            loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between: nobody waits
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        moved, self._moved = self._moved, None
        if moved is not None and not moved.done():
            moved.set_result(None)

    async def wait(self, *, site_id: int | None, seen: str | None, hold_seconds: float) -> str:
        """``site_id``'s version (``SiteVersions.shown_as``) once it differs from ``seen``, or
        after ``hold_seconds`` whatever it is."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
        deadline = loop.time() + hold_seconds
        while True:
            # Read after the loop is known: a change from now on wakes this wait, since
            # its wake-up runs on this loop only after this coroutine awaits.
            now = self._current().shown_as(site_id)
            remaining = deadline - loop.time()
            if now != seen or remaining <= 0 or self._closing:
                return now
            if self._moved is None:
                self._moved = loop.create_future()
            # asyncio.wait, not wait_for: a timeout must not cancel the shared future.
            await asyncio.wait({self._moved}, timeout=remaining)
