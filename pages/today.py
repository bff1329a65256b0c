"""Today: the monitoring-room board. Every patient of the day by where they are, and
a panel to check them in, record vitals and move them along."""

from ketadash.clock import utc_now
from ketadash.screens import TODAY
from ketadash.ui.auth import signed_in
from ketadash.ui.board import live_board
from ketadash.ui.panel import session_actions
from ketadash.ui.shell import main_and_panel, page_setup, site_picker

page = page_setup(TODAY)
now = utc_now()
site = site_picker()

board_column, panel_column = main_and_panel(panel_heading="Act on a session")
with panel_column:
    session_actions(url=page.database_url, site=site, staff=signed_in(), now=now)
with board_column:
    live_board(url=page.database_url, site=site)
