"""A forced interleaving of two stations: the first pauses inside its transaction.

``interleave`` runs the first station until it reaches a function it calls inside
its write (after it has read what it decides on), runs the second station to its
end (or until it has waited ``blocked_after`` seconds on a lock the first holds),
then lets the first go on. The same order every run, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Outcome:
    """What one station's attempt returned, or the error it raised."""

    value: object = None
    error: BaseException | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


def interleave(
    *,
    monkeypatch,
    pause_in: tuple[object, str],
    first: Callable[[], object],
    second: Callable[[], object],
    blocked_after: float = 1.5,
) -> tuple[Outcome, Outcome]:
    """Run ``first`` until it calls ``pause_in`` (module, name), then ``second``, then the rest.

    Returns both outcomes. A second station that waits on a lock is let wait
    ``blocked_after`` seconds (proof that it waits), then the first goes on.
    """
    module, name = pause_in
    original = getattr(module, name)
    reached, release = threading.Event(), threading.Event()
    first_thread: list[threading.Thread] = []

    def paused(*args, **kwargs):
        if first_thread and threading.current_thread() is first_thread[0] and not reached.is_set():
            reached.set()
            release.wait(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, paused)
    outcomes = (Outcome(), Outcome())

    def run(act, outcome: Outcome) -> None:
        try:
            outcome.value = act()
        except Exception as error:  # the outcome is what the test checks
            outcome.error = error

    a = threading.Thread(target=run, args=(first, outcomes[0]))
    b = threading.Thread(target=run, args=(second, outcomes[1]))
    first_thread.append(a)
    a.start()
    reached.wait(timeout=30)
    b.start()
    wait_while(b.is_alive, seconds=blocked_after)
    release.set()
    a.join(timeout=30)
    b.join(timeout=30)
    assert not a.is_alive() and not b.is_alive(), "a station never finished"
    return outcomes


def wait_while(condition: Callable[[], bool], *, seconds: float) -> None:
    """Wait while ``condition()`` holds, ``seconds`` at most, by polling.

    A wait meant to run out is a poll of ``time.monotonic``, not a timed wait on a lock
    or a thread: under libfaketime (``.ci/any-hour``) timed waits on locks follow the
    faked clock and never run out, while sleeps and ``time.monotonic`` stay true.
    """
    deadline = time.monotonic() + seconds
    while condition() and time.monotonic() < deadline:
        time.sleep(0.01)
