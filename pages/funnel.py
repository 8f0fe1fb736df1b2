"""Funnel: deals by stage (count and amount), stage-to-stage conversion, win rate, average deal
size and sales cycle, filtered by creation date, owner, team, product and pipeline.

One call to :func:`crm_core.queries.reports.funnel` (the same numbers as
``python -m crm_core report funnel --json``). Charts are plotly figures: their toolbar's camera
button downloads a PNG in the browser (no server-side image renderer needed); the numbers
download as CSV through :mod:`crm_core.exporting`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.exporting import export_file_name, to_csv
from crm_core.queries.deals import list_pipelines
from crm_core.queries.reports import FUNNEL_CSV_COLUMNS, ReportFilters, funnel, funnel_csv_rows, product_choices
from crm_core.queries.users import assignable_owners, list_teams
from crm_ui.context import choice_key, current_actor, read_session, t
from crm_ui.formatting import (
    EMPTY,
    chart_config,
    compact_money,
    date_input_format,
    money,
    money_column,
    number,
    number_column,
    percent,
)
from crm_ui.recount import sales_freshness
from crm_ui.text import chart_text, plain

ALL = "__all__"
actor = current_actor()
st.title(t("funnel.title"))
st.caption(t("funnel.caption"))

with read_session() as session:
    pipelines = list_pipelines(session)
    owners = assignable_owners(session)
    teams = list_teams(session)
    products = product_choices(session)
if not pipelines:
    st.info(t("board.no_pipeline"))
    st.stop()
owner_names, team_names, product_names = dict(owners), {team[0]: team[1] for team in teams}, dict(products)

row1 = st.columns(3)
pipeline_id = row1[0].selectbox(
    t("board.pipeline"), [p.id for p in pipelines], format_func=lambda v: next(p.name for p in pipelines if p.id == v),
    key="funnel_pipeline",
)
since = row1[1].date_input(t("funnel.since"), value=None, key="funnel_since", format=date_input_format(),
                           help=t("funnel.dates_help"))
until = row1[2].date_input(t("funnel.until"), value=None, key="funnel_until", format=date_input_format())
row2 = st.columns(3)
visible_owners = [o for o, _ in owners if actor.sees_whole_tenant or o == actor.user_id or o in actor.visible_owner_ids]
owner_choice = row2[0].selectbox(
    t("field.owner"), [ALL, *visible_owners],
    format_func=lambda v: t("filter.all") if v == ALL else owner_names.get(v, str(v)), key=choice_key("funnel_owner"),
)
team_choice = row2[1].selectbox(
    t("funnel.team"), [ALL, *team_names], format_func=lambda v: t("filter.all") if v == ALL else team_names[v],
    key=choice_key("funnel_team"),
)
product_choice = row2[2].selectbox(
    t("funnel.product"), [ALL, *product_names],
    format_func=lambda v: t("filter.all") if v == ALL else product_names[v], key=choice_key("funnel_product"),
    help=t("funnel.product_help"),
)

if since and until and since > until:
    st.error(t("funnel.bad_range"))
    st.stop()
filters = ReportFilters(
    since=since if isinstance(since, dt.date) else None,
    until=until if isinstance(until, dt.date) else None,
    owner_id=owner_choice if isinstance(owner_choice, int) else None,
    team_id=team_choice if isinstance(team_choice, int) else None,
    product_id=product_choice if isinstance(product_choice, int) else None,
    pipeline_id=pipeline_id,
)
with read_session() as session:
    result = funnel(session, filters=filters)
assert result is not None
sales_freshness(actor, result.counted_at, key="funnel_refresh")


kpis = st.columns(5)
kpis[0].metric(t("funnel.deals"), number(result.total_count))
kpis[1].metric(t("funnel.win_rate"), percent(result.win_rate),
               help=t("funnel.win_rate_help", won=result.won_count, lost=result.lost_count))
kpis[2].metric(t("funnel.average_deal_size"), compact_money(result.average_deal_size))
if result.average_deal_size is not None:
    kpis[2].caption(money(result.average_deal_size))
kpis[3].metric(t("funnel.average_cycle"), EMPTY if result.average_cycle_days is None
               else t("funnel.days", days=number(result.average_cycle_days, digits=1)))
kpis[4].metric(t("dashboard.weighted_forecast"), compact_money(result.weighted_amount))
kpis[4].caption(money(result.weighted_amount))

if result.total_count == 0:
    st.info(t("funnel.empty"))
    st.stop()

names = [chart_text(step.stage.name) for step in result.steps]
png_options = {"format": "png", "scale": 2}  # the camera button's picture
charts = st.columns(2)
for widget, values, title, name in (
    (charts[0], [step.reached for step in result.steps], t("funnel.chart_count"), "funnel-count"),
    (charts[1], [float(step.reached_amount) for step in result.steps], t("funnel.chart_amount"), "funnel-amount"),
):
    figure = go.Figure(go.Funnel(y=names, x=values, texttemplate="%{value:,.0f}<br>%{percentInitial:.0%}"))
    figure.update_layout(title=title, margin={"l": 10, "r": 10, "t": 50, "b": 10}, height=360)
    config = chart_config(toImageButtonOptions={**png_options, "filename": name})
    widget.plotly_chart(figure, config=config, key=f"funnel_chart_{name}")
st.caption(t("funnel.png_hint"))

st.subheader(t("funnel.by_stage"))
headers = [t(f"funnel.column.{column}") for column in FUNNEL_CSV_COLUMNS]
rows = funnel_csv_rows(result)
table = pd.DataFrame(rows, columns=headers)
table[headers[1]] = [t(f"funnel.kind.{step.stage.kind}") for step in result.steps]
table[headers[6]] = [percent(step.conversion_to_next) for step in result.steps]  # none after the last open stage: "—"
st.dataframe(
    table, hide_index=True, width="stretch",
    column_config={
        headers[2]: number_column(),
        headers[3]: money_column(),
        headers[4]: number_column(),
        headers[5]: money_column(),
    }, placeholder=EMPTY,
)
lost_line = ", ".join(
    plain(f"{next((s.name for s in result.pipeline.stages if s.id == stage_id), stage_id)}: {number(count)}")
    for stage_id, count in result.lost_by_stage.items()
)
st.caption(t("funnel.lost_summary", count=number(result.lost_count), amount=money(result.lost_amount))
           + (f" — {t('funnel.lost_from')}: {lost_line}" if lost_line else ""))

summary_rows: list[list[Any]] = [
    [t("funnel.win_rate"), None if result.win_rate is None else round(result.win_rate * 100, 1)],
    [t("funnel.average_deal_size"), result.average_deal_size],
    [t("funnel.average_cycle"), None if result.average_cycle_days is None else round(result.average_cycle_days, 1)],
    [t("funnel.won"), result.won_count], [t("funnel.lost"), result.lost_count],
]
csv = to_csv(headers, [*rows, [], *summary_rows])
st.download_button(t("funnel.download_csv"), csv, mime="text/csv", key="funnel_download",
                   file_name=export_file_name("funnel", "csv", name=result.pipeline.name))
