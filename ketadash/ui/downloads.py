"""Downloads served once: the file a download button makes is gone once it is downloaded.

Streamlit 1.67 serves a download's file at ``/media/<id>.csv`` to anyone who has the
address: the route checks no cookie and no session, and the in-memory file stays
until two later script runs have passed (or the browser session ends). A CSV of MRNs
could so be fetched again, without sign-in and without a row in the access log.
Streamlit offers no hook for who may fetch a media file, nor a call that removes one
file, so this module wraps the in-memory media storage's own lookups (its
``get_url`` and ``get_file``, which the ``/media`` route calls):

- a file an export made is *pending* until Streamlit hands its address to the
  browser (``get_url``), then *handed out*;
- a handed-out file answers ``FETCHES_PER_DOWNLOAD`` fetches, then is deleted: the
  address answers 404, so every download is a click, and every click is logged.
  Two, because Streamlit's browser code fetches the address once to check it
  (``checkSourceUrlResponse``) and once more to download it; and at most
  ``HANDED_OUT_SECONDS`` after it was handed out, in case the browser fetches it once;
- signing out deletes this browser session's files still there, and a click still
  queued from before the sign-out makes nothing (``ExportClosed``).

What this cannot do: tell the browser's two fetches from anyone else's. Whoever has
the address in those seconds (it is a hash of the file, sent only to the browser that
clicked) could take the second fetch; the click's download would then fail.

This reaches into Streamlit's internals (``MediaFileManager._storage``); Streamlit's
minor version is pinned and tests/pages/test_exports_page.py and
tests/browser/test_export_browser.py fail if it changes.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable

from streamlit import runtime
from streamlit.runtime.media_file_storage import MediaFileKind
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

CSV_MIME = "text/csv"
PDF_MIME = "application/pdf"
FETCHES_PER_DOWNLOAD = 2
HANDED_OUT_SECONDS = 60
_GUARD_ATTRIBUTE = "_ketadash_one_download"


class ExportClosed(RuntimeError):
    """The browser session that drew this download button has signed out since."""


def after(seconds: float, action: Callable[..., None], *args: object) -> None:
    """Run ``action(*args)`` on its own thread ``seconds`` from now."""
    timer = threading.Timer(seconds, action, args=args)
    timer.daemon = True
    timer.start()


class OneDownload:
    """The export files of one in-memory media storage, each served to one download."""

    def __init__(self, storage: MemoryMediaFileStorage) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._handed_out: Counter[str] = Counter()
        get_url, get_file = storage.get_url, storage.get_file

        def handed_out(file_id: str) -> str:
            address = get_url(file_id)
            with self._lock:
                if self._pending[file_id] <= 0:
                    return address
                self._pending[file_id] -= 1
                self._handed_out[file_id] += FETCHES_PER_DOWNLOAD
            after(HANDED_OUT_SECONDS, self._expire, file_id)
            return address

        def fetched(filename: str):
            file = get_file(filename)
            file_id = os.path.splitext(filename)[0]
            with self._lock:
                if self._handed_out[file_id] > 0:
                    self._handed_out[file_id] -= 1
                    if not self._handed_out[file_id] and not self._pending[file_id]:
                        self._forget(file_id)
            return file

        storage.get_url = handed_out  # type: ignore[method-assign]
        storage.get_file = fetched  # type: ignore[method-assign]

    def made(
        self, *, session_id: str, drawn_at: int, body: bytes, file_name: str, mime: str = CSV_MIME
    ) -> None:
        """Register the file an export is about to hand Streamlit (a CSV unless ``mime``
        says otherwise: the same type the download button gives it); raises ExportClosed
        when the session signed out after the button was drawn (nothing is registered)."""
        with _SESSIONS_LOCK:
            if _SIGN_OUTS[session_id] != drawn_at:
                raise ExportClosed("This download was offered before a sign-out.")
            with self._lock:
                # The storage's ids are stable (a hash of the content, type and name), so
                # the id Streamlit stores the file under is the one this call returns.
                file_id = self._storage.load_and_get_id(
                    body, mime, MediaFileKind.DOWNLOADABLE, file_name
                )
                self._pending[file_id] += 1
            _MADE[session_id].add((self, file_id))

    def forget(self, file_id: str) -> None:
        """Delete ``file_id`` from the storage, fetched or not."""
        with self._lock:
            self._forget(file_id)

    def _expire(self, file_id: str) -> None:
        # A download's time is up; a later click of the same file, still being made, keeps it.
        with self._lock:
            if not self._pending[file_id]:
                self._forget(file_id)

    def _forget(self, file_id: str) -> None:
        # Caller holds self._lock.
        self._storage.delete_file(file_id)
        self._pending.pop(file_id, None)
        self._handed_out.pop(file_id, None)


# Per browser session, process-wide: how often it signed out, and the files its exports
# made (with the storage holding each). One storage per server; AppTest makes one a run.
_SESSIONS_LOCK = threading.Lock()
_SIGN_OUTS: Counter[str] = Counter()
_MADE: defaultdict[str, set[tuple[OneDownload, str]]] = defaultdict(set)


def drawn(session_id: str) -> int:
    """The count of sign-outs of ``session_id`` so far: a download button drawn now may
    make its file while the count is still this."""
    with _SESSIONS_LOCK:
        return _SIGN_OUTS[session_id]


def signed_out(session_id: str) -> None:
    """Delete ``session_id``'s export files not yet fetched; its buttons drawn before now
    make nothing."""
    with _SESSIONS_LOCK:
        _SIGN_OUTS[session_id] += 1
        made = _MADE.pop(session_id, set())
    for guard, file_id in made:
        guard.forget(file_id)


def one_download() -> OneDownload | None:
    """The guard of this server's media storage, installed on first use; None when there
    is no Streamlit runtime (a script run with plain ``python``)."""
    if not runtime.exists():
        return None
    manager = runtime.get_instance().media_file_mgr
    storage = manager._storage  # no public handle: see the docstring
    if not isinstance(storage, MemoryMediaFileStorage):
        raise RuntimeError("KetaDash's downloads need Streamlit's in-memory media storage.")
    with _INSTALL_LOCK:
        guard = getattr(storage, _GUARD_ATTRIBUTE, None)
        if guard is None:
            guard = OneDownload(storage)
            setattr(storage, _GUARD_ATTRIBUTE, guard)
    return guard


_INSTALL_LOCK = threading.Lock()


def browser_session_id() -> str:
    """This browser session's id (Streamlit's), for the page run calling it."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"
