"""REMS forms: the esketamine REMS Patient Monitoring Forms not yet submitted at the site,
with the days left to submit each, and one session's form: what the session recorded,
the nurse's part (lot number, co-medications, ready-to-leave time, monitoring provider),
marking it submitted, and its one-page PDF for the clinic's files."""

from ketadash.screens import REMS
from ketadash.ui.auth import signed_in
from ketadash.ui.rems import rems_forms
from ketadash.ui.shell import page_setup, site_picker

page = page_setup(REMS)
site = site_picker()
rems_forms(url=page.database_url, site=site, staff=signed_in())
