"""Customer churn risk: the probability that a buying customer churns within the churn window.

Churn follows the lifecycle definition: a customer churns when they have had no won
deal, order or activity for more than the tenant's churn window (W days, default 180).

History: at the cutoff ``as_of − W``, every customer who was then a buying customer
(a purchase before the cutoff and a purchase or activity within W days before it) is one
example; features use only what was known at the cutoff; the label is 1 when nothing
(no order, won deal or activity) happened in the W days after it.
Current: the customers who are buying customers at ``as_of``, with the same features.
Prior (used when the history is too thin): days since the last touch ÷ W, capped at 1.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from crm_core.models import (
    Activity,
    Case,
    Customer,
    Opportunity,
    Order,
    OrderStatus,
    PipelineStage,
    StageKind,
    Tenant,
)
from crm_core.scoring.base import Examples, Scorer, days_between


def churn_window(session: Session, tenant_id: int) -> int:
    """The tenant's churn window in days."""
    return int(session.scalar(select(Tenant.churn_window_days).where(Tenant.id == tenant_id)) or 180)


def _frame(statement: Any, session: Session, columns: list[str]) -> pd.DataFrame:
    rows = session.execute(statement).all()
    return pd.DataFrame.from_records([tuple(row) for row in rows], columns=columns)


def _timestamps(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame or frame.empty:
        return np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[s]")
    return pd.to_datetime(frame[column], errors="coerce").to_numpy(dtype="datetime64[s]")


def customer_activity_frame(
    session: Session,
    tenant_id: int,
    *,
    cutoff: dt.datetime,
    window_days: int,
    horizon: dt.datetime | None = None,
    ids: list[int] | None = None,
) -> pd.DataFrame:
    """Per buying customer (at ``cutoff``): purchases, touches, cases and what happened until ``horizon``."""
    horizon = horizon or cutoff
    not_cancelled = and_(
        Order.tenant_id == tenant_id, Order.status != OrderStatus.CANCELLED.value, Order.archived_at.is_(None)
    )
    won = and_(
        Opportunity.tenant_id == tenant_id,
        Opportunity.archived_at.is_(None),
        Opportunity.closed_at.is_not(None),
        PipelineStage.kind == StageKind.WON.value,
    )
    buyers = select(Order.customer_id).where(not_cancelled, Order.ordered_at <= cutoff).union(
        select(Opportunity.customer_id)
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(won, Opportunity.closed_at <= cutoff)
    )
    scope = [Customer.tenant_id == tenant_id, Customer.archived_at.is_(None), Customer.id.in_(buyers)]
    if ids is not None:
        scope.append(Customer.id.in_(ids))
    customers = _frame(
        select(Customer.id, Customer.created_at, Customer.kind, Customer.source, Customer.owner_id).where(*scope),
        session,
        ["customer_id", "created_at", "kind", "source", "owner_id"],
    )
    in_scope = select(Customer.id).where(*scope)
    before, after = Order.ordered_at <= cutoff, and_(Order.ordered_at > cutoff, Order.ordered_at <= horizon)
    orders = _frame(
        select(
            Order.customer_id,
            func.max(case((before, Order.ordered_at))),
            func.sum(case((before, 1), else_=0)),
            func.sum(case((before, Order.total_amount), else_=0)),
            func.sum(case((after, 1), else_=0)),
        )
        .where(not_cancelled, Order.ordered_at <= horizon, Order.customer_id.in_(in_scope))
        .group_by(Order.customer_id),
        session,
        ["customer_id", "last_order_at", "orders", "amount", "orders_after"],
    )
    won_before = Opportunity.closed_at <= cutoff
    won_after = and_(Opportunity.closed_at > cutoff, Opportunity.closed_at <= horizon)
    deals = _frame(
        select(
            Opportunity.customer_id,
            func.max(case((won_before, Opportunity.closed_at))),
            func.sum(case((won_after, 1), else_=0)),
        )
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(won, Opportunity.closed_at <= horizon, Opportunity.customer_id.in_(in_scope))
        .group_by(Opportunity.customer_id),
        session,
        ["customer_id", "last_won_at", "won_after"],
    )
    recent = and_(Activity.occurred_at > cutoff - dt.timedelta(days=90), Activity.occurred_at <= cutoff)
    touched_after = and_(Activity.occurred_at > cutoff, Activity.occurred_at <= horizon)
    activities = _frame(
        select(
            Activity.customer_id,
            func.max(case((Activity.occurred_at <= cutoff, Activity.occurred_at))),
            func.sum(case((recent, 1), else_=0)),
            func.sum(case((touched_after, 1), else_=0)),
        )
        .where(Activity.tenant_id == tenant_id, Activity.occurred_at <= horizon, Activity.customer_id.in_(in_scope))
        .group_by(Activity.customer_id),
        session,
        ["customer_id", "last_activity_at", "activities_90d", "activities_after"],
    )
    cases = _frame(
        select(Case.customer_id, func.count(Case.id))
        .where(
            Case.tenant_id == tenant_id,
            Case.opened_at > cutoff - dt.timedelta(days=365),
            Case.opened_at <= cutoff,
            Case.customer_id.in_(in_scope),
        )
        .group_by(Case.customer_id),
        session,
        ["customer_id", "cases_365d"],
    )
    frame = customers
    for part in (orders, deals, activities, cases):
        frame = frame.merge(part, on="customer_id", how="left")
    for column in ("orders", "amount", "orders_after", "won_after", "activities_90d", "activities_after", "cases_365d"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(float)
    last_order, last_won = _timestamps(frame, "last_order_at"), _timestamps(frame, "last_won_at")
    last_activity = _timestamps(frame, "last_activity_at")
    last_purchase = np.fmax(last_order, last_won)  # fmax ignores NaT
    last_touch = np.fmax(last_purchase, last_activity)
    window_start = np.datetime64(cutoff - dt.timedelta(days=window_days), "s")
    is_customer = ~np.isnat(last_purchase) & (last_touch > window_start)
    frame["days_since_purchase"] = days_between(np.datetime64(cutoff, "s"), last_purchase)
    frame["days_since_touch"] = days_between(np.datetime64(cutoff, "s"), last_touch)
    frame["tenure_days"] = np.clip(days_between(np.datetime64(cutoff, "s"), _timestamps(frame, "created_at")), 0, None)
    frame["churned"] = (frame["orders_after"] + frame["won_after"] + frame["activities_after"]) == 0
    return frame[is_customer].reset_index(drop=True)


def _examples(frame: pd.DataFrame, window_days: int, *, labelled: bool) -> Examples:
    return Examples(
        ids=frame["customer_id"].to_numpy(dtype=np.int64),
        numeric={
            "days_since_purchase": frame["days_since_purchase"].to_numpy(dtype=float),
            "days_since_touch": frame["days_since_touch"].to_numpy(dtype=float),
            "orders_log": np.log1p(frame["orders"].to_numpy(dtype=float)),
            "amount_log": np.log1p(np.clip(frame["amount"].to_numpy(dtype=float), 0, None)),
            "activities_90d": frame["activities_90d"].to_numpy(dtype=float),
            "cases_365d": frame["cases_365d"].to_numpy(dtype=float),
            "tenure_days": frame["tenure_days"].to_numpy(dtype=float),
            "has_owner": frame["owner_id"].notna().to_numpy(dtype=float),
        },
        categorical={
            "kind": frame["kind"].fillna("").astype(str).to_numpy(dtype=object),
            "source": frame["source"].fillna("").astype(str).to_numpy(dtype=object),
        },
        labels=frame["churned"].to_numpy(dtype=int) if labelled else None,
        prior=np.clip(frame["days_since_touch"].to_numpy(dtype=float) / window_days, 0.0, 1.0),
    )


class ChurnRiskScorer(Scorer):
    """Probability (0…1) that a buying customer churns within the tenant's churn window."""

    name = "churn_risk"
    entity = "customer"

    def history(self, session: Session, tenant_id: int, as_of: dt.datetime) -> Examples:
        """Buying customers at ``as_of − W``, labelled by whether they churned by ``as_of``."""
        window = churn_window(session, tenant_id)
        cutoff = as_of - dt.timedelta(days=window)
        frame = customer_activity_frame(session, tenant_id, cutoff=cutoff, window_days=window, horizon=as_of)
        return _examples(frame, window, labelled=True)

    def current(
        self, session: Session, tenant_id: int, as_of: dt.datetime, ids: list[int] | None = None
    ) -> Examples:
        """Buying customers at ``as_of`` (not yet churned)."""
        window = churn_window(session, tenant_id)
        frame = customer_activity_frame(session, tenant_id, cutoff=as_of, window_days=window, ids=ids)
        return _examples(frame, window, labelled=False)


