"""The REMS Patient Monitoring Form as plain data: what the session recorded, what a nurse
enters, the answers worked out from the session, and the form as a screen, a gate and a
write see it. No database and no rule here: ``ketadash.rems`` reads and writes the form,
``ketadash.gates`` judges it; both import these types, and neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ketadash.models import Route, Severity, SideEffect, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.vitals import Vitals

# The concomitant medications the form asks about, as (field, the form's words).
COMEDICATIONS = (
    ("benzodiazepines", "Benzodiazepines"),
    ("non_benzo_sedative_hypnotics", "Non-benzodiazepine sedative hypnotics"),
    ("psychostimulants", "Psychostimulants"),
    ("maois", "Monoamine oxidase inhibitors (MAOIs)"),
)


# --- what the session recorded ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Reading:
    taken_at: datetime
    phase: VitalsPhase
    vitals: Vitals


@dataclass(frozen=True, kw_only=True)
class Observation:
    observed_at: datetime
    effect: SideEffect
    severity: Severity


@dataclass(frozen=True, kw_only=True)
class SessionFacts:
    """One session as the form needs it: plain data, read in one place (``load_facts``)."""

    session_id: int
    site_id: int
    site_name: str
    time_zone: str
    patient_name: str
    mrn: str
    date_of_birth: date | None
    route: Route
    status: S
    dose_mg: float | None
    given_dose_mg: float | None
    infusion_started_at: datetime | None
    ready_at: datetime | None
    discharged_at: datetime | None
    readings: tuple[Reading, ...] = ()
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RecordFields:
    """What a nurse enters on the form: the part the session cannot know."""

    device_lot: str | None = None
    benzodiazepines: bool | None = None
    non_benzo_sedative_hypnotics: bool | None = None
    psychostimulants: bool | None = None
    maois: bool | None = None
    ready_to_leave_at: datetime | None = None
    monitoring_provider_id: int | None = None
    notes: str | None = None


@dataclass(frozen=True, kw_only=True)
class Effect:
    """Whether an effect occurred after the first device, and whether it resolved."""

    occurred: bool
    resolved: bool | None  # None when it did not occur
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class Prefill:
    """The form's answers worked out from the session (``prefill``)."""

    treatment_date: date | None
    dose_mg: float | None
    dose_choice: str  # "56 mg", "84 mg" or "Other (…)"
    first_device_at: datetime | None
    monitoring_ended_at: datetime | None
    total_minutes: int | None
    two_hours_met: bool | None
    bp_before: Reading | None
    bp_after_dose: Reading | None
    bp_at_end: Reading | None
    vitals_ok_before: bool | None
    vitals_ok_at_end: bool | None
    sedation: Effect
    dissociation: Effect
    respiratory_depression: Effect


@dataclass(frozen=True, kw_only=True)
class RemsForm:
    """A session's form: the session's answers, the record's (None: not started), its state."""

    facts: SessionFacts
    prefill: Prefill
    record: RecordFields | None
    version: int | None
    started_at: datetime | None = None
    started_by: str | None = None
    provider_name: str | None = None
    submitted_at: datetime | None = None
    submitted_by: str | None = None
    # The lines the form was submitted with (see ``form_lines``), once submitted.
    submitted_lines: tuple[tuple[str, str], ...] | None = None
    due_on: date | None = None
    days_left: int | None = None

    @property
    def started(self) -> bool:
        return self.record is not None

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None

    @property
    def state(self) -> str:
        if self.submitted:
            return "Submitted"
        return "Started, not submitted" if self.started else "Not started"
