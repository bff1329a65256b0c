"""One vocabulary for a visit: its statuses, the steps between them, their columns and words.

The lifecycle, the import, the demo, every screen and the tests name states and
steps from here, so a status has one label everywhere ("Dose running", never also
"Infusing") and a step one timestamp column.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ketadash.models import SessionStatus as S
from ketadash.models import StaffRole


class Step(StrEnum):
    CHECK_IN = "check_in"
    START_INFUSION = "start_infusion"
    END_INFUSION = "end_infusion"
    MARK_READY = "mark_ready"
    DISCHARGE = "discharge"
    CANCEL = "cancel"
    NO_SHOW = "no_show"


@dataclass(frozen=True, kw_only=True)
class Transition:
    step: Step
    sources: frozenset[S]
    target: S
    # The session column stamped with the moment of the step.
    stamp: str
    label: str
    # What the board says once the step is taken: "Alex Morgan: checked in."
    done: str
    needs_reason: bool = False


TRANSITIONS: dict[Step, Transition] = {
    t.step: t
    for t in (
        Transition(
            step=Step.CHECK_IN,
            sources=frozenset({S.SCHEDULED}),
            target=S.CHECKED_IN,
            stamp="checked_in_at",
            label="Check in",
            done="checked in",
        ),
        Transition(
            step=Step.START_INFUSION,
            sources=frozenset({S.CHECKED_IN}),
            target=S.INFUSING,
            stamp="infusion_started_at",
            label="Start dose",
            done="dose started",
        ),
        Transition(
            step=Step.END_INFUSION,
            sources=frozenset({S.INFUSING}),
            target=S.RECOVERY,
            stamp="infusion_ended_at",
            label="End dose → recovery",
            done="dose ended, now in recovery",
        ),
        Transition(
            step=Step.MARK_READY,
            sources=frozenset({S.RECOVERY}),
            target=S.READY,
            stamp="ready_at",
            label="Mark ready to go",
            done="ready to go",
        ),
        Transition(
            step=Step.DISCHARGE,
            sources=frozenset({S.READY}),
            target=S.DISCHARGED,
            stamp="discharged_at",
            label="Discharge",
            done="discharged, gone home",
        ),
        Transition(
            step=Step.CANCEL,
            sources=frozenset({S.SCHEDULED, S.CHECKED_IN}),
            target=S.CANCELLED,
            stamp="closed_at",
            label="Cancel",
            done="visit cancelled",
            needs_reason=True,
        ),
        Transition(
            step=Step.NO_SHOW,
            sources=frozenset({S.SCHEDULED}),
            target=S.NO_SHOW,
            stamp="closed_at",
            label="No-show",
            done="marked as a no-show",
            needs_reason=True,
        ),
    )
}

# The step an undo takes back, by the status it leaves.
STEP_INTO: dict[S, Transition] = {
    t.target: t for t in TRANSITIONS.values() if t.target not in (S.CANCELLED, S.NO_SHOW)
}
OPEN_STATUSES = frozenset({S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY})
# Front desk checks patients in, marks no-shows and cancels; the rest is clinical.
CLINICAL_STEPS = frozenset(
    {Step.START_INFUSION, Step.END_INFUSION, Step.MARK_READY, Step.DISCHARGE}
)
CLINICIANS = frozenset({StaffRole.NURSE, StaffRole.LEAD})
CLOSED_STATUSES = frozenset({S.DISCHARGED, S.CANCELLED, S.NO_SHOW})

# What a nurse calls the state, inside a sentence.
IN_WORDS = {
    S.SCHEDULED: "not checked in yet",
    S.CHECKED_IN: "checked in",
    S.INFUSING: "receiving the dose",
    S.RECOVERY: "in recovery",
    S.READY: "ready to go (waiting for the ride)",
    S.DISCHARGED: "already discharged",
    S.CANCELLED: "cancelled",
    S.NO_SHOW: "marked as a no-show",
}


# The column each status's step stamps, in lifecycle order: the timeline of a visit.
STAMP_OF_STATUS: dict[S, str] = {t.target: t.stamp for t in STEP_INTO.values()}
# The same, with the exits (cancelled and no-show both stamp ``closed_at``).
STAMP_OF_TARGET: dict[S, str] = {t.target: t.stamp for t in TRANSITIONS.values()}
# Every stamp column once, in lifecycle order.
STAMPS: tuple[str, ...] = tuple(dict.fromkeys(STAMP_OF_TARGET.values()))


def allowed_steps(status: S | str) -> list[Step]:
    """The steps the state machine allows from ``status``, in lifecycle order."""
    return [t.step for t in TRANSITIONS.values() if S(status) in t.sources]
