"""The change watch's long poll: a route of our own on Streamlit's running web server.

``GET <base>/_kd/live/wait?w=HUB&site=ID&seen=VERSION&hold=SECONDS`` answers with
``{"version": "..."}`` as soon as the site's data version (``SiteVersions.shown_as``;
no ``site``: every site's) differs from ``seen``, or after ``hold`` seconds
(at most HOLD_SECONDS) whatever it is. The browser's change watch asks it again at once,
so an idle screen costs about one request a minute instead of sixty, and a change is
answered the moment this process's ``VersionWatch`` sees it. The answer holds site ids
and counters only, like the static file it replaces (``static/live/``).

``streamlit run dashboard.py`` stays the launch command: Streamlit 1.67 serves with
Starlette under uvicorn (``streamlit/web/server/starlette/starlette_server.py``,
``UvicornServer``), and offers routes of one's own only to ``st.App`` (another launch
command). So ``install`` finds the running ``UvicornServer`` (a private class: Streamlit
is pinned to 1.67.x, ``tests/test_live_wait.py`` checks the hook against the installed
version) and puts the route first in its Starlette app's router. When any of that is
missing, ``install`` returns None and the change watch asks the static file each second,
as before. Nothing here imports streamlit's internals until ``install`` is called.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import threading
from typing import Any

from ketadash.live_versions import VersionHub

_log = logging.getLogger(__name__)

WAIT_PATH = "_kd/live/wait"
# Under a proxy's read timeout (nginx: 60 s), over the minute's own redraw tick.
HOLD_SECONDS = 45

_HUBS: dict[str, VersionHub] = {}
_lock = threading.Lock()
_installed: list[bool] = []  # [] not tried yet; [True] or [False] once tried
_server: list[Any] = []  # the running uvicorn.Server, once found
_closer: list[Any] = []  # the task that ends every wait when that server stops


def hub_key(url: str) -> str:
    """The name a browser asks a database's versions by: any process watching ``url``
    answers it (behind a load balancer too); the name tells nothing about the clinic."""
    return hashlib.sha256(f"kd-live|{url}".encode()).hexdigest()[:16]


def register(url: str, hub: VersionHub) -> str:
    """This process answers waits on ``url`` from ``hub``; returns its key."""
    key = hub_key(url)
    with _lock:
        _HUBS[key] = hub
    return key


def _parse(params: Any) -> tuple[str, int | None, str | None, float] | None:
    try:
        site = params.get("site") or None
        hold = float(params.get("hold", HOLD_SECONDS))
        return (params.get("w", ""), None if site is None else int(site), params.get("seen"),
                min(max(hold, 0.0), float(HOLD_SECONDS)))  # fmt: skip
    except ValueError:
        return None


async def _wait(request: Any) -> Any:
    from starlette.responses import JSONResponse

    parsed = _parse(request.query_params)
    if parsed is None:
        return JSONResponse({"error": "bad request"}, status_code=400)
    key, site_id, seen, hold = parsed
    hub = _HUBS.get(key)
    if hub is None:  # this process watches no such database (yet): the browser uses the file
        return JSONResponse({"error": "unknown"}, status_code=404)
    if not _closer and _server:
        _closer.append(asyncio.get_running_loop().create_task(_close_when_stopping(_server[0])))
    version = await hub.wait(site_id=site_id, seen=seen, hold_seconds=hold)
    return JSONResponse({"version": version}, headers={"Cache-Control": "no-store"})


async def _close_when_stopping(server: Any) -> None:
    # uvicorn waits for every open request before it exits (a restart would wait out each
    # screen's long poll); its own main loop looks at should_exit every 0.1 s, this at 0.5.
    while not getattr(server, "should_exit", True):
        await asyncio.sleep(0.5)
    with _lock:
        hubs = list(_HUBS.values())
    for hub in hubs:
        hub.close()


def _route_path() -> str:
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{WAIT_PATH}" if base else f"/{WAIT_PATH}"


def _running_server() -> Any | None:
    """The uvicorn server of this process's running Streamlit, whose ``config.app`` is its
    Starlette app; None (AppTest, a Streamlit whose server is built otherwise)."""
    from streamlit.web.server.starlette.starlette_server import UvicornServer

    for found in gc.get_objects():
        if type(found) is UvicornServer:
            server = getattr(found, "_server", None)
            app = getattr(getattr(server, "config", None), "app", None)
            if app is not None and hasattr(getattr(app, "router", None), "routes"):
                return server
    return None


def install() -> bool:
    """Add the long poll's route to the running server, once per process; True when it is
    there. Safe to call on every run (after the first it is a look-up)."""
    with _lock:
        if _installed:
            return _installed[0]
        try:
            from starlette.routing import Route

            server = _running_server()
            if server is not None:
                routes = server.config.app.router.routes
                routes.insert(0, Route(_route_path(), _wait, methods=["GET"]))
                _server.append(server)
            _installed.append(server is not None)
        except Exception:  # another Streamlit: the static file's poll still works
            _log.warning("the change watch's long poll is not available", exc_info=True)
            _installed.append(False)
        if not _installed[0]:
            _log.warning("no route for the change watch's long poll: screens poll a file")
        return _installed[0]
