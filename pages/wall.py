"""Wall display: the recovery-area TV. Who is resting, who is ready and waiting for their
ride, whose ride has arrived; by the alias each patient chose or their chair, never a name.

The site comes from the URL (``/wall?site=CODE``), so the TV comes back to the same
site when it reconnects after a restart; nothing on it needs typing or clicking.
"""

from ketadash.ui.wall import wall_page

wall_page()
