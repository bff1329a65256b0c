"""The demo's esketamine REMS Patient Monitoring Forms (issue 20).

Every discharged esketamine visit has its form started before the discharge (the
discharge gate asks for it), most are marked submitted a few days later, and some are
left for the lead's list; a patient still in the building may have theirs started.
Drawn from the session's own random stream (seeded by its id), so adding forms leaves
every other row of the demo as it was.
"""

from __future__ import annotations

import random

from ketadash.demo.visit_times import MINUTE
from ketadash.demo.writer import Rows

HOUR, DAY = 60 * MINUTE, 24 * 60 * MINUTE
SUBMITTED_SHARE = 0.85
LOT_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def write_rems_form(
    rows: Rows,
    *,
    session_id: int,
    nurse: int,
    start: int,
    ready: int | None,
    discharged: int | None,
    cutoff: int,
) -> None:
    """The form of one esketamine visit dosed at ``start``, as it stands at ``cutoff``."""
    rng = random.Random(session_id * 7919 + 20)
    # Not discharged yet: half the ready visits have their form started (one draw).
    if discharged is not None:
        end = discharged
    elif ready is not None and rng.random() >= 0.5:
        end = min(ready, cutoff)
    else:
        return
    # Before ready, so before any discharge step (one taken back included).
    started = min(start + rng.randint(10, 60) * MINUTE, ready if ready is not None else end)
    ready_to_leave = None
    if ready is not None:
        ready_to_leave = max(start + 45 * MINUTE, ready - rng.randint(0, 40) * MINUTE)
        ready_to_leave -= ready_to_leave % MINUTE
    lot = f"{rng.choice(LOT_LETTERS)}{rng.choice(LOT_LETTERS)}{rng.randint(10000, 99999)}"
    submitted = None
    if discharged is not None and rng.random() < SUBMITTED_SHARE:
        submitted = discharged + rng.randint(1 * HOUR, 5 * DAY)
        submitted = submitted if submitted <= cutoff else None
    stamp = rows.stamp
    changes = [("started", started), ("saved", max(started, min(end, cutoff)))]
    if submitted is not None:
        changes.append(("submitted", submitted))
    pending = rows.pending["rems_record_change"]
    for version, (action, moment) in enumerate(changes, start=1):
        pending.append(
            (rows.take_id("rems_record_change"), session_id, version, action, stamp(moment),
             nurse, None)
        )  # fmt: skip
    rows.pending["rems_record"].append(
        (
            rows.take_id("rems_record"),
            session_id,
            stamp(started),
            nurse,
            lot,
            rng.random() < 0.15,
            rng.random() < 0.1,
            rng.random() < 0.1,
            False,
            stamp.maybe(ready_to_leave),
            nurse,
            stamp.maybe(submitted),
            nurse if submitted is not None else None,
            len(changes),
        )
    )
