"""AppTest fixtures for the pages."""

from __future__ import annotations

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from ketadash.ui.navigation import NAVIGATION_KEY
from tests.utils.factories import NURSE_EMAIL

# An identity provider as .streamlit/secrets.toml would name it. AppTest never calls
# it: ``at.user`` stands for the identity cookie Streamlit reads after a sign-in.
CLINIC_AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "page-tests-cookie-secret-0123456789",
    "client_id": "ketadash-page-tests",
    "client_secret": "not-a-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def sign_in(at: AppTest, email: str | None) -> AppTest:
    """Make ``at`` a browser signed in as ``email`` (None: nobody signed in)."""
    at.user = {"is_logged_in": email is not None, **({"email": email} if email else {})}
    return at


def menu(at: AppTest) -> dict[str, str]:
    """The menu of ``at``'s last run, url path to title: what it gave ``st.navigation`` as
    visible (Home included), or nothing when the navigation was hidden (before sign-in)."""
    if NAVIGATION_KEY not in at.session_state:
        return {}
    navigation = at.session_state[NAVIGATION_KEY]
    if navigation.position == "hidden":
        return {}
    return {
        page.url_path: page.title
        for pages in navigation.sections.values()
        for page in pages
        if page.visibility == "visible"
    }


def demo_sign_in(at: AppTest) -> AppTest:
    """Make ``at`` a browser on a deployment without an identity provider (the demo's way)."""
    at.secrets.pop("auth", None)
    at.user = {"is_logged_in": False}
    return at


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


@pytest.fixture(autouse=True)
def signed_in_as_a_nurse(monkeypatch):
    """Every page test runs on a clinic with an identity provider, signed in as make_clinic's
    first nurse (Dana Reyes), unless it signs in as someone else with ``sign_in``."""
    original = AppTest.from_file.__func__

    def from_file(cls, *args, **kwargs):
        at = original(cls, *args, **kwargs)
        at.secrets["auth"] = dict(CLINIC_AUTH)
        return sign_in(at, NURSE_EMAIL)

    monkeypatch.setattr(AppTest, "from_file", classmethod(from_file))
