"""The throughput page's widgets and charts, and the reads they cache.

The leads' figures are cached reads of the period scope (``ketadash.ui.live``,
``Scope.PERIOD``): a nurse's save clears only its own site's day, never a year of
aggregates that took seconds to compute; they expire after ``LEADS_TTL_SECONDS``.
They are ``shared``: every session gets the one cached report, which nobody changes.
The booster follow-up is a read of its own, drawn last, so the rest of the page
shows while it is worked out the first time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

import altair as alt
import pandas as pd
import streamlit as st
from streamlit import dataframe_util

from ketadash.booster_follow_up import (
    BEFORE_THE_LIST,
    BOOKED_WITHIN_DAYS,
    FROM_THE_LIST,
    IN_THE_WEEK,
    NOT_BOOKED,
    NOT_RECORDED,
    OUTCOMES,
    STILL_OPEN,
    BoosterFollowUp,
    booster_follow_up,
)
from ketadash.clinic import SiteChoice
from ketadash.clock import local_today, to_local
from ketadash.throughput import (
    BOOKING_ALLOWANCE_MINUTES,
    HISTOGRAM_BIN_MINUTES,
    HISTOGRAM_LAST_MINUTES,
    LATE_CANCEL_HOURS,
    LEAD_TIME_LABELS,
    LEAD_TIME_NOT_RECORDED,
    ON_TIME_START_MINUTES,
    PHASE_NAMES,
    WEEKDAYS,
    Headline,
    Period,
    ThroughputReport,
    last_weeks,
    throughput_report,
    visits_table,
)
from ketadash.ui.auth import export_button
from ketadash.ui.live import Scope, cached_read
from ketadash.ui.shell import cached_sites

# Leads look at closed days; ten minutes old is fresh enough, and a page left open
# does not recompute a year of visits on every rerun.
LEADS_TTL_SECONDS = 600
# Periods and sites a server keeps figures for at once (a year of a large clinic is some
# tens of MB: the visits behind the CSV download).
LEADS_ENTRIES = 24
ALL_SITES = 0
PERIODS = {
    "Last 4 weeks": 4,
    "Last 13 weeks": 13,
    "Last 52 weeks": 52,
    "Choose dates": None,
}
WEEKLY_AFTER_DAYS = 62
# Series in greens, boosters in blues; the main route darkest.
KIND_AND_ROUTE_COLOURS = {
    "Series · IV infusion": "#1b7837",
    "Series · Esketamine nasal": "#5aae61",
    "Series · Lozenge": "#a6dba0",
    "Booster · IV infusion": "#2166ac",
    "Booster · Esketamine nasal": "#4393c3",
    "Booster · Lozenge": "#92c5de",
}
PART_COLOURS = {
    "Waiting": "#9e9e9e",
    "Dose": "#1f77b4",
    "Recovery": "#2ca02c",
    "Ride wait": "#ff7f0e",
}


def _leads_read(*, spinner: str):
    """A lead's figures for a period: shared, kept ``LEADS_TTL_SECONDS``, never cleared
    by a write, at most ``LEADS_ENTRIES`` periods and sites at once."""
    return cached_read(
        scope=Scope.PERIOD,
        ttl_seconds=LEADS_TTL_SECONDS,
        shared=True,
        max_entries=LEADS_ENTRIES,
        spinner=spinner,
    )


@_leads_read(spinner="Working out the figures…")
def cached_report(
    url: str, first_day: date, last_day: date, site_ids: tuple[int, ...] | None
) -> tuple[ThroughputReport, dict[str, dict]]:
    """The report for a period and sites and its charts, computed at most once per TTL.

    The charts are kept as Vega-Lite specs: Altair validates a chart against the schema
    each time it is drawn, which costs more than the rest of the page.
    """
    period = Period(first_day=first_day, last_day=last_day)
    report = throughput_report(url=url, period=period, site_ids=site_ids)
    return report, chart_specs(report=report)


@_leads_read(spinner="Going back over the booster flags…")
def cached_booster_follow_up(
    url: str, first_day: date, last_day: date, site_ids: tuple[int, ...] | None
) -> tuple[BoosterFollowUp, dict]:
    """Boosters that fell due in the period and what became of them, with their chart."""
    period = Period(first_day=first_day, last_day=last_day)
    follow_up = booster_follow_up(url=url, period=period, site_ids=site_ids)
    return follow_up, arrow_spec(booster_follow_up_chart(follow_up=follow_up))


# --- choosing what to look at -------------------------------------------------------------


def choose_period_and_sites(
    *, url: str, now: datetime
) -> tuple[Period, tuple[int, ...] | None, str]:
    """The period (default the last 4 weeks) and the sites (default all) the lead chose,
    and the time zone the page speaks in (the site's, or the first site's for all)."""
    sites = cached_sites(url)
    if not sites:
        st.warning("This clinic has no sites yet, so there is nothing to review.")
        st.stop()
    by_id: dict[int, SiteChoice] = {site.id: site for site in sites}
    site_column, period_column, dates_column = st.columns([2, 2, 3])
    chosen = site_column.selectbox(
        "Site",
        options=[ALL_SITES, *by_id],
        format_func=lambda site_id: "All sites" if site_id == ALL_SITES else by_id[site_id].name,
        key="throughput_site",
    )
    zone = by_id[chosen].time_zone if chosen != ALL_SITES else sites[0].time_zone
    today = local_today(zone, now=now)
    kind = period_column.selectbox("Period", options=list(PERIODS), key="throughput_period")
    weeks = PERIODS[kind]
    if weeks is not None:
        period = last_weeks(today=today, weeks=weeks)
        dates_column.markdown(f"**{period}**  \n:small[{period.days} days up to today]")
    else:
        default = last_weeks(today=today)
        picked = dates_column.date_input(
            "From – to",
            value=(default.first_day, default.last_day),
            max_value=today,
            key="throughput_dates",
        )
        if not isinstance(picked, Sequence) or len(picked) != 2:
            st.info("Choose the last day of the period too.", icon=":material/date_range:")
            st.stop()
        period = Period(first_day=picked[0], last_day=picked[1])
    return period, (None if chosen == ALL_SITES else (chosen,)), zone


# --- headline figures ---------------------------------------------------------------------


def _value_text(value: float | None, *, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "minutes":
        return f"{value:.0f} min"
    return f"{value:,.0f}"


def _change_text(headline: Headline) -> str | None:
    change = headline.change
    if change is None:
        return None
    if headline.unit == "share":
        return f"{change * 100:+.1f} pts"
    if headline.unit == "minutes":
        return f"{change:+.0f} min"
    return f"{change:+,.0f}"


def headline_figures(*, report: ThroughputReport, worked_out: str) -> None:
    """The headline figures, each with its change against the period before, and when
    they were worked out (``worked_out``, a clock time)."""
    colours: dict[str, Literal["normal", "inverse", "off"]] = {
        "up": "normal",
        "down": "inverse",
        "none": "off",
    }
    days = report.period.days
    length = f"{days // 7} weeks" if days % 7 == 0 else f"{days} days"
    against = f"vs the {length} before"
    rows = (report.headlines[:5], report.headlines[5:])
    for row in rows:
        for column, headline in zip(st.columns(5), row, strict=False):
            column.metric(
                headline.name,
                _value_text(headline.value, unit=headline.unit),
                delta=_change_text(headline),
                delta_color=colours[headline.good],
                delta_description=against,
                help=f"{headline.help} The change is against {report.previous_period}.",
                border=True,
            )
    note = f"Worked out at {worked_out}, and again after {LEADS_TTL_SECONDS // 60} minutes."
    if report.steps_taken_back:
        note += (
            f" {report.steps_taken_back} step(s) were taken back in this period; the figures "
            "use the times that stood."
        )
    st.caption(note)


# --- tables that download -----------------------------------------------------------------


def table_with_download(*, frame: pd.DataFrame, name: str, key: str, **options) -> None:
    """A table with a button that downloads it as CSV (built only when clicked)."""
    st.dataframe(frame, hide_index=True, **options)
    export_button(
        f"Download {name} (CSV)",
        table=frame,
        file_name=f"{key}.csv",
        icon=":material/download:",
        key=f"download_{key}",
    )


def _minutes(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = out[column].astype("float64").round(0)
    return out


# --- charts -------------------------------------------------------------------------------


def completed_per_day_chart(*, report: ThroughputReport) -> alt.Chart:
    """Stacked bars per day; per week (starting Monday) for periods over two months."""
    data = report.completed_by_day
    by_week = report.period.days > WEEKLY_AFTER_DAYS
    if by_week:
        week = data["day"] - pd.to_timedelta(data["day"].dt.day_of_week, unit="D")
        data = (
            data.assign(day=week)
            .groupby(["day", "kind", "route", "kind_and_route"], as_index=False)["infusions"]
            .sum()
        )
    every = "week" if by_week else "day"
    order = [name for name in KIND_AND_ROUTE_COLOURS if name in set(data["kind_and_route"])]
    # Each bar spans its day or its week (a bar of a week drawn one day wide looks like a day).
    span = pd.Timedelta(days=7 if by_week else 1) - pd.Timedelta(hours=3)
    data = data.assign(
        order=[order.index(n) for n in data["kind_and_route"]], until=data["day"] + span
    )
    return (
        alt.Chart(data, title=f"Completed infusions per {every}, by kind and route")
        .mark_bar()
        .encode(
            x=alt.X(
                "day:T",
                title="Week starting" if by_week else None,
                axis=alt.Axis(format="%d %b"),
            ),
            x2="until:T",
            y=alt.Y("sum(infusions):Q", title="Infusions completed"),
            color=alt.Color(
                "kind_and_route:N",
                title=None,
                sort=order,
                scale=alt.Scale(
                    domain=list(KIND_AND_ROUTE_COLOURS),
                    range=list(KIND_AND_ROUTE_COLOURS.values()),
                ),
                legend=alt.Legend(orient="bottom"),
            ),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip(
                    "day:T", title="Week starting" if by_week else "Day", format="%a %d %b %Y"
                ),
                alt.Tooltip("kind_and_route:N", title="Kind and route"),
                alt.Tooltip("infusions:Q", title="Infusions"),
            ],
        )
        .properties(height=320)
    )


def occupancy_heatmap(*, report: ThroughputReport) -> alt.Chart:
    data = report.occupancy.assign(hour_label=lambda f: [f"{h:02d}:00" for h in f["hour"]])
    base = alt.Chart(data, title="Share of chairs in use, by weekday and hour").encode(
        x=alt.X("hour_label:O", title="Hour (site's local time)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("weekday:O", title=None, sort=list(WEEKDAYS)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "share:Q",
            title="Chairs in use",
            scale=alt.Scale(domain=[0, 1], scheme="blues"),
            legend=alt.Legend(format=".0%"),
        ),
        tooltip=[
            alt.Tooltip("weekday:O", title="Day"),
            alt.Tooltip("hour_label:O", title="Hour"),
            alt.Tooltip("share:Q", title="Chairs in use", format=".0%"),
        ],
    )
    labels = base.mark_text(fontSize=11).encode(
        text=alt.Text("share:Q", format=".0%"),
        color=alt.condition(alt.datum.share > 0.6, alt.value("white"), alt.value("#333")),
    )
    return (cells + labels).properties(height=alt.Step(40))


def parts_by_week_chart(*, report: ThroughputReport) -> alt.Chart:
    data = report.phases_by_week.assign(
        order=lambda f: [PHASE_NAMES.index(p) for p in f["part"]],
        week_label=lambda f: pd.to_datetime(f["week"]).dt.strftime("%d %b %y"),
    )
    weeks = list(dict.fromkeys(data.sort_values("week")["week_label"]))
    return (
        alt.Chart(data, title="Median minutes in each part of the visit, by week")
        .mark_bar()
        .encode(
            x=alt.X("week_label:O", title="Week starting", sort=weeks),
            y=alt.Y("median:Q", title="Minutes (median)", stack="zero"),
            color=_part_colour(),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("week_label:O", title="Week starting"),
                alt.Tooltip("part:N", title="Part"),
                alt.Tooltip("median:Q", title="Median minutes", format=".0f"),
            ],
        )
        .properties(height=300)
    )


def _part_colour() -> alt.Color:
    return alt.Color(
        "part:N",
        title=None,
        sort=list(PHASE_NAMES),
        scale=alt.Scale(domain=list(PART_COLOURS), range=list(PART_COLOURS.values())),
        legend=alt.Legend(orient="bottom"),
    )


def parts_distribution_chart(*, report: ThroughputReport) -> alt.Chart:
    data = report.phase_histogram
    return (
        alt.Chart(
            data,
            title=(
                f"How long visits spent in each part ({HISTOGRAM_BIN_MINUTES}-minute bands; "
                f"the last band is {HISTOGRAM_LAST_MINUTES} min or more)"
            ),
        )
        .transform_calculate(until=f"datum.minutes + {HISTOGRAM_BIN_MINUTES}")
        .mark_bar()
        .encode(
            x=alt.X("minutes:Q", title="Minutes", bin="binned"),
            x2="until:Q",
            y=alt.Y("visits:Q", title="Visits"),
            color=_part_colour(),
            column=alt.Column("part:N", title=None, sort=list(PHASE_NAMES)),
            tooltip=[
                alt.Tooltip("part:N", title="Part"),
                alt.Tooltip("minutes:Q", title="From minute"),
                alt.Tooltip("visits:Q", title="Visits"),
            ],
        )
        .properties(width=260, height=200)
        .resolve_scale(y="independent")
    )


def no_shows_chart(
    *,
    frame: pd.DataFrame,
    by: str,
    title: str,
    order: Sequence[str],
    grey: Sequence[str] = (),
    counts: bool = False,
) -> alt.Chart | alt.LayerChart:
    """Bars of the no-show rate, red; the bars named in ``grey`` (not a band) in grey.

    With ``counts`` each bar says how many of how many ("2 of 7"), so a tall bar of a
    few visits reads as such; for charts of a few bars only.
    """
    colour = (
        alt.condition(
            alt.FieldOneOfPredicate(field=by, oneOf=list(grey)),
            alt.value("#9e9e9e"),
            alt.value("#d62728"),
        )
        if grey
        else alt.value("#d62728")
    )
    # Short labels (weekdays, bands) read best level; many hours are left to Vega.
    axis = alt.Axis(labelAngle=0) if counts else alt.Axis()
    base = alt.Chart(frame, title=title).encode(
        x=alt.X(f"{by}:O", title=None, sort=list(order), axis=axis),
        y=alt.Y("rate:Q", title="No-shows ÷ booked", axis=alt.Axis(format=".0%")),
    )
    bars = base.mark_bar().encode(
        color=colour,
        tooltip=[
            alt.Tooltip(f"{by}:O", title="When"),
            alt.Tooltip("no_shows:Q", title="No-shows"),
            alt.Tooltip("booked:Q", title="Booked"),
            alt.Tooltip("rate:Q", title="Rate", format=".1%"),
        ],
    )
    if not counts:
        return bars.properties(height=260)
    labels = (
        base.transform_calculate(
            of="format(datum.no_shows, ',') + ' of ' + format(datum.booked, ',')"
        )
        .mark_text(dy=-7, fontSize=11, color="#555")
        .encode(text="of:N")
    )
    return (bars + labels).properties(height=260)


def chart_specs(*, report: ThroughputReport) -> dict[str, dict]:
    """Every chart of the page as a Vega-Lite spec with its data, built with Altair."""
    charts = {
        "completed": completed_per_day_chart(report=report),
        "occupancy": occupancy_heatmap(report=report),
        "parts_by_week": parts_by_week_chart(report=report),
        "parts_distribution": parts_distribution_chart(report=report),
        "no_shows_weekday": no_shows_chart(
            frame=report.no_shows_by_weekday,
            by="weekday",
            title="No-shows by weekday",
            order=WEEKDAYS,
            counts=True,
        ),
        "no_shows_hour": no_shows_chart(
            frame=report.no_shows_by_hour,
            by="hour",
            title="No-shows by booked hour",
            order=list(report.no_shows_by_hour["hour"]),
        ),
        "no_shows_lead_time": no_shows_chart(
            frame=report.no_shows_by_lead_time,
            by="lead_time",
            title="No-shows by how far ahead the visit was booked",
            order=LEAD_TIME_LABELS,
            grey=(LEAD_TIME_NOT_RECORDED,),
            counts=True,
        ),
    }
    return {
        name: arrow_spec(chart.properties(description=CHART_DESCRIPTIONS[name]))
        for name, chart in charts.items()
    }


# What each chart shows, for a screen reader (Vega reads it out as the chart's label);
# its figures are in the table next to it.
CHART_DESCRIPTIONS = {
    "completed": "Stacked bars of the infusions completed in each day or week, by kind and "
    "route. The table below the chart has the same figures.",
    "occupancy": "Heat map of the share of chairs in use, by weekday and hour of the day. "
    "The table below the chart has the same figures.",
    "parts_by_week": "Stacked bars of the median minutes in each part of the visit, week by "
    "week. The table below the chart has the same figures.",
    "parts_distribution": "One histogram per part of the visit: how many visits spent how "
    "many minutes in it. The table of the parts of the visit above gives their medians "
    "and quartiles.",
    "no_shows_weekday": "Bars of the no-show rate by weekday. The table below has the counts.",
    "no_shows_hour": "Bars of the no-show rate by booked hour. The table below has the counts.",
    "no_shows_lead_time": "Bars of the no-show rate by how far ahead the visit was booked. "
    "The table below has the counts.",
}


def arrow_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec with its datasets already as Arrow IPC bytes.

    ``st.vega_lite_chart`` turns a spec's datasets into Arrow bytes on every call (a
    third of this page's rerun) unless they are bytes already; converted once here,
    with Streamlit's own function, the cached spec costs nothing to draw again.
    """
    spec = chart.to_dict()
    datasets = spec.get("datasets")
    if datasets:
        spec["datasets"] = {
            name: dataframe_util.convert_anything_to_arrow_bytes(pd.DataFrame(values))
            for name, values in datasets.items()
        }
    return spec


# In time in greens, not booked in red, not yet known in greys (OUTCOMES order).
OUTCOME_COLOURS = {
    BEFORE_THE_LIST: "#1b7837",
    FROM_THE_LIST: "#5aae61",
    IN_THE_WEEK: "#a6dba0",
    NOT_BOOKED: "#d62728",
    STILL_OPEN: "#bdbdbd",
    NOT_RECORDED: "#e0e0e0",
}


def booster_follow_up_chart(*, follow_up: BoosterFollowUp) -> alt.LayerChart:
    """One bar per outcome: how many of the boosters that fell due ended each way."""
    data = follow_up.outcomes.assign(
        share=lambda f: f["boosters"] / max(1, follow_up.fell_due),
        label=lambda f: [
            f"{n:,} ({share:.0%})" if n else ""
            for n, share in zip(f["boosters"], f["share"], strict=True)
        ],
    )
    base = alt.Chart(
        data, title=f"What became of the {follow_up.fell_due:,} boosters that fell due"
    ).encode(
        y=alt.Y("outcome:N", title=None, sort=list(OUTCOMES), axis=alt.Axis(labelLimit=320)),
        x=alt.X("boosters:Q", title="Boosters"),
    )
    bars = base.mark_bar().encode(
        color=alt.Color(
            "outcome:N",
            scale=alt.Scale(domain=list(OUTCOME_COLOURS), range=list(OUTCOME_COLOURS.values())),
            legend=None,
        ),
        tooltip=[
            alt.Tooltip("outcome:N", title="Outcome"),
            alt.Tooltip("boosters:Q", title="Boosters"),
            alt.Tooltip("share:Q", title="Of those due", format=".0%"),
        ],
    )
    labels = base.mark_text(align="left", dx=4, fontSize=11, color="#555").encode(text="label:N")
    return (bars + labels).properties(
        height=alt.Step(28),
        description="Bars of how many of the boosters that fell due ended each way. "
        "The table next to the chart has the same figures.",
    )


def show_chart(
    *, specs: dict[str, dict], name: str, width: Literal["stretch", "content"] = "stretch"
) -> None:
    st.vega_lite_chart(spec=specs[name], width=width)


def figure_table(*, frame: pd.DataFrame, name: str) -> None:
    """The figures of the chart above as a table, folded away: what a screen reader reads."""
    with st.expander(f"Table: {name}", icon=":material/table:"):
        st.dataframe(frame, hide_index=True)


def completed_table(*, report: ThroughputReport) -> pd.DataFrame:
    """Infusions completed per day, one column per kind and route (the chart's bars)."""
    data = report.completed_by_day
    if data.empty:
        return pd.DataFrame({"Day": []})
    table = data.pivot_table(
        index="day", columns="kind_and_route", values="infusions", aggfunc="sum", fill_value=0
    )
    table = table[[n for n in KIND_AND_ROUTE_COLOURS if n in table.columns]]
    table.insert(0, "All", table.sum(axis=1))
    table.index = pd.to_datetime(table.index).strftime("%a %d %b %Y")
    return table.rename_axis(index="Day", columns=None).reset_index()


def occupancy_table(*, report: ThroughputReport) -> pd.DataFrame:
    """Share of chairs in use (%), one row per weekday and one column per hour."""
    data = report.occupancy
    if data.empty:
        return pd.DataFrame({"Weekday": []})
    table = data.assign(
        hour=[f"{h:02d}:00" for h in data["hour"]], share=(data["share"] * 100).round(0)
    ).pivot_table(index="weekday", columns="hour", values="share", aggfunc="first")
    table = table.reindex([d for d in WEEKDAYS if d in table.index])
    return table.rename_axis(index="Weekday", columns=None).reset_index()


def parts_by_week_table(*, report: ThroughputReport) -> pd.DataFrame:
    """Median minutes of each part of the visit, one row per week."""
    data = report.phases_by_week
    table = data.pivot_table(index="week", columns="part", values="median", aggfunc="first")
    table = table[[p for p in PHASE_NAMES if p in table.columns]].round(0)
    table.index = pd.to_datetime(table.index).strftime("%d %b %Y")
    return table.rename_axis(index="Week starting", columns=None).reset_index()


# --- the sections -------------------------------------------------------------------------


def volume_section(*, report: ThroughputReport, specs: dict[str, dict]) -> None:
    st.subheader("Infusions and chairs")
    if report.completed_by_day.empty:
        st.info("No infusion was completed in this period.")
    else:
        show_chart(specs=specs, name="completed")
        figure_table(frame=completed_table(report=report), name="infusions completed")
    show_chart(specs=specs, name="occupancy")
    figure_table(frame=occupancy_table(report=report), name="chairs in use (%)")
    st.caption(
        "Chairs in use: check-in to gone home, as on Today's chair strip, against the "
        "active chairs in the site's opening hours."
    )


def time_section(*, report: ThroughputReport, specs: dict[str, dict]) -> None:
    st.subheader("Where the time goes")
    st.caption(
        "Waiting is check-in to dose start, dose is start to end, recovery is dose end to "
        "ready, ride wait is ready to gone home. A long recovery is a clinical delay; a "
        "long ride wait is a logistics one."
    )
    summary = _minutes(report.phase_summary, ["median", "p25", "p75", "p90"]).rename(
        columns={
            "part": "Part",
            "visits": "Visits timed",
            "median": "Median min",
            "p25": "Quarter under min",
            "p75": "Three quarters under min",
            "p90": "Nine in ten under min",
        }
    )
    table_with_download(frame=summary, name="the parts of the visit", key="visit_parts")
    if not report.phases_by_week.empty:
        show_chart(specs=specs, name="parts_by_week")
        figure_table(frame=parts_by_week_table(report=report), name="median minutes by week")
        show_chart(specs=specs, name="parts_distribution", width="content")


def no_shows_section(*, report: ThroughputReport, specs: dict[str, dict]) -> None:
    st.subheader("No-shows")
    weekday, lead_time, hour = st.columns(3, gap="large")
    with weekday:
        show_chart(specs=specs, name="no_shows_weekday")
        table_with_download(
            frame=_no_show_table(report.no_shows_by_weekday),
            name="no-shows by weekday",
            key="no_shows_weekday",
        )
    with lead_time:
        lead_times = report.no_shows_by_lead_time
        if set(lead_times["lead_time"]) <= {LEAD_TIME_NOT_RECORDED}:
            st.info(
                "No visit in this period has its booking time recorded, so no-shows by "
                "how far ahead it was booked cannot be shown (an import without a "
                "`booked_at` column leaves it empty).",
                icon=":material/event_busy:",
            )
        else:
            show_chart(specs=specs, name="no_shows_lead_time")
        table_with_download(
            frame=_no_show_table(lead_times),
            name="no-shows by lead time",
            key="no_shows_lead_time",
        )
    with hour:
        show_chart(specs=specs, name="no_shows_hour")
        table_with_download(
            frame=_no_show_table(report.no_shows_by_hour),
            name="no-shows by hour",
            key="no_shows_hour",
        )
    st.caption(
        "Lead time: days from the day the visit was booked to the day of the visit, at the "
        "site. Not recorded: the booking time is unknown (imported without it)."
    )


def _no_show_table(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.assign(rate=(frame["rate"] * 100).round(1))
    return out.rename(
        columns={
            "weekday": "Weekday",
            "hour": "Booked hour",
            "lead_time": "Booked ahead",
            "booked": "Booked",
            "no_shows": "No-shows",
            "rate": "No-show rate %",
        }
    )


def outcomes_section(
    *, url: str, report: ThroughputReport, site_ids: tuple[int, ...] | None
) -> None:
    st.subheader("Outcomes")
    outcomes = report.outcomes
    columns = st.columns(4)
    columns[0].metric(
        "Finished an initial series",
        f"{outcomes.finished_series:,}",
        help="Patients whose last infusion of their initial series was in the period.",
        border=True,
    )
    columns[1].metric(
        "Responding",
        _value_text(outcomes.response_share, unit="share"),
        help="PHQ-9 down by half or more from before the first infusion (McInnes 2022).",
        border=True,
    )
    columns[2].metric(
        "In remission",
        _value_text(outcomes.remission_share, unit="share"),
        help="PHQ-9 under 5 at the last infusion of the series (McInnes 2022).",
        border=True,
    )
    period = report.period
    with columns[3]:
        # Worked out last and apart: the rest of the page shows meanwhile.
        follow_up, follow_up_chart = cached_booster_follow_up(
            url, period.first_day, period.last_day, site_ids
        )
        st.metric(
            "Boosters booked in time",
            _value_text(follow_up.in_time_share, unit="share"),
            help=(
                "Of the boosters that fell due in the period (the Boosters screen's due "
                "date, or the day relief ended if that came first), the share whose next "
                f"visit was booked by the due date or within {BOOKED_WITHIN_DAYS} days after."
            ),
            border=True,
        )
    st.caption(
        f"{outcomes.scored} of {outcomes.finished_series} patients who finished a series have a "
        "PHQ-9 from before the first and at the last infusion; the shares are of those."
    )
    booster_flags(
        follow_up=follow_up, spec=follow_up_chart, boosters_booked=outcomes.boosters_booked
    )
    exceptions = outcomes.escort_exceptions.rename(
        columns={"exception": "Escort exception", "discharges": "Discharges"}
    )
    st.markdown(
        f"**Gone home without an arrived escort:** {int(exceptions['Discharges'].sum())} of "
        f"{outcomes.discharges:,} discharges."
    )
    if not exceptions.empty:
        table_with_download(frame=exceptions, name="escort exceptions", key="escort_exceptions")


def booster_flags(*, follow_up: BoosterFollowUp, spec: dict, boosters_booked: int) -> None:
    """Booster flags turned into bookings: the chart, the counts and how they were made."""
    st.markdown("**Booster flags turned into bookings**")
    if not follow_up.fell_due:
        st.info("No booster fell due in this period.", icon=":material/event_available:")
    else:
        chart, table = st.columns([3, 2], gap="large")
        with chart:
            st.vega_lite_chart(spec=spec, width="stretch")
        with table:
            counts = follow_up.outcomes.rename(
                columns={"outcome": "What became of it", "boosters": "Boosters"}
            )
            table_with_download(frame=counts, name="boosters that fell due", key="boosters_due")
    judged = follow_up.judged
    st.caption(
        f"{follow_up.fell_due:,} boosters fell due in the period; {follow_up.booked_in_time:,} "
        f"of the {judged:,} whose outcome is known were booked in time. A booster falls due "
        "on the date the Boosters screen gave on the first morning it listed the patient "
        "after each series end or booster (or the day relief ended, when that came first). "
        "Booked in time: the patient's next visit was booked by then or within "
        f"{BOOKED_WITHIN_DAYS} days after. {boosters_booked:,} booster sessions were booked "
        "for days in the period. " + _follow_up_source(follow_up)
    )


def _follow_up_source(follow_up: BoosterFollowUp) -> str:
    if not follow_up.stored_sites:
        return "Worked out from the histories: not every morning's flags are stored."
    if follow_up.stored_through is None:
        return "Read from each morning's stored flags."
    return (
        f"Read from each morning's stored flags, to the morning of "
        f"{follow_up.stored_through:%-d %B}: today's are stored at the day's first "
        "Boosters open."
    )


def visits_download(*, report: ThroughputReport) -> None:
    st.subheader("Every visit in the period")
    st.caption(
        f"{len(report.visits):,} visits booked, one row each with its times and the minutes of "
        f"each part. A late cancel is one made less than {LATE_CANCEL_HOURS} h before the "
        f"booked time; an on-time start is a dose started within {ON_TIME_START_MINUTES} min "
        f"of it; a booking holds its chair for the dose, the minimum recovery and "
        f"{BOOKING_ALLOWANCE_MINUTES} min."
    )
    export_button(
        "Download every visit with its phase times (CSV)",
        table=lambda: visits_table(report=report),
        file_name=f"visits_{report.period.first_day}_{report.period.last_day}.csv",
        icon=":material/download:",
        type="primary",
        key="download_visits",
    )


def throughput_review(*, url: str, now: datetime) -> None:
    """The whole review: choices, headline figures, charts, outcomes and downloads."""
    period, site_ids, zone = choose_period_and_sites(url=url, now=now)
    reading = cached_report.reading(url, period.first_day, period.last_day, site_ids)
    report, specs = reading.data
    headline_figures(report=report, worked_out=f"{to_local(reading.read_at, zone):%H:%M}")
    volume_section(report=report, specs=specs)
    time_section(report=report, specs=specs)
    no_shows_section(report=report, specs=specs)
    outcomes_section(url=url, report=report, site_ids=site_ids)
    visits_download(report=report)
