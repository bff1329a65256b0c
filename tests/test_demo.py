"""The demo clinic: deterministic, never double-booked, consistent, lived-in at any hour."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from ketadash.clock import local_day_bounds
from ketadash.db import get_engine
from ketadash.demo import DemoSummary, build_demo_clinic
from ketadash.demo.visit_times import VisitTimes
from ketadash.gates import ITEM9_ACKNOWLEDGEMENT, discharge_gate, ready_gate, start_checklist
from ketadash.lifecycle import history_agrees
from ketadash.limits import MAX_CLOCK_SKEW
from ketadash.models import (
    ClinicInfo,
    OutcomeScore,
    Patient,
    Ride,
    RideChange,
    RideState,
    SideEffectObservation,
    Site,
    Staff,
    StatusChange,
    SymptomReturn,
    TreatmentSession,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.rules import observation_start
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.visits import load_visit
from ketadash.vocabulary import STAMP_OF_TARGET, STAMPS
from tests.utils.factories import make_patient

# A Friday, mid-morning at the first site (Back Bay, America/New_York).
NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
SMALL = {"sites": 2, "chairs": 6, "patients": 60, "history_days": 120}
STAMP_OF_STEP = STAMP_OF_TARGET


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
        wanted = {*S, "expected", "late"} - {S.SCHEDULED}
        if now - day_start < timedelta(minutes=30):
            # Too young a day for a dose to have ended, let alone a recovery: the board
            # shows only what can have happened since midnight.
            wanted = {S.CHECKED_IN, S.INFUSING, "expected", "late"}
            assert not seen & {S.RECOVERY, S.READY, S.DISCHARGED}, (site.name, seen)
        assert seen >= wanted, (site.name, seen)
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
                if session.status == S.INFUSING and session.route == "esketamine":
                    # Between devices: the dose phase lasts only as long as the devices.
                    running = now - session.infusion_started_at
                    assert running <= timedelta(minutes=session.planned_minutes + 2)
                elif session.status == S.INFUSING:
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


def kaplan_meier_median(episodes: list[tuple[int, bool]]) -> int | None:
    """The median of (days, ended) episodes, counting unfinished ones as censored."""
    surviving, at_risk = 1.0, len(episodes)
    for days in sorted({days for days, _ in episodes}):
        ended = sum(1 for d, e in episodes if d == days and e)
        surviving *= 1 - ended / at_risk
        at_risk -= sum(1 for d, _ in episodes if d == days)
        if surviving <= 0.5:
            return days
    return None


def test_relief_lasts_about_eighteen_days_with_a_long_tail(sqlite_url):
    build(sqlite_url, patients=500, history_days=400)
    # The first relief after the series: it ends when the patient says so or when only
    # the PHQ-9 shows it; a booster booked before then leaves it unfinished (censored),
    # so the median is Kaplan–Meier's, not a plain one (clinic-facts).
    endings = relief_endings(sqlite_url)
    zones = {site.id: ZoneInfo(site.time_zone) for site in rows(sqlite_url, select(Site))}
    visits = defaultdict(list)
    for session in sessions(sqlite_url):
        if session.status == S.DISCHARGED:
            local = session.scheduled_start.astimezone(zones[session.site_id]).date()
            visits[session.patient_id].append((local, session.kind))
    ended_on = defaultdict(list)
    for patient_id, day in endings.returns | endings.rises:
        ended_on[patient_id].append(day)
    episodes = []
    for patient_id, attended in visits.items():
        series = [day for day, kind in attended if kind == "series"]
        if not series:
            continue
        relief_from = max(series)
        booster = min((d for d, k in attended if k == "booster" and d > relief_from), default=None)
        ended = min((d for d in ended_on[patient_id] if d > relief_from), default=None)
        if ended is not None and (booster is None or ended < booster):
            episodes.append(((ended - relief_from).days, True))
        elif booster is not None:
            episodes.append(((booster - relief_from).days, False))
    assert len(episodes) > 150 and sum(not e for _, e in episodes) > 20
    assert 14 <= kaplan_meier_median(episodes) <= 24
    assert max(days for days, ended in episodes if ended) >= 45


def test_no_shows_and_cancellations_are_a_few_percent(sqlite_url):
    build(sqlite_url, patients=300, history_days=365)
    past = [s for s in sessions(sqlite_url) if s.scheduled_start < NOW - timedelta(days=1)]
    no_shows = sum(s.status == S.NO_SHOW for s in past) / len(past)
    cancelled = sum(s.status == S.CANCELLED for s in past) / len(past)
    assert 0.03 < no_shows < 0.07
    assert 0.015 < cancelled < 0.05


def test_every_session_records_when_it_was_booked(sqlite_url):
    """booked_at is filled for every session: before the visit, never after now, and
    visits booked far ahead are missed more often (the overall rate is unchanged)."""
    build(sqlite_url, patients=400, history_days=365)
    zones = {site.id: ZoneInfo(site.time_zone) for site in rows(sqlite_url, select(Site))}
    lead_days = defaultdict(list)
    for session in sessions(sqlite_url):
        assert session.booked_at is not None, session.id
        assert session.booked_at <= session.scheduled_start, session.id
        assert session.booked_at < NOW, session.id
        if session.scheduled_start < NOW - timedelta(days=1):
            zone = zones[session.site_id]
            lead = (
                session.scheduled_start.astimezone(zone).date()
                - session.booked_at.astimezone(zone).date()
            ).days
            lead_days[lead <= 7].append(session.status == S.NO_SHOW)
    within_a_week, further = lead_days[True], lead_days[False]
    assert len(further) > 100
    assert statistics.mean(further) > 1.5 * statistics.mean(within_a_week)


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
        build_demo_clinic(url=sqlite_url, patients=10, history_days=10, now=NOW, replace_demo=True)
    with get_engine(sqlite_url).connect() as connection:
        assert len(connection.execute(select(Patient.id)).all()) == 1


# --- what the next screens need: rides, corrections, doses, relief, aliases -------------


def todays_sessions(url: str, now: datetime) -> dict[str, list]:
    """Each site's sessions booked on its local day of ``now``, by site name."""
    by_site = {}
    everything = sessions(url)
    for site in rows(url, select(Site)):
        day = now.astimezone(ZoneInfo(site.time_zone)).date()
        day_start, day_end = local_day_bounds(day, site.time_zone)
        by_site[site.name] = [
            s
            for s in everything
            if s.site_id == site.id and day_start <= s.scheduled_start < day_end
        ]
    return by_site


def ride_state_now(ride, now: datetime) -> str:
    """The ride's state as the recovery screen will call it, "late" included."""
    if ride is None:
        return RideState.NONE.value
    if ride.arrived_at is not None:
        return RideState.ARRIVED.value
    if ride.on_the_way_at is not None:
        return RideState.ON_THE_WAY.value
    if ride.expected_pickup_at <= now:
        return "late"
    return RideState.ARRANGED.value


def test_rides_are_in_every_state_on_todays_board_with_their_history(db_url):
    now = at_local(10, 30)
    build(db_url, now=now)
    rides = {ride.session_id: ride for ride in rows(db_url, select(Ride))}
    history = defaultdict(list)
    for change in rows(db_url, select(RideChange).order_by(RideChange.version)):
        history[change.session_id].append(change)
    for site, today in todays_sessions(db_url, now).items():
        here = [s for s in today if s.status in (S.CHECKED_IN, S.INFUSING, S.RECOVERY, S.READY)]
        states = {ride_state_now(rides.get(s.id), now) for s in here}
        states |= {ride_state_now(rides.get(s.id), now) for s in today if s.status == S.DISCHARGED}
        assert states == {*RideState, "late"}, (site, states)
        for session in here:
            ride = rides.get(session.id)
            if ride is not None and ride.on_the_way_at is not None and ride.arrived_at is None:
                assert ride.on_the_way_at < now < ride.eta_at
            if ride is not None and ride_state_now(ride, now) == RideState.ARRANGED:
                assert ride.expected_pickup_at > now
    for session_id, ride in rides.items():
        changes = history[session_id]
        assert [c.version for c in changes] == list(range(1, ride.version + 1))
        assert {c.state for c in changes} <= set(RideState)
        assert changes[0].state == RideState.ARRANGED
        stamped = {c.state: c.changed_at for c in changes}
        assert stamped.get(RideState.ON_THE_WAY) == ride.on_the_way_at
        assert stamped.get(RideState.ARRIVED) == ride.arrived_at
        assert [c.changed_at for c in changes] == sorted(c.changed_at for c in changes)
    assert set(history) == set(rides)


def test_a_taken_back_step_is_in_the_history_and_every_session_agrees(db_url):
    now = at_local(10, 30)
    build(db_url, now=now)
    changes = defaultdict(list)
    for change in rows(db_url, select(StatusChange).order_by(StatusChange.version)):
        changes[change.session_id].append(change)
    for site, today in todays_sessions(db_url, now).items():
        assert any(c.is_correction for s in today for c in changes[s.id]), site
    corrections = 0
    for history in changes.values():
        for before, correction, again in zip(history, history[1:], history[2:], strict=False):
            if not correction.is_correction:
                continue
            corrections += 1
            assert correction.reason
            assert (correction.from_status, correction.to_status) == (
                before.to_status,
                before.from_status,
            )
            assert (again.from_status, again.to_status) == (before.from_status, before.to_status)
            assert not again.is_correction
            assert before.changed_at < correction.changed_at < again.changed_at
    assert corrections == sum(c.is_correction for h in changes.values() for c in h)
    with Session(get_engine(db_url)) as db:
        for session in sessions(db_url):
            assert history_agrees(db=db, session_id=session.id), session.id


def test_esketamine_is_given_in_whole_devices_and_observed_from_the_first(db_url):
    build(db_url, patients=200, history_days=120)
    settings = ClinicSettings()
    seen = 0
    for session in sessions(db_url):
        if session.route != "esketamine":
            continue
        assert session.dose_mg in (56, 84) and session.dose_mg_per_kg is None
        devices = int(session.dose_mg // 28)
        assert session.planned_minutes == (devices - 1) * 5
        if session.status != S.DISCHARGED:
            continue
        seen += 1
        assert session.given_dose_mg == session.dose_mg
        dosing = session.infusion_ended_at - session.infusion_started_at
        planned = timedelta(minutes=session.planned_minutes)
        assert planned <= dosing <= planned + timedelta(minutes=2)
        observed = session.ready_at - session.infusion_started_at
        assert observed >= timedelta(minutes=settings.min_recovery_esketamine_minutes)
    assert seen > 10


def test_doses_keep_the_plan_apart_from_what_was_given(db_url):
    build(db_url)
    weights = defaultdict(list)
    for session in sessions(db_url):
        weights[session.patient_id].append(session.weight_kg)
        started = session.infusion_started_at is not None
        if session.route == "iv":
            assert session.dose_mg_per_kg == 0.5 and session.dose_mg is None
            if started:
                # Plan × the weight of the day, drawn up to the whole mg.
                assert session.given_dose_mg == round(0.5 * session.weight_kg)
        elif session.route == "lozenge":
            assert session.dose_mg_per_kg is None and session.dose_mg > 0
        if not started:
            assert session.given_dose_mg is None
        elif session.route != "iv":
            assert session.given_dose_mg == session.dose_mg
    for patient_weights in weights.values():
        assert max(patient_weights) - min(patient_weights) <= 5


def vitals_gaps(url: str, *, phase: str, route: str | None = None) -> list[float]:
    """Minutes between consecutive readings of one phase within each discharged session."""
    routes = {s.id: s.route for s in sessions(url) if s.status == S.DISCHARGED}
    by_session = defaultdict(list)
    for reading in rows(url, select(VitalsReading).order_by(VitalsReading.taken_at)):
        wanted = route is None or routes.get(reading.session_id) == route
        if reading.phase == phase and reading.session_id in routes and wanted:
            by_session[reading.session_id].append(reading.taken_at)
    return [
        (later - earlier).total_seconds() / 60
        for moments in by_session.values()
        for earlier, later in itertools.pairwise(moments)
    ]


def test_vitals_cadence_is_the_clinic_setting_for_every_route(sqlite_url):
    build(sqlite_url, patients=200)
    settings = ClinicSettings()
    for route in ("iv", "esketamine"):
        gaps = vitals_gaps(sqlite_url, phase="after", route=route)
        assert statistics.mode(gaps) == settings.vitals_every_after_minutes
        assert max(gaps) <= settings.vitals_every_after_minutes
    gaps = vitals_gaps(sqlite_url, phase="during", route="iv")
    assert statistics.mode(gaps) == settings.vitals_every_during_minutes


def test_the_demo_follows_the_site_settings_it_is_built_with(db_url):
    settings = replace(
        ClinicSettings(),
        hold_systolic=130,
        hold_diastolic=85,
        vitals_every_during_minutes=5,
        vitals_every_after_minutes=20,
        planned_infusion_minutes=50,
        min_recovery_iv_minutes=45,
        min_recovery_esketamine_minutes=150,
    )
    build_demo_clinic(url=db_url, now=NOW, settings=settings, **SMALL)
    with Session(get_engine(db_url)) as db:
        for site in rows(db_url, select(Site)):
            assert load_clinic_settings(db=db, site_id=site.id) == settings
    for session in sessions(db_url):
        if session.route == "iv":
            assert session.planned_minutes == 50
        if session.status != S.DISCHARGED:
            continue
        if session.route == "iv":
            assert session.ready_at - session.infusion_ended_at >= timedelta(minutes=45)
            if session.scheduled_start < NOW - timedelta(days=1):
                # Earlier days are booked in chair blocks long enough for these settings.
                limit = session.scheduled_start + block("iv", settings)
                assert session.discharged_at <= limit
        if session.route == "esketamine":
            assert session.ready_at - session.infusion_started_at >= timedelta(minutes=150)
    before = [r for r in rows(db_url, select(VitalsReading)) if r.phase == "before"]
    assert max(r.systolic for r in before) <= 130
    assert max(r.diastolic for r in before) <= 85
    assert statistics.mode(vitals_gaps(db_url, phase="after")) == 20
    assert statistics.mode(vitals_gaps(db_url, phase="during", route="iv")) == 5


@dataclass(frozen=True)
class ReliefEndings:
    """How the demo's relief episodes ended: reported, seen only in a PHQ-9, or a booster."""

    returns: set[tuple[int, date]]
    rises: set[tuple[int, date]]
    planned_boosters: dict[int, int]  # patient id: boosters that came before relief ended


def relief_endings(url: str) -> ReliefEndings:
    returns = {(r.patient_id, r.reported_on) for r in rows(url, select(SymptomReturn))}
    zones = {site.id: ZoneInfo(site.time_zone) for site in rows(url, select(Site))}
    home_site = {p.id: p.home_site_id for p in rows(url, select(Patient))}
    scores = defaultdict(list)
    for score in rows(url, select(OutcomeScore).order_by(OutcomeScore.taken_at)):
        scores[score.patient_id].append(score)
    rises = set()
    for patient_id, patient_scores in scores.items():
        baseline = next((s.total for s in patient_scores if s.session_id is not None), None)
        zone = zones[home_site[patient_id]]
        for score in patient_scores:
            if score.session_id is not None or baseline is None:
                continue
            day = score.taken_at.astimezone(zone).date()
            # PHQ-9 back at 10 or more, or no longer 50% below the first one.
            relief_over = score.total >= 10 or score.total > baseline / 2
            if relief_over and (patient_id, day) not in returns:
                rises.add((patient_id, day))
    attended = defaultdict(list)
    for session in sessions(url):
        if session.status == S.DISCHARGED:
            attended[session.patient_id].append(session)
    planned = defaultdict(int)
    for patient_id, visits in attended.items():
        returned_on = sorted(day for p, day in returns if p == patient_id)
        for earlier, booster in itertools.pairwise(visits):
            if booster.kind != "booster":
                continue
            zone = zones[booster.site_id]
            since = earlier.scheduled_start.astimezone(zone).date()
            until = booster.scheduled_start.astimezone(zone).date()
            home = [
                s
                for s in scores[patient_id]
                if s.session_id is None
                and earlier.scheduled_start < s.taken_at < booster.scheduled_start
            ]
            if not any(since < day <= until for day in returned_on) and not home:
                planned[patient_id] += 1
    return ReliefEndings(returns=returns, rises=rises, planned_boosters=dict(planned))


def test_relief_ends_in_a_symptom_return_a_phq9_rise_or_the_next_booster(sqlite_url):
    build(sqlite_url, patients=300, history_days=365)
    endings = relief_endings(sqlite_url)
    planned = sum(endings.planned_boosters.values())
    assert len(endings.returns) > 100, len(endings.returns)
    assert len(endings.rises) > 50, len(endings.rises)
    assert planned > 50, planned


def test_the_wall_has_patients_with_and_without_an_alias(db_url):
    now = at_local(10, 30)
    build(db_url, now=now)
    aliases = {p.id: p.display_alias for p in rows(db_url, select(Patient))}
    for site, today in todays_sessions(db_url, now).items():
        waiting = [s for s in today if s.status in (S.RECOVERY, S.READY)]
        kinds = {aliases[s.patient_id] is not None for s in waiting}
        assert kinds == {True, False}, site


def test_side_effects_had_settled_before_anyone_was_marked_ready(sqlite_url):
    """The demo never shows what the ready gate would refuse: a patient ready to go, or
    gone home, whose last word on an effect was still moderate or severe."""
    build(sqlite_url, now=at_local(10, 30))
    ready_at = {s.id: s.ready_at for s in sessions(sqlite_url) if s.ready_at is not None}
    last: dict[tuple[int, str], tuple[datetime, str]] = {}
    o = SideEffectObservation
    for session_id, effect, severity, observed in rows(
        sqlite_url, select(o.session_id, o.effect, o.severity, o.observed_at)
    ):
        if session_id in ready_at and observed <= ready_at[session_id]:
            key = (session_id, effect)
            if key not in last or last[key][0] <= observed:
                last[key] = (observed, severity)
    assert last
    lingering = [key for key, (_, severity) in last.items() if severity in ("moderate", "severe")]
    assert lingering == []


# --- the demo keeps the rules it teaches, at any hour it is built --------------------------

NEW_YORK = ZoneInfo("America/New_York")


def new_york(*moment: int, fold: int = 0) -> datetime:
    return datetime(*moment, tzinfo=NEW_YORK, fold=fold).astimezone(UTC)


# The first site's clock (Back Bay, New York); the second (Lakeview) is an hour behind.
BUILD_MOMENTS = {
    "00:03": new_york(2026, 11, 27, 0, 3),
    "00:40": new_york(2026, 11, 27, 0, 40),
    "01:25": new_york(2026, 11, 27, 1, 25),
    "02:30": new_york(2026, 11, 27, 2, 30),
    "10:30": new_york(2026, 11, 27, 10, 30),
    "23:58": new_york(2026, 11, 27, 23, 58),
    # 02:30 does not exist on the spring-forward day: zoneinfo reads it as 03:30 EDT.
    "spring forward 02:30": new_york(2026, 3, 8, 2, 30),
    "spring forward 03:01": new_york(2026, 3, 8, 3, 1),
    "fall back 01:30 EDT": new_york(2026, 11, 1, 1, 30, fold=0),
    "fall back 01:30 EST": new_york(2026, 11, 1, 1, 30, fold=1),
    "2031 00:03": new_york(2031, 5, 13, 0, 3),
    "2031 14:10": new_york(2031, 5, 13, 14, 10),
}


def gate_breaches(url: str, now: datetime, *, since: datetime | None = None) -> list[str]:
    """Every step and reading of the demo that a gate would have refused, or that lies
    after ``now``; only visits booked from ``since`` when given (all of them without).

    Each step of a session's history, taken back or not, was a write through its gate:
    the gate is asked about the visit as it stood at that step's moment (readings after
    it do not count), exactly as the lifecycle asks it inside the write.
    """
    breaches: list[str] = []
    history = defaultdict(list)
    for change in rows(url, select(StatusChange).order_by(StatusChange.version)):
        history[change.session_id].append(change)
    rides = {ride.session_id: ride for ride in rows(url, select(Ride))}
    future = []
    for table, column in (
        (StatusChange, StatusChange.changed_at),
        (VitalsReading, VitalsReading.taken_at),
        (OutcomeScore, OutcomeScore.taken_at),
        (RideChange, RideChange.changed_at),
        (SideEffectObservation, SideEffectObservation.observed_at),
        (TreatmentSession, TreatmentSession.booked_at),
    ):
        future += [
            f"{table.__tablename__} {row.id} at {row[1]}"
            for row in rows(url, select(table.id, column).where(column > now))
        ]
    breaches += [f"in the future of {now}: {what}" for what in future]
    with Session(get_engine(url)) as db:
        settings = {
            site.id: load_clinic_settings(db=db, site_id=site.id)
            for site in rows(url, select(Site))
        }
        for session in sessions(url):
            if since is not None and session.scheduled_start < since:
                continue
            for column in STAMPS:
                moment = getattr(session, column)
                if moment is not None and moment > now:
                    breaches.append(f"session {session.id}: {column} {moment} after {now}")
            site_settings = settings[session.site_id]
            for change in history[session.id]:
                if change.is_correction:
                    continue
                at = change.changed_at
                # Readings up to the step's moment, none after (load_visit allows clock skew).
                visit = load_visit(db=db, session_id=session.id, now=at - MAX_CLOCK_SKEW)
                if visit.status in (S.CANCELLED, S.DISCHARGED):
                    # Read for a closed visit because a correction may reopen it: what is
                    # under way now, not at this step's moment (the replay does not rebuild it).
                    visit = replace(visit, open_elsewhere=None, chair_occupied_by=None)
                where = f"session {session.id} ({session.route}) {change.to_status} at {at}"
                if change.to_status == S.INFUSING:
                    # The C-SSRS step for a positive item 9 is in the start's history.
                    done = bool(change.reason and change.reason.endswith(ITEM9_ACKNOWLEDGEMENT))
                    gate = start_checklist(
                        visit=visit,
                        settings=site_settings,
                        item9_acknowledgement=ITEM9_ACKNOWLEDGEMENT if done else None,
                    )
                    if not gate.allowed or gate.holds:
                        breaches.append(f"{where}: {gate.reasons + gate.hold_reasons}")
                    elif not visit.checked_in_at <= visit.baseline.taken_at <= at:
                        breaches.append(f"{where}: vitals at {visit.baseline.taken_at}")
                elif change.to_status == S.READY:
                    gate = ready_gate(
                        visit=visit, settings=site_settings, now=at, steady_on_feet=True
                    )
                    if not gate.allowed:
                        breaches.append(f"{where}: {gate.reasons}")
                    observed = at - observation_start(visit, site_settings)
                    minimum = site_settings.min_recovery_minutes(session.route)
                    if observed < timedelta(minutes=minimum):
                        breaches.append(f"{where}: ready after {observed} of observation")
                elif change.to_status == S.DISCHARGED:
                    ride = rides.get(session.id)
                    arrived = ride is not None and ride.arrived_at is not None
                    if arrived and ride.arrived_at > at:
                        # The ride arrived only later: no escort at the discharge.
                        visit = replace(visit, ride=None)
                    gate = discharge_gate(
                        visit=visit,
                        settings=site_settings,
                        escort_exception=visit.escort_exception,
                        reason=visit.escort_exception_reason,
                    )
                    if not gate.allowed:
                        breaches.append(f"{where}: {gate.reasons}")
    return breaches


@pytest.mark.parametrize("moment", list(BUILD_MOMENTS), ids=list(BUILD_MOMENTS))
def test_todays_board_is_one_the_gates_allow_at_any_hour(sqlite_url, moment):
    now = BUILD_MOMENTS[moment]
    build(sqlite_url, now=now, patients=40, history_days=30)
    since = now - timedelta(days=2)
    assert gate_breaches(sqlite_url, now, since=since) == []


def test_every_visit_of_the_demo_is_one_the_gates_allow(db_url):
    now = BUILD_MOMENTS["01:25"]
    build(db_url, now=now)
    assert gate_breaches(db_url, now) == []


def test_the_demo_takes_its_moment_from_the_caller(sqlite_url):
    """The demo never reads the clock: the screen or the command line that builds it does,
    once, and passes the moment down (a build at 00:03 is then a test, not a wait)."""
    with pytest.raises(TypeError, match="now"):
        build_demo_clinic(url=sqlite_url, **SMALL)
    assert rows(sqlite_url, select(Patient.id)) == []


@pytest.mark.parametrize("moment", ["00:40", "02:30"])
def test_the_gates_allow_the_demo_at_night_by_the_sites_own_settings(sqlite_url, moment):
    settings = replace(
        ClinicSettings(),
        vitals_every_after_minutes=20,
        planned_infusion_minutes=50,
        min_recovery_iv_minutes=45,
        min_recovery_esketamine_minutes=150,
        late_arrival_minutes=40,
    )
    now = BUILD_MOMENTS[moment]
    build_demo_clinic(url=sqlite_url, now=now, settings=settings, **SMALL)
    assert gate_breaches(sqlite_url, now) == []
