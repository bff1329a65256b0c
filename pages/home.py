"""Home: which clinic this is, and a way into each screen."""

from dataclasses import dataclass

import streamlit as st

from ketadash.ui import page_setup
from ketadash.ui.shell import cached_clinic_name, cached_sites


@dataclass(frozen=True)
class Screen:
    script: str
    label: str
    icon: str
    purpose: str
    built: bool


SCREENS = {
    "Monitoring room": [
        Screen(
            "pages/today.py",
            "Today",
            ":material/event_seat:",
            "Today's patients, chair by chair: who is expected, in the chair, in recovery.",
            built=True,
        ),
        Screen(
            "pages/recovery.py",
            "Recovery & rides",
            ":material/directions_car:",
            "Patients in recovery waiting for a ride home, and where each ride is.",
            built=True,
        ),
        Screen(
            "pages/wall.py",
            "Wall display",
            ":material/tv:",
            "The recovery-area TV: big, self-refreshing, no patient names.",
            built=True,
        ),
    ],
    "Clinic lead": [
        Screen(
            "pages/boosters.py",
            "Boosters",
            ":material/event_repeat:",
            "Boosters coming up, from each patient's own past relief.",
            built=False,
        ),
        Screen(
            "pages/throughput.py",
            "Throughput",
            ":material/monitoring:",
            "Volume, chair use, cycle times, no-shows and outcomes.",
            built=False,
        ),
    ],
}

page = page_setup("KetaDash", icon=":material/home:")

name = cached_clinic_name(page.database_url)
sites = cached_sites(page.database_url)
if name:
    st.subheader(name)
if sites:
    st.markdown("**Sites:** " + " · ".join(site.name for site in sites))
else:
    st.warning("This clinic has no sites yet.", icon=":material/domain_disabled:")

# Bigger link labels than Streamlit's default: these are the way into the app.
st.html(
    '<style>[data-testid="stMain"] [data-testid="stPageLink-NavLink"] p '
    "{ font-size: 1.35rem; }</style>"
)
for section, screens in SCREENS.items():
    st.subheader(section, divider="gray")
    for column, screen in zip(st.columns(len(screens)), screens, strict=True):
        with column.container(border=True):
            st.page_link(
                screen.script, label=f"**{screen.label}**", icon=screen.icon, width="stretch"
            )
            st.markdown(
                screen.purpose if screen.built else f"{screen.purpose}  \n:gray-badge[Coming next]"
            )
