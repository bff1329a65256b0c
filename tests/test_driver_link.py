"""The driver's status link: the estimate and the words (pure), the link's life (data)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ketadash.db import read_session, write_session
from ketadash.driver_link import (
    CALL_US_AFTER_MINUTES,
    HISTORY_MIN_VISITS,
    LINK_MAX_HOURS,
    OPENED_RECORDED_EVERY,
    DriverLinkRefused,
    SiteTypical,
    driver_link_summary,
    driver_link_url,
    driver_state,
    driver_words,
    link_state,
    load_driver_link,
    make_driver_link,
    open_driver_link,
    past_minimum,
    past_wait,
    ready_estimate,
    revoke_driver_link,
    round_up,
    text_message,
    typical,
)
from ketadash.models import ClinicInfo, DriverLink, Route, Site, Staff, TreatmentSession
from ketadash.models import SessionStatus as S
from ketadash.public import (
    DriverState,
    LinkState,
    PublicDriverStatus,
    PublicSiteContact,
    PublicVisitClock,
    public_recent_ready_query,
    public_visit_clock_query,
)
from ketadash.settings import ClinicSettings
from tests.test_public import PERSONAL_COLUMNS, PERSONAL_WORDS
from tests.utils.clock import local_moment
from tests.utils.factories import make_clinic, make_patient, make_session, minutes

SETTINGS = ClinicSettings()
IV_RECOVERY = SETTINGS.min_recovery_minutes(Route.IV)
ESK_RECOVERY = SETTINGS.min_recovery_minutes(Route.ESKETAMINE)
LOZENGE_RECOVERY = SETTINGS.min_recovery_minutes(Route.LOZENGE)
NY = "America/New_York"
# A few moments of the clinic's day to run the pure tests at: mid-morning, just before
# midnight, and the repeated hour of the night summer time ends.
MOMENTS = {
    "morning": local_moment("2026-12-07 10:00"),
    "before-midnight": local_moment("2026-12-07 23:58"),
    "fall-back": local_moment("2026-11-01 01:10", fold=0),
}


def clock(status: S, *, at: datetime, route: Route = Route.IV, **stamps) -> PublicVisitClock:
    values = {
        "site_id": 1,
        "status": status,
        "route": route,
        "planned_minutes": 40,
        "scheduled_start": at - minutes(60),
        "checked_in_at": None,
        "infusion_started_at": None,
        "infusion_ended_at": None,
        "ready_at": None,
        "discharged_at": None,
    }
    values.update(stamps)
    return PublicVisitClock(**values)


# --- the estimate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", MOMENTS.values(), ids=MOMENTS.keys())
def test_in_recovery_the_estimate_is_the_dose_end_plus_the_minimum(moment):
    visit = clock(S.RECOVERY, at=moment, infusion_started_at=moment - minutes(50),
                  infusion_ended_at=moment - minutes(10))  # fmt: skip
    expected = moment - minutes(10) + minutes(IV_RECOVERY)
    assert ready_estimate(clock=visit, settings=SETTINGS, now=moment) == expected
    state, around = driver_state(clock=visit, settings=SETTINGS, now=moment)
    assert state is DriverState.IN_TREATMENT
    assert around == round_up(expected)
    assert timedelta(0) <= around - expected < minutes(5)


@pytest.mark.parametrize("moment", MOMENTS.values(), ids=MOMENTS.keys())
def test_while_dosing_the_planned_end_counts_until_it_is_passed(moment):
    visit = clock(S.INFUSING, at=moment, infusion_started_at=moment - minutes(10))
    planned_end = moment - minutes(10) + minutes(40)
    assert ready_estimate(clock=visit, settings=SETTINGS, now=moment) == planned_end + minutes(
        IV_RECOVERY
    )
    # A dose running over its plan: the end is now at the earliest.
    over = clock(S.INFUSING, at=moment, infusion_started_at=moment - minutes(55))
    assert ready_estimate(clock=over, settings=SETTINGS, now=moment) == moment + minutes(
        IV_RECOVERY
    )


def test_esketamine_counts_its_observation_from_the_first_device():
    now = MOMENTS["morning"]
    first_device = now - minutes(30)
    for status, ended in ((S.INFUSING, None), (S.RECOVERY, now - minutes(20))):
        visit = clock(status, at=now, route=Route.ESKETAMINE, infusion_started_at=first_device,
                      infusion_ended_at=ended)  # fmt: skip
        assert ready_estimate(clock=visit, settings=SETTINGS, now=now) == first_device + minutes(
            ESK_RECOVERY
        )


def test_a_lozenge_is_held_then_observed():
    now = MOMENTS["morning"]
    visit = clock(S.INFUSING, at=now, route=Route.LOZENGE, infusion_started_at=now)
    assert ready_estimate(clock=visit, settings=SETTINGS, now=now) == now + minutes(
        SETTINGS.lozenge_dose_minutes + LOZENGE_RECOVERY
    )


def test_checked_in_starts_from_the_booked_time_or_now_when_later():
    now = MOMENTS["morning"]
    early = clock(S.CHECKED_IN, at=now, scheduled_start=now + minutes(15),
                  checked_in_at=now - minutes(5))  # fmt: skip
    assert ready_estimate(clock=early, settings=SETTINGS, now=now) == now + minutes(
        15 + 40 + IV_RECOVERY
    )
    late = clock(S.CHECKED_IN, at=now, scheduled_start=now - minutes(10),
                 checked_in_at=now - minutes(12))  # fmt: skip
    assert ready_estimate(clock=late, settings=SETTINGS, now=now) == now + minutes(40 + IV_RECOVERY)


def test_the_estimate_follows_the_clinic_settings():
    now = MOMENTS["morning"]
    longer = dataclasses.replace(SETTINGS, min_recovery_iv_minutes=IV_RECOVERY + 15)
    visit = clock(S.RECOVERY, at=now, infusion_ended_at=now)
    assert ready_estimate(clock=visit, settings=longer, now=now) == now + minutes(IV_RECOVERY + 15)


def test_round_up_goes_to_the_next_five_minutes_and_keeps_whole_ones():
    at = datetime(2026, 12, 7, 14, 31, 10, tzinfo=UTC)
    assert round_up(at) == datetime(2026, 12, 7, 14, 35, tzinfo=UTC)
    assert round_up(datetime(2026, 12, 7, 14, 35, tzinfo=UTC)) == datetime(
        2026, 12, 7, 14, 35, tzinfo=UTC
    )
    assert round_up(datetime(2026, 12, 7, 23, 58, tzinfo=UTC)) == datetime(2026, 12, 8, tzinfo=UTC)


# --- the state words ------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", MOMENTS.values(), ids=MOMENTS.keys())
def test_ready_is_ready_now(moment):
    visit = clock(S.READY, at=moment, infusion_ended_at=moment - minutes(60),
                  ready_at=moment - minutes(5))  # fmt: skip
    assert driver_state(clock=visit, settings=SETTINGS, now=moment) == (DriverState.READY, None)


@pytest.mark.parametrize("status", [S.SCHEDULED, S.CANCELLED, S.NO_SHOW], ids=lambda s: s.value)
def test_not_on_the_way_to_ready_asks_the_driver_to_call(status):
    now = MOMENTS["morning"]
    assert driver_state(clock=clock(status, at=now), settings=SETTINGS, now=now) == (
        DriverState.CALL_US,
        None,
    )


def test_a_missing_step_time_asks_the_driver_to_call():
    now = MOMENTS["morning"]
    for visit in (clock(S.RECOVERY, at=now), clock(S.INFUSING, at=now)):
        assert driver_state(clock=visit, settings=SETTINGS, now=now)[0] is DriverState.CALL_US


def test_a_dose_on_hold_asks_the_driver_to_call():
    now = MOMENTS["morning"]
    waited = minutes(CALL_US_AFTER_MINUTES)
    on_time = clock(S.CHECKED_IN, at=now, scheduled_start=now - waited,
                    checked_in_at=now - waited)  # fmt: skip
    assert driver_state(clock=on_time, settings=SETTINGS, now=now)[0] is DriverState.IN_TREATMENT
    held = clock(S.CHECKED_IN, at=now, scheduled_start=now - waited - minutes(1),
                 checked_in_at=now - waited - minutes(5))  # fmt: skip
    assert driver_state(clock=held, settings=SETTINGS, now=now) == (DriverState.CALL_US, None)
    # Arrived late: the wait counts from the arrival.
    late = clock(S.CHECKED_IN, at=now, scheduled_start=now - waited - minutes(20),
                 checked_in_at=now - minutes(10))  # fmt: skip
    assert driver_state(clock=late, settings=SETTINGS, now=now)[0] is DriverState.IN_TREATMENT


def test_a_recovery_long_past_its_estimate_asks_the_driver_to_call():
    now = MOMENTS["morning"]
    due = now - minutes(CALL_US_AFTER_MINUTES)
    just = clock(S.RECOVERY, at=now, infusion_ended_at=due - minutes(IV_RECOVERY))
    state, around = driver_state(clock=just, settings=SETTINGS, now=now)
    # Past the estimate but not long: ready soon, never a time already gone.
    assert state is DriverState.IN_TREATMENT and around == round_up(now) and around >= now
    long = clock(S.RECOVERY, at=now, infusion_ended_at=due - minutes(IV_RECOVERY + 1))
    assert driver_state(clock=long, settings=SETTINGS, now=now) == (DriverState.CALL_US, None)


CONTACT = PublicSiteContact(
    clinic_name="Calm Harbor Clinic",
    site_name="Main Street",
    site_address="12 Main Street",
    site_phone="617-555-0100",
    time_zone=NY,
)


def status(link=LinkState.LIVE, state=None, around=None, contact=CONTACT):
    return PublicDriverStatus(
        link=link, contact=contact, state=state, ready_around=around, read_at=MOMENTS["morning"]
    )


def test_the_words_for_each_state_in_the_clinic_zone():
    # 19:35 UTC is 14:35 in New York in December.
    around = datetime(2026, 12, 7, 19, 35, tzinfo=UTC)
    words = driver_words(status(state=DriverState.IN_TREATMENT, around=around))
    assert words.headline == "In treatment, ready around 14:35"
    ready = driver_words(status(state=DriverState.READY))
    assert (ready.headline, ready.detail) == ("Ready now", "Please come to the front desk.")
    call = driver_words(status(state=DriverState.CALL_US))
    assert call.headline == "Please call us" and "617-555-0100" in call.detail
    assert "clinic" in driver_words(status(state=DriverState.CALL_US, contact=None)).detail


def test_the_repeated_hour_says_which_one():
    around = local_moment("2026-11-01 01:35", fold=1)
    words = driver_words(status(state=DriverState.IN_TREATMENT, around=around))
    assert words.headline == "In treatment, ready around 01:35 EST"


def test_ended_links_say_so_clearly():
    assert driver_words(status(link=LinkState.EXPIRED)).headline == "This link has expired"
    assert driver_words(status(link=LinkState.REVOKED)).headline == "This link has been withdrawn"
    assert "617-555-0100" in driver_words(status(link=LinkState.REVOKED)).detail
    unknown = driver_words(status(link=LinkState.UNKNOWN, contact=None))
    assert unknown.headline == "This link does not work"


def test_link_state_revoked_expired_live():
    now = MOMENTS["morning"]
    visit = clock(S.RECOVERY, at=now, infusion_ended_at=now)
    made = now - minutes(30)
    assert link_state(created_at=made, revoked_at=None, clock=visit, now=now) is LinkState.LIVE
    assert link_state(created_at=made, revoked_at=now, clock=visit, now=now) is LinkState.REVOKED
    gone = dataclasses.replace(visit, status=S.DISCHARGED, discharged_at=now)
    assert link_state(created_at=made, revoked_at=None, clock=gone, now=now) is LinkState.EXPIRED
    old = now - timedelta(hours=LINK_MAX_HOURS)
    assert link_state(created_at=old, revoked_at=None, clock=visit, now=now) is LinkState.EXPIRED
    assert link_state(created_at=made, revoked_at=None, clock=None, now=now) is LinkState.EXPIRED


def test_the_url_and_the_message_carry_no_name():
    link = driver_link_url(base="https://clinic.example/", token="abc-_12")
    assert link == "https://clinic.example/ride?link=abc-_12"
    message = text_message(contact=CONTACT, link=link)
    assert link in message and "Calm Harbor Clinic" in message and "617-555-0100" in message


# --- privacy by construction ----------------------------------------------------------------------


def test_the_driver_projection_types_have_no_personal_field():
    allowed = {"site_name", "site_phone", "site_address", "clinic_name"}
    for kind in (PublicVisitClock, PublicSiteContact, PublicDriverStatus):
        names = {f.name for f in dataclasses.fields(kind)}
        personal = {n for n in names if any(word in n for word in PERSONAL_WORDS)} - allowed
        assert not personal, (kind, personal)
        assert not {"chair", "chair_id", "patient_id", "label", "alias"} & names, kind


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_the_visit_clock_query_never_selects_a_personal_column(dialect):
    query = public_visit_clock_query(session_id=1)
    sql = str(query.compile(dialect=dialect)).lower()
    for column in [*PERSONAL_COLUMNS, "chair_id", "patient_id", "display_alias"]:
        assert column not in sql, column
    assert "join" not in sql


# --- the link's life (SQLite and PostgreSQL) ------------------------------------------------------


@pytest.fixture
def visit(db_url):
    """Alex Morgan (MRN-7) in recovery in Chair 3 at Main Street, 12 Main Street."""
    clinic = make_clinic(url=db_url)
    now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    patient = make_patient(url=db_url, mrn="MRN-7", first="Alex", last="Morgan")
    session_id = make_session(
        url=db_url, clinic=clinic, patient_id=patient, scheduled_start=now - minutes(90),
        chair_index=2, status=S.RECOVERY, checked_in_at=now - minutes(95),
        infusion_started_at=now - minutes(50), infusion_ended_at=now - minutes(10),
    )  # fmt: skip
    with write_session(db_url) as db:
        db.execute(
            update(Site)
            .where(Site.id == clinic.site_id)
            .values(address="12 Main Street", phone="617-555-0100")
        )
    return clinic, session_id, now


def test_a_link_opens_its_visit_and_only_its_hash_is_kept(db_url, visit):
    clinic, session_id, now = visit
    token = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    assert len(token) >= 40
    with read_session(db_url) as db:
        (row,) = db.execute(select(DriverLink)).scalars().all()
        assert row.token_hash != token and token not in row.token_hash
        assert (row.session_id, row.created_by, row.first_opened_at) == (
            session_id,
            clinic.nurse_id,
            None,
        )
    shown = open_driver_link(url=db_url, token=token, now=now + minutes(1))
    assert shown.link is LinkState.LIVE and shown.state is DriverState.IN_TREATMENT
    assert shown.ready_around == round_up(now - minutes(10) + minutes(IV_RECOVERY))
    assert (shown.contact.site_address, shown.contact.site_phone) == (
        "12 Main Street",
        "617-555-0100",
    )
    # Without a recorded clinic name the site's name stands for it.
    assert shown.contact.clinic_name == "Main Street"
    with write_session(db_url) as db:
        db.add(ClinicInfo(key="clinic_name", value="Calm Harbor Clinic"))
    assert open_driver_link(url=db_url, token=token, now=now).contact.clinic_name == (
        "Calm Harbor Clinic"
    )


def test_staff_see_when_the_driver_first_and_last_opened_it(db_url, visit):
    clinic, session_id, now = visit
    token = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    facts = load_driver_link(url=db_url, session_id=session_id)
    assert "not opened yet" in driver_link_summary(facts, time_zone=NY, now=now)
    first = now + minutes(2)
    open_driver_link(url=db_url, token=token, now=first)
    # A refresh soon after records nothing new; a later one moves "last".
    open_driver_link(url=db_url, token=token, now=first + OPENED_RECORDED_EVERY / 2)
    facts = load_driver_link(url=db_url, session_id=session_id)
    assert (facts.first_opened_at, facts.last_opened_at) == (first, first)
    later = first + minutes(20)
    open_driver_link(url=db_url, token=token, now=later)
    facts = load_driver_link(url=db_url, session_id=session_id)
    assert (facts.first_opened_at, facts.last_opened_at) == (first, later)
    # 15:02 and 15:22 UTC are 10:02 and 10:22 in New York.
    assert driver_link_summary(facts, time_zone=NY, now=later) == (
        "Driver's link made 10:00 by Dana Reyes · driver opened at 10:02, last at 10:22."
    )


def test_a_revoked_link_says_so_and_records_nothing_more(db_url, visit):
    clinic, session_id, now = visit
    token = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    assert revoke_driver_link(url=db_url, session_id=session_id, staff_id=clinic.lead_id,
                              now=now + minutes(5)) == 1  # fmt: skip
    shown = open_driver_link(url=db_url, token=token, now=now + minutes(6))
    assert (shown.link, shown.state, shown.ready_around) == (LinkState.REVOKED, None, None)
    facts = load_driver_link(url=db_url, session_id=session_id)
    assert facts.first_opened_at is None and facts.revoked_at == now + minutes(5)
    assert "revoked 10:05" in driver_link_summary(facts, time_zone=NY, now=now + minutes(6))
    with pytest.raises(DriverLinkRefused, match="no working driver's link"):
        revoke_driver_link(url=db_url, session_id=session_id, staff_id=clinic.lead_id, now=now)


def test_a_new_link_stops_the_old_one(db_url, visit):
    clinic, session_id, now = visit
    old = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    new = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id,
                           now=now + minutes(1))  # fmt: skip
    assert old != new
    assert open_driver_link(url=db_url, token=old, now=now + minutes(2)).link is LinkState.REVOKED
    assert open_driver_link(url=db_url, token=new, now=now + minutes(2)).link is LinkState.LIVE


def test_the_link_expires_when_the_patient_goes_home(db_url, visit):
    clinic, session_id, now = visit
    token = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    with write_session(db_url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == session_id)
            .values(status=S.READY, ready_at=now + minutes(10))
        )
    shown = open_driver_link(url=db_url, token=token, now=now + minutes(11))
    assert (shown.link, shown.state) == (LinkState.LIVE, DriverState.READY)
    with write_session(db_url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == session_id)
            .values(status=S.DISCHARGED, discharged_at=now + minutes(20))
        )
    shown = open_driver_link(url=db_url, token=token, now=now + minutes(21))
    assert (shown.link, shown.state, shown.ready_around) == (LinkState.EXPIRED, None, None)
    assert shown.contact.site_phone == "617-555-0100"
    late = now + timedelta(hours=LINK_MAX_HOURS)
    assert "expired" in driver_link_summary(
        load_driver_link(url=db_url, session_id=session_id), time_zone=NY, now=late
    )


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 43, "y" * 500])
def test_an_unknown_token_shows_nothing_of_any_visit(db_url, visit, token):
    clinic, session_id, now = visit
    make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    shown = open_driver_link(url=db_url, token=token, now=now)
    assert (shown.link, shown.contact, shown.state) == (LinkState.UNKNOWN, None, None)


def test_refusals_write_nothing(db_url, visit):
    clinic, session_id, now = visit
    with pytest.raises(DriverLinkRefused, match="does not exist"):
        make_driver_link(url=db_url, session_id=session_id + 99, staff_id=clinic.nurse_id, now=now)
    with pytest.raises(DriverLinkRefused, match="Sign in first"):
        make_driver_link(url=db_url, session_id=session_id, staff_id=None, now=now)
    with write_session(db_url) as db:
        db.execute(update(Staff).where(Staff.id == clinic.other_nurse_id).values(active=False))
    with pytest.raises(DriverLinkRefused, match="Sign in first"):
        make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.other_nurse_id, now=now)
    with write_session(db_url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == session_id)
            .values(status=S.DISCHARGED, discharged_at=now)
        )
    with pytest.raises(DriverLinkRefused, match="already discharged"):
        make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    with read_session(db_url) as db:
        assert db.execute(select(DriverLink)).all() == []


# --- the site's typical stay past the minimum -----------------------------------------------------


def test_past_minimum_counts_from_the_routes_observation_start():
    at = MOMENTS["morning"]
    iv = past_minimum(route=Route.IV, settings=SETTINGS, started_at=at - minutes(90),
                      ended_at=at - minutes(50), ready_at=at)  # fmt: skip
    assert iv == minutes(50 - IV_RECOVERY)
    esk = past_minimum(route=Route.ESKETAMINE, settings=SETTINGS, started_at=at - minutes(130),
                       ended_at=at - minutes(120), ready_at=at)  # fmt: skip
    assert esk == minutes(130 - ESK_RECOVERY)
    # Marked ready early (a correction, a clock): never below the minimum.
    early = past_minimum(route=Route.IV, settings=SETTINGS, started_at=None,
                         ended_at=at, ready_at=at)  # fmt: skip
    assert early == timedelta(0)
    assert past_minimum(route=Route.IV, settings=SETTINGS, started_at=at, ended_at=None,
                        ready_at=at) is None  # fmt: skip


def test_past_wait_counts_from_the_arrival_or_the_booked_time():
    at = MOMENTS["morning"]
    assert past_wait(scheduled_start=at, checked_in_at=at - minutes(10),
                     started_at=at + minutes(15)) == minutes(15)  # fmt: skip
    assert past_wait(scheduled_start=at, checked_in_at=at + minutes(20),
                     started_at=at + minutes(30)) == minutes(10)  # fmt: skip
    assert past_wait(scheduled_start=at, checked_in_at=None, started_at=at) is None


def test_typical_is_the_median_once_there_are_enough_visits():
    assert typical([minutes(20)] * (HISTORY_MIN_VISITS - 1)) == timedelta(0)
    stays = [minutes(n) for n in range(HISTORY_MIN_VISITS)] + [None, None]
    # 0..9 minutes: the median is 4.5, said to the minute (half up).
    assert typical(stays) == minutes(5)
    assert typical([minutes(12)] * HISTORY_MIN_VISITS + [minutes(90)]) == minutes(12)


def test_the_typical_stay_moves_the_estimate_and_the_call_us_line():
    now = MOMENTS["morning"]
    visit = clock(S.RECOVERY, at=now, infusion_ended_at=now - minutes(IV_RECOVERY + 40))
    assert driver_state(clock=visit, settings=SETTINGS, now=now)[0] is DriverState.CALL_US
    usual = SiteTypical(past_minimum=minutes(15))
    state, around = driver_state(clock=visit, settings=SETTINGS, now=now, typical=usual)
    assert state is DriverState.IN_TREATMENT and around == round_up(now)


def test_the_typical_wait_moves_a_checked_in_estimate_and_its_hold_line():
    now = MOMENTS["morning"]
    visit = clock(S.CHECKED_IN, at=now, scheduled_start=now - minutes(5),
                  checked_in_at=now - minutes(10))  # fmt: skip
    usual = SiteTypical(wait=minutes(20), past_minimum=minutes(10))
    assert ready_estimate(clock=visit, settings=SETTINGS, now=now, typical=usual) == now + minutes(
        15 + 40 + IV_RECOVERY + 10
    )
    waited = now - minutes(CALL_US_AFTER_MINUTES + 10)
    held = clock(S.CHECKED_IN, at=now, scheduled_start=waited, checked_in_at=waited)
    assert driver_state(clock=held, settings=SETTINGS, now=now)[0] is DriverState.CALL_US
    assert driver_state(clock=held, settings=SETTINGS, now=now, typical=usual)[0] is (
        DriverState.IN_TREATMENT
    )


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_the_history_query_never_selects_a_personal_column(dialect):
    query = public_recent_ready_query(
        site_id=1, route=Route.IV, since=MOMENTS["morning"] - timedelta(days=28),
        until=MOMENTS["morning"],
    )  # fmt: skip
    sql = str(query.compile(dialect=dialect)).lower()
    for column in [*PERSONAL_COLUMNS, "chair_id", "patient_id", "display_alias"]:
        assert column not in sql, column
    assert {c.key for c in query.selected_columns} == {
        "scheduled_start",
        "checked_in_at",
        "infusion_started_at",
        "infusion_ended_at",
        "ready_at",
    }


def test_the_sites_recent_visits_set_the_typical_extra(db_url, visit):
    clinic, session_id, now = visit
    patient = make_patient(url=db_url, mrn="MRN-8", first="Bea", last="Lund")
    for day in range(1, HISTORY_MIN_VISITS + 1):
        start = now - timedelta(days=day)
        make_session(
            url=db_url, clinic=clinic, patient_id=patient, scheduled_start=start,
            status=S.DISCHARGED, checked_in_at=start, infusion_started_at=start + minutes(12),
            infusion_ended_at=start + minutes(52),
            ready_at=start + minutes(52 + IV_RECOVERY + 20), discharged_at=start + minutes(110),
        )  # fmt: skip
    token = make_driver_link(url=db_url, session_id=session_id, staff_id=clinic.nurse_id, now=now)
    shown = open_driver_link(url=db_url, token=token, now=now)
    # Ended ten minutes ago, the minimum, and the twenty minutes this site's patients stay.
    assert shown.ready_around == round_up(now - minutes(10) + minutes(IV_RECOVERY + 20))
    with write_session(db_url) as db:
        db.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == session_id)
            .values(status=S.CHECKED_IN, checked_in_at=now, infusion_started_at=None,
                    infusion_ended_at=None, scheduled_start=now - minutes(5))
        )  # fmt: skip
    shown = open_driver_link(url=db_url, token=token, now=now)
    # Arrived now: the twelve minutes' wait, the 40-minute dose, the minimum and the stay.
    assert shown.ready_around == round_up(now + minutes(12 + 40 + IV_RECOVERY + 20))
