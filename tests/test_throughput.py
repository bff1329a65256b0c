"""Throughput figures on a small clinic whose every figure is worked out by hand below.

The clinic: "Main Street" in New York (EST in February, UTC-5), open 08:00–18:00
Monday to Friday, two active chairs and one retired one. The period is the week of
Monday 2 February 2026 (five open days), so capacity is 5 × 600 min × 2 chairs =
6,000 chair-minutes. Minimum recovery is the default 30 min (IV) and 120 min
(esketamine), so a booking holds its chair for 40 + 30 + 30 = 100 min (IV) and
15 + 120 + 30 = 165 min (esketamine).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ketadash.booster_follow_up import booster_follow_up
from ketadash.db import read_session, write_session
from ketadash.models import (
    Chair,
    EscortException,
    Instrument,
    OutcomeScore,
    Patient,
    Route,
    SessionKind,
    SessionStatus,
    Site,
    StatusChange,
    SymptomReturn,
    TreatmentCourse,
    TreatmentSession,
)
from ketadash.throughput import (
    Period,
    load_sites,
    read_visit_totals,
    read_visits,
    throughput_report,
    visit_totals,
    visits_table,
    with_visit_figures,
)
from ketadash.vocabulary import STAMP_OF_STATUS

NEW_YORK = ZoneInfo("America/New_York")
WEEK = Period(first_day=date(2026, 2, 2), last_day=date(2026, 2, 8))
S = SessionStatus


def at(day: date, clock: str) -> datetime:
    """A local New York time on ``day`` as aware UTC."""
    hour, minute = (int(part) for part in clock.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).astimezone(UTC)


MON, TUE, WED, THU, FRI = (date(2026, 2, 2) + timedelta(days=n) for n in range(5))


class Clinic:
    """Writes the hand-made clinic: one site, patients, sessions with their history."""

    def __init__(self, url: str) -> None:
        self.url = url
        with write_session(url) as db:
            site = Site(code="main", name="Main Street", time_zone="America/New_York")
            db.add(site)
            db.flush()
            db.add_all(
                [
                    Chair(site_id=site.id, name="Chair 1", position=1),
                    Chair(site_id=site.id, name="Chair 2", position=2),
                    Chair(site_id=site.id, name="Chair 3", position=3, active=False),
                ]
            )
            self.site_id = site.id
        self.patients = 0

    def patient(self, *, route: Route = Route.IV, series_target: int = 6) -> tuple[int, int]:
        self.patients += 1
        with write_session(self.url) as db:
            patient = Patient(
                mrn=f"MRN-{self.patients}", first_name="Pat", last_name=str(self.patients)
            )
            db.add(patient)
            db.flush()
            course = TreatmentCourse(
                patient_id=patient.id,
                route=route,
                series_target_infusions=series_target,
                started_on=date(2026, 1, 1),
            )
            db.add(course)
            db.flush()
            return patient.id, course.id

    def visit(
        self,
        patient: tuple[int, int],
        booked: datetime,
        *,
        route: Route = Route.IV,
        kind: SessionKind = SessionKind.SERIES,
        planned: int = 40,
        stamps: tuple[datetime | None, ...] = (),
        closed: tuple[SessionStatus, datetime] | None = None,
        escort_exception: EscortException | None = None,
        taken_back: datetime | None = None,
        booked_at: datetime | None = None,
    ) -> int:
        """A session; ``stamps`` are check-in, dose start, dose end, ready, gone home;
        ``booked_at`` when the booking was made (None: not recorded)."""
        steps = tuple(STAMP_OF_STATUS)
        names = tuple(STAMP_OF_STATUS.values())
        status = closed[0] if closed else (steps[len(stamps) - 1] if stamps else S.SCHEDULED)
        with write_session(self.url) as db:
            session = TreatmentSession(
                site_id=self.site_id,
                patient_id=patient[0],
                course_id=patient[1],
                scheduled_start=booked,
                planned_minutes=planned,
                route=route,
                kind=kind,
                status=status,
                closed_at=closed[1] if closed else None,
                escort_exception=escort_exception,
                booked_at=booked_at,
                **dict(zip(names, stamps, strict=False)),
            )
            db.add(session)
            db.flush()
            history: list[tuple[SessionStatus, SessionStatus, datetime, bool]] = []
            previous = S.SCHEDULED
            for step, moment in zip(steps, stamps, strict=False):
                if step is S.INFUSING and taken_back is not None:
                    # Started too early by mistake, taken back, started again at the stamp.
                    history.append((S.CHECKED_IN, S.INFUSING, taken_back, False))
                    history.append((S.INFUSING, S.CHECKED_IN, taken_back, True))
                history.append((previous, step, moment, False))
                previous = step
            if closed:
                history.append((S.SCHEDULED, closed[0], closed[1], False))
            for version, (source, target, moment, correction) in enumerate(history, start=2):
                db.add(
                    StatusChange(
                        session_id=session.id,
                        version=version,
                        from_status=source,
                        to_status=target,
                        changed_at=moment,
                        is_correction=correction,
                    )
                )
            session.version = len(history) + 1
            return session.id

    def phq9(self, patient: tuple[int, int], taken: datetime, total: int) -> None:
        with write_session(self.url) as db:
            db.add(
                OutcomeScore(
                    patient_id=patient[0], instrument=Instrument.PHQ9, taken_at=taken, total=total
                )
            )

    def symptoms_back(self, patient: tuple[int, int], day: date) -> None:
        """The patient reports that symptoms are back (a relapse signal)."""
        with write_session(self.url) as db:
            db.add(SymptomReturn(patient_id=patient[0], reported_on=day))

    def course_ended(self, patient: tuple[int, int], day: date) -> None:
        with write_session(self.url) as db:
            db.get(TreatmentCourse, patient[1]).ended_on = day


def the_week(url: str) -> Clinic:
    """Six bookings in the week of 2 February; the figures are worked out in the tests.

    When each was booked (New York days): A that morning (same day), B on Friday 30
    January (3 days), C not recorded, D on Tuesday 20 January (15 days), E on the
    evening before (1 day: 21:00 in New York is already the next day in UTC), F on
    Thursday 29 January (8 days).
    """
    clinic = Clinic(url)
    a, b, c, d, e, f = (clinic.patient() for _ in range(6))
    # A: waits 20, dose 40, recovery 45, ride 10: cycle 115. Started 20 min after booking.
    # A dose start at 09:15 was taken back and the dose started again at 09:20.
    clinic.visit(
        a,
        at(MON, "09:00"),
        stamps=(at(MON, "09:00"), at(MON, "09:20"), at(MON, "10:00"), at(MON, "10:45"),
                at(MON, "10:55")),
        taken_back=at(MON, "09:15"),
        booked_at=at(MON, "07:30"),
    )  # fmt: skip
    # B (booster): waits 40, dose 40, recovery 30, ride 30: cycle 140. Started 50 min late.
    clinic.visit(
        b,
        at(MON, "09:00"),
        kind=SessionKind.BOOSTER,
        stamps=(at(MON, "09:10"), at(MON, "09:50"), at(MON, "10:30"), at(MON, "11:00"),
                at(MON, "11:30")),
        escort_exception=EscortException.PERSON_COMING_LATER,
        booked_at=at(date(2026, 1, 30), "12:00"),
    )  # fmt: skip
    # C (esketamine): waits 10, dose 15, recovery 120, ride 5: cycle 150. On time.
    clinic.visit(
        c,
        at(TUE, "10:00"),
        route=Route.ESKETAMINE,
        planned=15,
        stamps=(at(TUE, "10:00"), at(TUE, "10:10"), at(TUE, "10:25"), at(TUE, "12:25"),
                at(TUE, "12:30")),
    )  # fmt: skip
    # D: no-show. E: cancelled 6 h before (late). F: cancelled four days ahead.
    clinic.visit(
        d,
        at(WED, "11:00"),
        closed=(S.NO_SHOW, at(WED, "12:00")),
        booked_at=at(date(2026, 1, 20), "10:00"),
    )
    clinic.visit(
        e,
        at(THU, "14:00"),
        kind=SessionKind.BOOSTER,
        closed=(S.CANCELLED, at(THU, "08:00")),
        booked_at=at(WED, "21:00"),
    )
    clinic.visit(
        f,
        at(FRI, "14:00"),
        kind=SessionKind.BOOSTER,
        closed=(S.CANCELLED, at(MON, "14:00")),
        booked_at=at(date(2026, 1, 29), "16:00"),
    )
    return clinic


def test_headline_figures_of_the_week(db_url):
    the_week(db_url)
    report = throughput_report(url=db_url, period=WEEK)
    value = {h.name: h.value for h in report.headlines}
    assert value["Infusions completed"] == 3
    assert value["Boosters given"] == 1
    # A, C and D (who did not come) had no earlier series dose; D was never dosed.
    assert value["New patients starting a series"] == 2
    assert value["No-show rate"] == pytest.approx(1 / 6)
    assert value["Late-cancel rate"] == pytest.approx(1 / 6)
    # Booked: A, B, D, E hold 100 min each, C 165; F cancelled ahead and frees the chair.
    assert value["Scheduled chair use"] == pytest.approx(565 / 6000)
    # Used: 115 + 140 + 150 chair-minutes, check-in to gone home.
    assert value["Actual chair use"] == pytest.approx(405 / 6000)
    assert value["On-time starts"] == pytest.approx(2 / 3)
    assert value["Median cycle time"] == pytest.approx(140)
    assert report.steps_taken_back == 1


def test_the_databases_totals_are_those_of_the_visits_read(db_url):
    """The period before is counted by the database (read_visit_totals), the period itself
    from its visits (visit_totals): the same numbers, to the last bit."""
    clinic = the_week(db_url)
    # Edge cases of the definitions: a cancel exactly 24 h ahead (not late), a start
    # exactly 30 min late (on time) and 31 min late (not), a visit closed without going
    # home after check-in (chair time to the close), a cancellation at the booked time.
    g, h, i, j, k = (clinic.patient() for _ in range(5))
    clinic.visit(g, at(FRI, "09:00"), closed=(S.CANCELLED, at(THU, "09:00")))
    clinic.visit(h, at(FRI, "09:00"), stamps=(at(FRI, "09:10"), at(FRI, "09:30")))
    clinic.visit(i, at(FRI, "10:00"), stamps=(at(FRI, "10:10"), at(FRI, "10:31")))
    clinic.visit(
        j, at(FRI, "11:00"), route=Route.ESKETAMINE, closed=(S.CANCELLED, at(FRI, "11:00"))
    )
    clinic.visit(
        k, at(FRI, "12:00"), stamps=(at(FRI, "12:05"),), closed=(S.CANCELLED, at(FRI, "12:30"))
    )
    with read_session(db_url) as db:
        sites = load_sites(db=db)
        visits = with_visit_figures(
            visits=read_visits(db=db, sites=sites, period=WEEK), sites=sites
        )
        counted = read_visit_totals(db=db, sites=sites, period=WEEK)
    read = visit_totals(visits=visits)
    for name in ("booked", "completed", "boosters_given", "no_shows", "late_cancels", "started",
                 "on_time_starts", "booked_chair_minutes"):  # fmt: skip
        assert getattr(counted, name) == getattr(read, name), name
    assert (counted.booked, counted.late_cancels, counted.on_time_starts) == (11, 3, 3)
    pd.testing.assert_series_equal(
        counted.chair_minutes.reset_index(drop=True),
        read.chair_minutes.reset_index(drop=True),
        check_names=False,
        check_exact=True,
    )
    pd.testing.assert_series_equal(
        counted.cycle_minutes.reset_index(drop=True),
        read.cycle_minutes.reset_index(drop=True),
        check_names=False,
        check_exact=True,
    )


def test_each_part_of_the_visit_uses_the_standing_timeline(db_url):
    the_week(db_url)
    report = throughput_report(url=db_url, period=WEEK)
    summary = report.phase_summary.set_index("part")
    # Waiting 20, 40, 10; dose 40, 40, 15; recovery 45, 30, 120; ride 10, 30, 5.
    # A's taken-back start at 09:15 counts for nothing: A waited 20 min, not 15.
    assert summary.loc["Waiting", "median"] == pytest.approx(20)
    assert summary.loc["Dose", "median"] == pytest.approx(40)
    assert summary.loc["Recovery", "median"] == pytest.approx(45)
    assert summary.loc["Ride wait", "median"] == pytest.approx(10)
    assert summary.loc["Cycle time", "median"] == pytest.approx(140)
    assert summary.loc["Waiting", "visits"] == 3
    table = visits_table(report=report).set_index("session")
    assert table["waiting min"].dropna().sort_values().tolist() == [10, 20, 40]
    assert table.loc[1, "dose started"] == "2026-02-02 09:20"
    assert table["late cancel"].sum() == 1


def test_change_against_the_week_before(db_url):
    clinic = the_week(db_url)
    earlier = clinic.patient()
    # The week before: one completed booster, 60 min of chair time, never a no-show.
    monday = date(2026, 1, 26)
    clinic.visit(
        earlier,
        at(monday, "09:00"),
        kind=SessionKind.BOOSTER,
        stamps=(at(monday, "09:00"), at(monday, "09:10"), at(monday, "09:50"),
                at(monday, "09:55"), at(monday, "10:00")),
    )  # fmt: skip
    report = throughput_report(url=db_url, period=WEEK)
    assert report.previous_period == Period(first_day=date(2026, 1, 26), last_day=date(2026, 2, 1))
    completed = report.headline("Infusions completed")
    assert (completed.value, completed.previous, completed.change) == (3, 1, 2)
    assert report.headline("No-show rate").previous == 0
    assert report.headline("Actual chair use").previous == pytest.approx(60 / 6000)
    assert report.headline("Median cycle time").previous == pytest.approx(60)


def test_charts_data_of_the_week(db_url):
    the_week(db_url)
    report = throughput_report(url=db_url, period=WEEK)
    by_day = report.completed_by_day
    assert by_day["infusions"].sum() == 3
    assert set(by_day["kind_and_route"]) == {
        "Series · IV infusion",
        "Booster · IV infusion",
        "Series · Esketamine nasal",
    }
    no_shows = report.no_shows_by_weekday.set_index("weekday")
    assert no_shows.loc["Wed", "rate"] == 1.0
    assert no_shows.loc["Mon", "booked"] == 2
    occupancy = report.occupancy.set_index(["weekday", "hour"])["share"]
    # Monday 09:00–10:00: A in a chair 60 min, B 50 min, of 2 chairs × 60 min × 1 Monday.
    assert occupancy[("Mon", 9)] == pytest.approx(110 / 120)
    # Tuesday 12:00–13:00: C until 12:30.
    assert occupancy[("Tue", 12)] == pytest.approx(30 / 120)
    assert ("Sat", 9) not in occupancy.index  # closed at weekends
    weekly = report.phases_by_week.set_index("part")
    assert weekly.loc["Recovery", "median"] == pytest.approx(45)


def test_no_shows_by_lead_time_in_the_sites_days(db_url):
    the_week(db_url)
    report = throughput_report(url=db_url, period=WEEK)
    # One visit in each band; only D, booked 15 days ahead, did not come.
    assert report.no_shows_by_lead_time.to_dict("records") == [
        {"lead_time": "Same day", "booked": 1, "no_shows": 0, "rate": 0.0},
        {"lead_time": "1–2 days", "booked": 1, "no_shows": 0, "rate": 0.0},
        {"lead_time": "3–7 days", "booked": 1, "no_shows": 0, "rate": 0.0},
        {"lead_time": "8–14 days", "booked": 1, "no_shows": 0, "rate": 0.0},
        {"lead_time": "Over 2 weeks", "booked": 1, "no_shows": 1, "rate": 1.0},
        {"lead_time": "Not recorded", "booked": 1, "no_shows": 0, "rate": 0.0},
    ]
    table = visits_table(report=report).set_index("session")
    # E was booked at 21:00 on Wednesday in New York (02:00 on Thursday in UTC).
    assert table.loc[5, "booking made"] == "2026-02-04 21:00"
    assert table.loc[5, "lead time"] == "1–2 days"
    assert table.loc[3, "booking made"] == ""
    assert table.loc[3, "lead time"] == "Not recorded"


def test_lead_time_bands_edges():
    from ketadash.throughput import lead_time_label

    days = pd.Series([0, 1, 2, 3, 7, 8, 14, 15, 400, float("nan")])
    assert lead_time_label(lead_days=days).tolist() == [
        "Same day",
        "1–2 days",
        "1–2 days",
        "3–7 days",
        "3–7 days",
        "8–14 days",
        "8–14 days",
        "Over 2 weeks",
        "Over 2 weeks",
        "Not recorded",
    ]


def test_escort_exceptions_and_boosters_booked(db_url):
    the_week(db_url)
    outcomes = throughput_report(url=db_url, period=WEEK).outcomes
    assert outcomes.boosters_booked == 3
    assert outcomes.discharges == 3
    assert outcomes.escort_exceptions.to_dict("records") == [
        {"exception": "A named person is coming later", "discharges": 1}
    ]


def _series(clinic: Clinic, patient, days: list[date], scores: list[int | None]) -> None:
    for day, score in zip(days, scores, strict=True):
        if score is not None:
            clinic.phq9(patient, at(day, "08:55"), score)
        clinic.visit(
            patient,
            at(day, "09:00"),
            stamps=(at(day, "09:00"), at(day, "09:10"), at(day, "09:50"), at(day, "10:30"),
                    at(day, "10:40")),
        )  # fmt: skip


SIX_DAYS_TO_MONDAY = [date(2026, 1, 23) + timedelta(days=2 * n) for n in range(6)]
assert SIX_DAYS_TO_MONDAY[-1] == MON


def test_response_and_remission_of_series_finished_in_the_period(db_url):
    clinic = Clinic(db_url)
    # Responding (20 → 8, a 60% drop), not in remission.
    one = clinic.patient()
    _series(clinic, one, SIX_DAYS_TO_MONDAY, [20, None, None, None, None, 8])
    # A PHQ-9 from home after the last infusion does not count for the series.
    clinic.phq9(one, at(TUE, "19:00"), 2)
    # Responding and in remission (16 → 4).
    two = clinic.patient()
    _series(clinic, two, SIX_DAYS_TO_MONDAY, [16, 12, None, None, None, 4])
    # Neither (20 → 12, a 40% drop).
    three = clinic.patient()
    _series(clinic, three, SIX_DAYS_TO_MONDAY, [20, None, None, None, None, 12])
    # Five infusions only: not finished.
    four = clinic.patient()
    _series(clinic, four, SIX_DAYS_TO_MONDAY[1:], [20, None, None, None, 3])
    # Finished the week before: not in this period.
    five = clinic.patient()
    _series(clinic, five, [d - timedelta(days=2) for d in SIX_DAYS_TO_MONDAY], [20] + [None] * 5)
    # An esketamine course of eight: six infusions do not finish it.
    six = clinic.patient(route=Route.ESKETAMINE, series_target=8)
    _series(clinic, six, SIX_DAYS_TO_MONDAY, [20, None, None, None, None, 2])

    outcomes = throughput_report(url=db_url, period=WEEK).outcomes
    assert outcomes.finished_series == 3
    assert outcomes.scored == 3
    assert outcomes.responding == 2
    assert outcomes.in_remission == 1
    assert outcomes.response_share == pytest.approx(2 / 3)
    assert outcomes.remission_share == pytest.approx(1 / 3)


def test_a_site_filter_and_an_empty_period(db_url):
    clinic = the_week(db_url)
    other = Period(first_day=date(2025, 6, 2), last_day=date(2025, 6, 8))
    empty = throughput_report(url=db_url, period=other)
    assert empty.headline("Infusions completed").value == 0
    assert empty.headline("No-show rate").value is None
    assert empty.headline("Median cycle time").value is None
    assert empty.visits.empty and empty.completed_by_day.empty
    only = throughput_report(url=db_url, period=WEEK, site_ids=[clinic.site_id + 1])
    assert only.sites == () and only.visits.empty


def test_sqlite_and_postgresql_give_the_same_figures(sqlite_url, postgres_template):
    """The demo clinic, built the same on both, gives the same report to the last digit."""
    from ketadash.demo import build_demo_clinic
    from tests.conftest import _truncate_postgres

    postgres_url, _schema = postgres_template
    _truncate_postgres(postgres_url)
    now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    reports = []
    for url in (sqlite_url, postgres_url):
        build_demo_clinic(url=url, patients=150, history_days=120, now=now)
        period = Period(first_day=date(2026, 9, 1), last_day=date(2026, 11, 27))
        reports.append(throughput_report(url=url, period=period))
    lite, postgres = reports
    assert lite.headline("Infusions completed").value > 50
    assert lite.headlines == postgres.headlines
    assert lite.outcomes.finished_series > 0
    for name in ("finished_series", "scored", "responding", "in_remission", "boosters_booked"):
        assert getattr(lite.outcomes, name) == getattr(postgres.outcomes, name)
    tables = (
        "phase_summary",
        "completed_by_day",
        "occupancy",
        "no_shows_by_weekday",
        "no_shows_by_lead_time",
    )
    for table in tables:
        pd.testing.assert_frame_equal(getattr(lite, table), getattr(postgres, table))
    # The demo records when every visit was booked.
    assert "Not recorded" not in set(lite.no_shows_by_lead_time["lead_time"])
    pd.testing.assert_frame_equal(visits_table(report=lite), visits_table(report=postgres))
    follow_ups = [
        booster_follow_up(url=url, period=period, now=now) for url in (sqlite_url, postgres_url)
    ]
    assert follow_ups[0].fell_due > 20
    for name in ("boosters", "outcomes"):
        pd.testing.assert_frame_equal(
            getattr(follow_ups[0], name), getattr(follow_ups[1], name), check_exact=True
        )
    # "The period before" is the same figure as a report of that period on its own.
    before = throughput_report(url=sqlite_url, period=lite.previous_period)
    for headline in lite.headlines:
        assert headline.previous == pytest.approx(before.headline(headline.name).value)


def test_imported_history_counts_like_any_other(db_url):
    from pathlib import Path

    from ketadash.importer import import_files
    from tests.utils.factories import make_clinic

    samples = Path(__file__).parent / "data" / "import"
    make_clinic(url=db_url)  # the site "main" the sample files name
    import_files(
        url=db_url,
        patients=samples / "patients.csv",
        sessions=samples / "sessions.csv",
        scores=samples / "scores.csv",
    )
    # 7–13 March 2025: two visits gone home (cycle 99 and 90 min, waits 13 and 7), one
    # no-show and one cancellation after check-in.
    report = throughput_report(
        url=db_url, period=Period(first_day=date(2025, 3, 7), last_day=date(2025, 3, 13))
    )
    assert report.headline("Infusions completed").value == 2
    assert report.headline("No-show rate").value == pytest.approx(1 / 4)
    assert report.headline("Median cycle time").value == pytest.approx(94.5)
    summary = report.phase_summary.set_index("part")
    assert summary.loc["Waiting", "median"] == pytest.approx(10)
    assert summary.loc["Recovery", "median"] == pytest.approx(34)
