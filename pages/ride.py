"""Ride home: the driver's status link. Opened from the address staff text to the person
driving the patient home (``/ride?link=TOKEN``), without signing in. It shows the
clinic's name, the site's address and phone, and "in treatment, ready around 14:35",
"ready now" or "please call us": never the patient's name, chair or anything clinical.
"""

from ketadash.ui.driver import driver_page

driver_page()
