"""How good the driver's "ready around" is: the time shown against the time the patient
was actually marked ready, on the demo's history.

Not a test: it prints figures for docs/driver-link.md. The demo clinic is built (default size,
seeded, around a fixed moment) in a temporary SQLite file, or read from ``--url``.
For every visit of the last ``--days`` that was marked ready, the page's estimate is
worked out as a driver would have seen it at three moments of the visit: at check-in,
when the dose started, and when the dose ended (recovery began), using the same
functions as the page (``driver_state``), with the site's typical stay past the
minimum taken only from visits booked in the 28 days before that visit. The error is
the shown time minus the actual ready time (positive: the driver was told later than
the patient was ready).

Two estimates are compared: the route's clock alone (the booked time or arrival, the
planned dose, the minimum recovery), and the same with the site's typical wait before
the dose and stay past the minimum (what the page shows).

    python benchmarks/bench_driver_link.py
    python benchmarks/bench_driver_link.py --url sqlite:////tmp/demo.sqlite --days 120
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from ketadash.db import read_session  # noqa: E402
from ketadash.demo import build_demo_clinic  # noqa: E402
from ketadash.driver_link import (  # noqa: E402
    HISTORY_DAYS,
    NO_HISTORY,
    driver_state,
    site_typical_of,
)
from ketadash.models import Route, Site, TreatmentSession  # noqa: E402
from ketadash.models import SessionStatus as S  # noqa: E402
from ketadash.public import DriverState, PublicVisitClock  # noqa: E402
from ketadash.settings import load_clinic_settings  # noqa: E402

# A Monday afternoon, fixed so that every run measures the same demo.
DEMO_MOMENT = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
WITHIN = timedelta(minutes=10)
MOMENTS = ("check-in", "dose start", "dose end")


def _clock_at(row, moment: str) -> tuple[PublicVisitClock, datetime] | None:
    """The visit's public clock as it stood at ``moment``, and that moment."""
    base = {
        "site_id": row.site_id,
        "route": Route(row.route),
        "planned_minutes": row.planned_minutes,
        "scheduled_start": row.scheduled_start,
        "checked_in_at": row.checked_in_at,
        "infusion_started_at": None,
        "infusion_ended_at": None,
        "ready_at": None,
        "discharged_at": None,
    }
    if moment == "check-in":
        if row.checked_in_at is None:
            return None
        return PublicVisitClock(status=S.CHECKED_IN, **base), row.checked_in_at
    base["infusion_started_at"] = row.infusion_started_at
    if moment == "dose start":
        return PublicVisitClock(status=S.INFUSING, **base), row.infusion_started_at
    base["infusion_ended_at"] = row.infusion_ended_at
    return PublicVisitClock(status=S.RECOVERY, **base), row.infusion_ended_at


def measure(*, url: str, days: int) -> dict:
    with read_session(url) as db:
        settings = {
            site_id: load_clinic_settings(db=db, site_id=site_id)
            for site_id in db.execute(select(Site.id)).scalars()
        }
        t = TreatmentSession
        rows = db.execute(
            select(
                t.site_id, t.route, t.planned_minutes, t.scheduled_start, t.checked_in_at,
                t.infusion_started_at, t.infusion_ended_at, t.ready_at,
            )
            .where(t.ready_at.is_not(None), t.infusion_started_at.is_not(None),
                   t.infusion_ended_at.is_not(None))
            .order_by(t.scheduled_start)
        ).all()  # fmt: skip
    # Each site's and route's past visits, in booking order.
    history: dict[tuple[int, str], tuple[list[datetime], list]] = defaultdict(lambda: ([], []))
    for row in rows:
        starts, visits = history[(row.site_id, row.route)]
        starts.append(row.scheduled_start)
        visits.append(row)
    latest = max(row.scheduled_start for row in rows)
    errors: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    counted = 0
    for row in rows:
        if row.scheduled_start < latest - timedelta(days=days):
            continue
        counted += 1
        starts, visits = history[(row.site_id, row.route)]
        low = bisect.bisect_left(starts, row.scheduled_start - timedelta(days=HISTORY_DAYS))
        high = bisect.bisect_left(starts, row.scheduled_start)
        usual = site_typical_of(
            rows=visits[low:high], route=Route(row.route), settings=settings[row.site_id]
        )
        for moment in MOMENTS:
            at = _clock_at(row, moment)
            if at is None:
                continue
            clock, now = at
            for method, plus in (("route's clock", NO_HISTORY), ("with site's typical", usual)):
                state, around = driver_state(
                    clock=clock, settings=settings[row.site_id], now=now, typical=plus
                )
                if state is not DriverState.IN_TREATMENT:
                    calls[(method, moment)] += 1
                    continue
                minutes = (around - row.ready_at).total_seconds() / 60
                errors[(method, moment, row.route)].append(minutes)
                errors[(method, moment, "all")].append(minutes)
    return {"visits": counted, "errors": errors, "calls": calls}


def _line(values: list[float]) -> str:
    absolute = [abs(v) for v in values]
    within = sum(a <= WITHIN.total_seconds() / 60 for a in absolute) / len(values)
    return (
        f"n={len(values):5d}  median |error| {statistics.median(absolute):5.1f} min  "
        f"median error {statistics.median(values):+6.1f} min  within 10 min {within:6.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a demo database to read (default: build one)")
    parser.add_argument("--days", type=int, default=180, help="the last N days of visits")
    args = parser.parse_args(argv)
    url = args.url
    if url is None:
        folder = tempfile.mkdtemp(prefix="bench-driver-link-")
        url = f"sqlite:///{folder}/demo.sqlite"
        summary = build_demo_clinic(url=url, now=DEMO_MOMENT)
        print(f"demo: {summary.sessions} sessions, {summary.patients} patients (seed 7)")
    found = measure(url=url, days=args.days)
    print(f"visits marked ready in the last {args.days} days: {found['visits']}")
    print("shown 'ready around' minus actual ready time (+: told later than ready):")
    for method in ("route's clock", "with site's typical"):
        print(f"\n{method}:")
        for moment in MOMENTS:
            print(
                f"  at {moment:10s} all         {_line(found['errors'][(method, moment, 'all')])}"
            )
            for route in Route:
                values = found["errors"].get((method, moment, route.value))
                if values:
                    print(f"  {'':13s} {route.value:11s} {_line(values)}")
            calls = found["calls"].get((method, moment), 0)
            if calls:
                print(f"  {'':13s} 'please call us' instead of a time: {calls}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
