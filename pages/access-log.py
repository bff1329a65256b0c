"""Access log: who opened which patient's record or downloaded data, and when (leads only)."""

from ketadash.clock import utc_now
from ketadash.screens import ACCESS_LOG
from ketadash.ui.access_log import access_log_review
from ketadash.ui.shell import page_setup, site_picker

page = page_setup(ACCESS_LOG)
site = site_picker()
access_log_review(url=page.database_url, site=site, now=utc_now())
