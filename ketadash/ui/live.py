"""What every live screen shares: cached reads a write can clear, and a self-refreshing part.

* ``cached_read`` caches one read per set of arguments for a few seconds (every
  screen of one server shares it), stamps each result with the moment the
  database answered, keeps the last good result per arguments for outages, and
  registers the read under a scope, so a write clears only what it made stale:
  ``clear_site_day`` after a nurse's save drops that site's day, not the lead's
  aggregates (``Scope.PERIOD`` reads are never cleared by a write; they expire).
  Streamlit 1.67 clears one entry when ``.clear()`` gets the function's arguments
  (the same key as the call: same values, same positions), so every read here is
  called and cleared with positional arguments only. A read is copied for each
  caller (``st.cache_data``) unless it is ``shared``: a lead's year of visits is
  handed out as the one cached object (``st.cache_resource``), since copying it
  would cost more than the page; its callers never change it. Within one page
  run (``reads_shared_within_the_run``) a read asked for twice with the same
  arguments, by the panel and by the board, say, is copied out of the cache once.
* ``live_fragment`` redraws a part of the page when its site's data version moves
  (and on each clock tick), not on a timer: ``on_change_fragment`` puts the change
  watch (a tiny component, ``ketadash/ui/change_watch/index.html``) inside the
  fragment; it keeps a long poll open (``ketadash/ui/live_wait.py``, answered when this
  process's ``VersionWatch`` sees the version move; without the route, a static file of
  versions in ``static/live/``) and reruns the fragment only when its version moved. When the
  database cannot be read it draws the last good data under a "Not updated since
  hh:mm:ss" marker instead of an error, keeps trying, and when the database
  answers again reruns the whole page so every part of it catches up. The data's
  own read time is what the screen calls "Updated".
* Cached reads of a site (``Scope.SITE``, ``Scope.SITE_DAY``) and of the clinic are
  keyed by the data version this process has seen, so no process serves a picture
  older than the version it knows, whichever process made the write.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import streamlit as st
import streamlit.components.v1 as components
from streamlit.runtime import Runtime

from ketadash.clock import to_local, utc_now
from ketadash.config import PROJECT_ROOT
from ketadash.db import DatabaseUnavailable
from ketadash.live_versions import SiteVersions, VersionHub, VersionWatch
from ketadash.ui import live_wait

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Enough for every site's day, staff and chairs, and a lead's few aggregates; the
# oldest are forgotten first, so a server left running for months does not grow.
LAST_GOOD_ENTRIES = 256
_LIVE_STATE_PREFIX = "kd_live_"


@dataclass(frozen=True, kw_only=True)
class Reading(Generic[T]):
    """Data as the database gave it, and when it answered (aware UTC)."""

    data: T
    read_at: datetime


@dataclass(frozen=True, kw_only=True)
class Live(Generic[T]):
    """What a live drawer draws: the data, when it was read, this run's ``now``, staleness.

    ``stale`` is True when the database could not be read on this run and ``data``
    is the last good reading; ``read_at`` is always the data's own read time.
    """

    data: T
    read_at: datetime
    now: datetime
    stale: bool


class Scope(StrEnum):
    """What a cached read depends on, which is what a write clears."""

    CLINIC = "clinic"  # arguments (url): sites, the clinic's name
    SITE = "site"  # (url, site_id): staff, chairs
    SITE_DAY = "site_day"  # (url, site_id, day): a site's board for one day
    PERIOD = "period"  # a lead's aggregates: a write never clears them, they expire


class Recent(Generic[K, V]):
    """A map kept for the whole server process, safe across sessions' threads, holding at
    most ``capacity`` entries: the one stored longest ago is forgotten first, so a server
    left running for months does not grow."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._capacity:
                self._values.popitem(last=False)

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._values.get(key)

    def pop(self, key: K) -> None:
        with self._lock:
            self._values.pop(key, None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values


# The last good reading per key, for outages.
_LastGood = Recent[Hashable, Reading[Any]]


@st.cache_resource(show_spinner=False)
def _last_good() -> _LastGood:
    # A resource, not a module global: ``st.cache_resource.clear()`` forgets it too.
    return _LastGood(LAST_GOOD_ENTRIES)


@dataclass(kw_only=True)
class _ThisRun:
    """What one page run has read: each cached reading once, and the last-good store."""

    readings: dict[Hashable, Reading[Any]]
    last_good: _LastGood | None = None


# Per thread, not in the session state: with Streamlit's fast reruns a click starts
# the next run of a browser session while the last one is still stopping.
_THIS_RUN: ContextVar[_ThisRun | None] = ContextVar("kd_this_run", default=None)


def _last_good_store() -> _LastGood:
    # One lookup of the resource a run (each costs about 45 µs), not one a read.
    this_run = _THIS_RUN.get()
    if this_run is None:
        return _last_good()
    if this_run.last_good is None:
        this_run.last_good = _last_good()
    return this_run.last_good


# --- data versions: what every live screen watches ------------------------------------

# Where a process publishes its sites' versions for the browsers' change watch: Streamlit
# serves the main script's ``static/`` folder at ``/app/static/`` (server.enableStaticServing).
LIVE_FILES_DIR = PROJECT_ROOT / "static" / "live"
# Each minute a screen redraws anyway: clocks and timers (minutes since a start) move on.
TICK_SECONDS = 60
# How often the browser asks the file (a static GET, no script run) where there is no long
# poll, and how long it waits before asking again after a failed request.
POLL_MS = 1000
# While a drawing is stale (the database away), how often it tries again by itself.
STALE_RETRY_SECONDS = 10
# A watched fragment keeps a slow timer too. Not for the data: Streamlit 1.67's browser
# code reruns the page after a reconnect (a server restart) only when the page has a
# timed fragment ("autoRerunIntervals" in its App), and a new server session knows
# none of the old page's fragments, so the watch alone could not bring it back.
RECONNECT_TIMER_SECONDS = 300
_CHANGE_WATCH = components.declare_component(
    "kd_change_watch", path=str(Path(__file__).parent / "change_watch")
)
# The watch takes no room: its box is taken out of the page's flow.
_WATCH_CSS = (
    '<style>[class*="st-key-kd-watch-box"]{height:0;min-height:0;margin:0;padding:0;'
    "overflow:hidden;position:absolute}</style>"
)


def served_by_a_server() -> bool:
    """True in a ``streamlit run`` server, False under AppTest (whose runtime is a mock):
    only a real server has browsers to tell, and a thread per test database would be waste."""
    return Runtime.exists() and type(Runtime.instance()) is Runtime


def _server_port() -> int:
    from streamlit import config

    return int(config.get_option("server.port") or 0)


# A process rewrites its file at least this often, so that a file older than
# STALE_FILE_SECONDS belongs to no running process and any starting process may remove it.
REWRITE_SECONDS = 600
STALE_FILE_SECONDS = 86_400


@dataclass(kw_only=True)
class _Published:
    watch: VersionWatch
    file: Path | None  # None: the folder cannot be written
    # The long poll's name for this database (``live_wait``); None: no route, the
    # browsers poll the file. With neither, screens fall back to a timer.
    hub: str | None = None
    written_at: float = 0.0

    def keep_fresh(self) -> None:
        # A quiet clinic writes nothing for hours: rewrite now and then (see above).
        if self.file is not None and time.monotonic() - self.written_at > REWRITE_SECONDS:
            self.written_at = time.monotonic()
            _write_versions(self.file, self.watch.current)


def _file_for(url: str) -> Path:
    # Named by database and port, not by content: several processes on one machine each
    # keep their own; the name tells nothing about the clinic.
    digest = hashlib.sha256(f"{url}|{_server_port()}".encode()).hexdigest()[:16]
    return LIVE_FILES_DIR / f"{digest}.json"


def _write_versions(path: Path, versions: SiteVersions) -> bool:
    body = {
        "down": versions.down,
        "sites": {str(site): version for site, version in versions.sites.items()},
        "total": versions.of(None),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(body), encoding="utf-8")
        os.replace(partial, path)  # a browser never reads half a file
        return True
    except OSError:
        return False


def _remove_stale_files() -> None:
    try:
        for old in LIVE_FILES_DIR.glob("*.json"):
            if time.time() - old.stat().st_mtime > STALE_FILE_SECONDS:
                old.unlink(missing_ok=True)
    except OSError:
        pass


@st.cache_resource(show_spinner=False)
def _published(url: str) -> _Published:
    """This process's watch of ``url``'s versions, published to its file on every change."""
    _remove_stale_files()
    path = _file_for(url)

    hub = VersionHub(current=lambda: watch.current)

    def publish(versions: SiteVersions) -> None:
        _write_versions(path, versions)
        hub.changed()  # answers every waiting long poll at once

    watch = VersionWatch(url=url, on_change=publish)
    # Left in place when the process ends: a browser still polling it across a restart
    # must not meet a 404 (a console error); the next process rewrites it.
    ok = _write_versions(path, watch.current)
    key = live_wait.register(url, hub) if live_wait.install() else None
    return _Published(watch=watch, file=path if ok else None, hub=key, written_at=time.monotonic())


def data_versions(url: str) -> SiteVersions | None:
    """Every site's version as this process last saw it (a few tenths of a second old at
    most); None under AppTest, where nothing is watched and caches work as before."""
    if not served_by_a_server():
        return None
    published = _published(url)
    published.keep_fresh()
    return published.watch.current


def _version_key(scope: Scope, args: tuple[Hashable, ...]) -> Hashable:
    # The version a cached read is keyed by: its site's (SITE, SITE_DAY: args are
    # (url, site_id, ...)), the clinic's (CLINIC: every site's), none for PERIOD reads.
    if scope is Scope.PERIOD or not args or not isinstance(args[0], str):
        return None
    versions = data_versions(args[0])
    if versions is None:
        return None
    if scope is Scope.CLINIC:
        return versions.token()
    return versions.of(args[1]) if len(args) > 1 and isinstance(args[1], int) else None


def version_token(url: str, site_id: int | None) -> str | None:
    """What the change watch compares: the site's version (or "down"); None under AppTest."""
    versions = data_versions(url)
    if versions is None:
        return None
    return versions.shown_as(site_id)


def watching(url: str) -> bool:
    """True when screens of ``url`` can redraw on change: a real server whose process
    answers the long poll or publishes its versions file. Otherwise (AppTest; neither
    the route nor a folder it can write) they refresh on a timer as before."""
    if not served_by_a_server():
        return False
    published = _published(url)
    return published.hub is not None or published.file is not None


def change_watch(
    *,
    url: str,
    site_id: int | None,
    key: str,
    token: str | None,
    tick_seconds: int = TICK_SECONDS,
    stale: bool = False,
) -> None:
    """Draw the change watch (invisible) in the running fragment, if ``watching(url)``.

    ``token`` is ``version_token`` taken BEFORE the fragment read its data, so the data
    is at least that new. The fragment reruns when the site's version moves past it, at
    every ``tick_seconds`` of the clock, and every STALE_RETRY_SECONDS while ``stale``.
    """
    if not watching(url):
        return
    published = _published(url)
    file = published.file
    with st.container(key=f"kd-watch-box-{key}"):
        st.html(_WATCH_CSS)
        _CHANGE_WATCH(
            key=f"kd-watch-{key}",
            default=None,
            # Both relative to the component's own page (<base>/component/<name>/).
            wait=None if published.hub is None else f"../../{live_wait.WAIT_PATH}",
            hub=published.hub,
            hold_seconds=live_wait.HOLD_SECONDS,
            source=None if file is None else f"../../app/static/live/{file.name}",
            site=site_id,
            version=token,
            tick_seconds=tick_seconds,
            poll_ms=POLL_MS,
            retry_seconds=STALE_RETRY_SECONDS,
            stale=stale,
        )


@dataclass(frozen=True, kw_only=True)
class Drawn:
    """What a change-driven fragment's body reports: whether it drew stale data (it then
    retries by itself), and how often its clock must tick (None: each minute)."""

    stale: bool = False
    tick_seconds: int | None = None


def on_change_fragment(
    *, url: str | None, site_id: int | None, key: str, fallback_seconds: float
) -> Callable[[Callable[[], Drawn | None]], Callable[[], None]]:
    """Decorate a fragment body: it reruns when the site's data version moves (and each
    minute), or every ``fallback_seconds`` where there is no watch (AppTest, no file).

    The body draws and returns ``Drawn`` (or None: fresh, minute ticks). Forms must stay
    outside it: nothing outside the fragment reruns with it.
    """
    timed = url is None or not watching(url)

    def decorate(body: Callable[[], Drawn | None]) -> Callable[[], None]:
        @st.fragment(run_every=fallback_seconds if timed else RECONNECT_TIMER_SECONDS)
        def _run() -> None:
            if timed or url is None:
                body()
                return
            token = version_token(url, site_id)  # before the read: see change_watch
            drawn = body() or Drawn()
            change_watch(url=url, site_id=site_id, key=key, token=token,
                         tick_seconds=drawn.tick_seconds or TICK_SECONDS,
                         stale=drawn.stale)  # fmt: skip

        return _run

    return decorate


class CachedRead(Generic[T]):
    """A registered cached read; call it with positional arguments only."""

    def __init__(
        self,
        read: Callable[..., T],
        *,
        scope: Scope,
        ttl_seconds: float,
        shared: bool = False,
        max_entries: int | None = None,
        spinner: str | bool = False,
    ) -> None:
        @functools.wraps(read)
        def stamped(*args: Any) -> Reading[T]:
            # The last argument is the data version the entry is keyed by (not the read's).
            return Reading(data=read(*args[:-1]), read_at=utc_now())

        # functools.wraps keeps the read's own name and source, which is what
        # Streamlit keys a function's cache on: two reads never share one.
        cache = st.cache_resource if shared else st.cache_data
        self._cached = cache(ttl=ttl_seconds, max_entries=max_entries, show_spinner=spinner)(
            stamped
        )
        self.name = f"{read.__module__}.{read.__qualname__}"
        self.scope = scope
        # A shared read is large (a lead's aggregates): its last reading is not kept for
        # outages as well, or up to LAST_GOOD_ENTRIES of them would stay in memory.
        self.keeps_last_good = not shared

    def reading(self, *args: Hashable) -> Reading[T]:
        """The cached reading for ``args``; raises DatabaseUnavailable when it cannot be read."""
        this_run = _THIS_RUN.get()
        key = (self.name, args)
        if this_run is not None and key in this_run.readings:
            return this_run.readings[key]
        reading = self._cached(*args, _version_key(self.scope, args))
        if self.keeps_last_good:
            _last_good_store().put(key, reading)
        if this_run is not None:
            this_run.readings[key] = reading
        return reading

    def __call__(self, *args: Hashable) -> T:
        return self.reading(*args).data

    def last_good(self, *args: Hashable) -> Reading[T] | None:
        """The last reading this process got for ``args``, however old, or None."""
        return _last_good_store().get((self.name, args))

    def or_last_good(self, *args: Hashable) -> T:
        """The data for ``args``, or during an outage the last good data if there is any.

        For what changes seldom (sites, staff, the demo marker): a screen keeps
        working through an outage instead of stopping. Raises DatabaseUnavailable
        only when this process never read ``args``.
        """
        try:
            return self(*args)
        except DatabaseUnavailable:
            last = self.last_good(*args)
            if last is None:
                raise
            return last.data

    def clear(self, *args: Hashable) -> None:
        """Forget the cached reading for ``args`` (every reading when none are given)."""
        if args:
            self._cached.clear(*args, _version_key(self.scope, args))
        else:
            self._cached.clear()
        forget_reads_this_run()


_REGISTRY: dict[str, CachedRead[Any]] = {}


@contextmanager
def reads_shared_within_the_run() -> Iterator[None]:
    """Within this block (one whole page run) each cached read is copied out once per
    set of arguments, and every part of the page sees that one reading.

    A fragment's own reruns run outside it and read the cache afresh; a write's
    clearing (``CachedRead.clear``) also forgets what this run has read.
    """
    token = _THIS_RUN.set(_ThisRun(readings={}))
    try:
        yield
    finally:
        _THIS_RUN.reset(token)


def forget_reads_this_run() -> None:
    """Forget what this run has read (after a write, or after clearing every cache)."""
    this_run = _THIS_RUN.get()
    if this_run is not None:
        this_run.readings.clear()


def cached_read(
    *,
    scope: Scope,
    ttl_seconds: float,
    shared: bool = False,
    max_entries: int | None = None,
    spinner: str | bool = False,
) -> Callable[[Callable[..., T]], CachedRead[T]]:
    """Decorate a read of plain data: cached per arguments, stamped, registered under ``scope``.

    The read's positional parameters must follow its scope: ``(url)`` for
    CLINIC, ``(url, site_id)`` for SITE, ``(url, site_id, day)`` for SITE_DAY;
    a PERIOD read takes what it needs (``url`` first). ``shared`` hands every caller
    the one cached object instead of a copy (for large results nobody changes);
    ``max_entries`` bounds the entries kept; ``spinner`` is shown while it reads.
    """

    def register(read: Callable[..., T]) -> CachedRead[T]:
        cached = CachedRead(
            read,
            scope=scope,
            ttl_seconds=ttl_seconds,
            shared=shared,
            max_entries=max_entries,
            spinner=spinner,
        )
        # Keyed by name: a module reloaded by Streamlit's file watcher replaces its
        # reads instead of registering them twice.
        _REGISTRY[cached.name] = cached
        return cached

    return register


def _reads(scope: Scope) -> list[CachedRead[Any]]:
    return [read for read in _REGISTRY.values() if read.scope is scope]


def clear_site_day(*, url: str, site_id: int, day: date) -> None:
    """After a write at a site: every screen of this server reads that site's day afresh.

    Reads of other scopes (staff, sites, aggregates) and other sites keep their caches.
    """
    for read in _reads(Scope.SITE_DAY):
        read.clear(url, site_id, day)


def clear_every_site_day() -> None:
    """Every site's every day, for a writer that cannot say which (a cache entry is named whole)."""
    for read in _reads(Scope.SITE_DAY):
        read.clear()


@dataclass(frozen=True, kw_only=True)
class _LiveState:
    reading: Reading[Any] | None
    down_since: datetime | None


def live_fragment(
    *,
    key: str,
    read: Callable[[datetime], T | Reading[T]],
    draw: Callable[[Live[T]], None],
    refresh_seconds: float,
    time_zone: str,
    url: str | None = None,
    site_id: int | None = None,
) -> None:
    """A part of the page that reads and redraws itself when ``site_id``'s data version
    moves at ``url`` (and each minute), or every ``refresh_seconds`` without a watch.

    ``read(now)`` returns plain data, or a ``Reading`` when it knows when the data
    was read (a cached read); ``draw(live)`` draws it. ``key`` names the data
    (include the database and site): the last good reading is kept under it in
    the browser session and for the server process, so a page opened during an
    outage still shows what the server last saw. While the database cannot be
    read, the last good data is drawn under a "Not updated since" marker (times
    in ``time_zone``) and the fragment keeps trying; the first good read after an
    outage reruns the whole page, so parts outside the fragment catch up too.
    Without ``url`` it refreshes on the timer only.
    """
    state_key = f"{_LIVE_STATE_PREFIX}{key}"
    retry_seconds = STALE_RETRY_SECONDS if url is not None and watching(url) else refresh_seconds

    @on_change_fragment(url=url, site_id=site_id, key=key, fallback_seconds=refresh_seconds)
    def _live() -> Drawn | None:
        now = utc_now()
        previous: _LiveState = st.session_state.get(
            state_key, _LiveState(reading=None, down_since=None)
        )
        try:
            got = read(now)
        except DatabaseUnavailable:
            reading = previous.reading or _last_good_store().get(("live", key))
            down_since = previous.down_since or now
            st.session_state[state_key] = _LiveState(reading=reading, down_since=down_since)
            if reading is None:
                st.error(
                    "The clinic database cannot be reached, so there is nothing to show yet. "
                    f"Trying again every {retry_seconds:g} s: this screen fills in by itself.",
                    icon=":material/cloud_off:",
                )
                return Drawn(stale=True)
            st.warning(
                f"Not updated since {to_local(reading.read_at, time_zone):%H:%M:%S} — the "
                "clinic database cannot be reached; this catches up by itself (timers keep "
                "running). Tell the clinic lead if this lasts.",
                icon=":material/cloud_off:",
            )
            draw(Live(data=reading.data, read_at=reading.read_at, now=now, stale=True))
            return Drawn(stale=True)
        reading = got if isinstance(got, Reading) else Reading(data=got, read_at=now)
        st.session_state[state_key] = _LiveState(reading=reading, down_since=None)
        _last_good_store().put(("live", key), reading)
        if previous.down_since is not None:
            # Back after an outage: the rest of the page (a panel, a form's
            # choices) may still show an error or old data; one full run fixes that.
            st.rerun(scope="app")
        draw(Live(data=reading.data, read_at=reading.read_at, now=now, stale=False))
        return None

    _live()
