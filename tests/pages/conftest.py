"""AppTest fixtures for the pages."""

from __future__ import annotations

import pytest
from streamlit.runtime.pages_manager import PagesManager


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """Run pages the way a warm server does: through ``dashboard.py``'s navigation.

    AppTest forgets, before every run, that the app uses ``st.navigation``, so each
    run would start in Streamlit's legacy ``pages/`` mode and go through the rerun
    that ``leave_legacy_multipage_mode`` makes, and that rerun drops button clicks.
    On a server this happens once, on the first visit after a start, and the
    browser tests in ``tests/browser`` cover it.
    """
    original = PagesManager.__init__

    def init_in_navigation_mode(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_in_navigation_mode)
