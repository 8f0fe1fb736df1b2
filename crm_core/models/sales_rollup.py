"""The sales rollup (decision 0064): the funnel's and the dashboard's deal and revenue figures, counted by a job.

Rows are derived from ``opportunities``, ``orders``, ``customers`` and ``tasks`` by the ``sales_rollup`` job and
read by :mod:`crm_core.queries.sales_rollup` under the same access rule as the rows they count (a deal's owner;
an order's or customer's owner and team; a task's assignee). They count what was there before the count's
instant (``sales_rollup_runs.refreshed_at``; the UTC day of that instant holds its records up to it): what
came after is read live, so new work shows at once. ``whole`` rows repeat every figure
summed over the slices (owner and team None) for those who see the whole tenant: they read far fewer rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, Double, Float, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped


class DealRollup(TenantScoped, Base):
    """Deals counted per slice (the deal's owner), pipeline, stage and the stage a lost deal was lost from.

    ``measure`` says what the day is: ``created`` rows count the deals created that day *at the stage they
    were at when counted* (the funnel's cohorts, the open pipeline); ``closed`` rows the won and lost deals
    closed that day (won in a period, the leaderboard). A slice is an owner (``owner_id``; None: the unowned deals)
    or, for ``created`` rows only, a team (``team_id``, ``owner_id`` None): the deals of the users who were its
    members when counted (``SalesRollupRun.teams``), which a manager's funnel reads instead of one slice per member
    while the team is as it was. ``day`` None: a slice's ``created`` rows over all days
    before the count; ``week``: a slice's days summed per week (``day`` its Monday), what a period's full
    weeks are read from. Day rows are kept for the last ``KEEP_DAYS`` days before the count only (a period's
    edges further back are read live): the rows then stop growing with the history. ``weighted`` is the
    sum of amount × effective probability (percent), as the live sums; ``cycle_days``/``cycle_deals`` the won
    deals' days from creation to close.
    """

    __tablename__ = "deal_rollup"
    # the owner (the team) before the day: a rep's (a manager's) rows of a period are one short range per owner
    # (per team)
    __table_args__ = (Index(None, "tenant_id", "whole", "measure", "week", "owner_id", "day"),
                      Index(None, "tenant_id", "measure", "week", "team_id", "day"))

    measure: Mapped[str] = mapped_column(String(8))
    day: Mapped[dt.date | None] = mapped_column(Date)
    week: Mapped[bool] = mapped_column(Boolean, default=False)
    pipeline_id: Mapped[int] = mapped_column(Integer)
    stage_id: Mapped[int] = mapped_column(Integer)
    lost_from_stage_id: Mapped[int | None] = mapped_column(Integer)
    owner_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    whole: Mapped[bool] = mapped_column(Boolean, default=False)
    deals: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    weighted: Mapped[Decimal] = mapped_column(Numeric(22, 4))
    cycle_days: Mapped[float] = mapped_column(Double, default=0.0)  # DOUBLE: MariaDB's FLOAT is single precision
    cycle_deals: Mapped[int] = mapped_column(Integer, default=0)


class OrderRollup(TenantScoped, Base):
    """Confirmed and fulfilled orders per slice (the customer's owner and team) and month (``month`` true,
    ``day`` the first of the month) or day (the days of the count's month up to the count only)."""

    __tablename__ = "order_rollup"
    __table_args__ = (Index(None, "tenant_id", "whole", "month", "day"),)

    day: Mapped[dt.date] = mapped_column(Date)
    month: Mapped[bool] = mapped_column(Boolean, default=False)
    customer_owner_id: Mapped[int | None] = mapped_column(Integer)
    customer_team_id: Mapped[int | None] = mapped_column(Integer)
    whole: Mapped[bool] = mapped_column(Boolean, default=False)
    orders: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))


class CustomerRollup(TenantScoped, Base):
    """Live customers by the UTC day they were created, per slice (their owner and team): day rows for the kept
    days, week rows for all history (``day`` the Monday), and ``whole`` rows summed over the slices."""

    __tablename__ = "customer_rollup"
    __table_args__ = (Index(None, "tenant_id", "whole", "week", "owner_id", "day"),)

    day: Mapped[dt.date] = mapped_column(Date)
    week: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    whole: Mapped[bool] = mapped_column(Boolean, default=False)
    customers: Mapped[int] = mapped_column(Integer)


class TaskRollup(TenantScoped, Base):
    """Open tasks due before the count's instant, per assignee (``whole``: all of them), as they were when counted."""

    __tablename__ = "task_rollup"
    __table_args__ = (Index(None, "tenant_id", "whole", "assignee_id"),)

    assignee_id: Mapped[int | None] = mapped_column(Integer)
    whole: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue: Mapped[int] = mapped_column(Integer)


class SalesRollupRun(TenantScoped, Base):
    """When a tenant's sales rollup was last counted: ``refreshed_at`` the instant (its rows count what was there
    before it; what came after is read live), ``days_from`` the first day :class:`DealRollup` and
    :class:`CustomerRollup` keep day rows for (before it, weeks only), ``teams`` each team's members when counted
    (``{"team id": [user ids]}``: whose deals a team's rows hold)."""

    __tablename__ = "sales_rollup_runs"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    days_from: Mapped[dt.date] = mapped_column(Date)
    teams: Mapped[dict[str, list[int]]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
