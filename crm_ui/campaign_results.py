"""Campaign results, rendered (admins, managers, analysts): pick a campaign (or all) and a period; the
engagement funnel, the members each step reached, won revenue credited under each attribution model,
the per-step and influenced-deal tables and their CSV files.

Every figure comes from :mod:`crm_core.queries.campaign_results` (the rollup the
``campaign_results_refresh`` job counts, decision 0051; scoped by the access rules: a manager sees their
teams' customers' part). The page says when the figures were counted; an admin or a manager may queue a
recount. Names are shown as text; tables turn into cards on a phone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from crm_core.access import Actor
from crm_core.exporting import export_file_name, to_csv
from crm_core.models import Role
from crm_core.queries.campaign_results import (
    DEAL_CSV_COLUMNS,
    ENGAGEMENT_FUNNEL,
    FIGURES,
    STEP_CSV_COLUMNS,
    CampaignChoice,
    CampaignResults,
    InfluencedDeal,
    ResultsFilters,
    StepResult,
    campaign_choices,
    deal_csv_rows,
    influenced_count,
    iter_influenced_deals,
    results_as_of,
    results_page,
    step_csv_rows,
)
from crm_core.rules.attribution import MODELS
from crm_ui.context import choice_key, current_actor, get_db, read_session, t
from crm_ui.formatting import chart_config, compact_money, date_input_format, money, number, percent, when
from crm_ui.layout import table_or_cards
from crm_ui.recount import recount_button
from crm_ui.text import chart_text

ALL = "__all__"
PREFIX = "campaign_results"
DEALS_SHOWN = 200
MODEL_COLOURS = {"first_touch": "#1f77b4", "last_touch": "#ff7f0e", "linear": "#2ca02c"}


def page() -> None:
    """The whole screen: filters, figures, charts, tables, downloads."""
    actor = current_actor()
    st.title(t("campaign_results.title"))
    st.caption(t("campaign_results.scope_team" if actor.role == Role.MANAGER else "campaign_results.scope_all"))
    with read_session() as session:
        choices = campaign_choices(session)
        as_of = results_as_of(session)
    if not choices:
        st.info(t("campaign_results.no_campaigns"))
        return
    freshness(actor, as_of.refreshed_at)
    filters = pick_filters(choices)
    if filters is None:
        return
    with read_session() as session:
        results, deals = results_page(session, filters, deals_shown=DEALS_SHOWN)
        deal_rows = influenced_count(session, filters) if len(deals) >= DEALS_SHOWN else len(deals)
    key_figures(results)
    if results.totals.reached == 0 and results.influenced_deals == 0:
        st.info(t("campaign_results.empty"))
        return
    charts(results, single=filters.campaign_id is not None)
    steps_table(results)
    attribution_table(results)
    deals_table(deals, deal_rows)
    downloads(actor, results, filters, choices)


def freshness(actor: Actor, refreshed_at: dt.datetime | None) -> None:
    """When the figures were counted, and (admins, managers) a button that queues a recount."""
    left, right = st.columns([4, 1])
    if refreshed_at is None:
        left.info(t("campaign_results.never_counted"))
    else:
        left.caption(t("campaign_results.as_of", when=when(refreshed_at)))
    recount_button(actor, "campaign_results_refresh", place=right, key=f"{PREFIX}_refresh",
                   label="campaign_results.refresh", queued="campaign_results.refresh_queued")


def pick_filters(choices: list[CampaignChoice]) -> ResultsFilters | None:
    """The campaign and the period; None (with a message) when the period is upside down."""
    names = {choice.id: choice.name for choice in choices}
    row = st.columns([2, 1, 1])
    picked = row[0].selectbox(t("campaign_results.campaign"), [ALL, *names],
                              format_func=lambda v: t("campaign_results.all_campaigns") if v == ALL else names[v],
                              key=choice_key(f"{PREFIX}_campaign"))
    since = row[1].date_input(t("campaign_results.since"), value=None, key=f"{PREFIX}_since",
                              format=date_input_format(), help=t("campaign_results.dates_help"))
    until = row[2].date_input(t("campaign_results.until"), value=None, key=f"{PREFIX}_until",
                              format=date_input_format())
    since = since if isinstance(since, dt.date) else None
    until = until if isinstance(until, dt.date) else None
    if since and until and since > until:
        st.error(t("campaign_results.bad_range"))
        return None
    window = next((choice.attribution_days for choice in choices if choice.id == picked), None)
    st.caption(t("campaign_results.attribution_note") + (" " + t("campaign_results.window", days=window)
                                                        if window is not None else ""))
    if since or until:
        st.caption(t("campaign_results.period_note"))
    return ResultsFilters(
        campaign_id=picked if isinstance(picked, int) else None,
        since=dt.datetime.combine(since, dt.time()) if since else None,
        until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time()) if until else None,
    )


def key_figures(results: CampaignResults) -> None:
    totals = results.totals
    tiles = st.columns(4)
    tiles[0].metric(t("campaign_results.figure.entered"), number(totals["entered"]))
    tiles[1].metric(t("campaign_results.figure.sent"), number(totals["sent"]))
    tiles[2].metric(t("campaign_results.figure.opened"), number(totals["opened"]))
    tiles[2].caption(t("campaign_results.of_sent", share=percent(totals["opened"] / totals["sent"]
                                                               if totals["sent"] else None)))
    tiles[3].metric(t("campaign_results.figure.replied"), number(totals["replied"]))
    deals = st.columns(3)
    deals[0].metric(t("campaign_results.influenced_deals"), number(results.influenced_deals))
    deals[1].metric(t("campaign_results.influenced_won"), number(results.influenced_won_deals))
    deals[2].metric(t("campaign_results.won_revenue"), compact_money(results.won_revenue,
                                                                      currency_code=results.currency))
    deals[2].caption(money(results.won_revenue, currency_code=results.currency))


def step_name(step: StepResult) -> str:
    """"2 · Email: Spring hello" — the step's place, kind and template or title; the campaign's own touches."""
    if step.kind is None:
        return t("campaign_results.campaign_level") if step.step_id is None else t("campaign_results.removed_step")
    name = t(f"campaign_results.step_kind.{step.kind}")
    named = f"{name}: {step.label}" if step.label else name
    return f"{step.position} · {named}" + (f" ({t('campaign_results.archived')})" if step.archived else "")


def charts(results: CampaignResults, *, single: bool) -> None:
    """The engagement funnel, the members each step reached (one campaign), the credit per model."""
    png = {"format": "png", "scale": 2}
    left, right = st.columns(2)
    funnel = go.Figure(go.Funnel(
        y=[t(f"campaign_results.figure.{kind}") for kind in ENGAGEMENT_FUNNEL],
        x=[results.totals[kind] for kind in ENGAGEMENT_FUNNEL], texttemplate="%{value:,.0f}<br>%{percentInitial:.0%}"))
    funnel.update_layout(title=t("campaign_results.funnel_title"), height=360,
                         margin={"l": 10, "r": 10, "t": 50, "b": 10})
    left.plotly_chart(funnel, config=chart_config(toImageButtonOptions={**png, "filename": "campaign-funnel"}),
                      key=f"{PREFIX}_funnel")
    models = [t(f"campaign_results.model.{model}") for model in MODELS]
    bars = go.Figure([go.Bar(name=chart_text(row.campaign.name), x=models,
                             y=[float(getattr(row.credit, model)) for model in MODELS])
                      for row in results.campaigns if any(getattr(row.credit, model) for model in MODELS)])
    bars.update_layout(title=t("campaign_results.attribution_title"), barmode="group", height=360,
                       margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h", "y": -0.15})
    right.plotly_chart(bars, config=chart_config(toImageButtonOptions={**png, "filename": "campaign-attribution"}),
                       key=f"{PREFIX}_attribution")
    if single:
        steps = [step for step in results.steps if step.step_id is not None]
        by_step = go.Figure(go.Funnel(y=[chart_text(step_name(step)) for step in steps],
                                      x=[step.figures.reached for step in steps], texttemplate="%{value:,.0f}"))
        by_step.update_layout(title=t("campaign_results.steps_funnel_title"), height=120 + 45 * max(len(steps), 1),
                              margin={"l": 10, "r": 10, "t": 50, "b": 10})
        st.plotly_chart(by_step, config=chart_config(toImageButtonOptions={**png, "filename": "campaign-steps"}),
                        key=f"{PREFIX}_steps_funnel")
    st.caption(t("campaign_results.png_hint"))


def steps_table(results: CampaignResults) -> None:
    st.subheader(t("campaign_results.steps_title"))
    st.caption(t("campaign_results.members_note"))
    rows = []
    for step in results.steps:
        row: dict[str, Any] = {t("campaign_results.column.campaign"): step.campaign_name,
                               t("campaign_results.column.step"): step_name(step),
                               t("campaign_results.figure.reached"): step.figures.reached}
        for kind in FIGURES:
            row[t(f"campaign_results.figure.{kind}")] = step.figures[kind]
        row[t("campaign_results.column.skip_reasons")] = "; ".join(
            f"{reason or '—'}: {number(count)}" for reason, count in sorted(step.figures.skipped_by_reason.items()))
        rows.append(row)
    title = t("campaign_results.column.step")
    table_or_cards(rows, name=f"{PREFIX}_steps", title=title, facts=[
        t("campaign_results.column.campaign"), *(t(f"campaign_results.figure.{kind}") for kind in (
            "reached", "sent", "skipped", "opened", "clicked", "replied", "unsubscribed", "bounced", "task", "goal"))])


def attribution_table(results: CampaignResults) -> None:
    st.subheader(t("campaign_results.attribution_title"))
    rows = [{t("campaign_results.column.campaign"): row.campaign.name,
             t("campaign_results.column.window"): t("campaign_results.days", days=row.campaign.attribution_days),
             t("campaign_results.influenced_deals"): row.credit.influenced_deals,
             **{t(f"campaign_results.model.{model}"): money(getattr(row.credit, model), currency_code=results.currency)
                for model in MODELS}}
            for row in results.campaigns]
    table_or_cards(rows, name=f"{PREFIX}_credit")


def deals_table(deals: list[InfluencedDeal], total: int) -> None:
    """The first :data:`DEALS_SHOWN` influenced deals (won first, largest first); ``total``: how many there are."""
    st.subheader(t("campaign_results.deals_title"))
    if not deals:
        st.info(t("campaign_results.no_deals"))
        return
    if total > len(deals):
        st.caption(t("campaign_results.deals_more", shown=number(len(deals)), total=number(total)))
    rows = [{t("campaign_results.column.deal"): deal.deal_name,
             t("campaign_results.column.customer"): deal.customer_name,
             t("campaign_results.column.campaign"): deal.campaign_name,
             t("campaign_results.column.amount"): money(deal.amount),
             t("campaign_results.column.won_at"): when(deal.won_at),
             t("campaign_results.column.first_touch_at"): when(deal.first_touch_at),
             t("campaign_results.column.last_touch_at"): when(deal.last_touch_at),
             **{t(f"campaign_results.model.{model}"): money(getattr(deal, model)) for model in MODELS}}
            for deal in deals]
    table_or_cards(rows, name=f"{PREFIX}_deals")


def downloads(actor: Actor, results: CampaignResults, filters: ResultsFilters,
              choices: list[CampaignChoice]) -> None:
    """The per-step figures and every influenced deal as CSV (formulas defused by crm_core.exporting); the deals'
    file is written when it is asked for, not on every run of the page."""
    name = next((choice.name for choice in choices if choice.id == filters.campaign_id), None)
    db = get_db()

    def deals_csv() -> bytes:
        with db.session(actor) as session:
            return to_csv(DEAL_CSV_COLUMNS, deal_csv_rows(iter_influenced_deals(session, filters)))

    left, right = st.columns(2)
    left.download_button(
        t("campaign_results.download_steps"), to_csv(STEP_CSV_COLUMNS, step_csv_rows(results)), mime="text/csv",
        file_name=export_file_name("campaign-steps", "csv", name=name), key=f"{PREFIX}_download_steps")
    right.download_button(
        t("campaign_results.download_deals"), deals_csv, mime="text/csv",
        file_name=export_file_name("influenced-deals", "csv", name=name), key=f"{PREFIX}_download_deals")
