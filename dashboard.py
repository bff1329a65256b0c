"""KetaDash entry point: the navigation, built from the screen registry, and the door.

Run with ``streamlit run dashboard.py``. The screens, their titles, URL paths and
audiences are declared once in ``ketadash/screens.py``; ``ketadash/ui/navigation.py``
turns them into pages. Every screen is registered so that every address works
however it is entered; the menu lists only what the signed-in person may open, and
a screen they may not open is never run (``door``). The wall admits a registered
display instead of a person.
"""

import streamlit as st

from ketadash.ui.navigation import navigation
from ketadash.ui.shell import leave_legacy_multipage_mode, local_page_icon, run_page

leave_legacy_multipage_mode()
local_page_icon()
menu = navigation()
chosen = st.navigation(menu.sections, position=menu.position, expanded=True)
run_page(chosen, admit=menu.door(chosen))
