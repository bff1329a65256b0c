"""Recovery & rides: every patient in recovery or ready to go at the site, longest first,
with their timers, what still holds them, their ride home and its alerts; a panel to
record the ride (front desk too, also before the patient arrives), mark ready and
discharge, and the discharges without an arrived escort listed for the lead."""

import streamlit as st

from ketadash.ui.auth import signed_in
from ketadash.ui.recovery import live_recovery, recovery_actions
from ketadash.ui.shell import page_setup, site_picker

page = page_setup("Recovery & rides", icon=":material/directions_car:")
site = site_picker()

list_column, panel_column = st.columns([3, 1], gap="medium")
with panel_column:
    st.subheader("Ride and discharge")
    recovery_actions(url=page.database_url, site=site, staff=signed_in())
with list_column:
    live_recovery(url=page.database_url, site=site)
