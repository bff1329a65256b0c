"""The change watch's long poll (issue 18): a wait that answers when a site's version moves,
on a route of our own added to Streamlit 1.67's running web server.

The waits run on an event loop of their own, in a thread of their own: in one pytest run
with the browser tests, Playwright's sync API keeps a loop running on the main thread, and
asyncio.run refuses to start beside it. Bounds are generous and nothing is timed
(benchmarks/bench_live_room.py measures)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from ketadash.live_versions import SiteVersions, VersionHub
from ketadash.ui import live_wait


def _run(waiting: Coroutine[Any, Any, str]) -> str:
    """Run one wait to its answer on a new loop in a new thread."""
    answers: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            answers.append(asyncio.run(waiting))
        except BaseException as error:  # handed back to the test's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if errors:
        raise errors[0]
    assert answers, "the wait did not answer within 60 s"
    return answers[0]


class _Versions:
    def __init__(self, sites: dict[int, int]) -> None:
        self.now = SiteVersions(sites=sites)

    def __call__(self) -> SiteVersions:
        return self.now


def test_a_wait_answers_at_once_when_the_screen_drew_another_version():
    hub = VersionHub(_Versions({1: 5, 2: 7}))
    assert _run(hub.wait(site_id=1, seen="4", hold_seconds=30)) == "5"
    assert _run(hub.wait(site_id=None, seen="5", hold_seconds=30)) == "12"


def test_a_wait_answers_when_another_thread_moves_the_version():
    versions = _Versions({1: 5})
    hub = VersionHub(versions)

    def write() -> None:  # what the VersionWatch's thread does on a change
        versions.now = SiteVersions(sites={1: 6})
        hub.changed()

    async def waiting() -> str:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, threading.Thread(target=write).start)
        return await hub.wait(site_id=1, seen="5", hold_seconds=30)

    assert _run(asyncio.wait_for(waiting(), timeout=20)) == "6"


def test_a_move_of_another_site_does_not_answer_a_wait_and_the_hold_ends_it():
    versions = _Versions({1: 5, 2: 1})
    hub = VersionHub(versions)

    async def waiting() -> str:
        def other_site() -> None:
            versions.now = SiteVersions(sites={1: 5, 2: 2})
            hub.changed()

        asyncio.get_running_loop().call_later(0.01, other_site)
        return await hub.wait(site_id=1, seen="5", hold_seconds=0.3)

    assert _run(waiting()) == "5"


def test_a_database_away_answers_down_and_a_stopping_server_ends_every_wait():
    hub = VersionHub(lambda: SiteVersions(down=True))
    assert _run(hub.wait(site_id=1, seen="5", hold_seconds=30)) == "down"

    hub = VersionHub(_Versions({1: 5}))

    async def waiting() -> str:
        asyncio.get_running_loop().call_later(0.05, hub.close)
        return await hub.wait(site_id=1, seen="5", hold_seconds=30)

    assert _run(asyncio.wait_for(waiting(), timeout=20)) == "5"


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_the_route_answers_a_registered_database_and_nothing_else(monkeypatch):
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    monkeypatch.setattr(live_wait, "_HUBS", {})
    key = live_wait.register("sqlite:///clinic.sqlite", VersionHub(_Versions({3: 9})))
    assert key == live_wait.hub_key("sqlite:///clinic.sqlite") and len(key) == 16
    assert "clinic" not in key
    app = Starlette(routes=[Route(f"/{live_wait.WAIT_PATH}", live_wait._wait)])
    with TestClient(app) as client:
        answer = client.get(f"/{live_wait.WAIT_PATH}", params={"w": key, "site": 3, "seen": "8"})
        assert answer.status_code == 200 and answer.json() == {"version": "9"}
        assert answer.headers["cache-control"] == "no-store"
        held = client.get(
            f"/{live_wait.WAIT_PATH}", params={"w": key, "site": 3, "seen": "9", "hold": 0}
        )
        assert held.json() == {"version": "9"}
        unknown = client.get(f"/{live_wait.WAIT_PATH}", params={"w": "nobody", "seen": "1"})
        assert unknown.status_code == 404
        bad = client.get(f"/{live_wait.WAIT_PATH}", params={"w": key, "site": "x"})
        assert bad.status_code == 400


def test_without_a_running_server_nothing_is_installed_and_screens_poll_the_file(monkeypatch):
    monkeypatch.setattr(live_wait, "_installed", [])
    monkeypatch.setattr(live_wait, "_server", [])
    assert live_wait.install() is False
    assert live_wait.install() is False  # decided once per process


@pytest.mark.parametrize("attribute", ["_server"])
def test_the_private_hook_matches_the_installed_streamlit(attribute):
    # Streamlit is pinned to 1.67.x: the hook needs its UvicornServer to keep the running
    # uvicorn.Server (whose config.app is the Starlette app, whose router has routes) and
    # uvicorn's should_exit. tests/browser/test_live_room_browser.py sees it answer.
    import uvicorn
    from streamlit.web.server.starlette.starlette_server import UvicornServer

    assert f"self.{attribute} = uvicorn.Server(" in inspect.getsource(UvicornServer.start)
    assert "should_exit" in inspect.getsource(uvicorn.Server)
    assert "self.config = config" in inspect.getsource(uvicorn.Server.__init__)
