"""Every screen of the dashboard, declared once: the navigation, Home's links and the tests
read this list, so a screen is added by one entry here and one thin script in ``pages/``.

No streamlit here: ``dashboard.py`` turns the entries into ``st.Page`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketadash.models import StaffRole

MONITORING_ROOM = "Monitoring room"
# Boosters (nurses too) and the leads' screens: the work away from the chairs.
FOLLOW_UP = "Follow-up and review"
# The navigation's sections, in the order they are shown.
SECTIONS = (MONITORING_ROOM, FOLLOW_UP)

ALL_STAFF = frozenset(StaffRole)


@dataclass(frozen=True, kw_only=True)
class Screen:
    """One screen: how it is named and reached, and who it is for.

    ``url_path`` is the address after the host (``today`` for ``/today``; empty for
    Home, the default page, which Streamlit always serves at ``/``). ``audience`` is
    the roles that may see it: the menu lists only those, and ``dashboard.py`` runs
    the screen for nobody else. A ``public`` screen is one that people other
    than staff can see, such as the recovery-area TV: it must show no patient's
    identity. ``built`` is False while the page only says what it will show.
    """

    title: str
    icon: str
    script: str
    url_path: str
    section: str | None
    audience: frozenset[StaffRole]
    description: str
    built: bool
    public: bool = False
    heading: str | None = None
    # Opened from a link someone was sent (the driver's status link): no sign-in, no
    # menu; the page itself decides from the link what it may show.
    by_link: bool = False

    @property
    def path(self) -> str:
        """The address in the browser: ``/`` for Home, ``/today`` for Today."""
        return f"/{self.url_path}"

    @property
    def page_heading(self) -> str:
        """The page's own title (Home's is the product's name, not "Home")."""
        return self.heading or self.title

    @property
    def is_home(self) -> bool:
        return self.url_path == ""


HOME = Screen(
    title="Home",
    heading="KetaDash",
    icon=":material/home:",
    script="pages/home.py",
    url_path="",
    section=None,
    audience=ALL_STAFF,
    description="Which clinic this is, and a way into each screen.",
    built=True,
)

TODAY = Screen(
    title="Today",
    icon=":material/event_seat:",
    script="pages/today.py",
    url_path="today",
    section=MONITORING_ROOM,
    audience=ALL_STAFF,
    description="Today's patients, chair by chair: who is expected, in the chair, in recovery.",
    built=True,
)

RECOVERY = Screen(
    title="Recovery & rides",
    icon=":material/directions_car:",
    script="pages/recovery.py",
    url_path="recovery",
    section=MONITORING_ROOM,
    audience=ALL_STAFF,
    description="Patients in recovery waiting for a ride home, and where each ride is.",
    built=True,
)

WALL = Screen(
    title="Wall display",
    icon=":material/tv:",
    script="pages/wall.py",
    url_path="wall",
    section=MONITORING_ROOM,
    audience=ALL_STAFF,
    description="The recovery-area TV: big, self-refreshing, no patient names.",
    built=True,
    public=True,
    # The TV's heading is the site's name, then this.
    heading="· Recovery",
)

BOOSTERS = Screen(
    title="Boosters",
    icon=":material/event_repeat:",
    script="pages/boosters.py",
    url_path="boosters",
    section=FOLLOW_UP,
    audience=frozenset({StaffRole.NURSE, StaffRole.LEAD}),
    description="Boosters coming up, from each patient's own past relief.",
    built=True,
)

REMS = Screen(
    title="REMS forms",
    icon=":material/assignment:",
    script="pages/rems.py",
    url_path="rems",
    section=FOLLOW_UP,
    audience=frozenset({StaffRole.NURSE, StaffRole.LEAD}),
    description="Esketamine REMS monitoring forms: complete, submit, print; days left of 7.",
    built=True,
)

THROUGHPUT = Screen(
    title="Throughput",
    icon=":material/monitoring:",
    script="pages/throughput.py",
    url_path="throughput",
    section=FOLLOW_UP,
    audience=frozenset({StaffRole.LEAD}),
    description="Volume, chair use, cycle times, no-shows and outcomes.",
    built=True,
)

ACCESS_LOG = Screen(
    title="Access log",
    icon=":material/policy:",
    script="pages/access-log.py",
    url_path="access-log",
    section=FOLLOW_UP,
    audience=frozenset({StaffRole.LEAD}),
    description="Who opened which patient's record or downloaded data, and when.",
    built=True,
)

SETTINGS = Screen(
    title="Clinic settings",
    icon=":material/tune:",
    script="pages/settings.py",
    url_path="settings",
    section=FOLLOW_UP,
    audience=frozenset({StaffRole.LEAD}),
    description="Every clinical threshold in force at a site, and changing one.",
    built=True,
)

# Every screen, Home first, then section by section in navigation order.
SCREENS: tuple[Screen, ...] = (
    HOME,
    TODAY,
    RECOVERY,
    WALL,
    BOOSTERS,
    REMS,
    THROUGHPUT,
    ACCESS_LOG,
    SETTINGS,
)


# The driver's page, opened from the link staff text to the person driving the patient
# home: the clinic's contact details and "ready around 14:35", nothing about the patient.
RIDE = Screen(
    title="Ride home",
    icon=":material/directions_car:",
    script="pages/ride.py",
    url_path="ride",
    section=None,
    audience=frozenset(),
    description="For the driver: when the person they collect is ready. No sign-in.",
    built=True,
    public=True,
    by_link=True,
)

# Screens reached only by a link: registered with the navigation, never in a menu.
LINK_SCREENS: tuple[Screen, ...] = (RIDE,)


def screens_in(section: str) -> list[Screen]:
    """The screens of one navigation section, in order."""
    return [screen for screen in SCREENS if screen.section == section]


def screen_at(path: str) -> Screen:
    """The screen served at ``path`` (``/today``, ``today`` or ``/``); KeyError if none."""
    wanted = path.strip("/")
    for screen in (*SCREENS, *LINK_SCREENS):
        if screen.url_path == wanted:
            return screen
    raise KeyError(path)
