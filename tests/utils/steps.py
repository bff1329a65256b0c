"""Taking a step as a station would: with the version of the session it is looking at now."""

from __future__ import annotations

from datetime import datetime

from ketadash.db import read_session
from ketadash.lifecycle import StepResult, take_step
from ketadash.models import TreatmentSession
from tests.utils.factories import ClinicIds


def current_version(url: str, session_id: int) -> int:
    """The session's version as stored now."""
    with read_session(url) as db:
        return db.get(TreatmentSession, session_id).version


def step_at(
    url: str,
    clinic: ClinicIds,
    session_id: int,
    step,
    at: datetime,
    *,
    staff_id: int | None = None,
    **extra,
) -> StepResult:
    """``take_step`` at ``at`` by ``staff_id`` (the clinic's first nurse by default), on the
    version the session has now."""
    return take_step(
        url=url,
        session_id=session_id,
        step=step,
        staff_id=staff_id or clinic.nurse_id,
        expected_version=current_version(url, session_id),
        now=at,
        **extra,
    )
