"""Home: which clinic this is, and a way into each screen the signed-in person may open."""

from __future__ import annotations

from html import escape

import streamlit as st

from ketadash.screens import SECTIONS
from ketadash.ui.auth import signed_in, visible_screens
from ketadash.ui.shell import cached_clinic_name, cached_sites


def home_screen(*, url: str) -> None:
    """The clinic's name and sites, then a link to each screen, by section."""
    # Names come from the database: shown as HTML-escaped text, each isolated (<bdi>) so
    # a name is never read as markdown (a link, an image from another host) or reverses
    # the rest of the line.
    name = cached_clinic_name(url)
    sites = cached_sites(url)
    if name:
        st.html(
            '<h3 style="font-size: 1.5rem; font-weight: 600; padding: 0.5rem 0 0">'
            f"<bdi>{escape(name)}</bdi></h3>"
        )
    if sites:
        names = " · ".join(f"<bdi>{escape(site.name)}</bdi>" for site in sites)
        st.html(f"<p><strong>Sites:</strong> {names}</p>")
    else:
        st.warning("This clinic has no sites yet.", icon=":material/domain_disabled:")

    # Bigger link labels than Streamlit's default: these are the way into the app.
    st.html(
        '<style>[data-testid="stMain"] [data-testid="stPageLink-NavLink"] p '
        "{ font-size: 1.35rem; }</style>"
    )
    # Only the screens the signed-in person may open.
    visible = visible_screens(signed_in().role)
    for section in SECTIONS:
        screens = [screen for screen in visible if screen.section == section]
        if not screens:
            continue
        st.subheader(section, divider="gray")
        for column, screen in zip(st.columns(len(screens)), screens, strict=True):
            with column.container(border=True):
                st.page_link(
                    screen.script, label=f"**{screen.title}**", icon=screen.icon, width="stretch"
                )
                st.markdown(
                    screen.description
                    if screen.built
                    else f"{screen.description}  \n:gray-badge[Coming next]"
                )
