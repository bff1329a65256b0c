"""Every table of the clinic's database, and the words they are built from.

Tables are grouped the way the clinic thinks: where (sites, chairs), who (staff,
patients), what was planned (courses, sessions), what happened (status history,
vitals, side effects, scores, symptom returns, rides) and how the clinic works
(settings). The session row holds the current state for fast reads; the status
history is append-only and is the source of truth for cycle times.

Enumerations are stored as short strings, not native database enums, so one
migration serves SQLite and PostgreSQL and a new value needs no schema change.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Protocol

from sqlalchemy import BigInteger, Column, Index, String, Table, UniqueConstraint
from sqlmodel import Field, SQLModel

from ketadash.db_types import UTCDateTime


class _Stored(Protocol):
    id: int | None


def stored_id(row: _Stored) -> int:
    """The id of a row read from (or flushed to) the database. SQLModel types every id
    Optional, since a new row has none; a stored one always has it."""
    if row.id is None:
        raise ValueError(f"This {type(row).__name__} has no id: it was never stored.")
    return row.id


def core_table(model: type[SQLModel]) -> Table:
    """A table model's Core table (SQLModel sets it on the class, untyped)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


# --- words -----------------------------------------------------------------


class StaffRole(StrEnum):
    NURSE = "nurse"
    LEAD = "lead"
    FRONT_DESK = "front_desk"


class Route(StrEnum):
    IV = "iv"
    ESKETAMINE = "esketamine"
    LOZENGE = "lozenge"

    @property
    def label(self) -> str:
        return {
            "iv": "IV infusion",
            "esketamine": "Esketamine nasal",
            "lozenge": "Lozenge",
        }[self.value]


class SessionKind(StrEnum):
    SERIES = "series"
    BOOSTER = "booster"


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    INFUSING = "infusing"
    RECOVERY = "recovery"
    READY = "ready"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def label(self) -> str:
        return {
            "scheduled": "Expected",
            "checked_in": "Checked in",
            "infusing": "Dose running",
            "recovery": "In recovery",
            "ready": "Ready to go",
            "discharged": "Gone home",
            "cancelled": "Cancelled",
            "no_show": "No-show",
        }[self.value]


class VitalsPhase(StrEnum):
    BEFORE = "before"
    DURING = "during"
    AFTER = "after"


class SideEffect(StrEnum):
    DISSOCIATION = "dissociation"
    NAUSEA = "nausea"
    LIGHT_HEADEDNESS = "light_headedness"
    VISION_CHANGES = "vision_changes"
    SEDATION = "sedation"

    @property
    def label(self) -> str:
        return {"light_headedness": "Light-headedness"}.get(
            self.value, self.value.replace("_", " ").capitalize()
        )


class Severity(StrEnum):
    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Instrument(StrEnum):
    PHQ9 = "phq9"
    MADRS = "madrs"
    CADSS = "cadss"


class RideState(StrEnum):
    """Where the adult taking the patient home is: the ride's own lifecycle."""

    NONE = "none"
    ARRANGED = "arranged"
    ON_THE_WAY = "on_the_way"
    ARRIVED = "arrived"

    @property
    def label(self) -> str:
        return {
            "none": "No ride arranged",
            "arranged": "Ride arranged",
            "on_the_way": "Ride on the way",
            "arrived": "Ride has arrived",
        }[self.value]

    @staticmethod
    def of(ride: object | None) -> RideState:
        """A ride's state from its row (or any snapshot with the same fields): none when
        there is no ride or no driver named, then arrived, on the way, arranged."""
        if ride is None or not (getattr(ride, "driver_name", "") or "").strip():
            return RideState.NONE
        if getattr(ride, "arrived_at", None) is not None:
            return RideState.ARRIVED
        if getattr(ride, "on_the_way_at", None) is not None:
            return RideState.ON_THE_WAY
        return RideState.ARRANGED


class EscortException(StrEnum):
    """How a patient went home without an arrived adult escort (always with a reason)."""

    PERSON_COMING_LATER = "person_coming_later"
    LEAD_APPROVED = "lead_approved"

    @property
    def label(self) -> str:
        return {
            "person_coming_later": "A named person is coming later",
            "lead_approved": "The lead approved another arrangement",
        }[self.value]


class CareFlag(StrEnum):
    """Things a nurse must see on the board before touching the patient."""

    HYPERTENSION = "hypertension"
    ANXIETY = "anxiety"
    CHRONIC_PAIN = "chronic_pain"
    NEEDLE_PHOBIA = "needle_phobia"
    FALL_RISK = "fall_risk"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


def _enum_column(length: int = 20, *, index: bool = False) -> Column:
    return Column(String(length), nullable=False, index=index)


def _utc(*, nullable: bool = True, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


# --- where ------------------------------------------------------------------


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(40), unique=True, nullable=False))
    name: str
    time_zone: str = "America/New_York"
    opens_at: time = time(8, 0)
    closes_at: time = time(18, 0)
    # Monday is 0, as in Python's date.weekday().
    open_weekdays: str = "01234"
    # Where a driver collects a patient and the number they call (the driver's status
    # link shows both); empty until the operator records them.
    address: str | None = None
    phone: str | None = None


class Chair(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str
    position: int = 0
    active: bool = True


# --- who --------------------------------------------------------------------


class Staff(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("email", name="uq_staff_email"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    role: StaffRole = Field(sa_column=_enum_column())
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True)
    active: bool = True
    # How the clinic's identity provider names them (stored lower-case): sign-in
    # matches on it, and the role comes from this row, never from the page.
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True))


class Patient(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # The clinic's own reference (MRN): the key imports match on.
    mrn: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    first_name: str
    last_name: str
    date_of_birth: date | None = None
    phone: str | None = None
    # Chosen by the patient for public screens; never derived from the name.
    display_alias: str | None = None
    # Semicolon-separated CareFlag values.
    care_flags: str = ""
    home_site_id: int | None = Field(default=None, foreign_key="site.id", index=True)


# --- what was planned ---------------------------------------------------------


class TreatmentCourse(SQLModel, table=True):
    __tablename__ = "treatment_course"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    route: Route = Field(sa_column=_enum_column())
    series_target_infusions: int = 6
    series_window_days: int = 21
    started_on: date
    ended_on: date | None = None


class TreatmentSession(SQLModel, table=True):
    """One visit: a patient in a chair for one dose, from arrival to going home."""

    __tablename__ = "treatment_session"
    __table_args__ = (
        # Today's board and throughput: one site, a range of scheduled times.
        Index("ix_session_site_scheduled", "site_id", "scheduled_start"),
        # Sessions left open from earlier days, the recovery list: by state, then time.
        Index("ix_session_site_status", "site_id", "status", "scheduled_start"),
        # Boosters: a patient's sessions in time order.
        Index("ix_session_patient_scheduled", "patient_id", "scheduled_start"),
        # Throughput: a period's visits with what its figures read, from the index alone.
        Index(
            "ix_session_site_scheduled_figures",
            "site_id",
            "scheduled_start",
            "status",
            "kind",
            "route",
            "planned_minutes",
            "patient_id",
            "checked_in_at",
            "infusion_started_at",
            "infusion_ended_at",
            "ready_at",
            "discharged_at",
            "closed_at",
            "booked_at",
            "escort_exception",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    chair_id: int | None = Field(default=None, foreign_key="chair.id")
    patient_id: int = Field(foreign_key="patient.id")
    course_id: int | None = Field(default=None, foreign_key="treatment_course.id")
    # An imported session keeps the source system's reference, so a second
    # import of the same file finds it instead of adding it again.
    external_ref: str | None = Field(
        default=None, sa_column=Column(String(80), unique=True, nullable=True)
    )
    scheduled_start: datetime = Field(sa_column=_utc(nullable=False))
    planned_minutes: int = 40
    route: Route = Field(sa_column=_enum_column())
    kind: SessionKind = Field(sa_column=_enum_column())
    # The plan: mg/kg of body weight (IV), or a fixed dose in mg (esketamine devices,
    # lozenges). What was given is kept apart, so taking a start back restores the plan.
    dose_mg_per_kg: float | None = None
    dose_mg: float | None = None
    given_dose_mg: float | None = None
    # Weighed on the day: what checks a dose in mg against the planned mg/kg.
    weight_kg: float | None = None
    status: SessionStatus = Field(sa_column=_enum_column())
    checked_in_at: datetime | None = Field(default=None, sa_column=_utc())
    infusion_started_at: datetime | None = Field(default=None, sa_column=_utc())
    infusion_ended_at: datetime | None = Field(default=None, sa_column=_utc())
    ready_at: datetime | None = Field(default=None, sa_column=_utc())
    discharged_at: datetime | None = Field(default=None, sa_column=_utc())
    closed_at: datetime | None = Field(default=None, sa_column=_utc())
    close_reason: str | None = None
    hold_override_reason: str | None = None
    # A lead's reason for dosing a patient a second time on one day (issue 6).
    same_day_dose_reason: str | None = None
    # Discharged without an arrived adult escort: what was arranged instead, and why.
    escort_exception: str | None = None
    escort_exception_reason: str | None = None
    # A clinic lead's reason for a plan outside the standard doses (esketamine other
    # than 56 or 84 mg), recorded where the plan was booked or imported.
    plan_reason: str | None = None
    # When the booking was made and by whom (a booster booked from the worklist); empty
    # for bookings that came before it was recorded or from an import without it.
    booked_at: datetime | None = Field(default=None, sa_column=_utc())
    booked_by: int | None = Field(default=None, foreign_key="staff.id")
    # Optimistic locking: every change says which version it saw.
    version: int = 1


# --- what happened --------------------------------------------------------------


class StatusChange(SQLModel, table=True):
    """Append-only: one row per step a session took, who took it and when."""

    __tablename__ = "status_change"
    __table_args__ = (
        # The version a change produced is unique per session: two stations can
        # never both record the same step.
        UniqueConstraint("session_id", "version", name="uq_status_change_version"),
        Index("ix_status_change_at", "changed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id")
    version: int
    from_status: SessionStatus | None = Field(default=None, sa_column=Column(String(20)))
    to_status: SessionStatus = Field(sa_column=_enum_column())
    changed_at: datetime = Field(sa_column=_utc(nullable=False))
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    reason: str | None = None
    is_correction: bool = False


class VitalsReading(SQLModel, table=True):
    __tablename__ = "vitals_reading"
    __table_args__ = (Index("ix_vitals_session_taken", "session_id", "taken_at"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id")
    taken_at: datetime = Field(sa_column=_utc(nullable=False))
    phase: VitalsPhase = Field(sa_column=_enum_column())
    systolic: int
    diastolic: int
    heart_rate: int
    spo2: int
    staff_id: int | None = Field(default=None, foreign_key="staff.id")


class SideEffectObservation(SQLModel, table=True):
    __tablename__ = "side_effect_observation"
    __table_args__ = (Index("ix_side_effect_session", "session_id", "observed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id")
    observed_at: datetime = Field(sa_column=_utc(nullable=False))
    effect: SideEffect = Field(sa_column=_enum_column(24))
    severity: Severity = Field(sa_column=_enum_column())
    staff_id: int | None = Field(default=None, foreign_key="staff.id")


class OutcomeScore(SQLModel, table=True):
    __tablename__ = "outcome_score"
    __table_args__ = (
        Index("ix_score_patient_taken", "patient_id", "taken_at"),
        Index("ix_score_session", "session_id"),
        UniqueConstraint("patient_id", "instrument", "taken_at", name="uq_score_taken"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")
    session_id: int | None = Field(default=None, foreign_key="treatment_session.id")
    instrument: Instrument = Field(sa_column=_enum_column())
    taken_at: datetime = Field(sa_column=_utc(nullable=False))
    total: int
    # PHQ-9 item 9 (thoughts of self-harm), 0–3; any answer above 0 is flagged.
    item9: int | None = None
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    # A second PHQ-9 at the same visit is a correction: why, in words. Both stay.
    correction_reason: str | None = None


class SymptomReturn(SQLModel, table=True):
    """The patient says relief has worn off: the end of a relief episode."""

    __tablename__ = "symptom_return"
    __table_args__ = (UniqueConstraint("patient_id", "reported_on", name="uq_symptom_return_day"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    reported_on: date
    note: str | None = None


class Ride(SQLModel, table=True):
    """The adult taking the patient home: nobody drives themselves after a dose."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id", unique=True)
    driver_name: str
    driver_phone: str | None = None
    relationship: str | None = None
    expected_pickup_at: datetime | None = Field(default=None, sa_column=_utc())
    # The driver called to say they are on their way, and the time they gave.
    on_the_way_at: datetime | None = Field(default=None, sa_column=_utc())
    eta_at: datetime | None = Field(default=None, sa_column=_utc())
    arrived_at: datetime | None = Field(default=None, sa_column=_utc())
    version: int = 1


class RideChange(SQLModel, table=True):
    """Append-only: every change of a ride's state, who made it, when and why."""

    __tablename__ = "ride_change"
    __table_args__ = (UniqueConstraint("session_id", "version", name="uq_ride_change_version"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id")
    version: int
    state: str = Field(sa_column=_enum_column())
    changed_at: datetime = Field(sa_column=_utc(nullable=False))
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    reason: str | None = None
    is_correction: bool = False


class RemsRecord(SQLModel, table=True):
    """The esketamine REMS Patient Monitoring Form of one session: what the session cannot
    know (the device lot, co-medications, when the patient would have been ready to leave
    without the 2-hour rule, the monitoring provider) and its submission. The rest of the
    form is read from the session, its vitals and side effects (``ketadash.rems``)."""

    __tablename__ = "rems_record"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id", unique=True)
    started_at: datetime = Field(sa_column=_utc(nullable=False))
    started_by: int = Field(foreign_key="staff.id")
    device_lot: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    # Concomitant medications that may cause sedation or blood pressure changes: yes, no,
    # or None while not answered.
    benzodiazepines: bool | None = None
    non_benzo_sedative_hypnotics: bool | None = None
    psychostimulants: bool | None = None
    maois: bool | None = None
    # The form's "when would this patient have been ready to leave without the 2-hour rule".
    ready_to_leave_at: datetime | None = Field(default=None, sa_column=_utc())
    monitoring_provider_id: int | None = Field(default=None, foreign_key="staff.id")
    notes: str | None = None
    submitted_at: datetime | None = Field(default=None, sa_column=_utc())
    submitted_by: int | None = Field(default=None, foreign_key="staff.id")
    # The form as submitted (JSON), so the clinic's copy is what was sent, whatever the
    # session's rows say later.
    submitted_form: str | None = None
    version: int = 1


class RemsRecordChange(SQLModel, table=True):
    """Append-only: every save of a REMS record, who made it, when and what changed."""

    __tablename__ = "rems_record_change"
    __table_args__ = (
        UniqueConstraint("session_id", "version", name="uq_rems_record_change_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id")
    version: int
    action: str = Field(sa_column=_enum_column())
    changed_at: datetime = Field(sa_column=_utc(nullable=False))
    staff_id: int = Field(foreign_key="staff.id")
    detail: str | None = None


# --- how the clinic works ---------------------------------------------------------


class SiteSetting(SQLModel, table=True):
    """A lead's override of one clinic setting at one site (see ketadash.settings)."""

    __tablename__ = "site_setting"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_site_setting_name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    name: str = Field(sa_column=Column(String(60), nullable=False))
    value: str
    updated_at: datetime = Field(sa_column=_utc(nullable=False))
    updated_by: int | None = Field(default=None, foreign_key="staff.id")


class SettingChange(SQLModel, table=True):
    """Append-only: one row per change of a clinic setting at a site, who made it and when,
    with the value in force before and the value set (see ketadash.settings)."""

    __tablename__ = "setting_change"
    __table_args__ = (Index("ix_setting_change_site_at", "site_id", "changed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    name: str = Field(sa_column=Column(String(60), nullable=False))
    old_value: str
    new_value: str
    changed_at: datetime = Field(sa_column=_utc(nullable=False))
    # None for a change made from the command line, outside any sign-in.
    changed_by: int | None = Field(default=None, foreign_key="staff.id")


class AccessLog(SQLModel, table=True):
    """Append-only: who opened which patient's record, or exported data, and when."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_utc(nullable=False))
    staff_id: int = Field(foreign_key="staff.id")
    action: str = Field(sa_column=_enum_column(40))
    session_id: int | None = Field(default=None, foreign_key="treatment_session.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    detail: str | None = None


class Display(SQLModel, table=True):
    """A registered wall display: its token is kept only as a hash, and can be revoked."""

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    name: str
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = Field(sa_column=_utc(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc())
    # When a wall last showed this token, kept by whichever server process it asked
    # (``ketadash.sign_ins.note_display_check``): at most once a minute.
    last_checked_at: datetime | None = Field(default=None, sa_column=_utc())


class DriverLink(SQLModel, table=True):
    """A driver's status link for one visit: its token kept only as a hash, revocable by
    staff, and when the driver first and last opened it (see ketadash.driver_link)."""

    __tablename__ = "driver_link"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="treatment_session.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = Field(sa_column=_utc(nullable=False))
    created_by: int | None = Field(default=None, foreign_key="staff.id")
    revoked_at: datetime | None = Field(default=None, sa_column=_utc())
    revoked_by: int | None = Field(default=None, foreign_key="staff.id")
    first_opened_at: datetime | None = Field(default=None, sa_column=_utc())
    last_opened_at: datetime | None = Field(default=None, sa_column=_utc())


class ClinicInfo(SQLModel, table=True):
    """Facts about the database itself, such as whether it holds the demo clinic."""

    __tablename__ = "clinic_info"

    key: str = Field(sa_column=Column(String(40), primary_key=True))
    value: str


class SubmittedForm(SQLModel, table=True):
    """Append-only: one row per saved form, under the key its screen drew it with.

    Written in the same transaction as what the form saved (``ketadash.submissions``):
    a retried click, or a rerun that replays the submit, finds its key here and writes
    nothing twice.
    """

    __tablename__ = "submitted_form"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    what: str = Field(sa_column=Column(String(40), nullable=False))
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    saved_at: datetime = Field(sa_column=_utc(nullable=False))


class SignIn(SQLModel, table=True):
    """One browser's sign-in (a hash of its identity cookie), shared by every server
    process: when it was last used, and when it was signed out (``ketadash.sign_ins``)."""

    __tablename__ = "sign_in"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    last_active_at: datetime = Field(sa_column=_utc(nullable=False, index=True))
    ended_at: datetime | None = Field(default=None, sa_column=_utc())


# --- boosters: each morning's flags, stored (issue 19) ---------------------------------


class BoosterFlagMorning(SQLModel, table=True):
    """A site's booster flags were written for this morning (once: the row makes it so)."""

    __tablename__ = "booster_flag_morning"
    __table_args__ = (UniqueConstraint("site_id", "day", name="uq_booster_flag_morning"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    # The site's local day whose morning (its start) the flags are for.
    day: date
    written_at: datetime = Field(sa_column=_utc(nullable=False))
    # How many patients were on the morning's list (the rows of ``booster_flag``).
    listed: int


class BoosterFlagRow(SQLModel, table=True):
    """One patient on a site's booster worklist one morning, as the worklist had them."""

    __tablename__ = "booster_flag"
    __table_args__ = (
        UniqueConstraint("site_id", "day", "patient_id", name="uq_booster_flag_day"),
        Index("ix_booster_flag_patient_day", "patient_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    day: date
    patient_id: int = Field(foreign_key="patient.id")
    flag: str = Field(sa_column=Column(String(20), nullable=False))
    # The date that morning ("now") and the first plan's ("planned").
    booster_due: date | None = None
    planned_due: date | None = None
    # The infusion the relief ran from (the last one before the morning).
    anchor_session_id: int | None = Field(default=None, foreign_key="treatment_session.id")


class BoosterListing(SQLModel, table=True):
    """A booster as the stored mornings listed it: one row per patient and infusion their
    relief ran from, at the first stored morning that put them on the call list, and the
    first that flagged them relapsed. Kept with each morning's ``booster_flag`` rows, in
    the same transaction, so that Throughput's follow-up reads one row a booster instead
    of grouping every morning's list (migration 0014 filled it from those)."""

    __tablename__ = "booster_listing"
    __table_args__ = (
        UniqueConstraint(
            "site_id", "patient_id", "anchor_session_id", name="uq_booster_listing_anchor"
        ),
        Index("ix_booster_listing_site_listed", "site_id", "listed_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    patient_id: int = Field(foreign_key="patient.id")
    anchor_session_id: int = Field(foreign_key="treatment_session.id")
    # The first morning on the call list: flagged relapsed, call now or overdue, or with
    # the date within ``booster_due_within_days`` (a booked patient counts from then).
    listed_on: date
    # The date that morning gave ("now").
    listed_due: date
    # The first morning that flagged a relapse, and its date (the relapse's day).
    relapsed_on: date | None = None
    relapsed_due: date | None = None


class SiteVersion(SQLModel, table=True):
    """A site's data version: moved by database triggers in the same transaction as every
    write that a screen of that site shows (migration 0007), never by the application.

    A live screen redraws when its site's version has moved (ketadash.live_versions).
    ``changed_at`` is the database's own clock, for an operator's eye only: nothing reads it.
    ``bumped_tx`` is PostgreSQL's transaction id of the last move, so a transaction moves a
    version once however many rows it writes (unused on SQLite).
    """

    __tablename__ = "site_version"

    site_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    changed_at: datetime | None = Field(default=None, sa_column=_utc())
    bumped_tx: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
