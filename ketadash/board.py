"""Today's board for the monitoring room: where each patient is, by lane, and the chairs.

The board is a site's day from the visits layer (``ketadash.visits``): one batched
read whose size depends on today's sessions only, never on years of history.
Everything here is pure: given the board and the moment, it groups visits into
lanes, attaches their clocks and alerts (``ketadash.rules``) and says which chairs
are free, so the page can re-read every few seconds and redraw every second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from ketadash.clock import clock_text, utc_now
from ketadash.db import read_session
from ketadash.models import SessionStatus as S
from ketadash.rules import (
    Timer,
    session_alerts,
    visit_timers,
    vitals_due_in,
)
from ketadash.visits import (
    SiteDay,
    Visit,
    load_site_day,
)
from ketadash.vitals import Alert
from ketadash.vocabulary import OPEN_STATUSES

__all__ = [
    "LANE_OF_STATUS",
    "STATUS_OF_LANE",
    "ChairState",
    "Lane",
    "SessionView",
    "by_lane",
    "chair_alerts",
    "chair_states",
    "load_board",
    "patients_in_words",
    "time_text",
    "view_board",
    "vitals_due_text",
]


def load_board(*, url: str, site_id: int, day: date, now: datetime | None = None) -> SiteDay:
    """One site's sessions for ``day`` (site-local), plus any left open from earlier days."""
    with read_session(url) as db:
        return load_site_day(db=db, site_id=site_id, day=day, now=now or utc_now())


# --- what the board means at a moment ---------------------------------------------------------


class Lane(StrEnum):
    """Where the patient is, as the board groups them."""

    EXPECTED = "expected"
    CHECKED_IN = "checked_in"
    INFUSING = "infusing"
    RECOVERY = "recovery"
    READY = "ready"
    DISCHARGED = "discharged"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        if self is Lane.CLOSED:
            return "Cancelled / no-show"
        return STATUS_OF_LANE[self].label


STATUS_OF_LANE = {
    Lane.EXPECTED: S.SCHEDULED,
    Lane.CHECKED_IN: S.CHECKED_IN,
    Lane.INFUSING: S.INFUSING,
    Lane.RECOVERY: S.RECOVERY,
    Lane.READY: S.READY,
    Lane.DISCHARGED: S.DISCHARGED,
}
LANE_OF_STATUS = {
    S.SCHEDULED: Lane.EXPECTED,
    S.CHECKED_IN: Lane.CHECKED_IN,
    S.INFUSING: Lane.INFUSING,
    S.RECOVERY: Lane.RECOVERY,
    S.READY: Lane.READY,
    S.DISCHARGED: Lane.DISCHARGED,
    S.CANCELLED: Lane.CLOSED,
    S.NO_SHOW: Lane.CLOSED,
}


@dataclass(frozen=True, kw_only=True)
class SessionView:
    """One card on the board at a moment: the session with its timers and alerts."""

    session: Visit
    lane: Lane
    timers: tuple[Timer, ...]
    vitals_due_in: int | None
    alerts: tuple[Alert, ...] = field(default_factory=tuple)


def view_board(board: SiteDay, now: datetime) -> list[SessionView]:
    """Every session of the board as it stands at ``now``."""
    views = []
    for session in board.sessions:
        views.append(
            SessionView(
                session=session,
                lane=LANE_OF_STATUS[session.status],
                timers=visit_timers(session, board.settings, now),
                vitals_due_in=vitals_due_in(session, board.settings, now),
                alerts=tuple(
                    session_alerts(session, board.settings, now, time_zone=board.time_zone)
                ),
            )
        )
    return views


def vitals_due_text(due_in: int | None) -> str:
    """What a card says of the next vitals (``vitals_due_in``'s minutes), or empty."""
    if due_in is None:
        return ""
    if due_in < 0:
        return f"Vitals overdue {-due_in} min"
    if due_in == 0:
        return "Vitals due now"
    return f"Vitals due in {due_in} min"


def by_lane(views: list[SessionView]) -> dict[Lane, list[SessionView]]:
    """Views grouped by lane, every lane present, in board order."""
    lanes: dict[Lane, list[SessionView]] = {lane: [] for lane in Lane}
    for view in views:
        lanes[view.lane].append(view)
    return lanes


@dataclass(frozen=True, kw_only=True)
class ChairState:
    """One chair now: every visit under way in it, in the order they entered, and who is next.

    One chair holds one patient (the check-in and start gates refuse a second), but data
    from before that rule, or an import, may hold two: then every one of them is here.
    """

    chair_id: int
    name: str
    occupants: tuple[Visit, ...]
    next_expected: datetime | None

    @property
    def free(self) -> bool:
        return not self.occupants

    @property
    def occupied_by(self) -> Visit | None:
        """The first to enter the chair, or None when it is free."""
        return self.occupants[0] if self.occupants else None

    @property
    def shared(self) -> bool:
        """Two or more patients recorded under way in this one chair."""
        return len(self.occupants) > 1


def _entered_chair_at(visit: Visit) -> datetime:
    # An imported visit may lack a check-in time; its start, else its booking, stands in.
    return visit.checked_in_at or visit.infusion_started_at or visit.scheduled_start


def chair_states(board: SiteDay, now: datetime) -> list[ChairState]:
    """Each chair now: who is in it (checked in to discharge) and who is expected next."""
    states = []
    for chair_id, name in board.chairs:
        # A visit under way holds its chair whatever day it was booked (a patient still
        # infusing after midnight is in that chair); the board flags it as left open.
        in_chair = sorted(
            (s for s in board.sessions if s.chair_id == chair_id and s.status in OPEN_STATUSES),
            key=lambda s: (_entered_chair_at(s), s.session_id),
        )
        upcoming = [
            s.scheduled_start
            for s in board.sessions
            if s.chair_id == chair_id and s.status == S.SCHEDULED and not s.earlier_day
        ]
        states.append(
            ChairState(
                chair_id=chair_id,
                name=name,
                occupants=tuple(in_chair),
                next_expected=min(upcoming) if upcoming else None,
            )
        )
    return states


_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def patients_in_words(*, count: int) -> str:
    """ "two patients", "three patients", … (digits past five)."""
    return f"{_COUNT_WORDS.get(count, str(count))} patients"


def chair_alerts(*, chairs: list[ChairState]) -> list[tuple[ChairState, Alert]]:
    """A chair-level alert for each chair with two or more patients recorded under way.

    Not one visit's problem, so not in ``session_alerts``: it belongs to the chair, and
    the board lists it once, naming everyone recorded there.
    """
    alerts = []
    for chair in chairs:
        if chair.shared:
            count = patients_in_words(count=len(chair.occupants)).capitalize()
            alerts.append(
                (
                    chair,
                    Alert(
                        level="danger",
                        what=f"{count} recorded in {chair.name}",
                        action="Move one to a free chair or close the record that is wrong.",
                    ),
                )
            )
    return alerts


def time_text(moment: datetime | None, board: SiteDay) -> str:
    """A stored UTC moment as the site's wall-clock ``HH:MM``."""
    return clock_text(moment, board.time_zone)
