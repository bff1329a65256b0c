"""KetaDash entry point: the navigation, built from the screen registry, and the door.

Run with ``streamlit run dashboard.py``. The screens, their titles, URL paths and
audiences are declared once in ``ketadash/screens.py``. Every screen is registered
with ``st.navigation`` so that every address works however it is entered, but the
menu is our own (``ketadash/ui/auth.py``): it lists only what the signed-in person
may open, and a screen they may not open is never run. The wall admits a registered
display instead of a person. Home is a page of its own because the default page
always lives at ``/`` whatever its ``url_path`` says.
"""

import streamlit as st

from ketadash.screens import SCREENS, Screen
from ketadash.ui.auth import admit, admit_display
from ketadash.ui.shell import leave_legacy_multipage_mode, run_page

leave_legacy_multipage_mode()


def page(screen: Screen) -> st.Page:
    if screen.is_home:
        return st.Page(screen.script, title=screen.title, icon=screen.icon, default=True)
    return st.Page(screen.script, title=screen.title, icon=screen.icon, url_path=screen.url_path)


pages = {screen.url_path: (screen, page(screen)) for screen in SCREENS}
chosen = st.navigation([p for _, p in pages.values()], position="hidden")
screen, _ = pages[chosen.url_path]
run_page(chosen, admit=admit_display if screen.public else lambda: admit(screen))
