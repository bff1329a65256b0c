"""Boosters: who to call before their relief wears off, from each patient's own past relief.

The worklist (most urgent first, filtered by flag, downloadable), then one patient's
relief timeline with the factors beside the decision, and booking their booster.
"""

import streamlit as st

from ketadash.clock import utc_now
from ketadash.ui.auth import signed_in
from ketadash.ui.boosters import (
    booking_form,
    choose_patient,
    flag_filter,
    patient_view,
    site_worklist,
    summary,
    worklist_table,
)
from ketadash.ui.shell import page_setup, site_picker

page = page_setup("Boosters", icon=":material/event_repeat:")
site = site_picker()
now = utc_now()

boosters = site_worklist(url=page.database_url, site=site, now=now)
summary(boosters)
choice = flag_filter()
worklist = worklist_table(site=boosters, choice=choice)

st.subheader("Patient")
patient_id = choose_patient(frame=worklist)
if patient_id is not None:
    timeline_column, booking_column = st.columns([3, 1], gap="medium")
    with timeline_column:
        plan = patient_view(
            url=page.database_url, site=site, boosters=boosters, patient_id=patient_id, now=now
        )
    with booking_column:
        st.markdown("**Book a booster**")
        if plan is not None:
            booking_form(url=page.database_url, site=site, plan=plan, staff=signed_in(), now=now)
