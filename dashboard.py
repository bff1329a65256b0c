"""KetaDash entry point: the navigation, built from the screen registry, nothing else.

Run with ``streamlit run dashboard.py``. The screens, their titles and their URL paths
are declared once in ``ketadash/screens.py``. Home is a page of its own because the
default page always lives at ``/`` whatever its ``url_path`` says. The two shell
calls make the first deep link after a server start reach this navigation, and
turn a database outage on any page into a plain message.
"""

import streamlit as st

from ketadash.screens import HOME, SECTIONS, Screen, screens_in
from ketadash.ui.shell import leave_legacy_multipage_mode, run_page

leave_legacy_multipage_mode()


def page(screen: Screen) -> st.Page:
    if screen.is_home:
        return st.Page(screen.script, title=screen.title, icon=screen.icon, default=True)
    return st.Page(screen.script, title=screen.title, icon=screen.icon, url_path=screen.url_path)


run_page(
    st.navigation(
        {
            "": [page(HOME)],
            **{section: [page(screen) for screen in screens_in(section)] for section in SECTIONS},
        }
    )
)
