"""The ride home: its states, its history, its corrections, its alerts, and the discharge rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from ketadash.clock import utc_now
from ketadash.db import read_session, write_session
from ketadash.gates import discharge_gate
from ketadash.lifecycle import LifecycleError, RideChanged, StepNotAllowed, take_step
from ketadash.models import (
    EscortException,
    Ride,
    RideChange,
    RideState,
    Staff,
    StaffRole,
    StatusChange,
    TreatmentSession,
)
from ketadash.models import SessionStatus as S
from ketadash.recovery import discharge_patient, escort_exception_discharges
from ketadash.rides import (
    RideFacts,
    RideRefused,
    RideVisitFacts,
    arrange_ride,
    cancel_ride,
    closing_time_alert,
    load_rides,
    no_ride_alert,
    ride_alerts,
    ride_arrived,
    ride_history,
    ride_late_alert,
    ride_on_the_way,
    ride_state,
    take_back_ride_arrival,
)
from ketadash.settings import ClinicSettings
from ketadash.staff import StaffMember
from ketadash.text import TextRejected
from ketadash.visits import RideSnapshot
from ketadash.vocabulary import Step
from tests.utils.factories import make_clinic, make_patient, make_session, minutes
from tests.utils.visits import a_visit

# 09:00 in New York on a Tuesday.
NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
NEW_YORK = "America/New_York"
SETTINGS = ClinicSettings()


# --- states, pure ------------------------------------------------------------------------------


def facts(**changes) -> RideFacts:
    base = RideFacts(
        session_id=1,
        driver_name="Jo Morgan",
        driver_phone="555-0101",
        relationship="partner",
        expected_pickup_at=NINE + minutes(120),
        on_the_way_at=None,
        eta_at=None,
        arrived_at=None,
        version=1,
    )
    return replace(base, **changes)


def test_ride_state_is_derived_from_the_row():
    assert ride_state(None) is RideState.NONE
    assert ride_state(facts(driver_name="")) is RideState.NONE
    assert ride_state(facts()) is RideState.ARRANGED
    assert ride_state(facts(on_the_way_at=NINE)) is RideState.ON_THE_WAY
    assert ride_state(facts(on_the_way_at=NINE, arrived_at=NINE)) is RideState.ARRIVED
    assert ride_state(facts(arrived_at=NINE)) is RideState.ARRIVED


def test_expected_time_is_the_drivers_own_once_they_call():
    assert facts().expected_at == NINE + minutes(120)
    called = facts(on_the_way_at=NINE + minutes(100), eta_at=NINE + minutes(140))
    assert called.expected_at == NINE + minutes(140)
    # Called but gave no time: the arranged pickup still stands.
    assert facts(on_the_way_at=NINE).expected_at == NINE + minutes(120)


# --- alerts, pure ---------------------------------------------------------------------------------


def visit(status=S.READY, closes_at=time(18, 0)) -> RideVisitFacts:
    return RideVisitFacts(status=status, ready_at=NINE, time_zone=NEW_YORK, closes_at=closes_at,
                          day=date(2026, 11, 24))  # fmt: skip


def test_ready_without_a_ride_raises_an_alert_saying_what_to_do():
    alert = no_ride_alert(ride=None, visit=visit())
    assert alert is not None and "no ride home is arranged" in alert.what
    assert "call" in alert.action.lower()
    assert no_ride_alert(ride=None, visit=visit(status=S.RECOVERY)) is None
    assert no_ride_alert(ride=facts(), visit=visit()) is None
    assert no_ride_alert(ride=facts(driver_name=""), visit=visit()) is not None


def test_ride_late_against_its_expected_time_after_the_setting():
    ride = facts(expected_pickup_at=NINE)
    late_after = SETTINGS.ride_late_after_minutes
    assert ride_late_alert(ride=ride, visit=visit(), settings=SETTINGS, now=NINE) is None
    just_before = NINE + minutes(late_after - 1)
    assert ride_late_alert(ride=ride, visit=visit(), settings=SETTINGS, now=just_before) is None
    alert = ride_late_alert(
        ride=ride, visit=visit(), settings=SETTINGS, now=NINE + minutes(late_after)
    )
    assert alert.what == f"Ride {late_after} min late (expected 09:00)"
    assert "Jo Morgan on 555-0101" in alert.action
    stricter = replace(SETTINGS, ride_late_after_minutes=5)
    assert ride_late_alert(ride=ride, visit=visit(), settings=stricter, now=NINE + minutes(5))


def test_a_ride_is_late_against_the_time_the_driver_gave():
    ride = facts(expected_pickup_at=NINE, on_the_way_at=NINE, eta_at=NINE + minutes(30))
    at = NINE + minutes(30 + SETTINGS.ride_late_after_minutes)
    assert ride_late_alert(ride=ride, visit=visit(), settings=SETTINGS, now=at - minutes(1)) is None
    assert (
        "expected 09:30"
        in ride_late_alert(ride=ride, visit=visit(), settings=SETTINGS, now=at).what
    )


def test_no_late_alert_once_arrived_without_a_time_or_before_the_patient_is_here():
    now = NINE + minutes(90)
    assert ride_late_alert(
        ride=facts(expected_pickup_at=NINE, arrived_at=NINE + minutes(60)),
        visit=visit(),
        settings=SETTINGS,
        now=now,
    ) is None  # fmt: skip
    assert ride_late_alert(
        ride=facts(expected_pickup_at=None), visit=visit(), settings=SETTINGS, now=now
    ) is None  # fmt: skip
    assert ride_late_alert(
        ride=facts(expected_pickup_at=NINE), visit=visit(status=S.SCHEDULED), settings=SETTINGS,
        now=now,
    ) is None  # fmt: skip


def test_closing_time_alert_within_the_setting_of_the_sites_closing():
    n = SETTINGS.closing_time_alert_minutes
    # The site closes at 18:00 New York time = 23:00 UTC in November.
    closes = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert closing_time_alert(visit=visit(), settings=SETTINGS, now=closes - minutes(n + 1)) is None
    alert = closing_time_alert(visit=visit(), settings=SETTINGS, now=closes - minutes(n))
    assert alert.what == f"Still here, the site closes at 18:00 (in {n} min)"
    assert alert.level == "warning"
    after = closing_time_alert(visit=visit(), settings=SETTINGS, now=closes + minutes(10))
    assert after.what == "Still here 10 min after closing time (18:00)"
    assert after.level == "danger"
    # Gone home or never arrived: nobody is still here.
    for status in (S.DISCHARGED, S.SCHEDULED):
        assert closing_time_alert(visit=visit(status=status), settings=SETTINGS, now=closes) is None
    assert closing_time_alert(visit=visit(closes_at=None), settings=SETTINGS, now=closes) is None
    wider = replace(SETTINGS, closing_time_alert_minutes=90)
    assert closing_time_alert(visit=visit(), settings=wider, now=closes - minutes(90))


def test_closing_time_uses_the_sites_own_day_and_zone():
    tokyo = RideVisitFacts(status=S.RECOVERY, ready_at=None, time_zone="Asia/Tokyo",
                           closes_at=time(18, 0), day=date(2026, 11, 24))  # fmt: skip
    # 17:45 in Tokyo is 08:45 UTC.
    alert = closing_time_alert(
        visit=tokyo, settings=SETTINGS, now=datetime(2026, 11, 24, 8, 45, tzinfo=UTC)
    )
    assert alert is not None and "(in 15 min)" in alert.what


def test_ride_alerts_gathers_every_standing_alert():
    closes = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    alerts = ride_alerts(ride=None, visit=visit(), settings=SETTINGS, now=closes - minutes(5))
    assert [a.what.split(",")[0] for a in alerts] == ["Ready to go", "Still here"]
    assert ride_alerts(ride=facts(), visit=visit(), settings=SETTINGS, now=NINE) == []


# --- writes ---------------------------------------------------------------------------------


@pytest.fixture
def clinic(db_url):
    return make_clinic(url=db_url)


@pytest.fixture
def session_id(db_url, clinic):
    patient = make_patient(url=db_url, site_id=clinic.site_id)
    return make_session(url=db_url, clinic=clinic, patient_id=patient, scheduled_start=NINE)


@pytest.fixture
def desk_id(db_url, clinic):
    with write_session(db_url) as db:
        desk = Staff(name="Rita Desk", role=StaffRole.FRONT_DESK, site_id=clinic.site_id)
        db.add(desk)
        db.flush()
        return desk.id


def _put(url, session_id, **values):
    """Place a session in a state directly (the lifecycle's own tests cover the steps)."""
    with write_session(url) as db:
        db.execute(
            update(TreatmentSession).where(TreatmentSession.id == session_id).values(**values)
        )


def _ready(url, session_id):
    _put(url, session_id, status=S.READY, checked_in_at=NINE, infusion_started_at=NINE,
         infusion_ended_at=NINE + minutes(40), ready_at=NINE + minutes(80))  # fmt: skip


def _history(url, session_id):
    with read_session(url) as db:
        return db.exec(
            select(RideChange)
            .where(RideChange.session_id == session_id)
            .order_by(RideChange.version)
        ).all()


def test_front_desk_arranges_a_ride_before_the_patient_arrives(db_url, session_id, desk_id):
    saved = arrange_ride(url=db_url, session_id=session_id, staff_id=desk_id,
                         expected_ride_version=None, driver_name="  Jo\u200b Morgan ",
                         driver_phone="555-0101", relationship="partner",
                         expected_pickup_at=NINE + minutes(120),
                         now=NINE - minutes(60))  # fmt: skip
    assert (saved.from_state, saved.state, saved.version) == (RideState.NONE, RideState.ARRANGED, 1)
    ride = load_rides(url=db_url, session_ids=[session_id])[session_id]
    assert ride.driver_name == "Jo Morgan"
    assert ride.state is RideState.ARRANGED
    [change] = _history(db_url, session_id)
    assert (change.version, change.state, change.staff_id) == (1, "arranged", desk_id)
    assert change.changed_at == NINE - minutes(60)


def test_a_ride_goes_arranged_on_the_way_arrived_with_history(db_url, clinic, session_id):
    _ready(db_url, session_id)
    nurse = clinic.nurse_id
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo Morgan", now=NINE)  # fmt: skip
    way = ride_on_the_way(url=db_url, session_id=session_id, staff_id=nurse,
                          expected_ride_version=1, eta_at=NINE + minutes(100),
                          now=NINE + minutes(70))  # fmt: skip
    assert (way.state, way.version) == (RideState.ON_THE_WAY, 2)
    ride = load_rides(url=db_url, session_ids=[session_id])[session_id]
    assert (ride.on_the_way_at, ride.eta_at) == (NINE + minutes(70), NINE + minutes(100))
    here = ride_arrived(url=db_url, session_id=session_id, staff_id=clinic.other_nurse_id,
                        expected_ride_version=2, now=NINE + minutes(95))  # fmt: skip
    assert (here.from_state, here.state, here.version) == (
        RideState.ON_THE_WAY,
        RideState.ARRIVED,
        3,
    )
    entries = ride_history(url=db_url, session_id=session_id)
    assert [(e.version, e.state, e.staff_name) for e in entries] == [
        (1, RideState.ARRANGED, "Dana Reyes"),
        (2, RideState.ON_THE_WAY, "Dana Reyes"),
        (3, RideState.ARRIVED, "Sam Okafor"),
    ]
    # Changing the phone number does not un-arrive the driver.
    again = arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                         expected_ride_version=3, driver_name="Jo Morgan",
                         driver_phone="555-0199")  # fmt: skip
    assert again.state is RideState.ARRIVED


def test_steps_out_of_order_are_refused_and_nothing_is_written(db_url, clinic, session_id):
    nurse = clinic.nurse_id
    with pytest.raises(RideRefused, match="Record who has come first"):
        ride_arrived(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None)
    with pytest.raises(RideRefused, match="Arrange the ride first"):
        ride_on_the_way(url=db_url, session_id=session_id, staff_id=nurse,
                        expected_ride_version=None, eta_at=None)  # fmt: skip
    with pytest.raises(LifecycleError, match="Give the name"):
        arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                     expected_ride_version=None, driver_name="\u200b ")  # fmt: skip
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo")  # fmt: skip
    ride_arrived(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1)
    with pytest.raises(RideRefused, match="already recorded as arrived"):
        ride_arrived(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=2)
    with pytest.raises(RideRefused, match="take the arrival back"):
        ride_on_the_way(url=db_url, session_id=session_id, staff_id=nurse,
                        expected_ride_version=2, eta_at=None)  # fmt: skip
    assert len(_history(db_url, session_id)) == 2


def test_a_stale_station_is_told_and_writes_nothing(db_url, clinic, session_id):
    arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo")  # fmt: skip
    ride_arrived(url=db_url, session_id=session_id, staff_id=clinic.other_nurse_id,
                 expected_ride_version=1)  # fmt: skip
    with pytest.raises(RideChanged, match="changed this patient's ride"):
        take_back_ride_arrival(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                               expected_ride_version=1,
                               reason="wrong patient's driver")  # fmt: skip
    assert [c.state for c in _history(db_url, session_id)] == ["arranged", "arrived"]


def test_no_ride_change_once_the_visit_is_closed(db_url, clinic, session_id):
    _put(db_url, session_id, status=S.NO_SHOW)
    with pytest.raises(StepNotAllowed, match="marked as a no-show"):
        arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                     expected_ride_version=None, driver_name="Jo")  # fmt: skip


def test_an_arrival_is_taken_back_only_with_a_reason_and_then_discharge_is_refused(
    db_url, clinic, session_id
):
    """Issue 6 item 9: one mistaken tick must not satisfy the discharge check for good."""
    _ready(db_url, session_id)
    nurse = clinic.nurse_id
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo Morgan", now=NINE)  # fmt: skip
    ride_on_the_way(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1,
                    eta_at=NINE + minutes(100), now=NINE + minutes(70))  # fmt: skip
    ride_arrived(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=2,
                 now=NINE + minutes(85))  # fmt: skip
    for blank in ("", "  ", "\u200b\u200b\u200b", "..."):
        with pytest.raises(TextRejected, match="needs a reason in words"):
            take_back_ride_arrival(url=db_url, session_id=session_id, staff_id=nurse,
                                   expected_ride_version=3, reason=blank)  # fmt: skip
    back = take_back_ride_arrival(url=db_url, session_id=session_id, staff_id=nurse,
                                  expected_ride_version=3, reason="ticked the wrong patient",
                                  now=NINE + minutes(87))  # fmt: skip
    assert (back.from_state, back.state, back.version) == (
        RideState.ARRIVED,
        RideState.ON_THE_WAY,
        4,
    )
    last = _history(db_url, session_id)[-1]
    assert (last.state, last.is_correction, last.reason) == (
        "on_the_way",
        True,
        "ticked the wrong patient",
    )
    with pytest.raises(StepNotAllowed, match="No adult has been recorded as arrived"):
        take_step(url=db_url, session_id=session_id, step=Step.DISCHARGE, staff_id=nurse,
                  expected_version=1, now=NINE + minutes(90))  # fmt: skip
    with pytest.raises(RideRefused, match="Nothing to take back"):
        take_back_ride_arrival(url=db_url, session_id=session_id, staff_id=nurse,
                               expected_ride_version=4, reason="twice")  # fmt: skip


def test_a_ride_that_falls_through_goes_back_to_none_with_its_reason(db_url, clinic, session_id):
    nurse = clinic.nurse_id
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo", driver_phone="555-0101")  # fmt: skip
    with pytest.raises(TextRejected):
        cancel_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1,
                    reason="")  # fmt: skip
    gone = cancel_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1,
                       reason="Car broke down")  # fmt: skip
    assert gone.state is RideState.NONE
    ride = load_rides(url=db_url, session_ids=[session_id])[session_id]
    assert (ride.state, ride.driver_phone) == (RideState.NONE, None)
    again = arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                         expected_ride_version=2, driver_name="Sam")  # fmt: skip
    assert again.state is RideState.ARRANGED


def test_an_arrived_ride_returns_its_version_and_writes_history(db_url, clinic, session_id):
    assert arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                        expected_ride_version=None, driver_name="Jo", arrived=True,
                        now=NINE).version == 1  # fmt: skip
    ride = load_rides(url=db_url, session_ids=[session_id])[session_id]
    assert (ride.state, ride.arrived_at) == (RideState.ARRIVED, NINE)
    assert [c.state for c in _history(db_url, session_id)] == ["arrived"]


# --- the discharge rule and its recorded alternatives ---------------------------------------------


def test_discharge_rule_needs_an_arrived_adult_or_an_exception_with_a_reason():
    """The discharge gate, as the Recovery page shows it and the discharge enforces it."""
    ready = a_visit(status=S.READY)
    arrived = RideSnapshot(driver_name="Jo", driver_phone=None, relationship=None,
                           expected_pickup_at=None, arrived_at=NINE, version=3)  # fmt: skip
    on_the_way = replace(arrived, arrived_at=None, on_the_way_at=NINE)
    assert discharge_gate(settings=SETTINGS, visit=replace(ready, ride=arrived)).allowed
    for ride in (None, replace(arrived, arrived_at=None), on_the_way):
        gate = discharge_gate(settings=SETTINGS, visit=replace(ready, ride=ride))
        assert not gate.allowed
        assert "record what was arranged instead with a reason" in gate.reasons[0]
    lead = StaffMember(id=3, name="Lee Park", role=StaffRole.LEAD)
    for exception in EscortException:
        silent = discharge_gate(settings=SETTINGS, visit=ready, escort_exception=exception,
                                reason=" \u200b ", approving_lead=lead)  # fmt: skip
        assert not silent.allowed, "an exception without a reason is a silent bypass"
        named = discharge_gate(settings=SETTINGS, visit=ready, escort_exception=exception,
                               reason="Her brother Tom collects her at 15:00",
                               approving_lead=lead)  # fmt: skip
        assert named.allowed
    # With the escort here there is nothing to make an exception for.
    assert not discharge_gate(settings=SETTINGS, visit=replace(ready, ride=arrived),
                              escort_exception=EscortException.LEAD_APPROVED,
                              reason="Dr Patel approved").allowed  # fmt: skip


def test_discharge_with_an_escort_exception_is_recorded_and_listed_for_the_lead(
    db_url, clinic, session_id, desk_id
):
    _ready(db_url, session_id)
    with pytest.raises(LifecycleError, match="arrived"):
        discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                          expected_version=1, now=NINE + minutes(90))  # fmt: skip
    with pytest.raises(LifecycleError, match="Say in words who is taking the patient home"):
        discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                          expected_version=1, escort_exception=EscortException.LEAD_APPROVED,
                          reason="ok", now=NINE + minutes(90))  # fmt: skip
    with pytest.raises(StepNotAllowed, match="only a nurse or a clinic lead"):
        discharge_patient(url=db_url, session_id=session_id, staff_id=desk_id,
                          expected_version=1,
                          escort_exception=EscortException.PERSON_COMING_LATER,
                          reason="Her brother Tom, at 15:00", now=NINE + minutes(90))  # fmt: skip
    result = discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                               expected_version=1,
                               escort_exception=EscortException.PERSON_COMING_LATER,
                               reason="Her brother Tom collects her from the café at 15:00",
                               now=NINE + minutes(90))  # fmt: skip
    assert result.to_status == S.DISCHARGED
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert row.escort_exception == EscortException.PERSON_COMING_LATER
        assert row.escort_exception_reason.startswith("Her brother Tom")
        change = db.exec(select(StatusChange).where(StatusChange.session_id == session_id)).one()
        assert "Escort exception" in change.reason
    [listed] = escort_exception_discharges(url=db_url, site_id=clinic.site_id, since=NINE)
    assert (listed.patient_name, listed.exception, listed.staff_name) == (
        "Alex Morgan",
        EscortException.PERSON_COMING_LATER,
        "Dana Reyes",
    )
    assert escort_exception_discharges(
        url=db_url, site_id=clinic.site_id, since=NINE + minutes(120)
    ) == []  # fmt: skip


def test_discharge_with_the_ride_here_needs_no_exception(db_url, clinic, session_id):
    _ready(db_url, session_id)
    arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo", arrived=True)  # fmt: skip
    result = discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                               expected_version=1, now=NINE + minutes(90))  # fmt: skip
    assert result.to_status == S.DISCHARGED
    assert escort_exception_discharges(url=db_url, site_id=clinic.site_id, since=NINE) == []
    with read_session(db_url) as db:
        assert db.exec(select(Ride)).one().arrived_at is not None


# --- review fixes: future moments, a new driver, the visit's own day ----------------------------


def test_a_ride_change_dated_in_the_future_is_refused_and_writes_nothing(
    db_url, clinic, session_id
):
    nurse = clinic.nurse_id
    later = utc_now() + timedelta(hours=3)
    with pytest.raises(LifecycleError, match="cannot be dated in the future"):
        arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                     expected_ride_version=None, driver_name="Jo", arrived=True,
                     now=later)  # fmt: skip
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo")  # fmt: skip
    with pytest.raises(LifecycleError, match="cannot be dated in the future"):
        ride_arrived(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1,
                     now=later)  # fmt: skip
    with pytest.raises(LifecycleError, match="cannot be dated in the future"):
        ride_on_the_way(url=db_url, session_id=session_id, staff_id=nurse,
                        expected_ride_version=1, eta_at=None, now=later)  # fmt: skip
    assert [c.state for c in _history(db_url, session_id)] == ["arranged"]


def test_another_driver_for_an_arrived_ride_is_refused_until_the_arrival_is_taken_back(
    db_url, clinic, session_id
):
    nurse = clinic.nurse_id
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo Morgan", arrived=True, now=NINE)  # fmt: skip
    with pytest.raises(RideRefused, match="take the arrival back"):
        arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                     expected_ride_version=1, driver_name="Sam Lee", now=NINE)  # fmt: skip
    ride = load_rides(url=db_url, session_ids=[session_id])[session_id]
    assert (ride.driver_name, ride.state) == ("Jo Morgan", RideState.ARRIVED)
    # The same driver (typed again, another case) keeps the arrival.
    same = arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                        expected_ride_version=1, driver_name=" jo  morgan",
                        driver_phone="555-0199", now=NINE)  # fmt: skip
    assert same.state is RideState.ARRIVED


def test_cancelling_an_arrived_ride_is_recorded_as_a_correction(db_url, clinic, session_id):
    nurse = clinic.nurse_id
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo", now=NINE)  # fmt: skip
    cancel_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1,
                reason="Car broke down", now=NINE)  # fmt: skip
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=2,
                 driver_name="Sam", arrived=True, now=NINE)  # fmt: skip
    cancel_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=3,
                reason="ticked the wrong patient", now=NINE)  # fmt: skip
    history = _history(db_url, session_id)
    assert [(c.state, c.is_correction) for c in history] == [
        ("arranged", False),
        ("none", False),
        ("arrived", False),
        ("none", True),
    ]


def test_the_closing_time_alert_stands_past_midnight_for_a_visit_of_the_day_before():
    # Booked on 24 November; the site closed at 18:00 (23:00 UTC); now 00:55 on the 25th.
    evening = replace(visit(status=S.RECOVERY), day=date(2026, 11, 24))
    after_midnight = datetime(2026, 11, 25, 5, 55, tzinfo=UTC)
    alert = closing_time_alert(visit=evening, settings=SETTINGS, now=after_midnight)
    assert alert is not None
    assert alert.what == "Still here 415 min after closing time (18:00)"
    assert alert.level == "danger"


def test_a_leads_approval_names_the_approving_lead_and_is_recorded_with_the_name(
    db_url, clinic, session_id
):
    _ready(db_url, session_id)
    approved = EscortException.LEAD_APPROVED
    why = "a taxi with her carer, who stays with her tonight"
    for lead_id in (None, clinic.other_nurse_id):
        with pytest.raises(LifecycleError, match="Name the clinic lead who approved"):
            discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                              expected_version=1, escort_exception=approved, reason=why,
                              approved_by_lead_id=lead_id, now=NINE + minutes(90))  # fmt: skip
    discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                      expected_version=1, escort_exception=approved, reason=why,
                      approved_by_lead_id=clinic.lead_id, now=NINE + minutes(90))  # fmt: skip
    with read_session(db_url) as db:
        row = db.get(TreatmentSession, session_id)
        assert row.escort_exception_reason == f"Approved by Lee Park: {why}"
        change = db.exec(select(StatusChange).where(StatusChange.session_id == session_id)).one()
        assert "approved by Lee Park" in change.reason
    [listed] = escort_exception_discharges(url=db_url, site_id=clinic.site_id, since=NINE)
    assert listed.reason == f"Approved by Lee Park: {why}"


def test_another_driver_for_a_ride_on_the_way_is_arranged_afresh(db_url, clinic, session_id):
    nurse = clinic.nurse_id
    arrange_ride(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=None,
                 driver_name="Jo Morgan", now=NINE)  # fmt: skip
    ride_on_the_way(url=db_url, session_id=session_id, staff_id=nurse, expected_ride_version=1,
                    eta_at=NINE + minutes(30), now=NINE)  # fmt: skip
    # Jo cannot come after all; Sam will: Sam has not called, so no time of Jo's stands.
    saved = arrange_ride(url=db_url, session_id=session_id, staff_id=nurse,
                         expected_ride_version=2, driver_name="Sam Lee", now=NINE)  # fmt: skip
    assert saved.state is RideState.ARRANGED
    ride = load_rides(url=db_url, session_ids=[session_id])[session_id]
    assert (ride.on_the_way_at, ride.eta_at) == (None, None)


# --- a discharge and a ride change at two stations at once ------------------------------------


def _wrong_car(url, session_id, staff_id):
    return take_back_ride_arrival(url=url, session_id=session_id, staff_id=staff_id,
                                  expected_ride_version=1, reason="wrong car",
                                  now=NINE + minutes(91))  # fmt: skip


def _fell_through(url, session_id, staff_id):
    return cancel_ride(url=url, session_id=session_id, staff_id=staff_id,
                       expected_ride_version=1, reason="the driver had to leave",
                       now=NINE + minutes(91))  # fmt: skip


@pytest.mark.parametrize("ride_change", [_wrong_car, _fell_through], ids=["wrong car", "cancel"])
@pytest.mark.parametrize("discharge_first", [True, False], ids=["discharge first", "ride first"])
def test_a_discharge_and_a_ride_change_at_once_never_send_a_patient_home_without_an_escort(
    db_url, clinic, session_id, monkeypatch, ride_change, discharge_first
):
    """Station A discharges while station B takes the ride's arrival back or cancels the
    ride; whichever reads first pauses inside its transaction while the other tries."""
    import ketadash.lifecycle
    import ketadash.rides
    from tests.utils.interleave import interleave

    _ready(db_url, session_id)
    arrange_ride(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                 expected_ride_version=None, driver_name="Jo", arrived=True,
                 now=NINE + minutes(85))  # fmt: skip

    def discharge():
        return discharge_patient(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                                 expected_version=1, now=NINE + minutes(90))  # fmt: skip

    def change():
        return ride_change(db_url, session_id, clinic.other_nurse_id)

    if discharge_first:
        a, b = interleave(monkeypatch=monkeypatch, first=discharge, second=change,
                          pause_in=(ketadash.lifecycle, "discharge_gate"))  # fmt: skip
        discharged, changed = a, b
    else:
        a, b = interleave(monkeypatch=monkeypatch, first=change, second=discharge,
                          pause_in=(ketadash.rides, "ride_state"))  # fmt: skip
        changed, discharged = a, b
    assert not (discharged.accepted and changed.accepted), "both stations were accepted"
    assert discharged.accepted or changed.accepted
    for outcome in (discharged, changed):
        if not outcome.accepted:
            assert isinstance(outcome.error, LifecycleError), outcome.error
    with read_session(db_url) as db:
        status = S(db.get(TreatmentSession, session_id).status)
        ride = db.exec(select(Ride).where(Ride.session_id == session_id)).one()
    if status == S.DISCHARGED:
        assert ride.arrived_at is not None, "discharged with no escort and no exception"
