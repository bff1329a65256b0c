"""Recovery & rides: patients in recovery awaiting a ride home (placeholder)."""

import streamlit as st

from ketadash.ui import page_setup

page_setup("Recovery & rides", icon=":material/directions_car:")

st.info(
    "**Coming next.** This page is not built yet: nothing here is live.",
    icon=":material/construction:",
)
st.markdown(
    """
    When it is ready, this page will show, for one site:

    - every patient in recovery who is waiting for a ride home;
    - the state of each patient's ride: who is collecting them, when they are
      expected, and whether they have arrived.
    """
)
