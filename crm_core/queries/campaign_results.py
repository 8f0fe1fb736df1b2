"""Read side of a campaign's results (issue 14): what each step did, the deals the campaigns
influenced and the won revenue credited to each under first-touch, last-touch and linear attribution.

The page reads the rollup the ``campaign_results_refresh`` job keeps (decision 0051:
:mod:`crm_core.services.campaign_results_refresh`): ``campaign_daily`` and ``campaign_influence``,
summed with ``GROUP BY`` here, so the page costs a few small reads whatever the number of touches.
Run it inside ``db.session(actor)``: the access rules scope the rows to the slices (customer owner and
team) and deals the actor sees, as they scope the touches themselves, so a rep sees their part only.
:mod:`crm_core.queries.campaign_results_live` computes the same from the touches (the reference).

**What a figure counts.** Every figure is a number of *members* (distinct customers of the campaign)
to whom the thing happened at least once: a member who opened one email three times is one
``opened``; at the campaign level a member who opened two of its emails is still one. With a period,
a member counts when their *first* such touch fell within it (days add up: a period sums its days).
Attribution follows decision 0050 (:mod:`crm_core.rules.attribution`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.access import actor_of
from crm_core.models import Campaign, Customer, Opportunity
from crm_core.models.marketing import (
    CampaignDaily,
    CampaignInfluence,
    CampaignResultsRun,
    CampaignStep,
    EmailTemplate,
    MarketingEvent,
    TouchKind,
)
from crm_core.queries.reports import tenant_currency
from crm_core.queries.rollup_spans import day_spans
from crm_core.rules.attribution import CENT, Credit

LEVELS = ("step", "campaign", "tenant")
"""The rollup's levels: per campaign and step, per campaign, over every campaign (``campaign_daily.level``)."""
ANY = "_any"  # campaign_daily.kind of any touch: the members a step, a campaign or every campaign reached
SKIP = "_skip"  # campaign_daily.kind of a skipped send, per reason (``detail``)
DELIVERED = "delivered"  # derived, not a touch kind that is written: see delivered_send

FIGURES = ("entered", "sent", "skipped", "delivered", "opened", "clicked", "replied", "unsubscribed", "bounced",
           "task", "goal", "exited", "completed")
"""The per-step and per-campaign figures, in the order the page and the CSV list them (touch kinds)."""

ENGAGEMENT_FUNNEL = ("entered", "sent", "delivered", "opened", "clicked", "replied", "goal")
"""The campaign funnel's stages, from being enrolled to reaching the goal."""


def delivered_send(event: Any = MarketingEvent) -> Any:
    """A ``sent`` touch whose email has not bounced: what the figure ``delivered`` counts (as HubSpot's and
    Mailchimp's "delivered": accepted by the receiving server, less the bounces). An SMTP server's 250 is not
    delivery, and few relays report success (DSN NOTIFY=SUCCESS), so the figure is derived, not written: a
    bounce that arrives later takes the member out of it at the next count. A member's email of one step
    and cycle is one message (the outbox's unique key), so the bounce is looked for on the same three."""
    bounce = aliased(MarketingEvent)
    return and_(event.kind == TouchKind.SENT.value, ~exists().where(
        bounce.tenant_id == event.tenant_id, bounce.member_id == event.member_id,
        bounce.kind == TouchKind.BOUNCED.value, bounce.step_id == event.step_id, bounce.cycle == event.cycle))


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


@dataclass(frozen=True)
class AsOf:
    """When the tenant's rollup was last counted (None: never) and how long the count took."""

    refreshed_at: dt.datetime | None
    seconds: float | None


def results_as_of(session: Session) -> AsOf:
    """When the ``campaign_results_refresh`` job last counted the session's tenant."""
    row = session.execute(select(CampaignResultsRun.refreshed_at, CampaignResultsRun.seconds)).first()
    return AsOf(row[0], float(row[1])) if row else AsOf(None, None)


def _spans(filters: ResultsFilters) -> list[list[Any]]:
    """The period on the rollup, as conditions each read with one index range (:func:`day_spans`: a partial day
    counts whole); no period: the rows of all days (``day`` None)."""
    daily = CampaignDaily
    if filters.since is None and filters.until is None:
        return [[daily.week.is_(False), daily.day.is_(None)]]
    first = filters.since.date() if filters.since is not None else None
    end = None
    if filters.until is not None:
        end = filters.until.date() + (dt.timedelta(days=1) if filters.until.time() != dt.time() else dt.timedelta())
    return day_spans(daily.week, daily.day, first, end)


def _counts(session: Session, filters: ResultsFilters) -> dict[tuple[str, int | None, int | None], Figures]:
    """Every level's figures, one ``GROUP BY`` over the rollup per span of the period: {(level, campaign, step):
    figures}."""
    daily = CampaignDaily
    actor = actor_of(session)
    # who sees the whole tenant reads the rows summed over the slices (far fewer), others their slices' rows
    where: list[Any] = [daily.whole.is_(actor is None or actor.sees_whole_tenant)]
    if filters.campaign_id is not None:
        where.append(daily.campaign_id == filters.campaign_id)
    sums: dict[tuple[Any, ...], int] = defaultdict(int)
    for span in _spans(filters):
        statement = (select(daily.level, daily.campaign_id, daily.step_id, daily.kind, daily.detail,
                            func.sum(daily.members))
                     .where(*where, *span).group_by(daily.level, daily.campaign_id, daily.step_id, daily.kind,
                                                    daily.detail))
        for *key, members in session.execute(statement):
            sums[tuple(key)] += int(members or 0)
    figures: dict[tuple[str, int | None, int | None], Figures] = defaultdict(Figures)
    for (level, campaign_id, step_id, kind, detail), members in sums.items():
        target = figures[(level, campaign_id, step_id if level == "step" else None)]
        if kind == SKIP:
            target.skipped_by_reason[detail or ""] = members
        else:
            target.counts[kind] = members
    return figures


def _deal_period(filters: ResultsFilters) -> list[Any]:
    """Deals created or won within the period (as :func:`campaign_results_live._pairs_statement`)."""
    influence = CampaignInfluence
    if filters.since is None and filters.until is None:
        return []

    def within(moment: Any) -> Any:
        bounds = [moment.is_not(None)]
        if filters.since is not None:
            bounds.append(moment >= filters.since)
        if filters.until is not None:
            bounds.append(moment < filters.until)
        return and_(*bounds)

    return [or_(within(influence.created_at_deal), within(influence.won_at))]


def _credits(session: Session, filters: ResultsFilters) -> tuple[dict[int, Credit], int, int, Decimal]:
    """Each campaign's credit from the rollup; the influenced deals, the won ones and their revenue."""
    influence = CampaignInfluence
    where = _deal_period(filters)
    if filters.campaign_id is not None:
        where.append(influence.campaign_id == filters.campaign_id)
    won = influence.won_at.is_not(None)
    credits: dict[int, Credit] = {}
    for campaign_id, first, last, linear, deals, won_deals in session.execute(
            select(influence.campaign_id, func.sum(influence.first_credit), func.sum(influence.last_credit),
                   func.sum(influence.linear_credit), func.count(), func.sum(case((won, 1), else_=0)))
            .where(*where).group_by(influence.campaign_id)):
        credits[campaign_id] = Credit(_money(first), _money(last), _money(linear), int(deals), int(won_deals or 0))
    once = [] if filters.campaign_id is not None else [influence.deal_row.is_(True)]  # a deal once over campaigns
    deals, won_deals, revenue = session.execute(
        select(func.count(), func.sum(case((won, 1), else_=0)), func.sum(case((won, influence.amount), else_=0)))
        .where(*where, *once)).one()
    return credits, int(deals or 0), int(won_deals or 0), _money(revenue)


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def assemble(session: Session, filters: ResultsFilters, *, per_step: dict[tuple[int, int | None], Figures],
             per_campaign: dict[tuple[int, int | None], Figures], totals: Figures, credits: dict[int, Credit],
             influenced: int, influenced_won: int, revenue: Decimal) -> CampaignResults:
    """The page's results from figures per (campaign, step), per campaign and over all, and the credit."""
    choices = {choice.id: choice for choice in campaign_choices(session)}
    wanted = [choices[filters.campaign_id]] if filters.campaign_id in choices else (
        [] if filters.campaign_id is not None else list(choices.values()))
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
    if filters.campaign_id is not None:
        totals = per_campaign.get((filters.campaign_id, None), Figures())
    return CampaignResults(
        currency=tenant_currency(session),
        campaigns=[CampaignResult(choice, per_campaign.get((choice.id, None), Figures()),
                                  credits.get(choice.id, Credit())) for choice in wanted],
        steps=steps, totals=totals, influenced_deals=influenced, influenced_won_deals=influenced_won,
        won_revenue=revenue,
    )


def campaign_results(session: Session, filters: ResultsFilters | None = None) -> CampaignResults:
    """Per campaign and per step, the members each kind of touch reached; influenced deals and credited revenue."""
    filters = filters or ResultsFilters()
    counts = _counts(session, filters)
    per_step = {(campaign_id, step_id): figures for (level, campaign_id, step_id), figures in counts.items()
                if level == "step" and campaign_id is not None}
    per_campaign: dict[tuple[int, int | None], Figures] = {
        (campaign_id, None): figures for (level, campaign_id, _step), figures in counts.items()
        if level == "campaign" and campaign_id is not None}
    credits, influenced, influenced_won, revenue = _credits(session, filters)
    return assemble(session, filters, per_step=per_step, per_campaign=per_campaign,
                    totals=counts.get(("tenant", None, None), Figures()), credits=credits, influenced=influenced,
                    influenced_won=influenced_won, revenue=revenue)


def _influenced_statement(filters: ResultsFilters) -> Any:
    influence = CampaignInfluence
    where = _deal_period(filters)
    if filters.campaign_id is not None:
        where.append(influence.campaign_id == filters.campaign_id)
    return (select(influence.opportunity_id, Opportunity.name, influence.customer_id, Customer.name,
                   influence.campaign_id, Campaign.name, influence.amount, influence.created_at_deal,
                   influence.won_at, influence.first_at, influence.last_at, influence.first_credit,
                   influence.last_credit, influence.linear_credit)
            .join(Opportunity, Opportunity.id == influence.opportunity_id)
            .join(Customer, Customer.id == influence.customer_id)
            .join(Campaign, Campaign.id == influence.campaign_id)
            .where(*where))


def _deal(row: Any) -> InfluencedDeal:
    return InfluencedDeal(row[0], row[1], row[2], row[3], row[4], row[5], _money(row[6]), row[7], row[8], row[9],
                          row[10], _money(row[11]), _money(row[12]), _money(row[13]))


def iter_influenced_deals(session: Session, filters: ResultsFilters | None = None) -> Iterator[InfluencedDeal]:
    """Every (deal, campaign) pair the results count, with the pair's credit under each model (by deal id)."""
    statement = _influenced_statement(filters or ResultsFilters()).order_by(CampaignInfluence.opportunity_id,
                                                                            CampaignInfluence.campaign_id)
    for row in session.execute(statement.execution_options(yield_per=2000)):
        yield _deal(row)


def influenced_deals(session: Session, filters: ResultsFilters | None = None, *,
                     limit: int | None = None) -> list[InfluencedDeal]:
    """The influenced (deal, campaign) rows, won ones first, the largest first (the first ``limit`` of them)."""
    influence = CampaignInfluence
    statement = _influenced_statement(filters or ResultsFilters()).order_by(
        influence.won_at.is_(None), influence.amount.desc(), influence.opportunity_id, influence.campaign_id)
    if limit is not None:
        statement = statement.limit(limit)
    return [_deal(row) for row in session.execute(statement)]


def influenced_count(session: Session, filters: ResultsFilters | None = None) -> int:
    """How many (deal, campaign) rows :func:`iter_influenced_deals` yields."""
    return int(session.scalar(select(func.count()).select_from(_influenced_statement(filters or ResultsFilters())
                                                                .subquery())) or 0)


def results_page(session: Session, filters: ResultsFilters | None = None, *,
                 deals_shown: int | None = None) -> tuple[CampaignResults, list[InfluencedDeal]]:
    """What the results page shows: :func:`campaign_results` and the first ``deals_shown`` influenced deals."""
    filters = filters or ResultsFilters()
    return campaign_results(session, filters), influenced_deals(session, filters, limit=deals_shown)

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
