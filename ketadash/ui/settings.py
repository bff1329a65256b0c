"""Clinic settings for leads: every threshold in force at a site, and changing one.

The declarations (default, bounds, unit, help, source) live once in
``ketadash.settings``; this screen shows them beside the site's values and writes a
change through ``change_site_setting``, which checks the lead's role in the roster.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from ketadash.clinic import SiteChoice
from ketadash.clock import to_local
from ketadash.db import DatabaseUnavailable, read_session
from ketadash.settings import (
    SETTINGS_BY_NAME,
    ClinicSettings,
    InvalidSetting,
    SettingChangeMade,
    SettingInForce,
    SettingRefused,
    change_site_setting,
    load_clinic_settings,
    setting_change_problems,
    setting_history,
    settings_in_force,
)
from ketadash.staff import StaffMember
from ketadash.submissions import AlreadySaved, submission
from ketadash.ui import saves
from ketadash.ui.live import clear_every_site_day
from ketadash.ui.text import literal, plain

_SAVED_KEY = "kd_setting_saved"
# How many of the site's setting changes the screen shows, newest first.
LATEST_CHANGES = 20


def settings_review(*, url: str, site: SiteChoice, staff: StaffMember, now: datetime) -> None:
    """The settings table for the site, the form to change one, and the latest changes."""
    saved = st.session_state.pop(_SAVED_KEY, None)
    if saved:
        st.success(saved, icon=":material/check_circle:")
    with read_session(url) as db:
        rows = settings_in_force(db=db, site_id=site.id)
        in_force = load_clinic_settings(db=db, site_id=site.id)
        history = setting_history(db=db, site_id=site.id, limit=LATEST_CHANGES)
    st.caption(
        f"In force at {literal(site.name)}. A changed value is marked ●; the defaults come "
        "from the clinic's protocol and the sources listed."
    )
    st.dataframe(settings_frame(rows, time_zone=site.time_zone), hide_index=True, width="stretch")
    form_column, history_column = st.columns([1, 1])
    with form_column:
        _change_form(url=url, site=site, staff=staff, rows=rows, in_force=in_force, now=now)
    with history_column:
        st.subheader("Latest changes")
        if history:
            st.dataframe(
                history_frame(history, time_zone=site.time_zone), hide_index=True, width="stretch"
            )
        else:
            st.caption("No setting has been changed at this site: the defaults are in force.")


def settings_frame(rows: list[SettingInForce], *, time_zone: str) -> pd.DataFrame:
    def allowed(row: SettingInForce) -> str:
        if row.spec.allowed:
            low, high = row.spec.allowed
            return f"{low}–{high}"
        return ", ".join(row.spec.choices)

    return pd.DataFrame(
        {
            "Setting": [r.spec.name for r in rows],
            "In force": [
                f"{'● ' if r.overridden else ''}{r.value}"
                + (f" (stored {plain(r.stored)} is not in force)" if r.stored else "")
                for r in rows
            ],
            "Default": [str(r.spec.default) for r in rows],
            "Unit": [r.spec.unit for r in rows],
            "Allowed": [allowed(r) for r in rows],
            "What it does": [r.spec.help for r in rows],
            "Changed": [
                f"{to_local(r.changed_at, time_zone):%d %b %Y %H:%M}"
                + (f" by {plain(r.changed_by)}" if r.changed_by else "")
                if r.changed_at
                else ""
                for r in rows
            ],
            "Source": [r.spec.source for r in rows],
        }
    )


def history_frame(history: list[SettingChangeMade], *, time_zone: str) -> pd.DataFrame:
    """The latest changes, newest first: when (site time), by whom, the setting, old, new."""
    return pd.DataFrame(
        {
            "When": [f"{to_local(h.changed_at, time_zone):%d %b %Y %H:%M}" for h in history],
            "By": [plain(h.changed_by) if h.changed_by else "command line" for h in history],
            "Setting": [h.name for h in history],
            "Old value": [h.old_value for h in history],
            "New value": [h.new_value for h in history],
        }
    )


def _refused(problems: list[str]) -> None:
    """Every reason a change is refused, one a line, as text."""
    lines = "\n".join(f"- {literal(problem)}" for problem in problems)
    st.error(f"{lines}\n\nNothing was changed.", icon=":material/block:")


def _change_form(
    *,
    url: str,
    site: SiteChoice,
    staff: StaffMember,
    rows: list[SettingInForce],
    in_force: ClinicSettings,
    now: datetime,
) -> None:
    st.subheader("Change a setting")
    current = {r.spec.name: r for r in rows}
    name = st.selectbox(
        "Setting",
        options=list(current),
        format_func=lambda n: f"{n} (now {current[n].value} {current[n].spec.unit})",
    )
    spec = SETTINGS_BY_NAME[name]
    st.caption(spec.help)
    if spec.bounds_source:
        st.caption(f"Bounds: {literal(spec.bounds_source)}.")
    save = saves.drawn(f"kd-setting-{name}", what="setting")
    with st.form(f"kd-setting-{name}"):
        value = st.text_input(
            f"New value at {literal(site.name)}",
            value=str(current[name].value),
            help=f"Default {spec.default} {spec.unit}.",
        )
        if st.form_submit_button("Save", type="primary"):
            # The same check as the write's, on the settings this screen shows; the write
            # checks again inside its transaction, against what is in force then.
            problems = setting_change_problems(in_force=in_force, changes={name: value})
            if problems:
                _refused(problems)
                return
            try:
                with submission(key=save.key, what=save.what, staff_id=staff.id):
                    stored = change_site_setting(
                        url=url, site_id=site.id, name=name, value=value, staff_id=staff.id,
                        now=now,
                    )  # fmt: skip
            except AlreadySaved as already:
                clear_every_site_day()
                saves.confirmed(save)
                st.session_state[_SAVED_KEY] = str(already)
                st.rerun()
            except InvalidSetting as refused:
                _refused(refused.problems)
            except SettingRefused as refused:
                st.error(f"{refused} Nothing was changed.", icon=":material/block:")
            except DatabaseUnavailable as down:
                st.error(saves.not_saved(down), icon=":material/cloud_off:")
            else:
                # Every screen of the site reads its rules afresh.
                clear_every_site_day()
                saves.confirmed(save)
                st.session_state[_SAVED_KEY] = (
                    f"{name} is now {stored} {spec.unit} at {literal(site.name)}."
                )
                st.rerun()
