"""Home: which clinic this is, and a way into each screen (from ketadash/screens.py)."""

from ketadash.screens import HOME
from ketadash.ui.home import home_screen
from ketadash.ui.shell import page_setup

page = page_setup(HOME)
home_screen(url=page.database_url)
