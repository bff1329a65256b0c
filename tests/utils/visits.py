"""A hand-made visit for table-driven tests of the rules and gates: no database needed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ketadash.models import Route, SessionKind, VitalsPhase
from ketadash.models import SessionStatus as S
from ketadash.visits import Visit, VitalsSnapshot
from ketadash.vitals import Vitals

NINE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York
CALM = Vitals(systolic=120, diastolic=80, heart_rate=70, spo2=98)


def a_visit(**changes) -> Visit:
    """A scheduled IV visit at nine, 0.5 mg/kg over 40 min; ``changes`` replace fields."""
    base = Visit(
        session_id=1,
        version=1,
        site_id=1,
        status=S.SCHEDULED,
        patient_id=1,
        patient_name="Alex Morgan",
        mrn="A1",
        display_alias=None,
        care_flags=(),
        chair_id=1,
        chair_name="Chair 1",
        scheduled_start=NINE,
        route=Route.IV,
        kind=SessionKind.SERIES,
        planned_minutes=40,
        dose_mg_per_kg=0.5,
        dose_mg=None,
        weight_kg=None,
        checked_in_at=None,
        infusion_started_at=None,
        infusion_ended_at=None,
        ready_at=None,
        discharged_at=None,
        closed_at=None,
        close_reason=None,
        hold_override_reason=None,
        earlier_day=False,
    )
    return replace(base, **changes)


def reading(at: datetime, phase: VitalsPhase, vitals: Vitals = CALM) -> VitalsSnapshot:
    return VitalsSnapshot(taken_at=at, phase=phase, vitals=vitals)
