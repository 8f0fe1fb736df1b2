"""Read side of a campaign's results (issue 14): what each step did, the deals the campaigns
influenced and the won revenue credited to each under first-touch, last-touch and linear attribution.

Every figure is counted in SQL from the touches (``marketing_events``, written by the sequence engine,
the sender and tracking) with ``GROUP BY``; nothing here writes. Run it inside ``db.session(actor)``:
the access rules scope the touches to the customers the actor sees (a rep: their own customers'
touches) and the deals to the deals they see, so the same page shows a rep their part only.

**What a figure counts.** Every figure is a number of *members* (distinct customers of the campaign)
to whom the thing happened at least once within the period: a member who opened one email three
times is one ``opened``; at the campaign level a member who opened two of its emails is still one.
``sent``, ``skipped``, ``delivered`` and ``bounced`` therefore equal the messages of a step (one per
member and step) unless re-entry sent a step to the same member again in a later cycle.
Attribution follows decision 0050 (:mod:`crm_core.rules.attribution`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import Campaign, Customer, Opportunity, PipelineStage, StageKind
from crm_core.models.marketing import CampaignStep, EmailTemplate, MarketingEvent, TouchKind
from crm_core.queries.reports import days_between, tenant_currency
from crm_core.rules.attribution import ATTRIBUTED_TOUCHES, CENT, Credit, Pair, credit, linear_shares

FIGURES = ("entered", "sent", "skipped", "delivered", "opened", "clicked", "replied", "unsubscribed", "bounced",
           "task", "goal", "exited", "completed")
"""The per-step and per-campaign figures, in the order the page and the CSV list them (touch kinds)."""

ENGAGEMENT_FUNNEL = ("entered", "sent", "delivered", "opened", "clicked", "replied", "goal")
"""The campaign funnel's stages, from being enrolled to reaching the goal."""


@dataclass(frozen=True)
class ResultsFilters:
    """Which campaign (None: all of them) and which period ``[since, until)`` (None: open-ended).

    The period applies to the moment of a touch for the step figures, and to the moment a deal was
    created or won for the influenced deals (their touches may be older, within the window).
    """

    campaign_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class CampaignChoice:
    id: int
    name: str
    status: str
    attribution_days: int


@dataclass
class Figures:
    """Members to whom each kind of touch happened (see the module docstring), and the skip reasons."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    @property
    def reached(self) -> int:
        """Members with any touch at all (the step's place in the step funnel)."""
        return self.counts.get("_any", 0)


@dataclass(frozen=True)
class StepResult:
    campaign_id: int
    campaign_name: str
    step_id: int | None  # None: touches of the campaign as a whole (no step)
    position: int | None
    kind: str | None  # StepKind
    label: str  # the template's name of an email step, the title of a task step, else ""
    archived: bool
    figures: Figures


@dataclass(frozen=True)
class CampaignResult:
    campaign: CampaignChoice
    figures: Figures
    credit: Credit


@dataclass(frozen=True)
class CampaignResults:
    """The page: per campaign, per step, and the attribution totals in the tenant's currency."""

    currency: str
    campaigns: list[CampaignResult]
    steps: list[StepResult]
    totals: Figures
    influenced_deals: int
    influenced_won_deals: int
    won_revenue: Decimal  # of the influenced won deals (each counted once)


@dataclass(frozen=True)
class InfluencedDeal:
    """One campaign's counting touches on one deal, and the revenue credited to it for that deal."""

    deal_id: int
    deal_name: str
    customer_id: int
    customer_name: str
    campaign_id: int
    campaign_name: str
    amount: Decimal
    created_at: dt.datetime
    won_at: dt.datetime | None
    first_touch_at: dt.datetime
    last_touch_at: dt.datetime
    first_touch: Decimal
    last_touch: Decimal
    linear: Decimal


def campaign_choices(session: Session) -> list[CampaignChoice]:
    """The tenant's campaigns, newest first, for the page's picker."""
    rows = session.execute(select(Campaign.id, Campaign.name, Campaign.status, Campaign.attribution_days)
                           .order_by(Campaign.id.desc()))
    return [CampaignChoice(row[0], row[1], row[2], int(row[3] or 0)) for row in rows]


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
    reasons = (select(*keys, event.detail, members).where(*where, event.kind == TouchKind.SKIPPED.value)
               .group_by(*keys, event.detail))
    for row in session.execute(reasons):
        figures[(row[0], row[1] if by_step else None)].skipped_by_reason[row[-2] or ""] = int(row[-1])
    return figures


def _steps(session: Session, campaign_id: int | None) -> list[tuple[int, int, int, str, dict[str, Any], bool, str]]:
    statement = (select(CampaignStep.id, CampaignStep.campaign_id, CampaignStep.position, CampaignStep.kind,
                        CampaignStep.config, CampaignStep.archived_at.is_not(None))
                 .order_by(CampaignStep.campaign_id, CampaignStep.position, CampaignStep.id))
    if campaign_id is not None:
        statement = statement.where(CampaignStep.campaign_id == campaign_id)
    steps = [tuple(row) for row in session.execute(statement)]
    template_ids = {int(config["template_id"]) for *_, config, _archived in steps
                    if isinstance(config, dict) and isinstance(config.get("template_id"), int)}
    names = {row[0]: row[1] for row in session.execute(
        select(EmailTemplate.id, EmailTemplate.name).where(EmailTemplate.id.in_(sorted(template_ids))))}
    labelled = []
    for step_id, owner, position, kind, config, archived in steps:
        config = config if isinstance(config, dict) else {}
        template_id = config.get("template_id")
        label = str(names.get(template_id, "") if kind == "email" and isinstance(template_id, int)
                    else config.get("title", "") or "")
        labelled.append((step_id, owner, position, kind, config, bool(archived), label))
    return labelled


def campaign_results(session: Session, filters: ResultsFilters | None = None, *,
                     pairs: list[Pair] | None = None) -> CampaignResults:
    """Per campaign and per step, the members each kind of touch reached; influenced deals and credited revenue.

    ``pairs`` are the counting (deal, campaign) pairs when the caller read them already (:func:`results_page`).
    """
    filters = filters or ResultsFilters()
    choices = {choice.id: choice for choice in campaign_choices(session)}
    wanted = [choices[filters.campaign_id]] if filters.campaign_id in choices else (
        [] if filters.campaign_id is not None else list(choices.values()))
    per_step = _counts(session, filters, by_step=True)
    per_campaign = _counts(session, filters, by_step=False)
    credits, influenced, influenced_won, revenue = attribution(session, filters, pairs=pairs)
    steps: list[StepResult] = []
    listed: set[tuple[int, int | None]] = set()
    for step_id, owner, position, kind, _config, archived, label in _steps(session, filters.campaign_id):
        if owner not in choices:
            continue
        listed.add((owner, step_id))
        steps.append(StepResult(owner, choices[owner].name, step_id, position, kind, label, archived,
                                per_step.get((owner, step_id), Figures())))
    for (owner, touched_step), figures in sorted(per_step.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
        if (owner, touched_step) not in listed and owner in choices:  # the campaign as a whole, or a step gone
            steps.append(StepResult(owner, choices[owner].name, touched_step, None, None, "", False, figures))
    order = {choice.id: index for index, choice in enumerate(wanted)}
    steps = [step for step in steps if step.campaign_id in order]
    steps.sort(key=lambda step: (order[step.campaign_id], step.step_id is not None and step.position is None,
                                 step.step_id is not None, step.position or 0, step.step_id or 0))
    totals = _totals(session, filters) if filters.campaign_id is None else per_campaign.get(
        (filters.campaign_id, None), Figures())
    return CampaignResults(
        currency=tenant_currency(session),
        campaigns=[CampaignResult(choice, per_campaign.get((choice.id, None), Figures()),
                                  credits.get(choice.id, Credit())) for choice in wanted],
        steps=steps, totals=totals, influenced_deals=influenced, influenced_won_deals=influenced_won,
        won_revenue=revenue,
    )


def _totals(session: Session, filters: ResultsFilters) -> Figures:
    """Members over every campaign (a member of two campaigns counts once)."""
    event = MarketingEvent
    members = func.count(func.distinct(event.customer_id))
    figures = Figures()
    where = _touch_period(filters)
    for kind, count in session.execute(select(event.kind, members).where(*where).group_by(event.kind)):
        figures.counts[kind] = int(count)
    figures.counts["_any"] = int(session.scalar(select(members).where(*where)) or 0)
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


def results_page(session: Session, filters: ResultsFilters | None = None) -> tuple[CampaignResults,
                                                                                      list[InfluencedDeal]]:
    """What the results page shows: :func:`campaign_results` and :func:`influenced_deals`, the pairs read once."""
    filters = filters or ResultsFilters()
    pairs = _pairs(session, filters)
    return campaign_results(session, filters, pairs=pairs), influenced_deals(session, filters, pairs=pairs)


# --- CSV -----------------------------------------------------------------------------------------

STEP_CSV_COLUMNS = ("campaign", "position", "step_kind", "step", "reached", *FIGURES, "skip_reasons")
DEAL_CSV_COLUMNS = ("deal_id", "deal", "customer", "campaign", "amount", "created_at", "won_at", "first_touch_at",
                    "last_touch_at", "first_touch", "last_touch", "linear")


def step_csv_rows(results: CampaignResults) -> list[list[Any]]:
    """The per-step table as CSV rows (:data:`STEP_CSV_COLUMNS`); pass them to ``exporting.to_csv``."""
    return [[step.campaign_name, step.position, step.kind or "", step.label, step.figures.reached,
             *(step.figures[kind] for kind in FIGURES),
             "; ".join(f"{reason or '-'}: {count}" for reason, count in sorted(step.figures.skipped_by_reason.items()))]
            for step in results.steps]


def deal_csv_rows(rows: Iterator[InfluencedDeal] | list[InfluencedDeal]) -> Iterator[list[Any]]:
    """Influenced deals as CSV rows (:data:`DEAL_CSV_COLUMNS`)."""
    for row in rows:
        yield [row.deal_id, row.deal_name, row.customer_name, row.campaign_name, row.amount, row.created_at,
               row.won_at, row.first_touch_at, row.last_touch_at, row.first_touch, row.last_touch, row.linear]
