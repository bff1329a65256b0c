"""The fixed limits of what can be true: each written once, here.

Not clinic settings (``ketadash.settings``: a clinic's choices, bounded and sourced)
but facts of the scales, the product and the clocks. The gates (what a nurse sees),
the lifecycle (what a write enforces), the importer (what an export may hold) and
the clock all ask this module, so a limit cannot differ between a screen, a write
and an import. Pure: no database, no clock read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Clocks of two stations, of a station and the database server, or of an exporting
# system and this server, disagree by a little; a moment further ahead than this is a
# mistake (a record of the future), not a clock.
MAX_CLOCK_SKEW = timedelta(minutes=5)

# Bounds of what can be typed, not clinical limits: past them it is a slip of the keyboard.
MAX_DOSE_MG = 500
MIN_WEIGHT_KG, MAX_WEIGHT_KG = 25, 300

# One esketamine nasal device holds 28 mg (two sprays); 56 mg is two devices, 84 mg three.
ESKETAMINE_DEVICE_MG = 28
# The label's esketamine doses (2 or 3 devices). Not a clinic setting: the product's
# dosing, not a threshold; another plan needs a clinic lead's recorded reason.
ESKETAMINE_PLANS_MG = (56, 84)

# The PHQ-9's scale: nine items of 0–3, so a total of 0–27; item 9 is one of the nine.
PHQ9_TOTAL_RANGE = (0, 27)
PHQ9_ITEM_RANGE = (0, 3)


def beyond_clock_skew(moment: datetime, *, now: datetime) -> bool:
    """True when ``moment`` lies further ahead of ``now`` than clocks can disagree."""
    return moment > now + MAX_CLOCK_SKEW


def dose_possible(mg: float) -> bool:
    """Whether a dose in mg can be true at all (above zero, at most ``MAX_DOSE_MG``)."""
    return 0 < mg <= MAX_DOSE_MG


def weight_possible(kg: float) -> bool:
    """Whether a weight in kg can be a patient's (``MIN_WEIGHT_KG`` to ``MAX_WEIGHT_KG``)."""
    return MIN_WEIGHT_KG <= kg <= MAX_WEIGHT_KG


def whole_esketamine_devices(mg: float) -> bool:
    """Whether an esketamine dose in mg is a whole number of devices."""
    return not mg % ESKETAMINE_DEVICE_MG


def esketamine_plans_text() -> str:
    """The label's plans in words: "56 or 84"."""
    return " or ".join(str(mg) for mg in ESKETAMINE_PLANS_MG)


def phq9_problem(*, total: int, item9: int) -> str | None:
    """Why a PHQ-9 total and item 9 cannot be a real PHQ-9 (None when they can).

    The total is 0–27, item 9 is 0–3, and item 9 is part of the total.
    """
    low, high = PHQ9_TOTAL_RANGE
    if not low <= total <= high:
        return f"A PHQ-9 total is {low}–{high}; {total} is not possible."
    low, high = PHQ9_ITEM_RANGE
    if not low <= item9 <= high:
        return f"PHQ-9 item 9 is {low}–{high}; {item9} is not possible."
    if item9 > total:
        return "Item 9 cannot be more than the total."
    return None
