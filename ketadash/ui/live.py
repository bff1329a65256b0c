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
* ``live_fragment`` redraws a part of the page every few seconds. When the
  database cannot be read it draws the last good data under a "Not updated since
  hh:mm:ss" marker instead of an error, keeps trying, and when the database
  answers again reruns the whole page so every part of it catches up. The data's
  own read time is what the screen calls "Updated".
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import streamlit as st

from ketadash.clock import to_local, utc_now
from ketadash.db import DatabaseUnavailable

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
            return Reading(data=read(*args), read_at=utc_now())

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
        reading = self._cached(*args)
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
        self._cached.clear(*args)
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
) -> None:
    """A part of the page that reads and redraws itself every ``refresh_seconds``.

    ``read(now)`` returns plain data, or a ``Reading`` when it knows when the data
    was read (a cached read); ``draw(live)`` draws it. ``key`` names the data
    (include the database and site): the last good reading is kept under it in
    the browser session and for the server process, so a page opened during an
    outage still shows what the server last saw. While the database cannot be
    read, the last good data is drawn under a "Not updated since" marker (times
    in ``time_zone``) and the fragment keeps trying; the first good read after an
    outage reruns the whole page, so parts outside the fragment catch up too.
    """
    state_key = f"{_LIVE_STATE_PREFIX}{key}"

    @st.fragment(run_every=refresh_seconds)
    def _live() -> None:
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
                    f"Trying again every {refresh_seconds:g} s: this screen fills in by itself.",
                    icon=":material/cloud_off:",
                )
                return
            st.warning(
                f"Not updated since {to_local(reading.read_at, time_zone):%H:%M:%S} — the "
                "clinic database cannot be reached; this catches up by itself (timers keep "
                "running). Tell the clinic lead if this lasts.",
                icon=":material/cloud_off:",
            )
            draw(Live(data=reading.data, read_at=reading.read_at, now=now, stale=True))
            return
        reading = got if isinstance(got, Reading) else Reading(data=got, read_at=now)
        st.session_state[state_key] = _LiveState(reading=reading, down_since=None)
        _last_good_store().put(("live", key), reading)
        if previous.down_since is not None:
            # Back after an outage: the rest of the page (a panel, a form's
            # choices) may still show an error or old data; one full run fixes that.
            st.rerun(scope="app")
        draw(Live(data=reading.data, read_at=reading.read_at, now=now, stale=False))

    _live()
