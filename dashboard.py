"""KetaDash entry point: the navigation, built from the screen registry, and the door.

Run with ``streamlit run dashboard.py``. The screens, their titles, URL paths and
audiences are declared once in ``ketadash/screens.py``; ``ketadash/ui/navigation.py``
turns them into pages. Every screen is registered so that every address works
however it is entered; the menu lists only what the signed-in person may open, and
a screen they may not open is never run (``door``). The wall admits a registered
display instead of a person.
"""

from ketadash.ui.navigation import run_dashboard

run_dashboard()
