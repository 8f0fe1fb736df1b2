"""The campaign results rollup (decision 0051): the ``campaign_results_refresh`` job recounts a tenant's
``campaign_daily`` and ``campaign_influence`` rows from the touches, so the results page sums a few
rows instead of joining every touch with every deal.

Pattern: a periodic rebuild of derived rows, as the service dashboard's (decision 0033). The counts
are read in a read-only system session (SQLite's single write lock is not held while they are
counted), every statement ``GROUP BY`` in SQL and scoped to the tenant by hand (a system session is
unscoped); then one short system transaction replaces the tenant's rows and records the instant in
``campaign_results_runs``. Recounting everything, not only what changed, keeps the rows right
whatever changed: a customer changing hands, a deal won, re-opened or archived, a campaign's window.

- ``campaign_daily``: per level (step, campaign, tenant), the members whose *first* touch of a kind
  fell on each UTC day, per slice (the customer's owner and team): one pass of ``min(occurred_at)``
  per member, then a count per day and slice. A member counts once over all days, so a period sums;
  the sum of each slice over all days is kept too (``day`` None), what the page reads without a period,
  and its sum per week (``week``, ``day`` the Monday), what a period's full weeks are read from.
- ``campaign_influence``: the counting (deal, campaign) pairs of the attribution rule are selected in
  SQL (the same join and window as the live query); the credit of each deal is then split by
  :mod:`crm_core.rules.attribution` itself, so the rollup and the rule cannot drift apart (whole-cent
  linear shares, ties by campaign id).

The rows are derived from the touches and deals and are not audited themselves.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Date, Table, and_, delete, func, insert, literal_column, null, or_, select
from sqlalchemy.orm import Session

from crm_core.bulk import insert_rows
from crm_core.db import Database, vacuum_rewritten
from crm_core.models import Campaign, Customer, Opportunity, PipelineStage, StageKind, utcnow
from crm_core.models.marketing import CampaignDaily, CampaignInfluence, CampaignResultsRun, MarketingEvent, TouchKind
from crm_core.queries.campaign_results import ANY, DELIVERED, LEVELS, SKIP, delivered_send
from crm_core.queries.reports import days_between
from crm_core.queries.rollup_spans import week_start
from crm_core.rules.attribution import ATTRIBUTED_TOUCHES, CENT, linear_shares

DAILY_COLUMNS = ["level", "day", "campaign_id", "step_id", "kind", "detail", "customer_owner_id", "customer_team_id",
                 "members", "whole", "week"]
INFLUENCE_COLUMNS = ["opportunity_id", "campaign_id", "customer_id", "amount", "created_at_deal", "won_at", "first_at",
                     "last_at", "first_credit", "last_credit", "linear_credit", "deal_row", "owner_id",
                     "customer_owner_id", "customer_team_id"]
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class RefreshResult:
    """What one recount wrote, and how long it took."""

    daily_rows: int
    influence_rows: int
    seconds: float


def daily_statements(tenant_id: int) -> Iterator[Any]:
    """Statements giving rows of :data:`DAILY_COLUMNS`: per level and variant, first touches counted per day."""
    event = MarketingEvent
    for level in LEVELS:
        levels: dict[str, list[Any]] = {"step": [event.campaign_id, event.step_id], "campaign": [event.campaign_id],
                                        "tenant": []}
        keys = levels[level]
        for variant in ("kind", ANY, SKIP, DELIVERED):
            kind = event.kind if variant == "kind" else literal_column(f"'{variant}'")
            detail = event.detail if variant == SKIP else literal_column("''")
            where = [event.tenant_id == tenant_id]
            groups: list[Any] = [event.customer_id, *keys]
            if variant == "kind":
                groups.append(event.kind)
            if variant == SKIP:
                where.append(event.kind == TouchKind.SKIPPED.value)
                groups.append(event.detail)
            if variant == DELIVERED:
                where.append(delivered_send(event))
            firsts = (select(event.customer_id.label("customer_id"), *(key.label(key.key) for key in keys),
                             kind.label("kind"), detail.label("detail"), func.min(event.occurred_at).label("first_at"))
                      .where(*where).group_by(*groups).subquery())
            day = func.date(firsts.c.first_at, type_=Date)
            campaign = firsts.c.campaign_id if keys else null()
            step = firsts.c.step_id if level == "step" else null()
            grouped = [day, *([firsts.c.campaign_id] if keys else []), *([firsts.c.step_id] if level == "step" else []),
                       firsts.c.kind, firsts.c.detail, Customer.owner_id, Customer.team_id]
            yield (select(literal_column(f"'{level}'"), day, campaign, step, firsts.c.kind, firsts.c.detail,
                          Customer.owner_id, Customer.team_id, func.count())
                   .join(Customer, and_(Customer.id == firsts.c.customer_id, Customer.tenant_id == tenant_id))
                   .group_by(*grouped))


def pairs_statement(session: Session, tenant_id: int) -> Any:
    """Every counting (deal, campaign) pair of the tenant (decision 0050), with what the rollup keeps of it."""
    event, deal = MarketingEvent, Opportunity
    won = PipelineStage.kind == StageKind.WON.value
    window = Campaign.attribution_days
    before_created = and_(event.occurred_at <= deal.created_at,
                          days_between(session, event.occurred_at, deal.created_at) <= window)
    before_won = and_(won, deal.closed_at.is_not(None), event.occurred_at <= deal.closed_at,
                      days_between(session, event.occurred_at, deal.closed_at) <= window)
    return (
        select(deal.id, event.campaign_id, func.min(event.occurred_at), func.max(event.occurred_at),
               PipelineStage.kind, deal.amount, deal.customer_id, deal.created_at, deal.closed_at, deal.owner_id,
               Customer.owner_id, Customer.team_id)
        .join(deal, and_(deal.customer_id == event.customer_id, deal.tenant_id == tenant_id))
        .join(Campaign, and_(Campaign.id == event.campaign_id, Campaign.tenant_id == tenant_id))
        .join(PipelineStage, and_(PipelineStage.id == deal.stage_id, PipelineStage.tenant_id == tenant_id))
        .join(Customer, and_(Customer.id == deal.customer_id, Customer.tenant_id == tenant_id))
        .where(event.tenant_id == tenant_id, event.kind.in_(ATTRIBUTED_TOUCHES), deal.archived_at.is_(None),
               or_(before_created, before_won))
        .group_by(deal.id, event.campaign_id, PipelineStage.kind, deal.amount, deal.customer_id, deal.created_at,
                  deal.closed_at, deal.owner_id, Customer.owner_id, Customer.team_id)
        .order_by(deal.id, event.campaign_id)
    )


def influence_rows(pairs: list[Any]) -> list[tuple[Any, ...]]:
    """Rows of :data:`INFLUENCE_COLUMNS` from the pairs, each deal's won revenue split by the rule."""
    by_deal: dict[int, list[Any]] = defaultdict(list)
    for pair in pairs:
        by_deal[pair[0]].append(pair)
    rows: list[tuple[Any, ...]] = []
    for deal_id, deal_pairs in by_deal.items():
        deal_pairs.sort(key=lambda pair: pair[1])
        won = deal_pairs[0][4] == StageKind.WON.value
        amount = Decimal(str(deal_pairs[0][5] or 0)).quantize(CENT)
        first = min(deal_pairs, key=lambda pair: (pair[2], pair[1]))[1]
        last = max(deal_pairs, key=lambda pair: (pair[3], pair[1]))[1]
        shares = linear_shares(amount, (pair[1] for pair in deal_pairs)) if won else {}
        for index, pair in enumerate(deal_pairs):
            campaign_id = pair[1]
            rows.append((deal_id, campaign_id, pair[6], amount, pair[7], pair[8] if won else None, pair[2], pair[3],
                         amount if won and first == campaign_id else ZERO,
                         amount if won and last == campaign_id else ZERO, shares.get(campaign_id, ZERO),
                         index == 0, pair[9], pair[10], pair[11]))
    return rows


def count_results(session: Session, tenant_id: int) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The tenant's rollup rows, counted in ``session`` (read only): (daily rows, influence rows)."""
    days: list[Any] = []
    for statement in daily_statements(tenant_id):
        days.extend(tuple(row) for row in session.execute(statement))
    # (level, day, campaign, step, kind, detail, owner, team, members) + week, then whole goes in before week
    daily = [(*row, False) for row in [*days, *all_days(days)]] + [(*row, True) for row in weeks(days)]
    rows = [(*row[:-1], False, row[-1]) for row in daily] + [(*row[:-1], True, row[-1]) for row in whole_tenant(daily)]
    return rows, influence_rows(list(session.execute(pairs_statement(session, tenant_id))))


def all_days(days: list[Any]) -> list[tuple[Any, ...]]:
    """Each slice's rows summed over the days (``day`` None): as each member counts on the day of their first
    touch only, the sum counts every member once."""
    sums: dict[tuple[Any, ...], int] = defaultdict(int)
    for level, _day, *key, members in days:
        sums[(level, *key)] += int(members)
    return [(level, None, *key, members) for (level, *key), members in sums.items()]


def weeks(days: list[Any]) -> list[tuple[Any, ...]]:
    """Each slice's day rows summed per week (``day`` its Monday): a period's full weeks are read from these,
    its edges from the day rows (a long period sums a seventh of the rows)."""
    sums: dict[tuple[Any, ...], int] = defaultdict(int)
    for level, day, *key, members in days:
        sums[(level, week_start(day), *key)] += int(members)
    return [(*key, members) for key, members in sums.items()]


def whole_tenant(daily: list[Any]) -> list[tuple[Any, ...]]:
    """The rows summed over the slices (owner and team None): a customer is in one slice, so the sum is exact.
    Rows are (level, day, campaign, step, kind, detail, owner, team, members, week)."""
    sums: dict[tuple[Any, ...], int] = defaultdict(int)
    for level, day, campaign_id, step_id, kind, detail, _owner, _team, members, week in daily:
        sums[(level, day, campaign_id, step_id, kind, detail, week)] += int(members)
    return [(*key[:-1], None, None, members, key[-1]) for key, members in sums.items()]


def store_results(session: Session, tenant_id: int, *, daily: list[Any], influence: list[tuple[Any, ...]],
                  now: dt.datetime, seconds: float) -> None:
    """Replace the tenant's rollup rows and record when they were counted, in ``session``."""
    runs = cast(Table, CampaignResultsRun.__table__)
    for model, columns, rows in ((CampaignDaily, DAILY_COLUMNS, daily),
                                 (CampaignInfluence, INFLUENCE_COLUMNS, influence)):
        table = cast(Table, model.__table__)
        session.execute(delete(table).where(table.c.tenant_id == tenant_id))
        for start in range(0, len(rows), 20_000):
            insert_rows(session, table, [(tenant_id, now, now, *row) for row in rows[start:start + 20_000]],
                        columns=["tenant_id", "created_at", "updated_at", *columns])
    session.execute(delete(runs).where(runs.c.tenant_id == tenant_id))
    session.execute(insert(runs).values(tenant_id=tenant_id, created_at=now, updated_at=now, refreshed_at=now,
                                        seconds=seconds))


def run_campaign_results_refresh(db: Database, tenant_id: int, *, now: dt.datetime | None = None) -> RefreshResult:
    """Count in a read session, then store in a short system transaction (the job calls this)."""
    started = time.perf_counter()
    now = now or utcnow()
    with db.system_session("campaign results rollup", tenant_id=tenant_id) as session:
        daily, influence = count_results(session, tenant_id)
    with db.system_transaction("campaign results rollup", tenant_id=tenant_id) as session:
        store_results(session, tenant_id, daily=daily, influence=influence, now=now,
                      seconds=round(time.perf_counter() - started, 3))
    vacuum_rewritten(db.engine, (CampaignDaily, CampaignInfluence))  # the same rewrite as the sales rollup's
    return RefreshResult(len(daily), len(influence), time.perf_counter() - started)
