"""Widgets of the esketamine REMS form: the Recovery panel's section and the REMS page.

Everything shown comes from ``ketadash.rems`` (the form's lines, the lead's list) and
``ketadash.gates`` (what still stops a submission); the writes are ``rems.start_record``
and ``rems.save_record``, run through ``ui.actions.act`` so a refusal keeps what was
typed and a save refreshes every screen of the site. Text from the database is shown as
text, never read as markdown.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ketadash.auth import AccessAction
from ketadash.clinic import SiteChoice
from ketadash.clock import to_local, utc_now
from ketadash.db import DatabaseUnavailable
from ketadash.gates import rems_required, rems_submit_gate
from ketadash.models import Route
from ketadash.rems import (
    RemsError,
    form_history,
    form_lines,
    form_pdf,
    forms_to_submit,
    load_form,
    ready_moment,
    save_record,
    start_record,
    submitted_forms,
    submitted_line,
)
from ketadash.rems_form import COMEDICATIONS, RecordFields, RemsForm
from ketadash.settings import ClinicSettings
from ketadash.staff import StaffMember, list_staff
from ketadash.ui import saves
from ketadash.ui.actions import act, show_flash
from ketadash.ui.auth import file_button, note_opened
from ketadash.ui.downloads import PDF_MIME
from ketadash.ui.text import literal, plain
from ketadash.vocabulary import CLINICIANS

_SELECTED_KEY = "kd_rems_selected"
REMS_PAGE = "pages/rems.py"
_ANSWERS = {None: "Not answered", True: "Yes", False: "No"}


# --- the Recovery panel's section -----------------------------------------------------------


def rems_section(
    *, url: str, session_id: int, route: Route, settings: ClinicSettings, staff: StaffMember
) -> None:
    """For an esketamine session: the form's state, and a button that starts it (needed
    before discharge); the form itself is completed on the REMS page."""
    if not rems_required(route=route, settings=settings):
        return
    try:
        form = load_form(url=url, session_id=session_id, now=utc_now())
    except (RemsError, DatabaseUnavailable) as error:
        st.error(literal(error))
        return
    st.markdown("**REMS monitoring form**")
    st.text(f"{form.state}" + (f" · due by {form.due_on:%a %d %b}" if form.due_on else ""))
    startable = form.prefill.first_device_at is not None and staff.role in CLINICIANS
    start = saves.drawn(f"rems-start-{session_id}", what="start of the REMS form")
    if (
        not form.started
        and startable
        and st.button("Start the REMS form", key=f"rems-start-{session_id}")
    ):
        act(
            lambda: start_record(url=url, session_id=session_id, staff_id=staff.id),
            "REMS form started: complete it on the REMS page.",
            save=start,
            staff=staff,
        )
    st.page_link(REMS_PAGE, label="Open the REMS forms", icon=":material/assignment:")


# --- the REMS page ------------------------------------------------------------------------


def rems_forms(*, url: str, site: SiteChoice, staff: StaffMember) -> None:
    """The forms not yet submitted with their days left (the lead's list), then the chosen
    session's form: what the session recorded, the nurse's part, submit, and the PDF."""
    messages = st.container()
    show_flash(messages)
    now = utc_now()
    try:
        open_forms = forms_to_submit(url=url, site_id=site.id, now=now)
        done = submitted_forms(url=url, site_id=site.id, now=now)
    except DatabaseUnavailable as error:
        st.error(str(error), icon=":material/cloud_off:")
        return
    if not open_forms.required:
        st.info(
            "This clinic has turned the REMS monitoring form off (setting "
            "rems_monitoring_form): nothing is required or listed.",
            icon=":material/info:",
        )
    st.subheader(f"Not submitted yet ({len(open_forms.forms)})")
    if open_forms.forms:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Patient": plain(f.patient_name),
                        "Treated": f.treatment_date.isoformat(),
                        "Due by": f.due_on.isoformat(),
                        "Days left": f.days_left,
                        "Form": "Overdue" if f.overdue else f.state,
                    }
                    for f in open_forms.forms
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    elif open_forms.required:
        st.caption(
            f"Every esketamine session's form is submitted (forms are due within "
            f"{open_forms.within_days} days of the treatment)."
        )
    choices = {f.session_id: f for f in (*open_forms.forms, *done.forms)}
    if not choices:
        return
    remembered = st.session_state.get(_SELECTED_KEY)
    options = list(choices)
    chosen = st.selectbox(
        "Form",
        options=options,
        index=options.index(remembered) if remembered in options else None,
        format_func=lambda i: (
            f"{plain(choices[i].patient_name)} · treated {choices[i].treatment_date:%a %d %b} "
            f"· {choices[i].state}"
        ),
        placeholder="Choose a session's form",
    )
    st.session_state[_SELECTED_KEY] = chosen
    if chosen is None:
        return
    try:
        form = load_form(url=url, session_id=chosen, now=now)
    except (RemsError, DatabaseUnavailable) as error:
        st.error(literal(error))
        return
    note_opened(action=AccessAction.OPEN_PANEL, where="rems", session_id=chosen, detail="REMS form")
    _form_view(url=url, form=form, staff=staff)


def _form_view(*, url: str, form: RemsForm, staff: StaffMember) -> None:
    st.subheader(f"{plain(form.facts.patient_name)} · {form.state}")
    st.caption(submitted_line(form))
    left, right = st.columns([1, 1], gap="large")
    with left:
        st.markdown("**The form as it stands** (from the session's record)")
        st.table(
            pd.DataFrame(form_lines(form), columns=["Question", "Answer"]).set_index("Question")
        )
        file_button(
            "Download the one-page PDF",
            body=lambda: form_pdf(form),
            file_name=f"rems-form-session-{form.facts.session_id}.pdf",
            mime=PDF_MIME,
            icon=":material/picture_as_pdf:",
        )
        with st.expander("History of this form"):
            for change in form_history(url=url, session_id=form.facts.session_id):
                at = to_local(change.changed_at, form.facts.time_zone).strftime("%Y-%m-%d %H:%M")
                what = f" ({change.detail.replace('_', ' ')})" if change.detail else ""
                st.text(f"{at} · {change.action} by {plain(change.staff_name)}{what}")
    with right:
        if form.submitted:
            st.success("Marked submitted: the clinic's copy is kept as it was submitted.")
            return
        if not form.started:
            st.warning("This form is not started yet.")
            start = saves.drawn(
                f"rems-page-start-{form.facts.session_id}", what="start of the REMS form"
            )
            if staff.role in CLINICIANS and st.button("Start the REMS form", type="primary"):
                act(
                    lambda: start_record(
                        url=url, session_id=form.facts.session_id, staff_id=staff.id
                    ),
                    "REMS form started.",
                    save=start,
                    staff=staff,
                )
            return
        if staff.role not in CLINICIANS:
            st.caption("A nurse or clinic lead completes the form.")
            return
        _nurse_part(url=url, form=form, staff=staff)


def _comedication_answers(*, record: RecordFields, session_id: int) -> dict[str, bool | None]:
    """One yes/no question per concomitant medication, answered as last saved."""
    answers = {}
    for name, words in COMEDICATIONS:
        current = getattr(record, name)
        answers[name] = st.radio(
            words,
            options=[True, False],
            index=None if current is None else (0 if current else 1),
            format_func=lambda a: _ANSWERS[a],
            horizontal=True,
            key=f"rems-{name}-{session_id}",
        )
    return answers


def _nurse_part(*, url: str, form: RemsForm, staff: StaffMember) -> None:
    record, version = form.record, form.version
    if record is None or version is None:  # shown only for a started form
        return
    zone = form.facts.time_zone
    try:
        clinicians = [
            m for m in list_staff(url=url, site_id=form.facts.site_id) if m.role in CLINICIANS
        ]
    except DatabaseUnavailable:
        clinicians = []
    names = {m.id: m.name for m in clinicians}
    drawn = saves.drawn(f"rems-{form.facts.session_id}", what="REMS form")
    with st.form(drawn.form):
        st.markdown("**What the session does not know**")
        lot = st.text_input("Device lot number", value=record.device_lot or "", max_chars=40)
        st.markdown("Concomitant medications that may cause sedation or blood pressure changes")
        answers = _comedication_answers(record=record, session_id=form.facts.session_id)
        ready = to_local(record.ready_to_leave_at, zone)
        ready_clock = st.time_input(
            "When would the patient have been ready to leave without the 2-hour rule?",
            value=ready.time() if ready else None,
            step=300,
        )
        provider = st.selectbox(
            "Monitoring healthcare provider",
            options=list(names),
            index=list(names).index(record.monitoring_provider_id)
            if record.monitoring_provider_id in names
            else None,
            format_func=lambda i: plain(names[i]),
            placeholder="Choose the nurse or lead who monitored",
        )
        notes = st.text_area(
            "Notes (serious adverse events, a missing reading)", value=record.notes or ""
        )
        save, submit = st.columns(2)
        saved = save.form_submit_button("Save")
        submitted = submit.form_submit_button("Save and mark submitted", type="primary")
    fields = RecordFields(
        device_lot=lot,
        ready_to_leave_at=(
            ready_moment(
                clock=ready_clock, first_device_at=form.prefill.first_device_at, time_zone=zone
            )
            if ready_clock is not None and form.prefill.first_device_at is not None
            else None
        ),
        monitoring_provider_id=provider,
        notes=notes,
        **answers,
    )
    if saved or submitted:
        act(
            lambda: save_record(
                url=url,
                session_id=form.facts.session_id,
                staff_id=staff.id,
                expected_version=version,
                fields=fields,
                submit=submitted,
            ),
            "REMS form marked submitted." if submitted else "REMS form saved.",
            save=drawn,
            staff=staff,
        )
    st.markdown("**Before it can be marked submitted**")
    for check in rems_submit_gate(form=form).checks:
        st.text(f"✓ {check.label}" if check.ok else f"✗ {check.label}: {check.detail}")
