"""The access log for clinic leads: who opened which patient, or downloaded what, and when.

Read straight from the append-only ``access_log`` table (``ketadash.auth``), filtered
in the database by period, person and kind, shown in the site's time zone and
downloadable as CSV (the download is itself logged).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from ketadash import auth
from ketadash.auth import AccessAction
from ketadash.clinic import SiteChoice
from ketadash.clock import local_day_bounds, local_today, to_local
from ketadash.ui.auth import ROLE_WORDS, export_button
from ketadash.ui.text import plain

DEFAULT_DAYS = 7
_EVERYONE = 0
_EVERY_ACTION = ""


def access_log_review(*, url: str, site: SiteChoice, now: datetime) -> None:
    """Filters, the log as a table (newest first) and its CSV."""
    today = local_today(site.time_zone, now=now)
    period, person, kind = st.columns([2, 2, 2])
    chosen = period.date_input(
        "Days",
        value=(today - timedelta(days=DEFAULT_DAYS - 1), today),
        max_value=today,
        help="Times are shown in this site's time zone.",
    )
    if not isinstance(chosen, tuple) or len(chosen) != 2:
        st.caption("Choose the last day too.")
        return
    first, last = chosen
    people = {member.id: member for member in auth.access_log_staff(url=url)}
    staff_id = person.selectbox(
        "Person",
        options=[_EVERYONE, *people],
        format_func=lambda i: "Everyone" if i == _EVERYONE else plain(people[i].name),
    )
    action = kind.selectbox(
        "What",
        options=[_EVERY_ACTION, *(a.value for a in AccessAction)],
        format_func=lambda a: "Everything" if a == _EVERY_ACTION else AccessAction(a).label,
    )
    start, _ = local_day_bounds(first, site.time_zone)
    _, end = local_day_bounds(last, site.time_zone)
    log = auth.read_access_log(
        url=url,
        start=start,
        end=end,
        staff_id=staff_id or None,
        action=action or None,
    )
    shown = readable_log(log, time_zone=site.time_zone)
    entries = "1 entry" if len(shown) == 1 else f"{len(shown)} entries"
    st.caption(f"{entries} from {first:%d %b} to {last:%d %b %Y}, newest first.")
    st.dataframe(shown, hide_index=True, width="stretch")
    export_button(
        "Download the access log (CSV)",
        table=shown,
        file_name=f"access-log_{first}_{last}.csv",
        icon=":material/download:",
    )


def readable_log(log: pd.DataFrame, *, time_zone: str) -> pd.DataFrame:
    """The log as a lead reads it: local time, the person and role, what, which patient."""
    return pd.DataFrame(
        {
            "When": [f"{to_local(at, time_zone):%Y-%m-%d %H:%M:%S}" for at in log["at"]],
            "Who": log["staff"].map(plain),
            "Role": [ROLE_WORDS.get(role, role) for role in log["role"]],
            "What": [AccessAction(a).label for a in log["action"]],
            "Patient (MRN)": log["patient"].fillna("").map(plain),
            "Session": log["session_id"].astype("Int64"),
            "Detail": log["detail"].fillna("").map(plain),
        }
    )
