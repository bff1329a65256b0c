"""The esketamine REMS Patient Monitoring Form, filled from the session itself (issue 20).

Clinics that give esketamine nasal spray must complete the REMS Patient Monitoring Form
after every treatment session and submit it within 7 days (Spravato REMS). Most of the
form is what the session already recorded: the patient, the date, the dose (56 mg, 84 mg
or other), the minutes from the first device to the end of monitoring (at least 2 h),
whether vitals were acceptable before dosing and at the end, the blood pressures before,
about 40 min after and before completion, and whether sedation, dissociation or
respiratory depression occurred and resolved. That part is worked out here from the
session's rows (``prefill``, a pure function), never typed again.

What the session cannot know is kept in a ``RemsRecord``: the device lot number, the
concomitant medications that may cause sedation or blood pressure changes (yes or no),
when the patient would have been ready to leave without the 2-hour rule, and the
monitoring healthcare provider. A nurse starts the record (needed before discharge,
``gates.rems_started_gate``), completes it and marks it submitted
(``gates.rems_submit_gate``); each save is a conditional update on the record's version
with its history row in one transaction, and a submitted form keeps the lines it was
submitted with. ``forms_to_submit`` lists for the lead the forms not yet submitted with
the days left of the window (``rems_submit_within_days``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import Session, col, select

from ketadash.clock import (
    FutureMoment,
    as_utc,
    local_today,
    refuse_future,
    to_local,
    utc_now,
)
from ketadash.clock import whole_minutes_between as minutes_between
from ketadash.db import ROW_LOCK, read_session, rows_matched, write_session
from ketadash.gates import Gate, as_sentences, rems_required, rems_submit_gate
from ketadash.limits import ESKETAMINE_DEVICE_MG, ESKETAMINE_PLANS_MG
from ketadash.models import (
    Patient,
    RemsRecord,
    RemsRecordChange,
    Route,
    Severity,
    SideEffect,
    SideEffectObservation,
    Site,
    Staff,
    StaffRole,
    TreatmentSession,
    VitalsPhase,
    VitalsReading,
)
from ketadash.models import SessionStatus as S
from ketadash.rems_form import (
    COMEDICATIONS,
    Effect,
    Observation,
    Prefill,
    Reading,
    RecordFields,
    RemsForm,
    SessionFacts,
)
from ketadash.rules import esketamine_bp_window
from ketadash.settings import ClinicSettings, load_clinic_settings
from ketadash.text import clean_text
from ketadash.vitals import Vitals, back_to_baseline, start_holds, vitals_alerts
from ketadash.vocabulary import CLINICIANS, IN_WORDS

# A lot number as printed on the device carton: letters, digits and a few separators.
MAX_LOT_LENGTH = 40
_LOT_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/. ")
# How far back the lead's list looks for esketamine sessions still without a submitted form.
FORMS_LOOKBACK_DAYS = 60


class RemsError(Exception):
    """A REMS form change refused; the message says why in the clinic's words. Nothing
    was written."""


class RemsRecordChanged(RemsError):
    """Another station saved the form first; nothing of this save was written."""


# --- the pre-fill: pure -------------------------------------------------------------------


def dose_choice(mg: float | None) -> str:
    """The form's dose box: "56 mg", "84 mg", or "Other" with the dose given."""
    if mg is None:
        return "Not recorded"
    if mg in ESKETAMINE_PLANS_MG:
        return f"{mg:g} mg"
    return f"Other ({mg:g} mg, {round(mg / ESKETAMINE_DEVICE_MG)} devices)"


def _effect(observations: list[Observation], effect: SideEffect) -> Effect:
    seen = [o for o in observations if o.effect == effect]
    if not any(o.severity != Severity.NONE for o in seen):
        return Effect(occurred=False, resolved=None)
    worst = max(
        (o.severity for o in seen),
        key=[Severity.NONE, Severity.MILD, Severity.MODERATE, Severity.SEVERE].index,
    )
    last = seen[-1].severity
    resolved = last == Severity.NONE
    detail = f"worst {worst}" + ("" if resolved else f", still {last} when last recorded")
    return Effect(occurred=True, resolved=resolved, detail=detail)


def _bp_before(readings: list[Reading], start: datetime | None) -> Reading | None:
    """The last reading at or before the first device (a BEFORE-phase one when any)."""
    if start is None:
        return None
    before = [r for r in readings if r.taken_at <= start]
    before = [r for r in before if r.phase == VitalsPhase.BEFORE] or before
    return before[-1] if before else None


def _bp_after_dose(
    after: list[Reading], start: datetime | None, settings: ClinicSettings
) -> Reading | None:
    """The reading nearest the check minute after the first device, inside its window."""
    if start is None:
        return None
    earliest, latest = esketamine_bp_window(start, settings)
    target = start + timedelta(minutes=settings.esketamine_bp_check_minutes)
    window = [r for r in after if earliest <= r.taken_at <= latest]
    if not window:
        return None
    return min(window, key=lambda r: abs((r.taken_at - target).total_seconds()))


def _ok_at_end(
    bp_at_end: Reading | None, bp_before: Reading | None, settings: ClinicSettings
) -> bool | None:
    """The ready gate's rule on the last reading: no danger, and back near the pre-dose one."""
    if bp_at_end is None:
        return None
    dangers = [
        a
        for a in vitals_alerts(bp_at_end.vitals, phase=VitalsPhase.AFTER, settings=settings)
        if a.level == "danger"
    ]
    near = (
        back_to_baseline(
            bp_at_end.vitals,
            bp_before.vitals,
            within_percent=settings.discharge_vitals_within_percent,
        )[0]
        if bp_before
        else True
    )
    return not dangers and near


def _breathing(after: list[Reading], settings: ClinicSettings) -> Effect:
    """Respiratory depression: SpO2 readings below the alert limit after the first device."""
    low = [r for r in after if r.vitals.spo2 < settings.alert_spo2_below]
    if not low:
        return Effect(occurred=False, resolved=None)
    lowest = min(r.vitals.spo2 for r in low)
    resolved = after[-1].vitals.spo2 >= settings.alert_spo2_below
    return Effect(
        occurred=True,
        resolved=resolved,
        detail=f"SpO2 down to {lowest}% (below {settings.alert_spo2_below}%)"
        + ("" if resolved else ", still low at the last reading"),
    )


def prefill(*, facts: SessionFacts, settings: ClinicSettings) -> Prefill:
    """The form's answers from what the session recorded, at no particular moment (pure).

    Monitoring runs from the first device (``infusion_started_at``) to the end of
    monitoring, the moment the patient was marked ready to go (or discharged, when no
    ready is recorded); while neither, the total is not known yet. The blood pressures
    are the last reading before the first device, the reading nearest
    ``esketamine_bp_check_minutes`` after it (within ``rules.esketamine_bp_window``), and
    the last one at or before the end. Vitals were acceptable before dosing when they
    held nothing (``vitals.start_holds``), and at the end when the last reading raised no
    danger and was back near the pre-dose one (the ready gate's rule). Sedation and
    dissociation come from the side effects recorded after the first device; respiratory
    depression from SpO2 readings below ``alert_spo2_below``. "Resolved" means the last
    recording said none (or SpO2 back at or above the limit).
    """
    start = facts.infusion_started_at
    end = facts.ready_at or facts.discharged_at
    given = facts.given_dose_mg if facts.given_dose_mg is not None else facts.dose_mg
    readings = sorted(facts.readings, key=lambda r: r.taken_at)
    bp_before = _bp_before(readings, start)
    after = [r for r in readings if start is not None and r.taken_at > start]
    until_end = [r for r in after if end is not None and r.taken_at <= end]
    bp_at_end = until_end[-1] if until_end else None
    ok_before = not start_holds(bp_before.vitals, settings) if bp_before else None
    observed = [o for o in facts.observations if start is not None and o.observed_at >= start]
    observed.sort(key=lambda o: o.observed_at)
    total = minutes_between(start, end) if start is not None and end is not None else None
    observation = settings.min_recovery_esketamine_minutes
    return Prefill(
        treatment_date=to_local(start, facts.time_zone).date() if start else None,
        dose_mg=given,
        dose_choice=dose_choice(given),
        first_device_at=start,
        monitoring_ended_at=end if start is not None else None,
        total_minutes=total,
        two_hours_met=None if total is None else total >= observation,
        bp_before=bp_before,
        bp_after_dose=_bp_after_dose(after, start, settings),
        bp_at_end=bp_at_end,
        vitals_ok_before=ok_before,
        vitals_ok_at_end=_ok_at_end(bp_at_end, bp_before, settings),
        sedation=_effect(observed, SideEffect.SEDATION),
        dissociation=_effect(observed, SideEffect.DISSOCIATION),
        respiratory_depression=_breathing(after, settings),
    )


def due_on(*, treatment_date: date, within_days: int) -> date:
    """The last day a form may be submitted: ``within_days`` calendar days after the
    treatment date (site-local dates, so a daylight-saving change moves nothing)."""
    return treatment_date + timedelta(days=within_days)


def days_left(*, treatment_date: date, today: date, within_days: int) -> int:
    """Days left to submit the form (0 on the last day, negative once overdue)."""
    return (due_on(treatment_date=treatment_date, within_days=within_days) - today).days


# --- the form as lines: the screen, the PDF and the submitted copy read these ---------------


def _yes_no(value: bool | None, *, unknown: str = "Not answered") -> str:
    return unknown if value is None else "Yes" if value else "No"


def _bp(reading: Reading | None, time_zone: str, start: datetime | None) -> str:
    if reading is None:
        return "Not recorded"
    at = to_local(reading.taken_at, time_zone).strftime("%H:%M")
    offset = ""
    if start is not None and reading.taken_at > start:
        offset = f", {minutes_between(start, reading.taken_at)} min after the first device"
    return f"{reading.vitals.blood_pressure} mmHg at {at}{offset}"


def _effect_text(effect: Effect) -> str:
    if not effect.occurred:
        return "Did not occur"
    resolved = "resolved" if effect.resolved else "NOT resolved"
    return f"Occurred, {resolved} ({effect.detail})"


def form_lines(form: RemsForm) -> tuple[tuple[str, str], ...]:
    """The form as (question, answer) lines, in the REMS form's order. A submitted form
    gives the lines it was submitted with."""
    if form.submitted_lines is not None:
        return form.submitted_lines
    f, p, r = form.facts, form.prefill, form.record or RecordFields()
    zone = f.time_zone

    def clock(moment: datetime | None) -> str:
        return to_local(moment, zone).strftime("%H:%M") if moment else "Not recorded"

    born = f.date_of_birth.isoformat() if f.date_of_birth else "Not recorded"
    total = "Not over yet" if p.total_minutes is None else f"{p.total_minutes} min"
    if p.two_hours_met is False:
        total += " (less than 2 hours)"
    lines = [
        ("Patient", f"{f.patient_name} (MRN {f.mrn}, born {born})"),
        ("Treatment site", f.site_name),
        ("Treatment date", p.treatment_date.isoformat() if p.treatment_date else "Not dosed"),
        ("Dose", p.dose_choice),
        ("Device lot number", r.device_lot or "Not entered"),
        *(
            (f"Concomitant medication: {words}", _yes_no(getattr(r, name)))
            for name, words in COMEDICATIONS
        ),
        ("First device at", clock(p.first_device_at)),
        ("End of monitoring", clock(p.monitoring_ended_at)),
        ("Total time from first device to end of monitoring", total),
        ("Ready to leave without the 2-hour rule at", clock(r.ready_to_leave_at)),
        ("Vital signs acceptable before dosing", _yes_no(p.vitals_ok_before, unknown="No data")),
        ("Vital signs acceptable at completion", _yes_no(p.vitals_ok_at_end, unknown="No data")),
        ("Blood pressure before dosing", _bp(p.bp_before, zone, p.first_device_at)),
        ("Blood pressure about 40 min after dosing", _bp(p.bp_after_dose, zone, p.first_device_at)),
        ("Blood pressure before completion", _bp(p.bp_at_end, zone, p.first_device_at)),
        ("Sedation", _effect_text(p.sedation)),
        ("Dissociation", _effect_text(p.dissociation)),
        ("Respiratory depression", _effect_text(p.respiratory_depression)),
        ("Monitoring healthcare provider", form.provider_name or "Not named"),
        ("Notes", r.notes or "None"),
    ]
    return tuple(lines)


def submitted_line(form: RemsForm) -> str:
    """Who marked the form submitted and when, in the site's time, or that nobody has."""
    if form.submitted_at is None:
        return "Not submitted yet"
    at = to_local(form.submitted_at, form.facts.time_zone).strftime("%Y-%m-%d %H:%M")
    return f"Marked submitted by {form.submitted_by} at {at}"


def form_pdf(form: RemsForm) -> bytes:
    """The form on one page, for the clinic's files (``ketadash.pdf``)."""
    from ketadash.pdf import one_page_pdf

    facts = form.facts
    due = f"due by {form.due_on.isoformat()}" if form.due_on else "not dosed"
    return one_page_pdf(
        title="Esketamine REMS Patient Monitoring Form",
        subtitle=f"{facts.site_name} - session {facts.session_id} - {due}",
        lines=(*form_lines(form), ("Submission", submitted_line(form))),
        footer=(
            "Clinic copy printed from KetaDash. The form is submitted through the "
            "Spravato REMS; this copy is for the clinic's files."
        ),
    )


# --- reading ---------------------------------------------------------------------------------


def _facts(db: Session, session_id: int) -> SessionFacts | None:
    row = db.exec(
        select(TreatmentSession, Patient, Site)
        .join(Patient, col(Patient.id) == col(TreatmentSession.patient_id))
        .join(Site, col(Site.id) == col(TreatmentSession.site_id))
        .where(TreatmentSession.id == session_id)
    ).first()
    if row is None:
        return None
    session, patient, site = row
    readings = db.exec(
        select(VitalsReading)
        .where(VitalsReading.session_id == session_id)
        .order_by(col(VitalsReading.taken_at), col(VitalsReading.id))
    ).all()
    observations = db.exec(
        select(SideEffectObservation)
        .where(SideEffectObservation.session_id == session_id)
        .order_by(col(SideEffectObservation.observed_at), col(SideEffectObservation.id))
    ).all()
    return SessionFacts(
        session_id=session_id,
        site_id=session.site_id,
        site_name=site.name,
        time_zone=site.time_zone,
        patient_name=f"{patient.first_name} {patient.last_name}",
        mrn=patient.mrn,
        date_of_birth=patient.date_of_birth,
        route=Route(session.route),
        status=S(session.status),
        dose_mg=session.dose_mg,
        given_dose_mg=session.given_dose_mg,
        infusion_started_at=session.infusion_started_at,
        ready_at=session.ready_at,
        discharged_at=session.discharged_at,
        readings=tuple(
            Reading(
                taken_at=v.taken_at,
                phase=VitalsPhase(v.phase),
                vitals=Vitals(
                    systolic=v.systolic,
                    diastolic=v.diastolic,
                    heart_rate=v.heart_rate,
                    spo2=v.spo2,
                ),
            )
            for v in readings
        ),
        observations=tuple(
            Observation(
                observed_at=o.observed_at,
                effect=SideEffect(o.effect),
                severity=Severity(o.severity),
            )
            for o in observations
        ),
    )


def _fields(record: RemsRecord) -> RecordFields:
    return RecordFields(
        device_lot=record.device_lot,
        benzodiazepines=record.benzodiazepines,
        non_benzo_sedative_hypnotics=record.non_benzo_sedative_hypnotics,
        psychostimulants=record.psychostimulants,
        maois=record.maois,
        ready_to_leave_at=record.ready_to_leave_at,
        monitoring_provider_id=record.monitoring_provider_id,
        notes=record.notes,
    )


def _form(db: Session, facts: SessionFacts, settings: ClinicSettings, now: datetime) -> RemsForm:
    record = db.exec(select(RemsRecord).where(RemsRecord.session_id == facts.session_id)).first()
    filled = prefill(facts=facts, settings=settings)
    due = left = None
    if filled.treatment_date is not None:
        within = settings.rems_submit_within_days
        due = due_on(treatment_date=filled.treatment_date, within_days=within)
        today = local_today(facts.time_zone, now=now)
        left = days_left(treatment_date=filled.treatment_date, today=today, within_days=within)
    form = RemsForm(
        facts=facts, prefill=filled, record=None, version=None, due_on=due, days_left=left
    )
    if record is None:
        return form

    def name(staff_id: int | None) -> str | None:
        staff = db.get(Staff, staff_id) if staff_id is not None else None
        return staff.name if staff else None

    lines = None
    if record.submitted_form:
        lines = tuple((q, a) for q, a in json.loads(record.submitted_form))
    return replace(
        form,
        record=_fields(record),
        version=record.version,
        started_at=record.started_at,
        started_by=name(record.started_by),
        provider_name=name(record.monitoring_provider_id),
        submitted_at=record.submitted_at,
        submitted_by=name(record.submitted_by),
        submitted_lines=lines,
    )


def load_form(*, url: str, session_id: int, now: datetime) -> RemsForm:
    """A session's form as it stands; raises RemsError for an unknown session."""
    with read_session(url) as db:
        facts = _facts(db, session_id)
        if facts is None:
            raise RemsError(f"Session {session_id} does not exist (was it removed?).")
        settings = load_clinic_settings(db=db, site_id=facts.site_id)
        return _form(db, facts, settings, now)


@dataclass(frozen=True, kw_only=True)
class FormToSubmit:
    """One line of the lead's list: an esketamine session whose form is not submitted."""

    session_id: int
    patient_name: str
    treatment_date: date
    due_on: date
    days_left: int
    state: str

    @property
    def overdue(self) -> bool:
        return self.days_left < 0


@dataclass(frozen=True, kw_only=True)
class FormsToSubmit:
    required: bool
    within_days: int
    forms: tuple[FormToSubmit, ...]


def forms_to_submit(*, url: str, site_id: int, now: datetime) -> FormsToSubmit:
    """The site's esketamine sessions dosed in the last ``FORMS_LOOKBACK_DAYS`` whose form
    is not submitted, fewest days left first; empty when the clinic turned the form off."""
    return _forms(url=url, site_id=site_id, now=now, submitted=False)


def submitted_forms(*, url: str, site_id: int, now: datetime) -> FormsToSubmit:
    """The site's forms marked submitted for sessions dosed in the last
    ``FORMS_LOOKBACK_DAYS``, newest treatment first (to print the clinic's copy again)."""
    return _forms(url=url, site_id=site_id, now=now, submitted=True)


def _forms(*, url: str, site_id: int, now: datetime, submitted: bool) -> FormsToSubmit:
    t = TreatmentSession
    with read_session(url) as db:
        site = db.get(Site, site_id)
        if site is None:
            raise LookupError(f"There is no site {site_id}.")
        settings = load_clinic_settings(db=db, site_id=site_id)
        within = settings.rems_submit_within_days
        required = rems_required(route=Route.ESKETAMINE, settings=settings)
        if not required and not submitted:
            return FormsToSubmit(required=False, within_days=within, forms=())
        submitted_at = col(RemsRecord.submitted_at)
        state = submitted_at.is_not(None) if submitted else submitted_at.is_(None)
        # Five columns: SQLAlchemy's select (SQLModel's is typed for up to four).
        rows = db.execute(
            sa.select(
                col(t.id),
                col(t.infusion_started_at),
                col(Patient.first_name),
                col(Patient.last_name),
                col(RemsRecord.id),
            )
            .join(Patient, col(Patient.id) == col(t.patient_id))
            .join(RemsRecord, col(RemsRecord.session_id) == col(t.id), isouter=True)
            .where(
                col(t.site_id) == site_id,
                col(t.route) == Route.ESKETAMINE,
                col(t.infusion_started_at).is_not(None),
                col(t.infusion_started_at) >= now - timedelta(days=FORMS_LOOKBACK_DAYS),
                state,
            )
        ).all()
    today = local_today(site.time_zone, now=now)
    forms = []
    for session_id, started_at, first, last, record_id in rows:
        treated = to_local(started_at, site.time_zone).date()
        forms.append(
            FormToSubmit(
                session_id=session_id,
                patient_name=f"{first} {last}",
                treatment_date=treated,
                due_on=due_on(treatment_date=treated, within_days=within),
                days_left=days_left(treatment_date=treated, today=today, within_days=within),
                state="Submitted"
                if submitted
                else "Started, not submitted"
                if record_id
                else "Not started",
            )
        )
    if submitted:
        forms.sort(key=lambda f: (f.treatment_date, f.session_id), reverse=True)
    else:
        forms.sort(key=lambda f: (f.days_left, f.session_id))
    return FormsToSubmit(required=required, within_days=within, forms=tuple(forms))


def ready_moment(*, clock: time, first_device_at: datetime, time_zone: str) -> datetime:
    """A time of day typed for "ready to leave" as the moment it means: that time on the
    treatment's local date, or the next day when it would come before the first device
    (a session that ran past midnight)."""
    zone = ZoneInfo(time_zone)
    day = as_utc(first_device_at).astimezone(zone).date()
    moment = datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
    if moment < first_device_at:
        moment = datetime.combine(day + timedelta(days=1), clock, tzinfo=zone).astimezone(UTC)
    return moment


# --- writing ----------------------------------------------------------------------------------


def _moment(now: datetime | None, what: str) -> datetime:
    if now is None:
        return utc_now()
    try:
        refuse_future(now, what=what)
    except FutureMoment as error:
        raise RemsError(str(error)) from error
    return now


def _clinician(db: Session, staff_id: int | None) -> Staff:
    staff = db.get(Staff, staff_id) if staff_id is not None else None
    if staff is None:
        raise RemsError("Sign in first: every change records who made it.")
    if not staff.active:
        raise RemsError(
            f"{staff.name} is no longer on this clinic's staff list, so nothing was saved."
        )
    if StaffRole(staff.role) not in CLINICIANS:
        raise RemsError(
            f"The REMS form is completed by a nurse or a clinic lead ({staff.name} is "
            f"{StaffRole(staff.role).value.replace('_', ' ')}). Nothing was saved."
        )
    return staff


def _session_for_form(db: Session, session_id: int) -> TreatmentSession:
    session = db.get(TreatmentSession, session_id, with_for_update=ROW_LOCK)
    if session is None:
        raise RemsError(f"Session {session_id} does not exist (was it removed?).")
    if Route(session.route) != Route.ESKETAMINE:
        raise RemsError(
            f"The REMS Patient Monitoring Form is for esketamine sessions; this one is "
            f"{Route(session.route).label}. Nothing was saved."
        )
    if session.infusion_started_at is None:
        raise RemsError(
            f"No esketamine device has been given yet (the patient is "
            f"{IN_WORDS[S(session.status)]}): the form starts with the first device. "
            "Nothing was saved."
        )
    return session


def start_record(*, url: str, session_id: int, staff_id: int, now: datetime | None = None) -> int:
    """Start a session's REMS form (version 1, with its history row); returns the version.

    Refused (RemsError) unless a nurse or lead starts it for an esketamine session whose
    first device was given; RemsRecordChanged when it was started already.
    """
    now = _moment(now, "A REMS form")
    with write_session(url) as db:
        _clinician(db, staff_id)
        _session_for_form(db, session_id)
        existing = db.exec(select(RemsRecord).where(RemsRecord.session_id == session_id)).first()
        if existing is not None:
            who = db.get(Staff, existing.started_by)
            raise RemsRecordChanged(
                f"{who.name if who else 'Another station'} already started this session's "
                "REMS form: open it and carry on there."
            )
        db.add(RemsRecord(session_id=session_id, started_at=now, started_by=staff_id, version=1))
        db.add(
            RemsRecordChange(
                session_id=session_id,
                version=1,
                action="started",
                changed_at=now,
                staff_id=staff_id,
            )
        )
        db.flush()
        return 1


def clean_lot(text: str | None) -> str | None:
    """The lot number as typed, cleaned and upper-cased; None when blank. Raises RemsError
    for one that cannot be a lot number."""
    lot = clean_text(text).upper()
    if not lot:
        return None
    if (
        len(lot) > MAX_LOT_LENGTH
        or not set(lot) <= _LOT_CHARACTERS
        or not any(ch.isalnum() for ch in lot)
    ):
        raise RemsError(
            f"“{lot[:MAX_LOT_LENGTH]}” is not a lot number: type it as printed on the device "
            f"carton (letters and digits, at most {MAX_LOT_LENGTH}). Nothing was saved."
        )
    return lot


def _entry_problems(
    db: Session, session: TreatmentSession, fields: RecordFields, now: datetime
) -> list[str]:
    """What is wrong with the fields as typed, whether or not the form is being submitted."""
    problems = []
    ready = fields.ready_to_leave_at
    if ready is not None:
        if ready > now + timedelta(minutes=1):
            problems.append(
                "the ready-to-leave time is later than now: type when the patient would "
                "have been ready, not a time still to come"
            )
        elif session.infusion_started_at is not None and ready < session.infusion_started_at:
            problems.append(
                "the ready-to-leave time is before the first device: type it again (the "
                "form counts from the first device)"
            )
    provider_id = fields.monitoring_provider_id
    if provider_id is not None:
        provider = db.get(Staff, provider_id)
        if (
            provider is None
            or not provider.active
            or provider.site_id not in (None, session.site_id)
            or StaffRole(provider.role) not in CLINICIANS
        ):
            problems.append(
                "the monitoring healthcare provider must be a nurse or clinic lead on this "
                "site's staff list"
            )
    return problems


def save_record(
    *,
    url: str,
    session_id: int,
    staff_id: int,
    expected_version: int,
    fields: RecordFields,
    submit: bool = False,
    now: datetime | None = None,
) -> int:
    """Save the nurse's part of the form and, with ``submit``, mark it submitted by
    ``staff_id`` now; returns the record's new version.

    One conditional update on ``expected_version`` (the version the nurse saw) with its
    history row, all or nothing. Refused with RemsError: a lot number that cannot be
    one, a ready-to-leave time before the first device or after now, a provider not a
    nurse or lead of the site, a form already submitted, and for ``submit`` every reason
    of ``gates.rems_submit_gate`` on the form as it would be saved. RemsRecordChanged
    when another station saved the form first.
    """
    now = _moment(now, "A REMS form")
    lot = clean_lot(fields.device_lot)
    notes = clean_text(fields.notes) or None
    fields = replace(fields, device_lot=lot, notes=notes)
    with write_session(url) as db:
        staff = _clinician(db, staff_id)
        session = _session_for_form(db, session_id)
        record = db.exec(
            select(RemsRecord)
            .where(RemsRecord.session_id == session_id)
            .with_for_update(**ROW_LOCK)
        ).first()
        if record is None:
            raise RemsError("Start the REMS form first. Nothing was saved.")
        if record.submitted_at is not None:
            raise RemsError(
                "This form has been marked submitted: it cannot be changed. Nothing was saved."
            )
        if record.version != expected_version:
            raise _changed(db, session_id)
        problems = _entry_problems(db, session, fields, now)
        if problems:
            raise RemsError(f"{as_sentences(problems)} Nothing was saved.")
        values = {
            "device_lot": lot,
            "benzodiazepines": fields.benzodiazepines,
            "non_benzo_sedative_hypnotics": fields.non_benzo_sedative_hypnotics,
            "psychostimulants": fields.psychostimulants,
            "maois": fields.maois,
            "ready_to_leave_at": fields.ready_to_leave_at,
            "monitoring_provider_id": fields.monitoring_provider_id,
            "notes": notes,
        }
        changed = [name for name, value in values.items() if getattr(record, name) != value]
        action = "saved"
        if submit:
            facts = _facts(db, session_id)
            if facts is None:  # the session was read and locked above
                raise RemsError(f"Session {session_id} does not exist (was it removed?).")
            settings = load_clinic_settings(db=db, site_id=session.site_id)
            form = _form(db, facts, settings, now)
            provider = (
                db.get(Staff, fields.monitoring_provider_id)
                if fields.monitoring_provider_id
                else None
            )
            form = replace(form, record=fields, provider_name=provider.name if provider else None)
            gate = rems_submit_gate(form=form)
            _refuse(gate)
            values |= {
                "submitted_at": now,
                "submitted_by": staff.id,
                "submitted_form": json.dumps(
                    [*form_lines(form)], ensure_ascii=False, separators=(",", ":")
                ),
            }
            action = "submitted"
        result = db.execute(
            update(RemsRecord)
            .where(col(RemsRecord.id) == record.id, col(RemsRecord.version) == expected_version)
            .values(version=expected_version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        if rows_matched(result) != 1:
            raise _changed(db, session_id)
        db.add(
            RemsRecordChange(
                session_id=session_id,
                version=expected_version + 1,
                action=action,
                changed_at=now,
                staff_id=staff_id,
                detail=", ".join(changed) or None,
            )
        )
        db.flush()
        return expected_version + 1


def _refuse(gate: Gate) -> None:
    if not gate.allowed:
        raise RemsError(
            f"Cannot mark the form submitted. {as_sentences(gate.reasons)} Nothing was saved."
        )


def _changed(db: Session, session_id: int) -> RemsRecordChanged:
    last = db.exec(
        select(RemsRecordChange, Staff.name)
        .join(Staff, col(Staff.id) == col(RemsRecordChange.staff_id))
        .where(RemsRecordChange.session_id == session_id)
        .order_by(col(RemsRecordChange.version).desc())
        .limit(1)
    ).first()
    who = last[1] if last else "Another station"
    return RemsRecordChanged(
        f"{who} saved this REMS form while you were working. Nothing you entered was "
        "saved; check the form and enter it again if still needed."
    )


@dataclass(frozen=True, kw_only=True)
class FormChange:
    version: int
    action: str
    changed_at: datetime
    staff_name: str
    detail: str | None


def form_history(*, url: str, session_id: int) -> list[FormChange]:
    """Every save of a session's form, oldest first."""
    with read_session(url) as db:
        rows = db.exec(
            select(RemsRecordChange, Staff.name)
            .join(Staff, col(Staff.id) == col(RemsRecordChange.staff_id))
            .where(RemsRecordChange.session_id == session_id)
            .order_by(col(RemsRecordChange.version))
        ).all()
    return [
        FormChange(
            version=c.version,
            action=c.action,
            changed_at=c.changed_at,
            staff_name=name,
            detail=c.detail,
        )
        for c, name in rows
    ]
