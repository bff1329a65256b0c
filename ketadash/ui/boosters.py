"""The Boosters screen: the worklist, one patient's relief timeline, and booking a booster.

Reads go through ``ketadash.histories`` (cached per site and day, cleared by a
booking); the model is ``ketadash.boosters``; the write is ``ketadash.booking``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from ketadash.auth import AccessAction
from ketadash.booking import (
    BookingRefused,
    book_booster,
    booster_plan_problems,
    first_free_start,
)
from ketadash.booster_flags import MorningFlags, todays_flags, with_morning_flags
from ketadash.boosters import (
    ACTION_FLAGS,
    WORKLIST_FLAGS,
    BoosterFlag,
    BoosterPlan,
    ClinicRelief,
    PatientHistory,
    local_day,
    model_summary,
    pre_treatment_baseline,
    worklist_frame,
)
from ketadash.clinic import SiteChoice
from ketadash.db import DatabaseBusy, DatabaseUnavailable, read_session
from ketadash.gates import as_sentences
from ketadash.histories import (
    PatientContact,
    SiteBoosters,
    load_patient_histories,
    patient_contact,
    patient_contacts,
    site_boosters,
)
from ketadash.models import CareFlag
from ketadash.staff import StaffMember
from ketadash.submissions import AlreadySaved, submission
from ketadash.ui import saves
from ketadash.ui.auth import export_button, note_opened
from ketadash.ui.board import cached_board
from ketadash.ui.text import literal

# A booking elsewhere shows here within the minute; a booking here clears it at once.
WORKLIST_TTL_SECONDS = 60
_FLASH_KEY = "kd_boosters_flash"
_PATIENT_KEY = "kd_boosters_patient"


@st.cache_resource(
    ttl=WORKLIST_TTL_SECONDS, max_entries=64, show_spinner="Reading relief histories…"
)
def cached_site_boosters(url: str, site_id: int, day: date, _now: datetime) -> SiteBoosters:
    # Keyed on the site's day, not the moment: flags change by the day, bookings clear it.
    # A resource, not data: thousands of plans are shared read-only by every session
    # rather than unpickled on every rerun (frozen dataclasses, never changed by a page).
    with read_session(url) as db:
        site = site_boosters(db=db, site_id=site_id, as_of=_now, clinic=_fit_of(url, site_id, day))
    _FITS[(url, site_id)] = (day, site.clinic)
    return site


# The site's relief model, fitted at the day's first read and kept for the day: the worklist
# is re-read every minute, the fit (seconds on a large site) once a morning, as the stored
# flags are. Shared by the server's sessions; read-only.
_FITS: dict[tuple[str, int], tuple[date, ClinicRelief]] = {}


def _fit_of(url: str, site_id: int, day: date) -> ClinicRelief | None:
    kept = _FITS.get((url, site_id))
    return kept[1] if kept is not None and kept[0] == day else None


@st.cache_data(ttl=WORKLIST_TTL_SECONDS, show_spinner=False)
def cached_history(
    url: str, site_id: int, patient_id: int, history_days: int, day: date, _now: datetime
) -> tuple[PatientHistory | None, PatientContact | None]:
    with read_session(url) as db:
        found = load_patient_histories(
            db=db, as_of=_now, history_days=history_days, site_id=site_id, patient_id=patient_id
        )
        return (found[0] if found else None), patient_contact(db=db, patient_id=patient_id)


@st.cache_data(ttl=WORKLIST_TTL_SECONDS, show_spinner=False)
def cached_contacts(url: str, site_id: int, patient_ids: tuple[int, ...]) -> dict:
    with read_session(url) as db:
        return patient_contacts(db=db, patient_ids=patient_ids)


@st.cache_data(ttl=WORKLIST_TTL_SECONDS, show_spinner=False)
def cached_first_free_start(
    url: str, site_id: int, day_start: datetime, patient_id: int
) -> datetime | None:
    # Only a suggestion: the booking itself checks the chair again in its transaction.
    return first_free_start(url=url, site_id=site_id, day_start=day_start, patient_id=patient_id)


def _next_half_hour(moment: datetime) -> datetime:
    """``moment`` rounded up to the half hour: the earliest time offered today, and a cache key
    that holds for half an hour."""
    floor = moment.replace(minute=moment.minute // 30 * 30, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=30)


@st.cache_data(ttl=WORKLIST_TTL_SECONDS, max_entries=256, show_spinner=False)
def cached_chart_spec(
    url: str,
    site_id: int,
    patient_id: int,
    day: date,
    _plan: BoosterPlan,
    _history: PatientHistory,
    _boosters: SiteBoosters,
) -> dict:
    # Building and validating an Altair chart takes a few hundred ms; the spec of one
    # patient's timeline holds as long as their plan (same key, cleared by a booking).
    return relief_chart(plan=_plan, history=_history, boosters=_boosters).to_dict()


def after_booking() -> None:
    """A booking changes this site's worklist and the Today board of its day; nothing else."""
    cached_first_free_start.clear()
    cached_chart_spec.clear()
    cached_site_boosters.clear()
    cached_history.clear()
    cached_board.clear()


def site_worklist(*, url: str, site: SiteChoice, now: datetime) -> SiteBoosters:
    return cached_site_boosters(url, site.id, local_day(now, site.time_zone), now)


@st.cache_resource(max_entries=64, show_spinner="Storing this morning's flags…")
def cached_morning_flags(url: str, site_id: int, day: date, _now: datetime) -> MorningFlags:
    # Once a process a day: the first page open of the day writes the morning (idempotent,
    # so another process or the command line having written it first is fine).
    return todays_flags(url=url, site_id=site_id, now=_now)


def morning_flags(*, url: str, site: SiteChoice, now: datetime) -> MorningFlags | None:
    """This morning's stored flags at the site, stored now by the day's first look."""
    try:
        return cached_morning_flags(url, site.id, local_day(now, site.time_zone), now)
    except (DatabaseBusy, DatabaseUnavailable):
        st.caption("This morning's flags could not be stored just now; the list is worked out.")
        return None


# --- the worklist ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorklistChoice:
    flags: tuple[BoosterFlag, ...]


def flag_filter() -> WorklistChoice:
    """Which flags to list: those needing a call (and booked) unless the user widens it."""
    chosen = st.multiselect(
        "Show",
        options=list(BoosterFlag),
        default=list(WORKLIST_FLAGS),
        format_func=lambda flag: flag.label,
        key="kd_boosters_flags",
        help="Those to call, and booked ones, unless you add more (no longer in care: on request).",
    )
    return WorklistChoice(flags=tuple(f for f in BoosterFlag if f in (chosen or [])))


def summary(site: SiteBoosters) -> None:
    counts = {flag: 0 for flag in BoosterFlag}
    for plan in site.plans:
        counts[plan.flag] += 1
    shown = (*ACTION_FLAGS, BoosterFlag.BOOKED)
    columns = st.columns(len(shown) + 1)
    for column, flag in zip(columns, shown, strict=False):
        column.metric(flag.label, counts[flag])
    median = site.clinic.curve.median()
    columns[-1].metric(
        "Clinic median relief",
        f"{median:.0f} days" if median else "not enough yet",
        help=f"Kaplan–Meier over {site.clinic.curve.episodes} relief episodes "
        f"({site.clinic.curve.relapses} ended in a relapse signal). " + model_summary(site.clinic),
    )


def worklist_table(
    *, url: str, site: SiteBoosters, choice: WorklistChoice, morning: MorningFlags | None = None
) -> pd.DataFrame:
    """The worklist as a table, most urgent first, with its CSV download; returns the frame.

    With ``morning``, the patients on this morning's stored list show its flag and dates
    (a booking or relapse since shows as it is now).
    """
    frame = worklist_frame(plans=site.plans, flags=choice.flags, time_zone=site.time_zone)
    if morning is not None:
        frame = with_morning_flags(frame=frame, morning=morning.rows)
        local = morning.written_at.astimezone(ZoneInfo(site.time_zone))
        st.caption(
            f"This morning's list, stored at {local:%H:%M}: {len(morning.rows)} on it. "
            "A booking or a relapse reported since shows as it is now."
        )
    if frame.empty:
        st.info("Nobody to call with these flags.", icon=":material/check_circle:")
        return frame
    contacts = cached_contacts(url, site.site_id, tuple(int(p) for p in frame["patient_id"]))
    # The caller's list shows every listed patient's name and phone: logged once a look.
    note_opened(
        action=AccessAction.PATIENT_VIEW,
        where="boosters call list",
        detail=f"call list, names and phones: {len(frame)} listed",
    )
    shown = caller_frame(frame=frame, contacts=contacts)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=min(600, 38 + 35 * len(shown)),
        column_config={
            name: st.column_config.Column(label, help=help, width=width)
            for name, (label, help, width) in CALLER_COLUMN_LOOKS.items()
        },
    )
    export_button(
        "Download CSV",
        table=frame,
        file_name="boosters-worklist.csv",
        icon=":material/download:",
    )
    return frame


# The caller's columns, in order; the rest of the factors are in the patient's view below
# and in the CSV. Ten columns fit 1920 pixels without scrolling sideways.
CALLER_COLUMNS = (
    "Patient",
    "Name",
    "Phone",
    "Flag",
    "Booster planned / now",
    "PHQ-9 item 9",
    "Last PHQ-9 (change)",
    "Past relief (days)",
    "Booked for",
    "Care flags",
)

# Each caller column's header, its meaning and its width in px: all ten fit a 1366-px
# laptop beside the menu without scrolling sideways (issue 21); the CSV has the words.
CALLER_COLUMN_LOOKS = {
    "Patient": ("Patient", None, 85),
    "Name": ("Name", None, 110),
    "Phone": ("Phone", None, 95),
    "Flag": ("Flag", None, 120),
    "Booster planned / now": (
        "Planned / now",
        "Planned: the date worked out at the last infusion. Now: worked out this morning "
        "from how long relief has lasted so far.",
        105,
    ),
    "PHQ-9 item 9": ("Item 9", "PHQ-9 item 9 (self-harm thoughts), last answer; ⚠ flagged.", 75),
    "Last PHQ-9 (change)": ("PHQ-9", "Last PHQ-9 total (change since the infusion).", 65),
    "Past relief (days)": ("Past relief", "Past relief in days, oldest first (+: at least).", 90),
    "Booked for": ("Booked", None, 80),
    "Care flags": ("Care flags", None, 75),
}


def _day_text(day: object) -> str:
    return "" if day is None or pd.isna(day) else pd.Timestamp(day).strftime("%d %b")


def caller_frame(*, frame: pd.DataFrame, contacts: dict[int, PatientContact]) -> pd.DataFrame:
    """The worklist as the nurse calls from it: ``CALLER_COLUMNS``, one row a patient."""

    def phq(total: object, change: object) -> str:
        if total is None or pd.isna(total):
            return ""
        return f"{total}" + ("" if change is None or pd.isna(change) else f" ({change:+d})")

    return pd.DataFrame(
        {
            "Patient": frame["patient_ref"],
            "Name": [contacts[p].name if p in contacts else "" for p in frame["patient_id"]],
            "Phone": [
                (contacts[p].phone or "") if p in contacts else "" for p in frame["patient_id"]
            ],
            "Flag": [BoosterFlag(f).label for f in frame["flag"]],
            "Booster planned / now": [
                f"{_day_text(planned)} / {_day_text(now)}"
                for planned, now in zip(frame["planned_due"], frame["booster_due"], strict=True)
            ],
            "PHQ-9 item 9": [
                _item9_text(n, flagged, earlier)
                for n, flagged, earlier in zip(
                    frame["last_item9"],
                    frame["item9_flagged"],
                    frame["item9_not_in_latest"],
                    strict=True,
                )
            ],
            "Last PHQ-9 (change)": [
                phq(t, c) for t, c in zip(frame["last_phq9"], frame["phq9_trend"], strict=True)
            ],
            "Past relief (days)": frame["episodes"],
            "Booked for": frame["booked_for"].fillna(""),
            "Care flags": [_care_flags_text(f) for f in frame["care_flags"]],
        },
        columns=list(CALLER_COLUMNS),
    )


def _item9_text(answer: object, flagged: bool, not_in_latest: bool = False) -> str:
    """Item 9 as the worklist shows it: the answer, and the flag when at the threshold;
    when the latest PHQ-9 left item 9 empty, that the answer is from an earlier one."""
    if answer is None or pd.isna(answer):
        return ""
    text = f"⚠ {answer}: self-harm thoughts" if flagged else str(answer)
    return text + (f" ({ITEM9_EARLIER})" if not_in_latest else "")


ITEM9_EARLIER = "earlier PHQ-9: the latest did not record item 9"
ITEM9_WARNING = (
    "{which} item 9 answered {answer} (self-harm thoughts): do the C-SSRS screen on "
    "the call and tell the physician; at the booster's check-in it must be done again "
    "before the dose."
)


def _item9_warning(plan: BoosterPlan) -> str:
    """The item 9 warning, saying so when the answer is from before the latest PHQ-9."""
    which = (
        "An earlier PHQ-9 (the latest did not record item 9):"
        if plan.item9_not_in_latest
        else "Latest PHQ-9"
    )
    return ITEM9_WARNING.format(which=which, answer=plan.last_item9)


def _care_flags_text(flags: str) -> str:
    labels = []
    for flag in (flags or "").split(";"):
        try:
            labels.append(CareFlag(flag).label)
        except ValueError:
            if flag:
                labels.append(flag)
    return ", ".join(labels)


def choose_patient(*, frame: pd.DataFrame) -> int | None:
    """The patient to look at and book: one of the listed rows (the most urgent first)."""
    if frame.empty:
        return None
    refs = dict(zip(frame["patient_id"], frame["patient_ref"], strict=True))
    flags = dict(zip(frame["patient_id"], frame["flag"], strict=True))
    item9 = dict(zip(frame["patient_id"], frame["item9_flagged"], strict=True))
    options = list(refs)
    remembered = st.session_state.get(_PATIENT_KEY)
    chosen = st.selectbox(
        "Patient",
        options=options,
        index=options.index(remembered) if remembered in refs else 0,
        format_func=lambda pid: (
            f"{refs[pid]} — {BoosterFlag(flags[pid]).label}"
            + (" — ⚠ PHQ-9 item 9" if item9[pid] else "")
        ),
    )
    st.session_state[_PATIENT_KEY] = chosen
    return chosen


# --- one patient ----------------------------------------------------------------------------


def patient_view(
    *, url: str, site: SiteChoice, boosters: SiteBoosters, patient_id: int, now: datetime
) -> BoosterPlan | None:
    """The patient's relief timeline and the factors beside the decision."""
    plan = next((p for p in boosters.plans if p.patient_id == patient_id), None)
    if plan is None:
        return None
    note_opened(action=AccessAction.PATIENT_VIEW, where="boosters", patient_id=patient_id)
    history, contact = cached_history(
        url,
        site.id,
        patient_id,
        boosters.settings.booster_history_days,
        local_day(now, site.time_zone),
        now,
    )
    if history is None:
        return plan
    who = literal(contact.name) if contact else ""
    phone = f" · {literal(contact.phone)}" if contact and contact.phone else ""
    st.markdown(f"**{literal(plan.patient_ref)}** · {who}{phone} · **{plan.flag.label}**")
    if plan.item9_flagged:
        st.error(_item9_warning(plan), icon=":material/emergency:")
    factors(plan, time_zone=site.time_zone)
    spec = cached_chart_spec(
        url, site.id, patient_id, local_day(now, site.time_zone), plan, history, boosters
    )
    st.vega_lite_chart(spec=spec, width="stretch")
    st.caption(
        "Shaded: relief episodes (solid edge: ended by a relapse signal; dashed: still "
        "going or ended by a planned booster, so relief lasted at least that long). "
        "Orange band: the middle 80% of the expected relief after the last infusion; "
        "red line: booster due (call by)."
    )
    return plan


def factors(plan: BoosterPlan, *, time_zone: str) -> None:
    """What shapes booster frequency, shown beside the date rather than hidden in it."""
    estimate = plan.estimate
    columns = st.columns(5)
    columns[0].metric("Baseline PHQ-9", _or_dash(plan.baseline_phq9))
    columns[1].metric(
        "Series response",
        f"{plan.series_response_percent}%" if plan.series_response_percent is not None else "–",
        help="Fall in PHQ-9 from baseline to the best score in the series (50% is a response).",
    )
    columns[2].metric(
        "Last PHQ-9", _or_dash(plan.last_phq9), delta=plan.phq9_trend, delta_color="inverse"
    )
    columns[3].metric(
        "Expected relief",
        f"{estimate.expected_days:.0f} days" if estimate else "–",
        help=(
            f"Middle 80%: {estimate.low_days:.0f}–{estimate.high_days:.0f} days. "
            f"{estimate.own_share:.0%} from the patient's own episodes, the rest from "
            "the clinic's curve."
            if estimate
            else None
        ),
    )
    due = plan.booster_due
    planned = plan.planned_due
    columns[4].metric(
        "Booster due now",
        due.strftime("%a %d %b") if due else "–",
        help=(
            f"Planned {planned:%a %d %b} at the last infusion; worked out again each morning "
            "from how long relief has lasted so far."
            if planned
            else None
        ),
    )
    notes = []
    if plan.care_flags:
        notes.append("Care flags: " + literal(_care_flags_text(";".join(plan.care_flags))))
    if estimate and estimate.shortening:
        notes.append(":orange[**Relief is getting shorter with each episode.**]")
    if plan.booked_for:
        local = plan.booked_for.astimezone(ZoneInfo(time_zone))
        notes.append(f"Booked for {local:%a %d %b %H:%M}")
    if notes:
        st.markdown(" · ".join(notes))


def _or_dash(value: object) -> str:
    return "–" if value is None else str(value)


def relief_chart(
    *, plan: BoosterPlan, history: PatientHistory, boosters: SiteBoosters
) -> alt.LayerChart:
    """Infusions, PHQ-9 with its response and relapse lines, episodes, and the forecast."""
    zone = history.time_zone
    settings = boosters.settings
    scores = pd.DataFrame(
        {
            "day": [pd.Timestamp(local_day(s.taken_at, zone)) for s in history.scores],
            "PHQ-9": [s.total for s in history.scores],
        }
    )
    infusions = pd.DataFrame(
        {
            "day": [pd.Timestamp(local_day(i.at, zone)) for i in history.infusions],
            "kind": [i.kind for i in history.infusions],
        }
    )
    episodes = pd.DataFrame(
        {
            "start": [pd.Timestamp(e.start) for e in plan.episodes],
            "end": [pd.Timestamp(e.end) for e in plan.episodes],
            "days": [f"{e.days}{'' if e.relapsed else '+'} days" for e in plan.episodes],
            "ended by": [e.ended_by for e in plan.episodes],
            "relapsed": [e.relapsed for e in plan.episodes],
        }
    )
    y = alt.Y("PHQ-9:Q", scale=alt.Scale(domain=[0, 27]), title="PHQ-9")
    layers: list[alt.Chart] = []
    if not episodes.empty:
        base = alt.Chart(episodes).encode(
            x=alt.X("start:T", title=None),
            x2="end:T",
            tooltip=["start:T", "end:T", "days:N", "ended by:N"],
        )
        # A layer only when it has episodes: Vega gives an empty layer an unnamed
        # graphics-symbol, which a screen reader announces as nothing (axe svg-img-alt).
        if episodes["relapsed"].any():
            layers.append(
                base.transform_filter("datum.relapsed")
                .mark_rect(opacity=0.18, color="#16a34a", stroke="#15803d", strokeWidth=1)
                .encode(y=alt.datum(0), y2=alt.datum(27))
            )
        if not episodes["relapsed"].all():
            layers.append(
                base.transform_filter("!datum.relapsed")
                .mark_rect(
                    opacity=0.10,
                    color="#16a34a",
                    stroke="#15803d",
                    strokeWidth=1.5,
                    strokeDash=[4, 3],
                )
                .encode(y=alt.datum(0), y2=alt.datum(27))
            )
    forecast = _forecast_frame(plan)
    if forecast is not None:
        band = alt.Chart(forecast).encode(x="low:T", x2="high:T")
        layers.append(
            band.mark_rect(opacity=0.18, color="#f97316").encode(
                y=alt.datum(0),
                y2=alt.datum(27),
                tooltip=[
                    alt.Tooltip("low:T", title="relief ends, early"),
                    alt.Tooltip("expected:T", title="expected"),
                    alt.Tooltip("high:T", title="relief ends, late"),
                ],
            )
        )
        layers.append(
            alt.Chart(forecast)
            .mark_rule(color="#f97316", strokeWidth=2)
            .encode(x="expected:T", tooltip=[alt.Tooltip("expected:T", title="expected end")])
        )
        layers.append(
            alt.Chart(forecast)
            .mark_rule(color="#dc2626", strokeWidth=2, strokeDash=[6, 4])
            .encode(x="due:T", tooltip=[alt.Tooltip("due:T", title="booster due (call by)")])
        )
    baseline = pre_treatment_baseline(history)
    lines = pd.DataFrame(
        [
            {
                "line": f"relapse line ({_relapse_line(baseline, settings):g})",
                "PHQ-9": _relapse_line(baseline, settings),
            },
            *(
                [{"line": f"response ({baseline / 2:g})", "PHQ-9": baseline / 2}]
                if baseline
                else []
            ),
        ]
    )
    layers.append(
        alt.Chart(lines)
        .mark_rule(strokeDash=[2, 2])
        .encode(
            y=y,
            color=alt.Color(
                "line:N",
                scale=alt.Scale(range=["#dc2626", "#2563eb"]),
                legend=alt.Legend(title=None, orient="top"),
            ),
        )
    )
    if not scores.empty:
        layers.append(
            alt.Chart(scores)
            .mark_line(point=True, color="#334155")
            .encode(x=alt.X("day:T", title=None), y=y, tooltip=["day:T", "PHQ-9:Q"])
        )
    if not infusions.empty:
        layers.append(
            alt.Chart(infusions)
            .mark_tick(thickness=3, size=18)
            .encode(
                x="day:T",
                y=alt.datum(1),
                color=alt.Color(
                    "kind:N",
                    scale=alt.Scale(domain=["series", "booster"], range=["#7c3aed", "#0891b2"]),
                    legend=alt.Legend(title="infusion", orient="top"),
                ),
                tooltip=["day:T", "kind:N"],
            )
        )
    # Read out by screen readers (the SVG's label): what the picture says, in words.
    told = [f"{len(scores)} PHQ-9 scores"]
    if not scores.empty:
        told.append(f"the last {scores['PHQ-9'].iloc[-1]}")
    told.append(f"relapse line {_relapse_line(baseline, settings):g}")
    told.append(f"{len(infusions)} infusions")
    if plan.booster_due is not None:
        told.append(f"booster due {plan.booster_due:%a %d %b}")
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent")
        .properties(
            height=320,
            title="PHQ-9, infusions and expected relief",
            description="PHQ-9 over time with infusions, relief episodes and the forecast: "
            + ", ".join(told)
            + ".",
        )
    )


def _relapse_line(baseline: int | None, settings) -> float:
    line = float(settings.relapse_phq9_at)
    if baseline:
        line = max(line, baseline * (1 - settings.relapse_drop_percent / 100))
    return round(line, 1)


def _forecast_frame(plan: BoosterPlan) -> pd.DataFrame | None:
    if plan.estimate is None or plan.last_infusion is None or plan.booster_due is None:
        return None
    last = pd.Timestamp(plan.last_infusion)
    estimate = plan.estimate
    return pd.DataFrame(
        [
            {
                "low": last + pd.Timedelta(days=estimate.low_days),
                "expected": last + pd.Timedelta(days=estimate.expected_days),
                "high": last + pd.Timedelta(days=estimate.high_days),
                "due": pd.Timestamp(plan.booster_due),
            }
        ]
    )


# --- booking --------------------------------------------------------------------------------


def booking_form(
    *, url: str, site: SiteChoice, plan: BoosterPlan, staff: StaffMember, now: datetime
) -> None:
    """Book the patient's booster: a day, a time with a chair free, who books it."""
    flash = st.session_state.pop(_FLASH_KEY, None)
    if flash:
        st.toast(flash, icon=":material/event_available:")
        st.success(flash, icon=":material/event_available:")
    if plan.item9_flagged:
        st.error(_item9_warning(plan), icon=":material/emergency:")
    if plan.booked_for is not None:
        local = plan.booked_for.astimezone(ZoneInfo(site.time_zone))
        st.info(f"Booked for {local:%a %d %b at %H:%M}.", icon=":material/event_available:")
        return
    if plan.flag in (BoosterFlag.IN_SERIES, BoosterFlag.OUT_OF_CARE):
        st.caption(f"{plan.flag.label}: no booster to book from here.")
        return
    today = local_day(now, site.time_zone)
    zone = ZoneInfo(site.time_zone)
    # Overdue or relapsed: today if a chair is still free today, else the next day.
    suggested_day = max(today, plan.booster_due or today)
    from_now = _next_half_hour(now)
    if suggested_day == today and (
        cached_first_free_start(url, site.id, from_now, plan.patient_id) is None
    ):
        suggested_day = today + timedelta(days=1)
    day = st.date_input(
        "Day",
        value=suggested_day,
        min_value=today,
        key=f"kd_booster_day_{plan.patient_id}",
    )
    day_start = datetime.combine(day, time(0, 0), tzinfo=zone)
    if day == today:
        day_start = max(day_start, from_now)
    first = cached_first_free_start(url, site.id, day_start, plan.patient_id)
    if first is None:
        st.warning("No chair is free for a whole visit that day: choose another day.")
        return
    start_time = st.time_input(
        "Time",
        value=first.astimezone(zone).time(),
        step=timedelta(minutes=30),
        key=f"kd_booster_time_{plan.patient_id}_{day}",
        help=f"First time with a chair free: {first.astimezone(zone):%H:%M}.",
    )
    start = datetime.combine(day, start_time, tzinfo=zone)
    # The plan copied is the last one before the time chosen, as the booking takes it;
    # the rule in the words the booking refuses with (gates.plan_problems).
    problems = booster_plan_problems(url=url, patient_id=plan.patient_id, start=start)
    plan_reason = None
    if problems:
        st.warning(literal(as_sentences(problems)), icon=":material/warning:")
        plan_reason = st.text_input(
            "Lead's reason for this dose plan", key=f"kd_booster_plan_reason_{plan.patient_id}"
        )
    save = saves.drawn(f"kd_book_{plan.patient_id}", what="booster booking")
    if st.button(
        "Book booster",
        type="primary",
        key=f"kd_book_{plan.patient_id}",
    ):
        try:
            with submission(key=save.key, what=save.what, staff_id=staff.id):
                booked = book_booster(
                    url=url,
                    patient_id=plan.patient_id,
                    site_id=site.id,
                    start=start,
                    staff_id=staff.id,
                    now=now,
                    plan_reason=plan_reason or None,
                )
        except AlreadySaved as already:
            after_booking()
            saves.confirmed(save)
            st.session_state[_FLASH_KEY] = str(already)
            st.rerun()
        except BookingRefused as refused:
            # A refusal may name the site (closed then) or a chair: shown as text.
            st.error(f"{saves.NOT_SAVED} {literal(refused)}", icon=":material/block:")
        except DatabaseUnavailable as down:
            st.error(saves.not_saved(down), icon=":material/cloud_off:")
        else:
            after_booking()
            saves.confirmed(save)
            st.session_state[_FLASH_KEY] = (
                f"Booster booked for {literal(plan.patient_ref)}: "
                f"{booked.scheduled_start.astimezone(zone):%a %d %b %H:%M}, "
                f"{literal(booked.chair_name)}, by {literal(booked.booked_by_name)}. "
                "It is on Today for that day."
            )
            st.rerun()


__all__ = [
    "booking_form",
    "choose_patient",
    "flag_filter",
    "patient_view",
    "site_worklist",
    "summary",
    "worklist_table",
]
