"""Hostile safety review (h4), item 2: the Boosters worklist carries PHQ-9 item 9.

A patient whose latest PHQ-9 visit answered item 9 at or above the clinic's flag carries
it on the worklist and in the booking dialog (tests/pages/test_boosters_page.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ketadash.boosters import Score, latest_item9, plan_boosters, worklist_frame
from tests.test_boosters import SETTINGS, at, history


def _with_scores(*scores: Score):
    return replace(history(boosters=[40], returns=[35]), scores=scores)


def test_the_latest_item9_is_that_of_the_latest_visit_at_its_highest():
    scores = (
        Score(taken_at=at(0), total=20, item9=3, session_id=1),
        Score(taken_at=at(40), total=12, item9=2, session_id=7),
        # A correction at the same visit cannot take a positive answer out of sight.
        Score(taken_at=at(40) + timedelta(minutes=5), total=11, item9=0, session_id=7),
    )
    assert latest_item9(scores) == 2
    assert latest_item9(scores[:1]) == 3
    assert latest_item9((Score(taken_at=at(1), total=9),)) is None
    assert latest_item9(()) is None


def test_a_positive_latest_item9_is_on_the_worklist():
    flagged = replace(
        _with_scores(Score(taken_at=at(40), total=14, item9=1, session_id=7)), patient_id=2,
        patient_ref="KD-ITEM9",
    )  # fmt: skip
    calm = replace(
        _with_scores(Score(taken_at=at(40), total=14, item9=0, session_id=8)), patient_id=3,
        patient_ref="KD-CALM",
    )  # fmt: skip
    plans, _ = plan_boosters(histories=[flagged, calm], settings=SETTINGS, as_of=at(60))
    by_ref = {p.patient_ref: p for p in plans}
    assert by_ref["KD-ITEM9"].last_item9 == 1
    assert by_ref["KD-ITEM9"].item9_flagged
    assert not by_ref["KD-CALM"].item9_flagged
    frame = worklist_frame(plans=plans, flags=tuple({p.flag for p in plans}))
    rows = frame.set_index("patient_ref")
    assert bool(rows.loc["KD-ITEM9", "item9_flagged"]) is True
    assert rows.loc["KD-ITEM9", "last_item9"] == 1
    assert bool(rows.loc["KD-CALM", "item9_flagged"]) is False


def test_a_later_score_without_item9_does_not_hide_the_positive_answer_before_it():
    # A home or imported PHQ-9 may carry no item 9: the answer last recorded still stands.
    scores = (
        Score(taken_at=at(30), total=18, item9=2, session_id=7),
        Score(taken_at=at(30) + timedelta(minutes=5), total=17, item9=0, session_id=7),
        Score(taken_at=at(40), total=12),  # at home: no visit, item 9 not recorded
    )
    assert latest_item9(scores) == 2
    flagged = replace(_with_scores(*scores), patient_id=2, patient_ref="KD-HOME")
    plans, _ = plan_boosters(histories=[flagged], settings=SETTINGS, as_of=at(60))
    (plan,) = plans
    assert plan.last_item9 == 2
    assert plan.item9_flagged
    assert plan.item9_not_in_latest
    rows = worklist_frame(plans=plans, flags=(plan.flag,)).set_index("patient_ref")
    assert bool(rows.loc["KD-HOME", "item9_flagged"]) is True
    assert bool(rows.loc["KD-HOME", "item9_not_in_latest"]) is True


def test_the_latest_score_recording_item9_says_so():
    scores = (Score(taken_at=at(40), total=12, item9=1, session_id=7),)
    plans, _ = plan_boosters(
        histories=[replace(_with_scores(*scores), patient_id=2)], settings=SETTINGS, as_of=at(60)
    )
    assert not plans[0].item9_not_in_latest
