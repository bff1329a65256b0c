"""The demo clinic: deterministic, never double-booked, consistent, lived-in at any hour."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ketadash.clock import local_day_bounds
from ketadash.db import get_engine
from ketadash.demo import DemoSummary, VisitTimes, build_demo_clinic
from ketadash.models import (
    ClinicInfo,
    OutcomeScore,
    Patient,
    Ride,
    Site,
    Staff,
    StatusChange,
    SymptomReturn,
    TreatmentSession,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.settings import ClinicSettings
from tests.utils.factories import make_patient

# A Friday, mid-morning at the first site (Back Bay, America/New_York).
NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
SMALL = {"sites": 2, "chairs": 6, "patients": 60, "history_days": 120}
STAMP_OF_STEP = {
    S.CHECKED_IN: "checked_in_at",
    S.INFUSING: "infusion_started_at",
    S.RECOVERY: "infusion_ended_at",
    S.READY: "ready_at",
    S.DISCHARGED: "discharged_at",
    S.CANCELLED: "closed_at",
    S.NO_SHOW: "closed_at",
}
STAMPS = (
    "checked_in_at",
    "infusion_started_at",
    "infusion_ended_at",
    "ready_at",
    "discharged_at",
    "closed_at",
)


def build(url: str, *, now: datetime = NOW, **size: int) -> DemoSummary:
    return build_demo_clinic(url=url, now=now, **{**SMALL, **size})


def rows(url: str, statement) -> list:
    with get_engine(url).connect() as connection:
        return connection.execute(statement).all()


def sessions(url: str) -> list:
    return rows(url, select(TreatmentSession).order_by(TreatmentSession.id))


def block(route: str, settings: ClinicSettings | None = None) -> timedelta:
    return timedelta(minutes=VisitTimes(settings=settings or ClinicSettings()).block_minutes(route))


def at_local(hour: int, minute: int, *, time_zone: str = "America/New_York") -> datetime:
    local = datetime(2026, 11, 27, hour, minute, tzinfo=ZoneInfo(time_zone))
    return local.astimezone(UTC)


def test_demo_is_deterministic_for_a_seed(tmp_path):
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("one.sqlite", "two.sqlite"))
    one = build(first)
    two = build(second)
    assert {**vars(one), "elapsed_seconds": 0} == {**vars(two), "elapsed_seconds": 0}
    assert sessions(first)[:50] == sessions(second)[:50]
    assert rows(first, select(VitalsReading).limit(200)) == rows(
        second, select(VitalsReading).limit(200)
    )
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    build_demo_clinic(url=other, now=NOW, seed=8, **SMALL)
    assert sessions(other)[:50] != sessions(first)[:50]


def test_summary_counts_what_was_written(db_url):
    summary = build(db_url)
    assert summary.sites == 2 and summary.chairs == 12 and summary.patients == 60
    assert summary.sessions == len(sessions(db_url))
    assert summary.status_changes == len(rows(db_url, select(StatusChange.id)))
    assert summary.rides == len(rows(db_url, select(Ride.id)))
    text = str(summary)
    assert "60 patients" in text and "\n" not in text


def test_no_chair_is_ever_double_booked(db_url):
    build(db_url)
    by_chair = defaultdict(list)
    for session in sessions(db_url):
        assert session.chair_id is not None
        if session.status == S.CANCELLED:
            continue  # a cancelled booking gives its chair back
        start = session.scheduled_start
        if session.status == S.DISCHARGED:
            end = session.discharged_at
        elif session.status == S.NO_SHOW:
            end = session.closed_at
        elif session.status == S.SCHEDULED:
            end = start + block(session.route)
        else:
            # Still in the clinic: the chair is theirs at least until now.
            end = max(start + block(session.route), NOW)
        assert end > start
        by_chair[session.chair_id].append((start, end, session.id))
    for intervals in by_chair.values():
        intervals.sort()
        for (_, end, earlier), (start, _, later) in itertools.pairwise(intervals):
            assert end <= start, f"sessions {earlier} and {later} share a chair"


def test_past_visits_fit_inside_their_chair_booking(db_url):
    build(db_url)
    day_start, _ = local_day_bounds(NOW.astimezone(ZoneInfo("America/Chicago")).date(), "UTC")
    for session in sessions(db_url):
        if session.status == S.DISCHARGED and session.scheduled_start < day_start:
            assert session.infusion_started_at >= session.scheduled_start
            assert session.discharged_at <= session.scheduled_start + block(session.route)


def test_session_rows_agree_with_their_status_history(db_url):
    build(db_url)
    history = defaultdict(list)
    for change in rows(db_url, select(StatusChange).order_by(StatusChange.version)):
        history[change.session_id].append(change)
    nurses = {
        staff.id: staff.site_id
        for staff in rows(db_url, select(Staff).where(Staff.role == "nurse"))
    }
    vitals_sessions = {row.session_id for row in rows(db_url, select(VitalsReading.session_id))}
    for session in sessions(db_url):
        changes = history[session.id]
        assert session.version == 1 + len(changes)
        assert [c.version for c in changes] == list(range(2, len(changes) + 2))
        status = S.SCHEDULED
        stamped = {}
        for change in changes:
            assert change.from_status == status
            if change.is_correction:
                # A step taken back: its stamp is cleared until it is taken again.
                assert change.reason
                stamped.pop(STAMP_OF_STEP[status])
                status = S(change.to_status)
                continue
            status = S(change.to_status)
            stamped[STAMP_OF_STEP[status]] = change.changed_at
            if status not in (S.CANCELLED, S.NO_SHOW):
                assert nurses[change.staff_id] == session.site_id
        for column, moment in stamped.items():
            assert getattr(session, column) == moment, (session.id, column)
        reached = set(stamped)
        assert session.status == status
        for column in set(STAMPS) - reached:
            assert getattr(session, column) is None, (session.id, column)
        closed = session.status in (S.CANCELLED, S.NO_SHOW)
        assert (session.close_reason is not None) == closed
        if closed:
            assert session.id not in vitals_sessions
        stamps = [getattr(session, c) for c in STAMPS[:5] if getattr(session, c) is not None]
        assert stamps == sorted(stamps)


@pytest.mark.parametrize("hour, minute", [(10, 30), (23, 50), (0, 20)])
def test_every_state_is_on_todays_board(db_url, hour, minute):
    now = at_local(hour, minute)
    build(db_url, now=now)
    sites = rows(db_url, select(Site))
    all_sessions = sessions(db_url)
    scores = rows(db_url, select(OutcomeScore))
    vitals = defaultdict(list)
    for reading in rows(db_url, select(VitalsReading)):
        vitals[reading.session_id].append(reading)
    for site in sites:
        day = now.astimezone(ZoneInfo(site.time_zone)).date()
        day_start, day_end = local_day_bounds(day, site.time_zone)
        today = [
            s
            for s in all_sessions
            if s.site_id == site.id and day_start <= s.scheduled_start < day_end
        ]
        seen = {S(s.status) for s in today}
        if any(s.status == S.SCHEDULED and s.scheduled_start > now for s in today):
            seen.add("expected")
        late = timedelta(minutes=15 if (hour, minute) == (0, 20) else 20)
        if any(s.status == S.SCHEDULED and s.scheduled_start <= now - late for s in today):
            seen.add("late")
        assert seen >= {*S, "expected", "late"} - {S.SCHEDULED}, (site.name, seen)
        assert {s.chair_id for s in today} >= {
            s.chair_id for s in all_sessions if s.site_id == site.id
        }
        for session in today:
            for column in STAMPS:
                moment = getattr(session, column)
                if moment is not None:
                    assert day_start <= moment < now, (session.id, column)
            readings = vitals[session.id]
            assert all(r.taken_at < now for r in readings)
            if session.status in (S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY):
                assert any(r.phase == "before" for r in readings)
                assert any(
                    sc.session_id == session.id and day_start <= sc.taken_at < now for sc in scores
                )
            if session.status in (S.INFUSING, S.RECOVERY, S.READY, S.DISCHARGED):
                assert any(r.phase == "during" for r in readings)
            if session.status in (S.RECOVERY, S.READY, S.DISCHARGED):
                assert any(r.phase == "after" for r in readings)
        if (hour, minute) == (10, 30) and site.time_zone == "America/New_York":
            assert 3 * 6 <= len(today) <= 4 * 6 + 2
            for session in today:
                if session.status == S.INFUSING:
                    running = now - session.infusion_started_at
                    assert timedelta(minutes=5) <= running <= timedelta(minutes=35)
                if session.status == S.RECOVERY:
                    assert now - session.infusion_ended_at < timedelta(minutes=30)


def test_demo_marker_is_written(db_url):
    build(db_url)
    marker = rows(db_url, select(ClinicInfo).where(ClinicInfo.key == "demo"))
    assert len(marker) == 1
    assert datetime.fromisoformat(marker[0].value) == NOW


def test_stamps_read_back_aware_and_match_sqlalchemy_binding(db_url):
    build(db_url)
    session = next(s for s in sessions(db_url) if s.status == S.DISCHARGED)
    assert session.scheduled_start.tzinfo is not None
    found = rows(
        db_url,
        select(TreatmentSession.id).where(
            TreatmentSession.scheduled_start == session.scheduled_start,
            TreatmentSession.checked_in_at == session.checked_in_at,
            TreatmentSession.discharged_at == session.discharged_at,
        ),
    )
    assert [row.id for row in found] == [session.id]


def test_every_attended_visit_has_a_ride_home_and_vitals(db_url):
    build(db_url)
    rides = {ride.session_id: ride for ride in rows(db_url, select(Ride))}
    phases = defaultdict(set)
    for reading in rows(db_url, select(VitalsReading)):
        phases[reading.session_id].add(reading.phase)
    for session in sessions(db_url):
        if session.status == S.DISCHARGED:
            ride = rides[session.id]
            assert ride.arrived_at is not None
            assert session.ready_at <= ride.arrived_at <= session.discharged_at
            assert phases[session.id] == {"before", "during", "after"}
        elif session.status in (S.SCHEDULED, S.CANCELLED, S.NO_SHOW):
            assert session.id not in rides


def test_phq9_falls_for_responders(sqlite_url):
    build(sqlite_url, patients=200, history_days=240)
    returned = {row.patient_id for row in rows(sqlite_url, select(SymptomReturn.patient_id))}
    by_patient = defaultdict(list)
    for score in rows(
        sqlite_url,
        select(OutcomeScore)
        .where(OutcomeScore.session_id.is_not(None))
        .order_by(OutcomeScore.taken_at),
    ):
        by_patient[score.patient_id].append(score.total)
    responders = [totals for patient, totals in by_patient.items() if patient in returned]
    assert len(responders) > 30
    assert all(totals[0] + 3 >= 15 and totals[0] <= 27 for totals in responders)
    assert statistics.mean(min(t) / t[0] for t in responders) < 0.5
    assert sum(min(t) < 5 for t in responders) >= 5
    item9 = [s.item9 for s in rows(sqlite_url, select(OutcomeScore))]
    assert 0.85 < item9.count(0) / len(item9) < 1


def test_relief_lasts_about_eighteen_days_with_a_long_tail(sqlite_url):
    build(sqlite_url, patients=500, history_days=400)
    zones = {site.id: ZoneInfo(site.time_zone) for site in rows(sqlite_url, select(Site))}
    attended = defaultdict(list)
    for session in sessions(sqlite_url):
        if session.status == S.DISCHARGED:
            local = session.scheduled_start.astimezone(zones[session.site_id]).date()
            attended[session.patient_id].append(local)
    relief = defaultdict(list)
    for row in rows(sqlite_url, select(SymptomReturn)):
        last = max(day for day in attended[row.patient_id] if day < row.reported_on)
        relief[row.patient_id].append((row.reported_on - last).days)
    medians = [statistics.median(days) for days in relief.values()]
    assert len(medians) > 100
    assert 14 <= statistics.median(medians) <= 24
    assert max(medians) >= 45


def test_no_shows_and_cancellations_are_a_few_percent(sqlite_url):
    build(sqlite_url, patients=300, history_days=365)
    past = [s for s in sessions(sqlite_url) if s.scheduled_start < NOW - timedelta(days=1)]
    no_shows = sum(s.status == S.NO_SHOW for s in past) / len(past)
    cancelled = sum(s.status == S.CANCELLED for s in past) / len(past)
    assert 0.03 < no_shows < 0.07
    assert 0.015 < cancelled < 0.05


def test_refuses_a_database_that_already_has_patients(db_url):
    make_patient(url=db_url)
    with pytest.raises(ValueError, match="already holds clinic data"):
        build(db_url)
    assert rows(db_url, select(ClinicInfo)) == []


def test_refuses_to_build_twice(sqlite_url):
    build(sqlite_url, patients=10, history_days=30)
    with pytest.raises(ValueError, match="empty database"):
        build(sqlite_url, patients=10, history_days=30)


def test_naive_now_is_refused(sqlite_url):
    with pytest.raises(ValueError, match="aware"):
        build(sqlite_url, now=datetime(2026, 11, 27, 9, 30))


def test_a_new_day_is_laid_out_over_the_old_demo(sqlite_url):
    from ketadash.clinic import stale_demo_marker

    yesterday = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    today = yesterday + timedelta(days=1)
    build_demo_clinic(url=sqlite_url, patients=40, history_days=30, now=yesterday)
    marker = stale_demo_marker(url=sqlite_url, now=today)
    assert marker == yesterday.isoformat()
    assert stale_demo_marker(url=sqlite_url, now=yesterday + timedelta(hours=2)) is None

    build_demo_clinic(url=sqlite_url, patients=40, history_days=30, now=today, replace_demo=True)
    assert stale_demo_marker(url=sqlite_url, now=today) is None
    with get_engine(sqlite_url).connect() as connection:
        patients = connection.execute(select(Patient.id)).all()
        sessions_today = connection.execute(
            select(TreatmentSession.id).where(
                TreatmentSession.scheduled_start >= today - timedelta(hours=10),
                TreatmentSession.scheduled_start < today + timedelta(hours=8),
            )
        ).all()
    assert len(patients) == 40
    assert sessions_today


def test_replacing_never_touches_a_real_clinic(sqlite_url):
    from tests.utils.factories import make_clinic

    make_clinic(url=sqlite_url)
    make_patient(url=sqlite_url)
    with pytest.raises(ValueError, match="already holds clinic data"):
        build_demo_clinic(url=sqlite_url, patients=10, history_days=10, replace_demo=True)
    with get_engine(sqlite_url).connect() as connection:
        assert len(connection.execute(select(Patient.id)).all()) == 1
