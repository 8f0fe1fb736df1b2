"""The campaign results computed live from the touches (issue 14, decision 0050): the reference the
rollup of decision 0051 is tested against, and the "raw SQL" the benchmark compares it with.

Same shapes as :mod:`crm_core.queries.campaign_results` (which the page uses), counted at read time:
distinct members per (campaign[, step], kind) with ``COUNT(DISTINCT)`` over the touches, and the
attribution join of every counting touch with the deals of its customer. Run it inside
``db.session(actor)``: the access rules scope touches and deals as for the page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import Campaign, Customer, Opportunity, PipelineStage, StageKind
from crm_core.models.marketing import MarketingEvent, TouchKind
from crm_core.queries.campaign_results import (
    DELIVERED,
    CampaignResults,
    Figures,
    InfluencedDeal,
    ResultsFilters,
    assemble,
    delivered_send,
)
from crm_core.queries.reports import days_between
from crm_core.rules.attribution import ATTRIBUTED_TOUCHES, CENT, Credit, Pair, credit, linear_shares


def _touch_period(filters: ResultsFilters) -> list[Any]:
    conditions: list[Any] = []
    if filters.campaign_id is not None:
        conditions.append(MarketingEvent.campaign_id == filters.campaign_id)
    if filters.since is not None:
        conditions.append(MarketingEvent.occurred_at >= filters.since)
    if filters.until is not None:
        conditions.append(MarketingEvent.occurred_at < filters.until)
    return conditions


def _counts(session: Session, filters: ResultsFilters, *, by_step: bool) -> dict[tuple[int, int | None], Figures]:
    """One GROUP BY over the touches: distinct members per (campaign[, step], kind), and per (campaign[, step])."""
    event = MarketingEvent
    keys: list[Any] = [event.campaign_id, event.step_id] if by_step else [event.campaign_id]
    members = func.count(func.distinct(event.customer_id))
    figures: dict[tuple[int, int | None], Figures] = defaultdict(Figures)
    where = _touch_period(filters)
    for row in session.execute(select(*keys, event.kind, members).where(*where).group_by(*keys, event.kind)):
        key = (row[0], row[1] if by_step else None)
        figures[key].counts[row[-2]] = int(row[-1])
    for row in session.execute(select(*keys, members).where(*where).group_by(*keys)):
        figures[(row[0], row[1] if by_step else None)].counts["_any"] = int(row[-1])
    for row in session.execute(select(*keys, members).where(*where, delivered_send()).group_by(*keys)):
        figures[(row[0], row[1] if by_step else None)].counts[DELIVERED] = int(row[-1])
    reasons = (select(*keys, event.detail, members).where(*where, event.kind == TouchKind.SKIPPED.value)
               .group_by(*keys, event.detail))
    for row in session.execute(reasons):
        figures[(row[0], row[1] if by_step else None)].skipped_by_reason[row[-2] or ""] = int(row[-1])
    return figures


def campaign_results(session: Session, filters: ResultsFilters | None = None, *,
                     pairs: list[Pair] | None = None) -> CampaignResults:
    """Per campaign and per step, the members each kind of touch reached; influenced deals and credited revenue."""
    filters = filters or ResultsFilters()
    per_step = _counts(session, filters, by_step=True)
    per_campaign = _counts(session, filters, by_step=False)
    credits, influenced, influenced_won, revenue = attribution(session, filters, pairs=pairs)
    totals = _totals(session, filters) if filters.campaign_id is None else Figures()
    return assemble(session, filters, per_step=per_step, per_campaign=per_campaign, totals=totals, credits=credits,
                    influenced=influenced, influenced_won=influenced_won, revenue=revenue)


def _totals(session: Session, filters: ResultsFilters) -> Figures:
    """Members over every campaign (a member of two campaigns counts once)."""
    event = MarketingEvent
    members = func.count(func.distinct(event.customer_id))
    figures = Figures()
    where = _touch_period(filters)
    for kind, count in session.execute(select(event.kind, members).where(*where).group_by(event.kind)):
        figures.counts[kind] = int(count)
    figures.counts["_any"] = int(session.scalar(select(members).where(*where)) or 0)
    figures.counts[DELIVERED] = int(session.scalar(select(members).where(*where, delivered_send())) or 0)
    return figures


# --- attribution ---------------------------------------------------------------------------------


def _pairs_statement(session: Session, filters: ResultsFilters) -> Any:
    """(deal, campaign) with a counting touch (decision 0050), the first and last such moment, in SQL."""
    event, deal = MarketingEvent, Opportunity
    won = PipelineStage.kind == StageKind.WON.value
    window = Campaign.attribution_days
    before_created = and_(event.occurred_at <= deal.created_at,
                          days_between(session, event.occurred_at, deal.created_at) <= window)
    before_won = and_(won, deal.closed_at.is_not(None), event.occurred_at <= deal.closed_at,
                      days_between(session, event.occurred_at, deal.closed_at) <= window)
    period: list[Any] = []
    if filters.since is not None or filters.until is not None:
        def within(moment: Any) -> Any:
            bounds = [moment.is_not(None)]
            if filters.since is not None:
                bounds.append(moment >= filters.since)
            if filters.until is not None:
                bounds.append(moment < filters.until)
            return and_(*bounds)

        period.append(or_(within(deal.created_at), and_(won, within(deal.closed_at))))
    if filters.campaign_id is not None:  # the deals of customers the campaign touched (with every campaign's touches)
        touched = aliased(MarketingEvent)
        period.append(deal.customer_id.in_(select(touched.customer_id).where(
            touched.campaign_id == filters.campaign_id, touched.kind.in_(ATTRIBUTED_TOUCHES))))
    return (
        select(deal.id, event.campaign_id, func.min(event.occurred_at), func.max(event.occurred_at),
               PipelineStage.kind, deal.amount)
        .join(deal, deal.customer_id == event.customer_id)
        .join(Campaign, Campaign.id == event.campaign_id)
        .join(PipelineStage, PipelineStage.id == deal.stage_id)
        .where(event.kind.in_(ATTRIBUTED_TOUCHES), deal.archived_at.is_(None), or_(before_created, before_won),
               *period)
        .group_by(deal.id, event.campaign_id, PipelineStage.kind, deal.amount)
        .order_by(deal.id, event.campaign_id)
    )


def _pairs(session: Session, filters: ResultsFilters) -> list[Pair]:
    statement = _pairs_statement(session, filters)
    return [Pair(row[0], row[1], row[2], row[3], row[4] == StageKind.WON.value, Decimal(str(row[5] or 0)))
            for row in session.execute(statement)]


def attribution(session: Session, filters: ResultsFilters, *,
                pairs: list[Pair] | None = None) -> tuple[dict[int, Credit], int, int, Decimal]:
    """Each campaign's credit, and the influenced deals, the influenced won deals and their revenue.

    Credit is computed over every campaign's touches (a deal's first touch may belong to another
    campaign than the one picked); the counts of deals are of those the picked campaign influenced.
    """
    pairs = _pairs(session, filters) if pairs is None else pairs
    credits = credit(pairs)
    mine = [pair for pair in pairs if filters.campaign_id in (None, pair.campaign_id)]
    deals = {pair.deal_id: pair for pair in mine}
    won = [pair for pair in deals.values() if pair.won]
    revenue = sum((Decimal(pair.amount).quantize(CENT) for pair in won), Decimal("0.00"))
    return credits, len(deals), len(won), revenue


def iter_influenced_deals(session: Session, filters: ResultsFilters | None = None, *,
                          pairs: list[Pair] | None = None) -> Iterator[InfluencedDeal]:
    """Every (deal, campaign) pair the results count, with the pair's credit under each model (by deal id)."""
    filters = filters or ResultsFilters()
    pairs = _pairs(session, filters) if pairs is None else pairs
    by_deal: dict[int, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_deal[pair.deal_id].append(pair)
    wanted = [deal_id for deal_id, deal_pairs in by_deal.items()
              if filters.campaign_id is None or any(p.campaign_id == filters.campaign_id for p in deal_pairs)]
    names = {row[0]: row[1] for row in session.execute(select(Campaign.id, Campaign.name))}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        details = {row[0]: row[1:] for row in session.execute(
            select(Opportunity.id, Opportunity.name, Opportunity.customer_id, Customer.name, Opportunity.created_at,
                   case((PipelineStage.kind == StageKind.WON.value, Opportunity.closed_at), else_=None))
            .join(Customer, Customer.id == Opportunity.customer_id)
            .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
            .where(Opportunity.id.in_(chunk)))}
        rows: list[InfluencedDeal] = []
        for deal_id in chunk:
            if deal_id not in details:  # the customer is not the actor's to see
                continue
            name, customer_id, customer_name, created_at, won_at = details[deal_id]
            deal_pairs = by_deal[deal_id]
            won = deal_pairs[0].won
            amount = Decimal(deal_pairs[0].amount).quantize(CENT)
            first = min(deal_pairs, key=lambda pair: (pair.first_at, pair.campaign_id)).campaign_id
            last = max(deal_pairs, key=lambda pair: (pair.last_at, pair.campaign_id)).campaign_id
            shares = linear_shares(amount, (pair.campaign_id for pair in deal_pairs)) if won else {}
            zero = Decimal("0.00")
            for pair in deal_pairs:
                if filters.campaign_id is not None and pair.campaign_id != filters.campaign_id:
                    continue
                rows.append(InfluencedDeal(
                    deal_id, name, customer_id, customer_name, pair.campaign_id, names.get(pair.campaign_id, ""),
                    amount, created_at, won_at, pair.first_at, pair.last_at,
                    amount if won and first == pair.campaign_id else zero,
                    amount if won and last == pair.campaign_id else zero, shares.get(pair.campaign_id, zero)))
        yield from rows


def influenced_deals(session: Session, filters: ResultsFilters | None = None, *,
                     pairs: list[Pair] | None = None) -> list[InfluencedDeal]:
    """Every influenced (deal, campaign) row, won ones first, the largest first."""
    rows = list(iter_influenced_deals(session, filters, pairs=pairs))
    rows.sort(key=lambda row: (row.won_at is None, -row.amount, row.deal_id, row.campaign_id))
    return rows
