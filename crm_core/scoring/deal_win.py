"""Deal win probability: the chance that an open deal ends in a won stage.

History: closed deals (a won or lost stage, ``closed_at`` up to ``as_of``), label 1 = won.
Features are what is known while a deal is open: its amount, whether the rep set a
probability by hand, the activities logged on it, the customer's kind, source and
industry, and how long the customer had been known when the deal was created.
Current: open deals. Prior (used when the history is too thin): the deal's own
probability, else its stage's probability (percent ÷ 100).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Activity, Customer, Opportunity, PipelineStage, StageKind
from crm_core.scoring.base import Examples, Scorer, days_between


def deal_frame(
    session: Session, tenant_id: int, *, as_of: dt.datetime, closed: bool, ids: list[int] | None = None
) -> pd.DataFrame:
    """Deals (closed ones for history, open ones for scoring) with their features."""
    activity_counts = (
        select(Activity.opportunity_id.label("opportunity_id"), func.count(Activity.id).label("activities"))
        .where(Activity.tenant_id == tenant_id, Activity.opportunity_id.is_not(None), Activity.occurred_at <= as_of)
        .group_by(Activity.opportunity_id)
        .subquery()
    )
    statement = (
        select(
            Opportunity.id, Opportunity.amount, Opportunity.probability, Opportunity.created_at,
            PipelineStage.kind, PipelineStage.probability, Customer.kind, Customer.source, Customer.industry,
            Customer.created_at, func.coalesce(activity_counts.c.activities, 0),
        )
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .outerjoin(activity_counts, activity_counts.c.opportunity_id == Opportunity.id)
        .where(Opportunity.tenant_id == tenant_id, Opportunity.archived_at.is_(None), Customer.archived_at.is_(None))
    )
    if closed:
        statement = statement.where(
            PipelineStage.kind.in_([StageKind.WON.value, StageKind.LOST.value]),
            Opportunity.closed_at.is_not(None),
            Opportunity.closed_at <= as_of,
        )
    else:
        statement = statement.where(PipelineStage.kind == StageKind.OPEN.value)
    if ids is not None:
        statement = statement.where(Opportunity.id.in_(ids))
    columns = [
        "opportunity_id", "amount", "manual_probability", "created_at", "stage_kind", "stage_probability",
        "customer_kind", "source", "industry", "customer_created_at", "activities",
    ]
    return pd.DataFrame.from_records([tuple(row) for row in session.execute(statement)], columns=columns)


def _examples(frame: pd.DataFrame, *, labelled: bool) -> Examples:
    created = pd.to_datetime(frame["created_at"], errors="coerce").to_numpy(dtype="datetime64[s]")
    known_since = pd.to_datetime(frame["customer_created_at"], errors="coerce").to_numpy(dtype="datetime64[s]")
    manual = pd.to_numeric(frame["manual_probability"], errors="coerce")
    stage = pd.to_numeric(frame["stage_probability"], errors="coerce").fillna(0)
    amount = pd.to_numeric(frame["amount"], errors="coerce").fillna(0)
    return Examples(
        ids=frame["opportunity_id"].to_numpy(dtype=np.int64),
        numeric={
            "amount_log": np.log1p(np.clip(amount.to_numpy(float), 0, None)),
            "manual_probability_set": manual.notna().to_numpy(dtype=float),
            "deal_activities": pd.to_numeric(frame["activities"], errors="coerce").fillna(0).to_numpy(float),
            "customer_age_days": np.clip(np.nan_to_num(days_between(created, known_since)), 0, None),
        },
        categorical={
            "customer_kind": frame["customer_kind"].fillna("").astype(str).to_numpy(dtype=object),
            "source": frame["source"].fillna("").astype(str).to_numpy(dtype=object),
            "industry": frame["industry"].fillna("").astype(str).to_numpy(dtype=object),
        },
        labels=(frame["stage_kind"] == StageKind.WON.value).to_numpy(dtype=int) if labelled else None,
        prior=(manual.fillna(stage).to_numpy(dtype=float) / 100.0),
    )


class DealWinScorer(Scorer):
    """Probability (0…1) that an open deal is won."""

    name = "deal_win"
    entity = "opportunity"

    def history(self, session: Session, tenant_id: int, as_of: dt.datetime) -> Examples:
        """Closed deals, labelled won (1) or lost (0)."""
        return _examples(deal_frame(session, tenant_id, as_of=as_of, closed=True), labelled=True)

    def current(
        self, session: Session, tenant_id: int, as_of: dt.datetime, ids: list[int] | None = None
    ) -> Examples:
        """Open deals."""
        return _examples(deal_frame(session, tenant_id, as_of=as_of, closed=False, ids=ids), labelled=False)
