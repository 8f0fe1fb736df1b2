"""Read side for the funnel and the dashboard: every number is computed in SQL.

Pages, the CLI (``python -m crm_core report funnel|dashboard --json``), the benchmarks and
the tests all call :func:`funnel` and :func:`dashboard`; scoping comes from the session, so a
rep's figures are their own deals, a manager's their teams', an admin's the tenant's.

Definitions (documented once, here):

* **Funnel filters.** ``since``/``until`` select deals *created* in that range (a cohort,
  inclusive days); ``owner_id`` the deal owner; ``team_id`` deals whose owner is in that team;
  ``product_id`` deals that led to an order with a line for that product (the order's
  ``opportunity_id``) — deals carry no product lines themselves; ``pipeline_id`` the
  pipeline (default pipeline when None; stages differ between pipelines).
* **Reached.** A deal reached an open stage when it is now at that stage or a later open
  one, or won (a won deal passed every open stage), or was lost after it: the stage it was
  lost from is read from the deal's stage history; a lost deal without history (imported or
  demo data) counts as having reached only the first open stage.
* **Conversion** from an open stage = deals that reached the next open stage (or, for the
  last open stage, were won) ÷ deals that reached this one.
* **Win rate** = won ÷ (won + lost); **average deal size** = won amount ÷ won deals;
  **average sales cycle** = mean days from ``created_at`` to ``closed_at`` of won deals.
* **Dashboard period**: the calendar month (or quarter/year) containing ``today``, up to now
  (period to date), compared like for like with the same stretch of the period before: on
  2 December at 10:00, 1 December 00:00 – now against 1 November 00:00 – 2 November 10:00
  (:func:`comparison_window`; a day the earlier month lacks is clamped to its last day, and
  the earlier stretch never runs into the current period). Won = deals in a won stage with
  ``closed_at`` in the window;
  new customers by ``created_at``; overdue tasks = open tasks due before now; revenue =
  confirmed or fulfilled orders by ``ordered_at`` month, last 12 months; deals closing this
  month = open deals whose expected close date falls in the current calendar month.
  Amounts are summed as stored (one currency per tenant is assumed).
* **Freshness** (decision 0064): once the ``sales_rollup`` job has counted a tenant, what came before its
  instant is read from the rollup as counted then, and what came after from the records; ``counted_at`` says
  when. ``rollups=False`` reads everything from the records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, func, literal_column, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.access import actor_of
from crm_core.models import (
    Customer,
    Opportunity,
    Order,
    OrderLine,
    OrderStatus,
    StageKind,
    Task,
    TaskStatus,
    Tenant,
    User,
)
from crm_core.models.sales_rollup import CustomerRollup
from crm_core.queries.deals import (
    DealCard,
    PipelineRow,
    StageRow,
    _card,
    by_ids,
    get_pipeline,
    list_pipelines,
    probability_expression,
)
from crm_core.queries.sales_rollup import (
    RollupRun,
    closed_by_owner,
    closed_sums,
    closing_sums,
    customer_count,
    funnel_rows,
    live_clause,
    open_sums,
    overdue_count,
    plan,
    revenue_rows,
    rollup_run,
)

CENT = Decimal("0.01")
PERIODS = ("month", "quarter", "year")
PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def tenant_currency(session: Session) -> str:
    """The acting tenant's currency code (amounts are summed as stored, in this currency)."""
    return session.scalars(select(Tenant.default_currency)).first() or "CNY"


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def days_between(session: Session, start: Any, end: Any) -> Any:
    """SQL for the (fractional) days from ``start`` to ``end`` on this session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return func.julianday(end) - func.julianday(start)
    if dialect == "postgresql":
        return func.extract("epoch", end - start) / 86400.0
    return func.timestampdiff(literal_column("SECOND"), start, end) / 86400.0


def month_of(session: Session, column: Any) -> Any:
    """SQL for ``YYYY-MM`` of a timestamp column on this session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column)
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.date_format(column, "%Y-%m")


# --- funnel ------------------------------------------------------------------------------


@dataclass
class ReportFilters:
    """Filters of the funnel (see the module docstring for their exact meaning)."""

    since: dt.date | None = None
    until: dt.date | None = None
    owner_id: int | None = None
    team_id: int | None = None
    product_id: int | None = None
    pipeline_id: int | None = None


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel: an open stage, or the won stage(s) at the end."""

    stage: StageRow
    count: int  # deals now at this stage
    amount: Decimal
    reached: int  # deals that got this far
    reached_amount: Decimal
    conversion_to_next: float | None  # fraction 0..1; None for the won step or when nobody reached it


@dataclass(frozen=True)
class Funnel:
    """The funnel of one pipeline under ``filters``, with its summary figures."""

    pipeline: PipelineRow
    filters: ReportFilters
    steps: list[FunnelStep]
    total_count: int
    total_amount: Decimal
    open_count: int
    open_amount: Decimal
    weighted_amount: Decimal
    won_count: int
    won_amount: Decimal
    lost_count: int
    lost_amount: Decimal
    win_rate: float | None
    average_deal_size: Decimal | None
    average_cycle_days: float | None
    lost_by_stage: dict[int, int] = field(default_factory=dict)
    counted_at: dt.datetime | None = None  # the deals created before that instant as counted then (None: all live)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the CLI prints this)."""
        return {
            "pipeline": {"id": self.pipeline.id, "name": self.pipeline.name},
            "counted_at": self.counted_at.isoformat() if self.counted_at else None,
            "filters": {key: (value.isoformat() if isinstance(value, dt.date) else value)
                        for key, value in self.filters.__dict__.items()},
            "steps": [
                {
                    "stage_id": step.stage.id, "stage": step.stage.name, "kind": step.stage.kind,
                    "count": step.count, "amount": str(step.amount), "reached": step.reached,
                    "reached_amount": str(step.reached_amount),
                    "conversion_to_next": (
                        None if step.conversion_to_next is None else round(step.conversion_to_next, 4)
                    ),
                }
                for step in self.steps
            ],
            "total_count": self.total_count, "total_amount": str(self.total_amount),
            "open_count": self.open_count, "open_amount": str(self.open_amount),
            "weighted_amount": str(self.weighted_amount),
            "won_count": self.won_count, "won_amount": str(self.won_amount),
            "lost_count": self.lost_count, "lost_amount": str(self.lost_amount),
            "win_rate": None if self.win_rate is None else round(self.win_rate, 4),
            "average_deal_size": None if self.average_deal_size is None else str(self.average_deal_size),
            "average_cycle_days": None if self.average_cycle_days is None else round(self.average_cycle_days, 1),
            "lost_by_stage": {str(key): value for key, value in self.lost_by_stage.items()},
        }


def _report_filtered(statement: Select[Any], filters: ReportFilters, pipeline_id: int) -> Select[Any]:
    statement = statement.where(Opportunity.pipeline_id == pipeline_id, Opportunity.archived_at.is_(None))
    if filters.since is not None:
        statement = statement.where(Opportunity.created_at >= _start_of_day(filters.since))
    if filters.until is not None:
        statement = statement.where(Opportunity.created_at < _start_of_day(filters.until + dt.timedelta(days=1)))
    if filters.owner_id is not None:
        statement = statement.where(Opportunity.owner_id == filters.owner_id)
    if filters.team_id is not None:
        statement = statement.where(Opportunity.owner_id.in_(select(User.id).where(User.team_id == filters.team_id)))
    if filters.product_id is not None:
        statement = statement.where(
            Opportunity.id.in_(
                select(Order.opportunity_id)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(OrderLine.product_id == filters.product_id, Order.archived_at.is_(None))
            )
        )
    return statement


def deal_expressions(session: Session, won_ids: list[int], lost_ids: list[int]) -> tuple[Any, Any, Any]:
    """The per-deal SQL the funnel sums, also what the sales rollup counts (one definition): the stage a lost deal
    was lost from (its latest move into the lost stage, kept on the deal), "won and closed", and a won deal's days
    from creation to close."""
    lost_from = case((Opportunity.stage_id.in_(lost_ids), Opportunity.lost_from_stage_id), else_=None)
    won_closed = and_(Opportunity.stage_id.in_(won_ids), Opportunity.closed_at.is_not(None))
    cycle = case((won_closed, days_between(session, Opportunity.created_at, Opportunity.closed_at)), else_=None)
    return lost_from, won_closed, cycle


def funnel(session: Session, *, filters: ReportFilters | None = None, rollups: bool = True) -> Funnel | None:
    """The funnel of ``filters.pipeline_id`` (default pipeline when None); None if the tenant has none.

    ``rollups=False`` reads every deal live (the reference the rollup is tested against)."""
    filters = filters or ReportFilters()
    pipeline = get_pipeline(session, filters.pipeline_id)
    if pipeline is None:
        return None
    stages = pipeline.stages
    open_stages = [stage for stage in stages if stage.kind == StageKind.OPEN.value]
    won_ids = [stage.id for stage in stages if stage.kind == StageKind.WON.value]
    lost_ids = [stage.id for stage in stages if stage.kind == StageKind.LOST.value]
    lost_from_column, won_closed, cycle = deal_expressions(session, won_ids, lost_ids)
    columns: list[Any] = [
        Opportunity.stage_id,
        func.count(),
        func.sum(Opportunity.amount),
        func.sum(Opportunity.amount * probability_expression(stages)),
        func.sum(cycle),
        func.sum(case((won_closed, 1), else_=0)),
    ]
    columns.append(lost_from_column.label("lost_from"))
    group_by: list[Any] = [Opportunity.stage_id, literal_column("lost_from")]
    statement: Select[Any] | None = _report_filtered(select(*columns).group_by(*group_by), filters, pipeline.id)
    # the rollup answers for the deals created before its count (decision 0064); a product filter reads orders
    # the rollup does not keep: live
    run = rollup_run(session) if rollups and filters.product_id is None else None
    rows: list[Any] = []
    if run is not None:
        reading = plan(_start_of_day(filters.since) if filters.since else None,
                       _start_of_day(filters.until + dt.timedelta(days=1)) if filters.until else None,
                       run, all_days=True)
        rows.extend(funnel_rows(session, run, pipeline.id, lost_ids, reading.spans, owner_id=filters.owner_id,
                                team_id=filters.team_id))
        live_part = live_clause(Opportunity.created_at, reading.live)
        statement = statement.where(live_part) if live_part is not None and statement is not None else None
    if statement is not None:
        rows.extend(session.execute(statement).all())
    result = _assemble_funnel(pipeline, filters, rows, open_stages, won_ids, lost_ids)
    return replace(result, counted_at=run.refreshed_at) if run is not None else result


def _assemble_funnel(
    pipeline: PipelineRow,
    filters: ReportFilters,
    rows: list[Any],
    open_stages: list[StageRow],
    won_ids: list[int],
    lost_ids: list[int],
) -> Funnel:
    """Turn the grouped rows (≤ stages × stages) into steps; arithmetic only, no data scan."""
    position = {stage.id: stage.position for stage in pipeline.stages}
    counts: dict[int, int] = {}
    amounts: dict[int, Decimal] = {}
    weighted = Decimal(0)
    cycle_days_sum = 0.0
    cycle_deals = 0
    furthest: dict[int, tuple[int, Decimal]] = {}  # open-stage position reached → (deals, amount)
    lost_by_stage: dict[int, int] = {}
    first_open = open_stages[0].position if open_stages else 0
    last_open = open_stages[-1].position if open_stages else 0
    for row in rows:
        stage_id, count, amount = row[0], int(row[1]), _money(row[2])
        counts[stage_id] = counts.get(stage_id, 0) + count
        amounts[stage_id] = amounts.get(stage_id, Decimal(0)) + amount
        if stage_id in won_ids:
            cycle_days_sum += float(row[4] or 0)
            cycle_deals += int(row[5] or 0)
            reached_position = last_open
        elif stage_id in lost_ids:
            lost_from = row[6] if len(row) > 6 else None
            if lost_from in position and lost_from not in lost_ids and lost_from not in won_ids:
                reached_position = position[lost_from]
                lost_by_stage[lost_from] = lost_by_stage.get(lost_from, 0) + count
            else:
                reached_position = first_open
        else:
            weighted += Decimal(str(row[3] or 0)) / 100
            reached_position = position.get(stage_id, first_open)
        deals, total = furthest.get(reached_position, (0, Decimal(0)))
        furthest[reached_position] = (deals + count, total + amount)

    won_count = sum(counts.get(stage_id, 0) for stage_id in won_ids)
    won_amount = sum((amounts.get(stage_id, Decimal(0)) for stage_id in won_ids), Decimal(0))
    lost_count = sum(counts.get(stage_id, 0) for stage_id in lost_ids)
    lost_amount = sum((amounts.get(stage_id, Decimal(0)) for stage_id in lost_ids), Decimal(0))
    open_ids = {stage.id for stage in open_stages}
    open_count = sum(count for stage_id, count in counts.items() if stage_id in open_ids)
    open_amount = sum((amount for stage_id, amount in amounts.items() if stage_id in open_ids), Decimal(0))

    reached: list[tuple[int, Decimal]] = []
    for stage in open_stages:
        deals = sum(n for pos, (n, _) in furthest.items() if pos >= stage.position)
        total = sum((a for pos, (_, a) in furthest.items() if pos >= stage.position), Decimal(0))
        reached.append((deals, total))
    steps: list[FunnelStep] = []
    for index, stage in enumerate(open_stages):
        deals, total = reached[index]
        following = reached[index + 1][0] if index + 1 < len(open_stages) else won_count
        steps.append(
            FunnelStep(
                stage=stage, count=counts.get(stage.id, 0), amount=amounts.get(stage.id, Decimal("0.00")),
                reached=deals, reached_amount=total,
                conversion_to_next=(following / deals) if deals else None,
            )
        )
    for stage in pipeline.stages:
        if stage.id in won_ids:
            steps.append(
                FunnelStep(
                    stage=stage, count=counts.get(stage.id, 0), amount=amounts.get(stage.id, Decimal("0.00")),
                    reached=counts.get(stage.id, 0), reached_amount=amounts.get(stage.id, Decimal("0.00")),
                    conversion_to_next=None,
                )
            )
    closed = won_count + lost_count
    return Funnel(
        pipeline=pipeline,
        filters=filters,
        steps=steps,
        total_count=sum(counts.values()),
        total_amount=sum(amounts.values(), Decimal(0)).quantize(CENT),
        open_count=open_count,
        open_amount=open_amount.quantize(CENT),
        weighted_amount=weighted.quantize(CENT),
        won_count=won_count,
        won_amount=won_amount.quantize(CENT),
        lost_count=lost_count,
        lost_amount=lost_amount.quantize(CENT),
        win_rate=(won_count / closed) if closed else None,
        average_deal_size=(won_amount / won_count).quantize(CENT) if won_count else None,
        average_cycle_days=(cycle_days_sum / cycle_deals) if cycle_deals else None,
        lost_by_stage=lost_by_stage,
    )


# --- dashboard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthRevenue:
    """Orders booked in one calendar month."""

    month: str  # YYYY-MM
    amount: Decimal
    orders: int


@dataclass(frozen=True)
class OwnerResult:
    """One line of the won/lost leaderboard."""

    owner_id: int | None
    owner_name: str | None
    won_count: int
    won_amount: Decimal
    lost_count: int
    lost_amount: Decimal

    @property
    def win_rate(self) -> float | None:
        """won ÷ (won + lost) in the period."""
        closed = self.won_count + self.lost_count
        return self.won_count / closed if closed else None


@dataclass(frozen=True)
class Dashboard:
    """The landing page's figures for the acting user's scope."""

    today: dt.date
    period: str
    period_start: dt.date
    period_end: dt.date  # exclusive
    previous_start: dt.date
    window: ComparisonWindow  # what won and new customers are counted over (like for like)
    open_count: int
    open_amount: Decimal
    weighted_forecast: Decimal
    won_count: int
    won_amount: Decimal
    previous_won_count: int
    previous_won_amount: Decimal
    new_customers: int
    previous_new_customers: int
    overdue_tasks: int
    revenue_by_month: list[MonthRevenue]
    leaderboard: list[OwnerResult]
    closing_count: int
    closing_amount: Decimal
    closing_deals: list[DealCard]
    counted_at: dt.datetime | None = None  # what came before that instant as counted then (None: all live)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the CLI prints this)."""
        return {
            "today": self.today.isoformat(), "period": self.period,
            "counted_at": self.counted_at.isoformat() if self.counted_at else None,
            "period_start": self.period_start.isoformat(), "period_end": self.period_end.isoformat(),
            "previous_start": self.previous_start.isoformat(),
            "compared": {
                "current": [self.window.start.isoformat(), self.window.cutoff.isoformat()],
                "previous": [self.window.previous_start.isoformat(), self.window.previous_cutoff.isoformat()],
            },
            "open_pipeline": {"count": self.open_count, "amount": str(self.open_amount)},
            "weighted_forecast": str(self.weighted_forecast),
            "won": {"count": self.won_count, "amount": str(self.won_amount)},
            "won_previous": {"count": self.previous_won_count, "amount": str(self.previous_won_amount)},
            "new_customers": self.new_customers, "new_customers_previous": self.previous_new_customers,
            "overdue_tasks": self.overdue_tasks,
            "revenue_by_month": [
                {"month": m.month, "amount": str(m.amount), "orders": m.orders} for m in self.revenue_by_month
            ],
            "leaderboard": [
                {"owner_id": r.owner_id, "owner": r.owner_name, "won_count": r.won_count,
                 "won_amount": str(r.won_amount), "lost_count": r.lost_count, "lost_amount": str(r.lost_amount),
                 "win_rate": None if r.win_rate is None else round(r.win_rate, 4)}
                for r in self.leaderboard
            ],
            "closing_this_month": {
                "count": self.closing_count, "amount": str(self.closing_amount),
                "deals": [
                    {"id": d.id, "name": d.name, "customer": d.customer_name, "owner": d.owner_name,
                     "stage": d.stage_name, "amount": str(d.amount),
                     "expected_close_date": d.expected_close_date.isoformat() if d.expected_close_date else None}
                    for d in self.closing_deals
                ],
            },
        }


def period_bounds(today: dt.date, period: str) -> tuple[dt.date, dt.date, dt.date]:
    """(start, end exclusive, previous start) of the calendar month/quarter/year containing ``today``."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    months = PERIOD_MONTHS[period]
    first_month = (today.month - 1) // months * months + 1 if period != "year" else 1
    start = dt.date(today.year, first_month, 1)
    return start, add_months(start, months), add_months(start, -months)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def shift_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time ``months`` later (earlier when negative); the 31st becomes the month's last day."""
    first = add_months(moment.date(), months)
    last_day = (add_months(first, 1) - dt.timedelta(days=1)).day
    return dt.datetime.combine(first.replace(day=min(moment.day, last_day)), moment.time())


@dataclass(frozen=True)
class ComparisonWindow:
    """Period to date and the same stretch of the period before (starts inclusive, cutoffs exclusive)."""

    start: dt.datetime
    cutoff: dt.datetime
    previous_start: dt.datetime
    previous_cutoff: dt.datetime

    @property
    def last_day(self) -> dt.date:
        """The last calendar day the current stretch covers."""
        return (self.cutoff - dt.timedelta(microseconds=1)).date()

    @property
    def previous_last_day(self) -> dt.date:
        """The last calendar day the earlier stretch covers."""
        return (self.previous_cutoff - dt.timedelta(microseconds=1)).date()


def comparison_window(today: dt.date, period: str, *, now: dt.datetime | None = None) -> ComparisonWindow:
    """The like-for-like window of the dashboard's comparisons (see the module's definitions).

    The current stretch runs from the period's start to ``now`` when ``now`` falls on
    ``today``, else to the end of ``today`` (a report for a past day); the earlier one covers
    the same days and hours of the period before, never reaching into the current period.
    """
    start, end, previous = period_bounds(today, period)
    day_after = _start_of_day(today + dt.timedelta(days=1))
    cutoff = now if now is not None and now.date() == today else day_after
    cutoff = min(cutoff, _start_of_day(end))
    previous_cutoff = min(shift_months(cutoff, -PERIOD_MONTHS[period]), _start_of_day(start))
    return ComparisonWindow(_start_of_day(start), cutoff, _start_of_day(previous), previous_cutoff)


def dashboard(
    session: Session, *, today: dt.date | None = None, period: str = "month", now: dt.datetime | None = None,
    closing_limit: int = 10, leaderboard_limit: int = 10, rollups: bool = True,
) -> Dashboard:
    """Every dashboard figure for the session's actor, computed in SQL (one query per figure).

    ``rollups=False`` reads every deal and order live (the reference the sales rollup is tested against).
    """
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    today = today or now.date()
    start, end, previous = period_bounds(today, period)
    window = comparison_window(today, period, now=now)
    pipelines = list_pipelines(session)
    stages = [stage for pipeline in pipelines for stage in pipeline.stages]
    open_ids = [stage.id for stage in stages if stage.kind == StageKind.OPEN.value]
    won_ids = [stage.id for stage in stages if stage.kind == StageKind.WON.value]
    lost_ids = [stage.id for stage in stages if stage.kind == StageKind.LOST.value]
    live = Opportunity.archived_at.is_(None)

    # naming every pipeline lets the (tenant, pipeline, stage, …) covering index serve the sums
    in_pipelines = Opportunity.pipeline_id.in_([pipeline.id for pipeline in pipelines])
    run = rollup_run(session) if rollups else None  # decision 0064: the rollup answers for what came before its count
    open_where: list[Any] = [live, in_pipelines, Opportunity.stage_id.in_(open_ids)]
    open_sum = (0, Decimal(0), Decimal(0))
    if run is not None:
        counted, amount, weighted = open_sums(session, run, open_ids)
        open_sum = (counted, Decimal(str(amount or 0)), Decimal(str(weighted or 0)))
        open_where.append(Opportunity.created_at >= run.counted_before)
    open_row = session.execute(
        select(func.count(), func.sum(Opportunity.amount),
               func.sum(Opportunity.amount * probability_expression(stages)))
        .where(*open_where)
    ).one()
    open_count = open_sum[0] + int(open_row[0] or 0)
    open_amount = open_sum[1] + Decimal(str(open_row[1] or 0))
    open_weighted = open_sum[2] + Decimal(str(open_row[2] or 0))

    won = {1: _closed_in(session, won_ids, window.start, window.cutoff, run),
           0: _closed_in(session, won_ids, window.previous_start, window.previous_cutoff, run)}

    new_customers = {1: _new_customers(session, window.start, window.cutoff, run),
                     0: _new_customers(session, window.previous_start, window.previous_cutoff, run)}

    # overdue tasks *assigned to* the people whose work the actor sees (everyone for admins and
    # analysts); the access layer would also admit colleagues' tasks on visible customers
    overdue_where = [Task.status == TaskStatus.OPEN.value, Task.due_at < now]
    actor = actor_of(session)
    assignees = None
    if actor is not None and not actor.sees_whole_tenant:
        assignees = sorted(actor.visible_owner_ids | {actor.user_id})
        overdue_where.append(Task.assignee_id.in_(assignees))
    overdue = 0
    if run is not None and run.counted_before <= now:  # the rollup's: due before its count, open then
        overdue = overdue_count(session, assignees)
        overdue_where.append(Task.due_at >= run.counted_before)
    overdue += int(session.scalar(select(func.count()).select_from(Task).where(*overdue_where)) or 0)

    revenue = _revenue(session, today, 12, run)
    leaderboard = _leaderboard(session, start, end, won_ids, lost_ids, leaderboard_limit, run)

    month_start, _, _ = period_bounds(today, "month")
    month_end = add_months(month_start, 1)
    closing_where = and_(
        live, Opportunity.stage_id.in_(open_ids),
        Opportunity.expected_close_date >= month_start, Opportunity.expected_close_date < month_end,
    )
    closing_count, closing_amount = 0, Decimal(0)
    count_where = closing_where
    if run is not None:  # decision 0064: the deals created before the count as counted, the rest live
        counted, summed = closing_sums(session, month_start)
        closing_count, closing_amount = counted, Decimal(str(summed or 0))
        count_where = and_(closing_where, Opportunity.created_at >= run.counted_before)
    closing_row = session.execute(select(func.count(), func.sum(Opportunity.amount)).where(count_where)).one()
    closing_count += int(closing_row[0] or 0)
    closing_amount += Decimal(str(closing_row[1] or 0))
    # ids first, read by amount from the top (ties: the newer deal first) until ten match, then the few full rows
    top_ids = list(
        session.scalars(
            select(Opportunity.id).where(closing_where).order_by(Opportunity.amount.desc(), Opportunity.id.desc())
            .limit(closing_limit)
        )
    )
    owner = aliased(User)
    closing = session.execute(
        by_ids(
            select(Opportunity, Customer.name, owner.full_name)
            .join(Customer, Customer.id == Opportunity.customer_id)
            .outerjoin(owner, owner.id == Opportunity.owner_id),
            top_ids,
        ).order_by(Opportunity.amount.desc(), Opportunity.id.desc())
    ).all() if top_ids else []
    stage_rows = {stage.id: stage for stage in stages}

    return Dashboard(
        today=today, period=period, period_start=start, period_end=end, previous_start=previous, window=window,
        open_count=open_count, open_amount=_money(open_amount), weighted_forecast=_money(open_weighted / 100),
        won_count=won.get(1, (0, Decimal("0.00")))[0], won_amount=won.get(1, (0, Decimal("0.00")))[1],
        previous_won_count=won.get(0, (0, Decimal("0.00")))[0],
        previous_won_amount=won.get(0, (0, Decimal("0.00")))[1],
        new_customers=new_customers.get(1, 0), previous_new_customers=new_customers.get(0, 0),
        overdue_tasks=overdue,
        revenue_by_month=revenue,
        leaderboard=leaderboard,
        closing_count=closing_count, closing_amount=_money(closing_amount),
        closing_deals=[_card(deal, customer, owner_name, stage_rows) for deal, customer, owner_name in closing],
        counted_at=run.refreshed_at if run is not None else None,
    )


def _closed_in(
    session: Session, stage_ids: list[int], start: dt.datetime, end: dt.datetime, run: RollupRun | None
) -> tuple[int, Decimal]:
    """(deals, amount) closed at ``stage_ids`` in ``[start, end)``: the rollup's days up to its count, the rest
    live."""
    count, amount = 0, Decimal(0)
    where: list[Any] = [Opportunity.closed_at >= start, Opportunity.closed_at < end]
    if run is not None:
        reading = plan(start, end, run)
        counted, summed = closed_sums(session, stage_ids, reading.spans)
        count, amount = counted, Decimal(str(summed or 0))
        live_part = live_clause(Opportunity.closed_at, reading.live)
        if live_part is None:
            return count, _money(amount)
        where = [live_part]
    row = session.execute(
        select(func.count(), func.sum(Opportunity.amount))
        .where(Opportunity.archived_at.is_(None), Opportunity.stage_id.in_(stage_ids), *where)
    ).one()
    return count + int(row[0] or 0), _money(amount + Decimal(str(row[1] or 0)))


def _new_customers(session: Session, start: dt.datetime, end: dt.datetime, run: RollupRun | None) -> int:
    """Live customers created in ``[start, end)``: the rollup's days up to its count, the rest live."""
    count = 0
    where: list[Any] = [Customer.created_at >= start, Customer.created_at < end]
    if run is not None:
        reading = plan(start, end, run, rollup=CustomerRollup)
        count = customer_count(session, reading.spans)
        live_part = live_clause(Customer.created_at, reading.live)
        if live_part is None:
            return count
        where = [live_part]
    return count + int(session.scalar(
        select(func.count()).select_from(Customer).where(Customer.archived_at.is_(None), *where)) or 0)


def revenue_by_month(session: Session, *, today: dt.date, months: int = 12, rollups: bool = True) -> list[MonthRevenue]:
    """Confirmed and fulfilled orders per calendar month, the ``months`` up to ``today``'s (zeros included)."""
    return _revenue(session, today, months, rollup_run(session) if rollups else None)


def _revenue(session: Session, today: dt.date, months: int, run: RollupRun | None) -> list[MonthRevenue]:
    first = add_months(dt.date(today.year, today.month, 1), -(months - 1))
    start, end = _start_of_day(first), _start_of_day(add_months(first, months))
    sums: dict[str, tuple[Decimal, int]] = {}

    def add(month: str, amount: Any, orders: int) -> None:
        known = sums.get(month, (Decimal(0), 0))
        sums[month] = (known[0] + Decimal(str(amount or 0)), known[1] + orders)

    live_from: dt.datetime | None = start  # decision 0064: the rollup answers for the days up to its count
    if run is not None:
        counted, live_from = revenue_rows(session, first, add_months(first, months), run)
        for month_start, amount, orders in counted:
            add(month_start.strftime("%Y-%m"), amount, orders)
    if live_from is not None:
        bucket = month_of(session, Order.ordered_at)
        for row in session.execute(
            select(bucket, func.sum(Order.total_amount), func.count())
            .where(
                Order.archived_at.is_(None),
                Order.status.in_([OrderStatus.CONFIRMED.value, OrderStatus.FULFILLED.value]),
                Order.ordered_at >= live_from,
                Order.ordered_at < end,
            )
            .group_by(bucket)
        ):
            add(row[0], row[1], int(row[2]))
    found = {month: (_money(amount), orders) for month, (amount, orders) in sums.items()}
    result = []
    for offset in range(months):
        month = add_months(first, offset).strftime("%Y-%m")
        amount, count = found.get(month, (Decimal("0.00"), 0))
        result.append(MonthRevenue(month, amount, count))
    return result


def _leaderboard(
    session: Session, start: dt.date, end: dt.date, won_ids: list[int], lost_ids: list[int], limit: int,
    run: RollupRun | None = None,
) -> list[OwnerResult]:
    """The owners with the most won in the period, ties by owner id; with a rollup, its days up to its count
    and the rest live, added per owner (a period holds few owners' rows: the rollup keeps one per owner and day)."""
    is_won = Opportunity.stage_id.in_(won_ids)
    won_amount = func.sum(case((is_won, Opportunity.amount), else_=0))
    statement = (
        select(
            Opportunity.owner_id,
            func.sum(case((is_won, 1), else_=0)),
            won_amount,
            func.sum(case((is_won, 0), else_=1)),
            func.sum(case((is_won, 0), else_=Opportunity.amount)),
        )
        .where(
            Opportunity.archived_at.is_(None),
            or_(is_won, Opportunity.stage_id.in_(lost_ids)),
            Opportunity.closed_at >= _start_of_day(start), Opportunity.closed_at < _start_of_day(end),
        )
        .group_by(Opportunity.owner_id)
    )
    rows: Sequence[Any]
    if run is None:
        rows = session.execute(statement.order_by(won_amount.desc(), Opportunity.owner_id).limit(limit)).all()
    else:
        reading = plan(_start_of_day(start), _start_of_day(end), run)
        parts = list(closed_by_owner(session, won_ids, lost_ids, reading.spans))
        live_part = live_clause(Opportunity.closed_at, reading.live)
        if live_part is not None:
            parts.extend(session.execute(statement.where(live_part)).all())
        sums: dict[int | None, list[Any]] = {}
        for owner_id, *figures in parts:
            total = sums.setdefault(owner_id, [0, Decimal(0), 0, Decimal(0)])
            for index, value in enumerate(figures):
                total[index] += Decimal(str(value or 0)) if index % 2 else int(value or 0)
        rows = sorted(((owner_id, *total) for owner_id, total in sums.items()),
                      key=lambda row: (-row[2], row[0] is None, row[0] or 0))[:limit]
    owner_ids = [row[0] for row in rows if row[0] is not None]
    names: dict[int, str] = {}
    if owner_ids:
        names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(owner_ids))).all())
    return [
        OwnerResult(row[0], names.get(row[0]), int(row[1] or 0), _money(row[2]), int(row[3] or 0), _money(row[4]))
        for row in rows
    ]


def product_choices(session: Session, *, limit: int = 500) -> list[tuple[int, str]]:
    """(id, "SKU · name") of the tenant's products, for the funnel's product filter."""
    from crm_core.models import Product

    rows = session.execute(
        select(Product.id, Product.sku, Product.name)
        .where(Product.archived_at.is_(None))
        .order_by(Product.name)
        .limit(limit)
    ).all()
    return [(row[0], f"{row[1]} · {row[2]}") for row in rows]


FUNNEL_CSV_COLUMNS = ("stage", "kind", "count", "amount", "reached", "reached_amount", "conversion_to_next")


def funnel_csv_rows(result: Funnel) -> list[list[Any]]:
    """The funnel's steps as rows of FUNNEL_CSV_COLUMNS (conversion in percent), then the summary."""
    rows: list[list[Any]] = [
        [
            step.stage.name, step.stage.kind, step.count, step.amount, step.reached, step.reached_amount,
            None if step.conversion_to_next is None else round(step.conversion_to_next * 100, 1),
        ]
        for step in result.steps
    ]
    return rows
