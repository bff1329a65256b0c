"""The navigation ``dashboard.py`` hands to ``st.navigation``, built from the screen registry.

Every screen is registered, so that every address works however it is entered, but
the menu lists only what this browser session's signed-in person may open: the
others are registered hidden (``st.Page(visibility="hidden")``), and ``door`` runs
a screen for nobody else. Before anyone has signed in there is no menu at all.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import streamlit as st

from ketadash.config import load_config
from ketadash.screens import LINK_SCREENS, RIDE, SCREENS, SECTIONS, Screen, screen_at
from ketadash.ui.auth import admit, admit_display, menu_screens
from ketadash.ui.driver import driver_only_home
from ketadash.ui.shell import leave_legacy_multipage_mode, local_page_icon, run_page

NAVIGATION_KEY = "kd_navigation"


@dataclass(frozen=True, kw_only=True)
class Navigation:
    """What ``st.navigation`` is given on this run, and the menu it was built for."""

    menu: tuple[Screen, ...]
    sections: dict[str, list[st.Page]]

    @property
    def position(self) -> Literal["sidebar", "hidden"]:
        """No menu at all before anyone is admitted."""
        return "sidebar" if self.menu else "hidden"

    def for_this_run(self) -> Navigation:
        """The same pages, as copies: ``st.navigation`` marks the one it returns as the
        page this run may run, and a browser session's last run may still be stopping."""
        return replace(
            self,
            sections={
                name: [copy.copy(page) for page in pages] for name, pages in self.sections.items()
            },
        )

    def door(self, page: st.Page) -> Callable[[], object]:
        """Who may see ``page``: anyone with the link for a link's page (it checks the link
        itself), a registered display for the wall, staff of its audience else."""
        screen = screen_at(page.url_path)
        if screen.by_link:
            return lambda: None
        return admit_display if screen.public else lambda: admit(screen)


def run_dashboard() -> None:
    """The entry point's run: the navigation for this person, then the chosen screen
    (``door`` admits them first, or stops the screen). A server started with
    ``KETADASH_DRIVER_PAGE_ONLY`` registers the driver's page and nothing else."""
    leave_legacy_multipage_mode()
    local_page_icon()
    if load_config().driver_page_only:
        # The one facing phones outside the clinic: no staff screen is registered, so none
        # can run here whatever address is typed (an unknown one runs the default page).
        run_page(st.navigation(driver_pages(), position="hidden"))
        return
    menu = navigation()
    chosen = st.navigation(menu.sections, position=menu.position, expanded=True)
    run_page(chosen, admit=menu.door(chosen))


def navigation() -> Navigation:
    """This run's pages: Home first without a heading, then each section's screens in the
    menu; a screen nobody here may open goes with Home, hidden.

    Kept in the browser session while its menu is the same: an ``st.Page`` looks its
    script up on disk when it is made, which every click would otherwise pay for.
    """
    menu = menu_screens()
    kept = st.session_state.get(NAVIGATION_KEY)
    if kept is not None and kept.menu == menu:
        return kept.for_this_run()
    pages = [(screen, _page(screen, shown=screen in menu)) for screen in (*SCREENS, *LINK_SCREENS)]
    sections = {"": [page for screen, page in pages if screen not in menu]}
    shown = [(screen, page) for screen, page in pages if screen in menu]
    for section in SECTIONS:
        in_section = [page for screen, page in shown if screen.section == section]
        if in_section:
            sections[section] = in_section
    built = Navigation(menu=menu, sections=sections)
    st.session_state[NAVIGATION_KEY] = built
    return built.for_this_run()


def driver_pages() -> list[st.Page]:
    """The driver-only server's pages: the driver's page, and a default page saying so."""
    home = st.Page(driver_only_home, title=RIDE.title, icon=RIDE.icon, default=True)
    return [home, *(_page(screen, shown=False) for screen in LINK_SCREENS)]


def _page(screen: Screen, *, shown: bool) -> st.Page:
    if screen.is_home:
        # The default page always lives at "/" whatever its url_path says.
        return st.Page(screen.script, title=screen.title, icon=screen.icon, default=True)
    return st.Page(
        screen.script,
        title=screen.title,
        icon=screen.icon,
        url_path=screen.url_path,
        visibility="visible" if shown else "hidden",
    )
