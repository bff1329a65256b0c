"""The fixed limits (ketadash.limits): each written once, and asked by every check."""

from __future__ import annotations

from datetime import UTC, datetime

from ketadash import limits
from ketadash.importer import checks
from ketadash.models import Instrument

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_a_real_phq9_passes_and_each_impossible_one_says_why():
    assert limits.phq9_problem(total=0, item9=0) is None
    assert limits.phq9_problem(total=27, item9=3) is None
    assert limits.phq9_problem(total=28, item9=0) == "A PHQ-9 total is 0–27; 28 is not possible."
    assert limits.phq9_problem(total=-1, item9=0) == "A PHQ-9 total is 0–27; -1 is not possible."
    assert limits.phq9_problem(total=9, item9=4) == "PHQ-9 item 9 is 0–3; 4 is not possible."
    assert limits.phq9_problem(total=2, item9=3) == "Item 9 cannot be more than the total."


def test_the_clock_skew_is_a_limit_not_a_future():
    assert not limits.beyond_clock_skew(NOW + limits.MAX_CLOCK_SKEW, now=NOW)
    assert limits.beyond_clock_skew(NOW + limits.MAX_CLOCK_SKEW * 1.01, now=NOW)


def test_doses_weights_and_devices():
    assert limits.dose_possible(limits.MAX_DOSE_MG) and not limits.dose_possible(0)
    assert not limits.dose_possible(limits.MAX_DOSE_MG + 0.5)
    assert limits.weight_possible(limits.MIN_WEIGHT_KG)
    assert not limits.weight_possible(limits.MAX_WEIGHT_KG + 1)
    assert limits.whole_esketamine_devices(56) and not limits.whole_esketamine_devices(50)
    assert limits.esketamine_plans_text() == "56 or 84"


def test_the_importer_reads_its_limits_from_the_one_module():
    assert checks.DOSE_MG_RANGE[1] == limits.MAX_DOSE_MG
    assert checks.SCORE_RANGES[Instrument.PHQ9][1:] == limits.PHQ9_TOTAL_RANGE
