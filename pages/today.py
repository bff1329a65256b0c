"""Today: the monitoring-room board. Every patient of the day by where they are, and
a panel to check them in, record vitals and move them along."""

import streamlit as st

from ketadash.clock import utc_now
from ketadash.ui.auth import signed_in
from ketadash.ui.board import live_board, session_actions
from ketadash.ui.shell import page_setup, site_picker

page = page_setup("Today", icon=":material/event_seat:")
now = utc_now()
site = site_picker()

board_column, panel_column = st.columns([3, 1], gap="medium")
with panel_column:
    st.subheader("Act on a session")
    session_actions(url=page.database_url, site=site, staff=signed_in(), now=now)
with board_column:
    live_board(url=page.database_url, site=site)
