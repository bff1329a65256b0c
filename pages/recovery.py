"""Recovery & rides: every patient in recovery or ready to go at the site, longest first,
with their timers, what still holds them, their ride home and its alerts; a panel to
record the ride (front desk too, also before the patient arrives), mark ready and
discharge, and the discharges without an arrived escort listed for the lead."""

from ketadash.screens import RECOVERY
from ketadash.ui.auth import signed_in
from ketadash.ui.recovery import live_recovery, recovery_actions
from ketadash.ui.shell import main_and_panel, page_setup, site_picker

page = page_setup(RECOVERY)
site = site_picker()

list_column, panel_column = main_and_panel(panel_heading="Ride and discharge")
with panel_column:
    recovery_actions(url=page.database_url, site=site, staff=signed_in())
with list_column:
    live_recovery(url=page.database_url, site=site)
