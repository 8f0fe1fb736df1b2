"""The sales rollup (decision 0064): the ``sales_rollup`` job recounts a tenant's ``deal_rollup`` and
``order_rollup`` rows, so the funnel and the dashboard add up a few rows per owner instead of reading every
deal and order in the user's scope.

Pattern: a periodic rebuild of derived rows, as the service dashboard's (decision 0033) and the campaign
results' (0051). The sums are read in a read-only system session (SQLite's single write lock is not held while
they are counted), each statement ``GROUP BY`` in SQL and scoped to the tenant by hand; then one short system
transaction replaces the tenant's rows and records the instant. What was there before that instant is counted
(``refreshed_at``); the pages read what came after live (a few minutes of records). Recounting everything, not
only what changed, keeps the rows right whatever changed: a stage move, a deal reopened, archived or handed to
another owner, an edited probability, an order cancelled.

The per-deal expressions are the live funnel's own (:func:`crm_core.queries.deals.probability_expression`,
:func:`crm_core.queries.reports.deal_expressions`: lost-from stage, won and closed, cycle days), so the rollup
cannot drift from them. The
rows are derived and not audited.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Date, Table, case, delete, func, insert, literal_column, select
from sqlalchemy.orm import Session

from crm_core.bulk import insert_rows
from crm_core.db import Database, vacuum_rewritten
from crm_core.models import (
    Customer,
    Opportunity,
    Order,
    OrderStatus,
    PipelineStage,
    StageKind,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from crm_core.models.sales_rollup import CustomerRollup, DealRollup, OrderRollup, SalesRollupRun, TaskRollup
from crm_core.queries.deals import StageRow, probability_expression
from crm_core.queries.reports import deal_expressions
from crm_core.queries.rollup_spans import week_start
from crm_core.queries.sales_rollup import CLOSED, CLOSING, CREATED

DEAL_COLUMNS = ["measure", "day", "week", "pipeline_id", "stage_id", "lost_from_stage_id", "owner_id", "team_id",
                "whole", "deals", "amount", "weighted", "cycle_days", "cycle_deals"]
ORDER_COLUMNS = ["day", "month", "customer_owner_id", "customer_team_id", "whole", "orders", "amount"]
CUSTOMER_COLUMNS = ["day", "week", "owner_id", "team_id", "whole", "customers"]
TASK_COLUMNS = ["assignee_id", "whole", "overdue"]
BOOKED = (OrderStatus.CONFIRMED.value, OrderStatus.FULFILLED.value)
CHUNK = 20_000
KEEP_DAYS = 100  # day rows of the last 100 days before the count: "last 90 days" and this quarter's edges


@dataclass(frozen=True)
class RollupCount:
    """What one recount wrote, and how long it took."""

    deal_rows: int
    order_rows: int
    customer_rows: int
    counted_before: dt.datetime
    seconds: float


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _stages(session: Session, tenant_id: int) -> list[StageRow]:
    rows = session.execute(
        select(PipelineStage.id, PipelineStage.pipeline_id, PipelineStage.name, PipelineStage.position,
               PipelineStage.probability, PipelineStage.kind)
        .where(PipelineStage.tenant_id == tenant_id)
    ).all()
    return [StageRow(*row) for row in rows]


def deal_statements(session: Session, tenant_id: int, counted_before: dt.datetime) -> dict[str, Any]:
    """Per measure, the deals counted before ``counted_before`` grouped by day, pipeline, stage, lost-from stage and
    owner: rows (day, pipeline, stage, lost from, owner, deals, amount, weighted, cycle days, cycle deals). The
    ``closing`` measure's day is the open deal's expected close date."""
    stages = _stages(session, tenant_id)
    lost_ids = [stage.id for stage in stages if stage.kind == StageKind.LOST.value]
    won_ids = [stage.id for stage in stages if stage.kind == StageKind.WON.value]
    open_ids = [stage.id for stage in stages if stage.kind == StageKind.OPEN.value]
    deal = Opportunity
    lost_from, won_closed, cycle = deal_expressions(session, won_ids, lost_ids)
    statements = {}
    for measure, moment, where in (
        (CREATED, deal.created_at, [deal.created_at < counted_before]),
        (CLOSED, deal.closed_at, [deal.stage_id.in_([*won_ids, *lost_ids]), deal.closed_at.is_not(None),
                                  deal.closed_at < counted_before]),
        (CLOSING, deal.expected_close_date, [deal.stage_id.in_(open_ids), deal.expected_close_date.is_not(None),
                                             deal.created_at < counted_before]),
    ):
        statements[measure] = (
            select(func.date(moment, type_=Date).label("rollup_day"), deal.pipeline_id, deal.stage_id,
                   lost_from.label("lost_from"), deal.owner_id, func.count(), func.sum(deal.amount),
                   func.sum(deal.amount * probability_expression(stages)), func.sum(cycle),
                   func.sum(case((won_closed, 1), else_=0)))
            .where(deal.tenant_id == tenant_id, deal.archived_at.is_(None), *where)
            .group_by(literal_column("rollup_day"), deal.pipeline_id, deal.stage_id, literal_column("lost_from"),
                      deal.owner_id)
        )
    return statements


def order_statement(tenant_id: int, counted_before: dt.datetime) -> Any:
    """Booked orders before ``counted_before`` per day and customer owner/team: rows (day, owner, team, orders,
    amount)."""
    return (
        select(func.date(Order.ordered_at, type_=Date).label("rollup_day"), Order.customer_owner_id,
               Order.customer_team_id, func.count(), func.sum(Order.total_amount))
        .where(Order.tenant_id == tenant_id, Order.archived_at.is_(None), Order.status.in_(BOOKED),
               Order.ordered_at < counted_before)
        .group_by(literal_column("rollup_day"), Order.customer_owner_id, Order.customer_team_id)
    )


def customer_statement(tenant_id: int, counted_before: dt.datetime) -> Any:
    """Live customers created before ``counted_before`` per day, owner and team: rows (day, owner, team, count)."""
    return (
        select(func.date(Customer.created_at, type_=Date).label("rollup_day"), Customer.owner_id, Customer.team_id,
               func.count())
        .where(Customer.tenant_id == tenant_id, Customer.archived_at.is_(None), Customer.created_at < counted_before)
        .group_by(literal_column("rollup_day"), Customer.owner_id, Customer.team_id)
    )


def team_members(session: Session, tenant_id: int) -> dict[int, int]:
    """Each user's team (users without one left out): whose deals a team slice holds, as counted."""
    rows = session.execute(select(User.id, User.team_id).where(User.tenant_id == tenant_id))
    return {user_id: team_id for user_id, team_id in rows if team_id is not None}


def task_statement(tenant_id: int, counted_before: dt.datetime) -> Any:
    """Open tasks due before ``counted_before`` per assignee: rows (assignee, count)."""
    return (
        select(Task.assignee_id, func.count())
        .where(Task.tenant_id == tenant_id, Task.status == TaskStatus.OPEN.value, Task.due_at < counted_before)
        .group_by(Task.assignee_id)
    )


def customer_rows(grouped: Iterable[Any], days_from: dt.date) -> list[tuple[Any, ...]]:
    """Rows of :data:`CUSTOMER_COLUMNS`: each day from ``days_from`` and each week, per slice and ``whole``."""
    sums: dict[tuple[Any, ...], int] = defaultdict(int)
    for day, owner_id, team_id, customers in grouped:
        day = _day(day)
        grains = [(week_start(day), True)] + ([(day, False)] if day >= days_from else [])
        for grain_day, week in grains:
            for slice_key, whole in (((owner_id, team_id), False), ((None, None), True)):
                sums[(grain_day, week, *slice_key, whole)] += int(customers)
    return [(*key, customers) for key, customers in sums.items()]


def task_rows(grouped: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Rows of :data:`TASK_COLUMNS`: per assignee, and the sum (``whole``)."""
    rows = [(assignee_id, False, int(count)) for assignee_id, count in grouped]
    return [*rows, (None, True, sum(row[2] for row in rows))]


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def deal_rows(measure: str, grouped: Iterable[Any], days_from: dt.date,
              team_of: dict[int, int] | None = None) -> list[tuple[Any, ...]]:
    """Rows of :data:`DEAL_COLUMNS` from one measure's grouped rows: each day from ``days_from``, each week, every
    day (``created`` only) — for ``closing`` each month only — per owner, for ``created`` again per team of
    ``team_of`` (owner → team, as counted), and all of them again summed over the owners (``whole``)."""
    team_of = team_of or {}
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0.0, 0])
    for day, pipeline_id, stage_id, lost_from, owner_id, deals, amount, weighted, cycle_days, cycle_deals in grouped:
        day = _day(day)
        grains: list[tuple[dt.date | None, bool]] = [(week_start(day), True)]
        if measure == CLOSING:  # the month of the expected close, as the dashboard asks for it
            grains = [(day.replace(day=1), False)]
        elif day >= days_from:
            grains.append((day, False))
        if measure == CREATED:
            grains.append((None, False))
        slices: list[tuple[int | None, int | None, bool]] = [(owner_id, None, False), (None, None, True)]
        if measure == CREATED and owner_id in team_of:
            slices.append((None, team_of[owner_id], False))
        for grain_day, week in grains:
            for owner, team, whole in slices:
                total = sums[(grain_day, week, pipeline_id, stage_id, lost_from, owner, team, whole)]
                total[0] += int(deals)
                total[1] += _decimal(amount)
                total[2] += _decimal(weighted)
                total[3] += float(cycle_days or 0)
                total[4] += int(cycle_deals or 0)
    return [(measure, *key, *total) for key, total in sums.items()]


def _in_index_order(rows: list[Any], columns: list[str], leading: tuple[str, ...]) -> list[Any]:
    """``rows`` sorted by the columns their index leads with (None first): a period's rows then lie together in
    the table, and reading them touches a few pages instead of one page per row."""
    positions = [columns.index(name) for name in leading]

    def key(row: Any) -> tuple[Any, ...]:
        return tuple((row[position] is not None, row[position] if row[position] is not None else 0)
                     for position in positions)

    return sorted(rows, key=key)


def order_rows(grouped: Iterable[Any], counted_before: dt.datetime) -> list[tuple[Any, ...]]:
    """Rows of :data:`ORDER_COLUMNS`: each month, and each day of the count's month, per slice and ``whole``."""
    month_of_count = counted_before.date().replace(day=1)
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for day, owner_id, team_id, orders, amount in grouped:
        day = _day(day)
        grains = [(day.replace(day=1), True)] + ([(day, False)] if day >= month_of_count else [])
        for grain_day, month in grains:
            for slice_key, whole in (((owner_id, team_id), False), ((None, None), True)):
                total = sums[(grain_day, month, *slice_key, whole)]
                total[0] += int(orders)
                total[1] += _decimal(amount)
    return [(*key, *total) for key, total in sums.items()]


@dataclass(frozen=True)
class SalesCount:
    """The rows of one count, per table."""

    deals: list[Any]
    orders: list[Any]
    customers: list[Any]
    tasks: list[Any]
    team_of: dict[int, int]  # user → team, as counted
    days_from: dt.date  # the first day kept as day rows


def count_sales(session: Session, tenant_id: int, counted_before: dt.datetime) -> SalesCount:
    """The tenant's rollup rows, counted in ``session`` (read only)."""
    deals: list[Any] = []
    days_from = counted_before.date() - dt.timedelta(days=KEEP_DAYS)
    team_of = team_members(session, tenant_id)
    for measure, statement in deal_statements(session, tenant_id, counted_before).items():
        deals.extend(deal_rows(measure, session.execute(statement), days_from, team_of))
    return SalesCount(
        deals=deals,
        orders=order_rows(session.execute(order_statement(tenant_id, counted_before)), counted_before),
        customers=customer_rows(session.execute(customer_statement(tenant_id, counted_before)), days_from),
        tasks=task_rows(session.execute(task_statement(tenant_id, counted_before))),
        team_of=team_of,
        days_from=days_from,
    )


def store_sales(session: Session, tenant_id: int, *, counted: SalesCount, now: dt.datetime, seconds: float) -> None:
    """Replace the tenant's rollup rows and record when they were counted, in ``session``."""
    runs = cast(Table, SalesRollupRun.__table__)
    deals = _in_index_order(counted.deals, DEAL_COLUMNS, ("whole", "measure", "week", "owner_id", "team_id", "day"))
    teams: dict[str, list[int]] = defaultdict(list)
    for user_id, team_id in sorted(counted.team_of.items()):
        teams[str(team_id)].append(user_id)
    customers = _in_index_order(counted.customers, CUSTOMER_COLUMNS, ("whole", "week", "owner_id", "day"))
    for model, columns, rows in ((DealRollup, DEAL_COLUMNS, deals), (OrderRollup, ORDER_COLUMNS, counted.orders),
                                 (CustomerRollup, CUSTOMER_COLUMNS, customers),
                                 (TaskRollup, TASK_COLUMNS, counted.tasks)):
        table = cast(Table, model.__table__)
        session.execute(delete(table).where(table.c.tenant_id == tenant_id))
        for start in range(0, len(rows), CHUNK):
            insert_rows(session, table, [(tenant_id, now, now, *row) for row in rows[start:start + CHUNK]],
                        columns=["tenant_id", "created_at", "updated_at", *columns])
    session.execute(delete(runs).where(runs.c.tenant_id == tenant_id))
    session.execute(insert(runs).values(tenant_id=tenant_id, created_at=now, updated_at=now, refreshed_at=now,
                                        seconds=seconds, days_from=counted.days_from,
                                        teams=dict(teams)))


def run_sales_rollup(db: Database, tenant_id: int, *, now: dt.datetime | None = None) -> RollupCount:
    """Count in a read session, then store in a short system transaction (the job calls this)."""
    started = time.perf_counter()
    now = now or utcnow()
    counted_before = now  # the rows count what was there before this instant; the pages read the rest live
    with db.system_session("sales rollup", tenant_id=tenant_id) as session:
        counted = count_sales(session, tenant_id, counted_before)
    with db.system_transaction("sales rollup", tenant_id=tenant_id) as session:
        store_sales(session, tenant_id, counted=counted, now=now, seconds=time.perf_counter() - started)
    vacuum_rewritten(db.engine, (DealRollup, OrderRollup, CustomerRollup, TaskRollup))
    return RollupCount(len(counted.deals), len(counted.orders), len(counted.customers), counted_before,
                       time.perf_counter() - started)
