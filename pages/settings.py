"""Clinic settings: every threshold in force at a site, and changing one (leads only)."""

from ketadash.clock import utc_now
from ketadash.screens import SETTINGS
from ketadash.ui.auth import signed_in
from ketadash.ui.settings import settings_review
from ketadash.ui.shell import page_setup, site_picker

page = page_setup(SETTINGS)
site = site_picker()
settings_review(url=page.database_url, site=site, staff=signed_in(), now=utc_now())
