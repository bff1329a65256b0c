"""Boosters: who to call before their relief wears off, from each patient's own past relief.

The worklist (most urgent first, filtered by flag, downloadable), then one patient's
relief timeline with the factors beside the decision, and booking their booster.
"""

from ketadash.clock import utc_now
from ketadash.screens import BOOSTERS
from ketadash.ui.auth import signed_in
from ketadash.ui.boosters import (
    booking_form,
    choose_patient,
    flag_filter,
    morning_flags,
    patient_view,
    site_worklist,
    summary,
    worklist_table,
)
from ketadash.ui.shell import heading, main_and_panel, page_setup, site_picker

page = page_setup(BOOSTERS)
site = site_picker()
now = utc_now()

boosters = site_worklist(url=page.database_url, site=site, now=now)
summary(boosters)
choice = flag_filter()
morning = morning_flags(url=page.database_url, site=site, now=now)
worklist = worklist_table(url=page.database_url, site=boosters, choice=choice, morning=morning)

heading("Patient")
patient_id = choose_patient(frame=worklist)
if patient_id is not None:
    timeline_column, booking_column = main_and_panel(panel_heading="Book a booster", bold=True)
    with timeline_column:
        plan = patient_view(
            url=page.database_url, site=site, boosters=boosters, patient_id=patient_id, now=now
        )
    with booking_column:
        if plan is not None:
            booking_form(url=page.database_url, site=site, plan=plan, staff=signed_in(), now=now)
