"""Wall display: the recovery-area TV (placeholder).

The site comes from the URL (``/wall?site=2``), so the TV comes back to the same
site when it reconnects after a restart.
"""

import streamlit as st

from ketadash.ui import page_setup, site_picker

page_setup("Wall display", icon=":material/tv:")
site = site_picker()

st.info(
    f"**Coming next.** The wall display for **{site.name}** is not built yet: "
    "nothing here is live.",
    icon=":material/construction:",
)
st.markdown(
    """
    When it is ready, this screen is meant for the TV in the recovery area. It will:

    - be readable from across the room;
    - refresh itself, with nobody touching it;
    - show **nothing that identifies a patient**: only the alias a patient chose,
      or their chair.
    """
)
