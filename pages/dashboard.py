"""Dashboard (the landing page): KPIs, revenue trend, leaderboard and deals closing this month.

One call to :func:`crm_core.queries.reports.dashboard`; the access layer makes it role-aware
(a rep sees their own numbers, a manager their teams', admins and analysts the workspace).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.models import Role
from crm_core.queries.reports import PERIODS, dashboard
from crm_ui.context import choice_key, current_actor, read_session, t
from crm_ui.formatting import (
    EMPTY,
    change,
    chart_config,
    compact_money,
    dashed,
    date,
    date_column,
    money,
    money_column,
    money_ticks,
    number,
    percent_column,
)
from crm_ui.recount import sales_freshness

actor = current_actor()
st.title(t("dashboard.title"))

scope_key = {Role.REP: "dashboard.scope_own", Role.MANAGER: "dashboard.scope_team"}.get(
    actor.role, "dashboard.scope_all"
)
top = st.columns([3, 1])
top[0].caption(t(scope_key))
period = top[1].selectbox(
    t("dashboard.period"), list(PERIODS), format_func=lambda value: t(f"dashboard.period_{value}"),
    key=choice_key("dashboard_period"),
)

with read_session() as session:
    figures = dashboard(session, period=period)  # the 12-month trend from the sales rollup (decision 0064)
revenue = figures.revenue_by_month
sales_freshness(actor, figures.counted_at, key="dashboard_refresh")


kpis = st.columns(5)
kpis[0].metric(t("dashboard.open_pipeline"), compact_money(figures.open_amount),
               help=t("dashboard.open_pipeline_help", count=number(figures.open_count)))
kpis[0].caption(f"{money(figures.open_amount)} · {t('dashboard.deal_count', count=number(figures.open_count))}")
kpis[1].metric(t("dashboard.weighted_forecast"), compact_money(figures.weighted_forecast),
               help=t("dashboard.weighted_help"))
kpis[1].caption(money(figures.weighted_forecast))
kpis[2].metric(
    t("dashboard.won_period", period=t(f"dashboard.period_{period}")), compact_money(figures.won_amount),
    delta=change(figures.won_amount, figures.previous_won_amount),
)
won_previous = t("dashboard.won_same_days", amount=money(figures.previous_won_amount), count=number(figures.won_count))
kpis[2].caption(f"{money(figures.won_amount)} · {won_previous}")
kpis[3].metric(
    t("dashboard.new_customers"), number(figures.new_customers),
    delta=change(figures.new_customers, figures.previous_new_customers),
)
kpis[3].caption(t("dashboard.same_days_value", value=number(figures.previous_new_customers)))
kpis[4].metric(t("dashboard.overdue_tasks"), number(figures.overdue_tasks))
window = figures.window
st.caption(t("dashboard.compared_range", start=date(window.start), end=date(window.last_day),
             previous_start=date(window.previous_start), previous_end=date(window.previous_last_day)))

left, right = st.columns([3, 2])
with left:
    st.subheader(t("dashboard.revenue_trend"))
    if any(m.orders for m in revenue):
        # plotly, as every other chart: st.bar_chart would load Altair (about 22 MB per replica) for this one
        trend = go.Figure(go.Bar(
            x=[m.month for m in revenue], y=[float(m.amount) for m in revenue],
            customdata=[[money(m.amount), t("dashboard.order_count", count=number(m.orders))] for m in revenue],
            hovertemplate="%{x}<br>%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
        ))
        ticks, tick_labels = money_ticks(max(m.amount for m in revenue))
        trend.update_layout(height=280, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                            xaxis={"type": "category", "title": t("dashboard.month")},
                            # the top tick with a little headroom: the tallest bar never touches the frame
                            yaxis={"title": t("dashboard.revenue"), "tickvals": ticks, "ticktext": tick_labels,
                                   "range": [0, ticks[-1] * 1.05]})
        st.plotly_chart(trend, config=chart_config(), key="dashboard_revenue_trend")
    else:
        st.info(t("dashboard.no_revenue"))
with right:
    st.subheader(t("dashboard.leaderboard", period=t(f"dashboard.period_{period}")))
    if figures.leaderboard:
        st.dataframe(
            dashed(pd.DataFrame(
                [
                    {
                        t("field.owner"): row.owner_name or t("filter.unowned"),
                        t("dashboard.won_count"): row.won_count,
                        t("dashboard.won_amount"): float(row.won_amount),
                        t("dashboard.lost_count"): row.lost_count,
                        t("funnel.win_rate"): None if row.win_rate is None else row.win_rate * 100,
                    }
                    for row in figures.leaderboard
                ]
            )),
            hide_index=True,
            width="stretch",
            column_config={
                t("dashboard.won_amount"): money_column(),
                t("funnel.win_rate"): percent_column(digits=0),
            }, placeholder=EMPTY,
        )
    else:
        st.info(t("dashboard.no_closed_deals"))

st.subheader(t("dashboard.closing_this_month"))
st.caption(t("dashboard.closing_summary", count=number(figures.closing_count), amount=money(figures.closing_amount)))
if figures.closing_deals:
    st.dataframe(
        dashed(pd.DataFrame(
            [
                {
                    t("deal.name"): deal.name,
                    t("deal.customer"): deal.customer_name,
                    t("field.owner"): deal.owner_name or t("filter.unowned"),
                    t("deal.stage"): deal.stage_name,
                    t("deal.amount"): float(deal.amount),
                    t("deal.probability"): deal.probability,
                    t("deal.expected_close_date"): deal.expected_close_date,
                }
                for deal in figures.closing_deals
            ]
        )),
        hide_index=True,
        width="stretch",
        column_config={
            t("deal.amount"): money_column(),
            t("deal.probability"): percent_column(digits=0),
            t("deal.expected_close_date"): date_column(),
        }, placeholder=EMPTY,
    )
    st.page_link("pages/pipeline.py", label=t("dashboard.open_board"), icon="📋")
else:
    st.info(t("dashboard.none_closing"))
