"""Throughput: how the clinic ran over a period and where a visit's time went, for leads.

Headline figures against the period before, chairs and infusions, the parts of a
visit, no-shows, outcomes of finished series, and every visit as a CSV.
"""

from ketadash.clock import utc_now
from ketadash.screens import THROUGHPUT
from ketadash.ui.shell import page_setup
from ketadash.ui.throughput import throughput_review

page = page_setup(THROUGHPUT)
throughput_review(url=page.database_url, now=utc_now())
