"""Throughput: how the clinic is running, for clinic leads (placeholder)."""

import streamlit as st

from ketadash.ui import page_setup

page_setup("Throughput", icon=":material/monitoring:")

st.info(
    "**Coming next.** This page is not built yet: nothing here is live.",
    icon=":material/construction:",
)
st.markdown(
    """
    When it is ready, this page will show clinic leads, by site and period:

    - **volume**: sessions scheduled and completed;
    - **chair use**: how much of the open hours each chair is in use;
    - **cycle times**: check-in to start, infusion, recovery, and the whole visit;
    - **no-shows** and cancellations;
    - **outcomes**: how patients' scores change over their treatment.
    """
)
