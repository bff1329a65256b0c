"""Boosters: upcoming boosters, flagged from each patient's own relief (placeholder)."""

import streamlit as st

from ketadash.ui import page_setup

page_setup("Boosters", icon=":material/event_repeat:")

st.info(
    "**Coming next.** This page is not built yet: nothing here is live.",
    icon=":material/construction:",
)
st.markdown(
    """
    When it is ready, this page will show upcoming boosters: patients whose relief is
    likely to wear off soon, flagged from **each patient's own** past relief durations
    (how long relief lasted after their earlier treatments), not from one clinic-wide
    interval.
    """
)
