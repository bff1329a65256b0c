"""The demo's cast: where its sites are, what people are called, what they say, and the patient
as the story draws them.

Names are drawn from short lists so a seed gives the same clinic every time;
phone numbers use 555-0100 to 555-0199, the numbers set aside for fiction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ketadash.demo.calendar import SiteCalendar
from ketadash.models import CareFlag, SessionStatus, SideEffect

SITE_PLACES = (
    ("back-bay", "Back Bay", "America/New_York"),
    ("lakeview", "Lakeview", "America/Chicago"),
    ("riverside", "Riverside", "America/New_York"),
    ("cherry-creek", "Cherry Creek", "America/Denver"),
    ("harbor-point", "Harbor Point", "America/New_York"),
    ("union-square", "Union Square", "America/New_York"),
    ("oak-park", "Oak Park", "America/Chicago"),
    ("westgate", "Westgate", "America/New_York"),
    ("highlands", "Highlands", "America/Denver"),
    ("maple-grove", "Maple Grove", "America/New_York"),
)
AREA_CODES = {"America/New_York": "617", "America/Chicago": "312", "America/Denver": "303"}

FIRST_NAMES = (
    "Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
    "Dana", "Sam", "Robin", "Maria", "James", "Linda", "David", "Susan", "Michael",
    "Karen", "Daniel", "Laura", "Kevin", "Grace", "Omar", "Priya", "Wei", "Elena",
    "Marcus", "Hannah", "Luis", "Fatima", "Noah", "Olivia", "Ethan", "Chloe", "Isaac",
    "Nora", "Caleb", "Leah", "Mateo", "Zoe", "Andre", "Keisha", "Tomas", "Ingrid",
    "Ravi", "Mei", "Samuel", "Rosa", "Victor",
)  # fmt: skip
LAST_NAMES = (
    "Reyes", "Okafor", "Park", "Nguyen", "Smith", "Johnson", "Garcia", "Miller", "Davis",
    "Lopez", "Wilson", "Anderson", "Thomas", "Moore", "Martin", "Lee", "Thompson", "White",
    "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott",
    "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter",
    "Phillips", "Evans", "Turner", "Torres", "Collins", "Stewart", "Morris", "Murphy",
    "Cook", "Rogers", "Patel", "Shah", "Kim", "Chen",
)  # fmt: skip
ALIAS_WORDS = (
    "Blue", "Quiet", "Golden", "Silver", "Green", "Swift", "Gentle", "Bright", "Calm",
    "Red", "Little", "Wild",
)  # fmt: skip
ALIAS_NAMES = (
    "Heron", "Maple", "Fox", "Otter", "Willow", "Sparrow", "Cedar", "River", "Finch",
    "Birch", "Wren", "Harbor", "Meadow", "Robin", "Pine", "Lark", "Aspen", "Comet",
)  # fmt: skip
RELATIONSHIPS = ("partner", "partner", "spouse", "parent", "friend", "friend", "sibling", "child")
CARE_FLAG_WEIGHTS = (
    (CareFlag.ANXIETY.value, 0.40),
    (CareFlag.HYPERTENSION.value, 0.25),
    (CareFlag.CHRONIC_PAIN.value, 0.20),
    (CareFlag.NEEDLE_PHOBIA.value, 0.10),
    (CareFlag.FALL_RISK.value, 0.05),
)
CANCEL_REASONS = (
    "Patient unwell",
    "No ride home available",
    "Rescheduled by patient",
    "Work conflict",
    "Weather",
)
NO_SHOW_REASON = "Did not arrive; phone not answered"
# Why a nurse took a step back, by the status the step had led into.
CORRECTION_REASONS = {
    SessionStatus.CHECKED_IN.value: "Checked in the wrong patient (same surname); taken back",
    SessionStatus.RECOVERY.value: "Dose ended by mistake: the dose was still being given",
    SessionStatus.READY.value: "Marked ready too soon: patient still unsteady on standing",
}
# Per route: chance of each side effect in a session (CADSS literature, Spravato label).
SIDE_EFFECT_CHANCES = {
    "iv": (
        (SideEffect.DISSOCIATION.value, 0.45),
        (SideEffect.LIGHT_HEADEDNESS.value, 0.25),
        (SideEffect.VISION_CHANGES.value, 0.20),
        (SideEffect.NAUSEA.value, 0.08),
        (SideEffect.SEDATION.value, 0.05),
    ),
    "lozenge": (
        (SideEffect.DISSOCIATION.value, 0.25),
        (SideEffect.LIGHT_HEADEDNESS.value, 0.20),
        (SideEffect.NAUSEA.value, 0.10),
        (SideEffect.SEDATION.value, 0.10),
    ),
    "esketamine": (
        (SideEffect.DISSOCIATION.value, 0.55),
        (SideEffect.SEDATION.value, 0.25),
        (SideEffect.NAUSEA.value, 0.15),
        (SideEffect.LIGHT_HEADEDNESS.value, 0.20),
        (SideEffect.VISION_CHANGES.value, 0.10),
    ),
}


def fiction_phone(rng: random.Random, *, area_code: str) -> str:
    """A phone number in the site's area code from the range set aside for fiction."""
    return f"{area_code}-555-{rng.randrange(100, 200):04d}"


# PHQ-9 remission and response (McInnes 2022): the rise that ends relief.
REMISSION_BELOW = 10


@dataclass(slots=True)
class DemoPatient:
    """What the story needs to know of one patient while it is being told."""

    id: int
    site: SiteCalendar
    route: str
    units: int
    slot: int
    weight: float
    systolic: float
    diastolic: float
    heart_rate: float
    driver: tuple[str, str, str]
    phq_baseline: float
    phq_relief: float
    phq_rate: float
    has_alias: bool
    doses: int = 0
    in_series: bool = True
    # The first PHQ-9 of the course: what relief is measured against.
    baseline_total: int | None = None

    def rise_floor(self) -> int:
        """The PHQ-9 total at which relief is over: 10, or no longer half the baseline."""
        baseline = self.baseline_total if self.baseline_total is not None else 20
        return min(REMISSION_BELOW, baseline // 2 + 1)
