"""Service dashboard (managers, admins, analysts): backlog, SLA attainment, response and
resolution times, CSAT, per agent and team, and the weekly trend.

One call to :func:`crm_core.queries.service_reports.service_dashboard`; every figure is SQL
and scoped by the access rules (a manager sees their teams' cases). Days before today come from
the daily counts of the ``service_daily`` job; the page says when they were counted. Times are wall-clock hours
(what the customer waited); the SLA attainment is measured in business time by the case's
calendar. Charts are plotly with the shared chart configuration; numbers go through the
shared formatting; names are shown as text.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.models import Role, utcnow
from crm_core.queries.service_reports import AGE_BUCKETS, PRIORITIES, GroupFigures, service_dashboard
from crm_ui.context import choice_key, current_actor, read_session, t
from crm_ui.formatting import EMPTY, chart_config, number, number_column, percent, when

PERIOD_DAYS = (7, 28, 90)

actor = current_actor()
st.title(t("service_dashboard.title"))
top = st.columns([3, 1])
top[0].caption(t("service_dashboard.scope_team" if actor.role == Role.MANAGER else "service_dashboard.scope_all"))
days = top[1].selectbox(t("service_dashboard.period"), list(PERIOD_DAYS),
                        format_func=lambda value: t("service_dashboard.last_days", days=value),
                        key=choice_key("service_dashboard_period"))
now = utcnow()
since = dt.datetime.combine(now.date() - dt.timedelta(days=days - 1), dt.time())
with read_session() as session:
    figures = service_dashboard(session, since=since, until=now, now=now)


# the queue's marks (🔴 urgent, 🟠 high, 🔵 normal, ⚪ low): red is what burns
PRIORITY_COLOURS = {"urgent": "#d62728", "high": "#ff9f1c", "normal": "#1f77b4", "low": "#b8b8b8"}


def hours(value: float | None) -> str:
    return t("service_dashboard.hours", hours=number(value, digits=1)) if value is not None else number(None)


attainment = {row.metric: row for row in figures.attainment}
overall = figures.overall
kpis = st.columns(5)
kpis[0].metric(t("service_dashboard.backlog"), number(sum(cell.count for cell in figures.backlog)))
for index, metric in enumerate(("first_response", "resolution"), start=1):
    row = attainment[metric]
    kpis[index].metric(t(f"service_dashboard.attainment_{metric}"),
                       percent(None if row.percent is None else row.percent / 100),
                       help=t("service_dashboard.attainment_help"))
    kpis[index].caption(t("service_dashboard.attained_of", attained=number(row.attained),
                          measured=number(row.measured)))
kpis[3].metric(t("service_dashboard.first_response_p50"), hours(overall.first_response_hours[50]))
kpis[3].caption(t("service_dashboard.p90", value=hours(overall.first_response_hours[90])))
kpis[4].metric(t("service_dashboard.csat"),
               percent(None if overall.csat_percent is None else overall.csat_percent / 100))
kpis[4].caption(t("service_dashboard.ratings", count=number(overall.ratings)))
st.caption(t("service_dashboard.resolution_times", p50=hours(overall.resolution_hours[50]),
             p90=hours(overall.resolution_hours[90]), resolved=number(overall.resolved)))
st.caption(t("service_dashboard.times_note"))
st.caption(t("service_dashboard.freshness", counted_at=when(figures.counted_at)) if figures.counted_at is not None
           else t("service_dashboard.all_live"))

left, right = st.columns(2)
with left:
    st.subheader(t("service_dashboard.backlog_by_age"))
    if figures.backlog:
        counts = {(cell.priority, cell.bucket): cell.count for cell in figures.backlog}
        buckets = [t(f"service_dashboard.age.{bucket}") for bucket in AGE_BUCKETS]
        backlog_chart = go.Figure([go.Bar(name=t(f"service.priority.{priority}"), x=buckets,
                                          y=[counts.get((priority, bucket), 0) for bucket in AGE_BUCKETS],
                                          marker_color=PRIORITY_COLOURS.get(priority))
                                   for priority in PRIORITIES])
        backlog_chart.update_layout(barmode="stack", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        st.plotly_chart(backlog_chart, config=chart_config(), key="service_dashboard_backlog_chart")
    else:
        st.info(t("service_dashboard.no_backlog"))
with right:
    st.subheader(t("service_dashboard.weekly_trend"))
    weeks = [week.week_start for week in figures.weeks]
    trend = go.Figure([
        go.Bar(name=t("service_dashboard.opened"), x=weeks, y=[week.opened for week in figures.weeks]),
        go.Bar(name=t("service_dashboard.resolved"), x=weeks, y=[week.resolved for week in figures.weeks]),
        go.Scatter(name=t("service_dashboard.csat"), x=weeks, yaxis="y2", mode="lines+markers",
                   y=[week.csat_percent for week in figures.weeks]),
    ])
    # the legend above the plot: on the right it covered the CSAT axis's labels
    trend.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
                        # room above 100 % for a week with every rating good; ticks of its own (not the counts')
                        yaxis2={"overlaying": "y", "side": "right", "range": [0, 105], "tickmode": "array",
                                "tickvals": [0, 25, 50, 75, 100], "ticktext": ["0%", "25%", "50%", "75%", "100%"],
                                "showgrid": False})
    st.plotly_chart(trend, config=chart_config(), key="service_dashboard_trend_chart")


def table(rows: list[GroupFigures], name_key: str, nobody_key: str) -> None:
    if not rows:
        st.info(t("service_dashboard.nothing_in_period"))
        return
    # times and shares as written text: a number column shows an empty figure as "None", in every language
    frame = pd.DataFrame([{
        t(name_key): row.name if row.key is not None else t(nobody_key),  # a dataframe cell shows text as text
        t("service_dashboard.resolved"): row.resolved,
        t("service_dashboard.first_response_p50"): hours(row.first_response_hours[50]),
        t("service_dashboard.first_response_p90"): hours(row.first_response_hours[90]),
        t("service_dashboard.resolution_p50"): hours(row.resolution_hours[50]),
        t("service_dashboard.resolution_p90"): hours(row.resolution_hours[90]),
        t("service_dashboard.csat"): percent(None if row.csat_percent is None else row.csat_percent / 100),
        t("service_dashboard.ratings_column"): row.ratings,
    } for row in rows])
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={t("service_dashboard.resolved"): number_column(),
                                t("service_dashboard.ratings_column"): number_column()}, placeholder=EMPTY)


st.subheader(t("service_dashboard.per_agent"))
table(figures.agents, "service_dashboard.agent", "service_dashboard.unassigned")
st.subheader(t("service_dashboard.per_team"))
table(figures.teams, "service_dashboard.team", "service_dashboard.no_team")
