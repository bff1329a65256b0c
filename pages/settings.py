"""Clinic settings: every threshold in force at a site, and changing one (leads only)."""

from ketadash.clock import utc_now
from ketadash.ui import page_setup, signed_in, site_picker
from ketadash.ui.settings import settings_review

page = page_setup("Clinic settings", icon=":material/tune:")
site = site_picker()
settings_review(url=page.database_url, site=site, staff=signed_in(), now=utc_now())
