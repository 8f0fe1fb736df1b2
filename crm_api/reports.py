"""``/v1/reports``: the funnel and the dashboard — the same functions the pages and the CLI call.

:func:`crm_core.queries.reports.funnel` and :func:`~crm_core.queries.reports.dashboard` run in
a session scoped to the token's user, so a rep gets their own figures, a manager their team's,
and the answer is the CLI's ``--json`` (``as_dict``) for the same user: one path for one number.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from crm_api.dependencies import Caller, Db
from crm_api.routing import ApiRoute
from crm_api.schemas import Day, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.queries.reports import ReportFilters, dashboard, funnel

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=ApiRoute)

FUNNEL_EXAMPLE: dict[str, Any] = {
    "pipeline": {"id": 1, "name": "Sales"},
    "filters": {"since": "2026-01-01", "until": None, "owner_id": None, "team_id": None, "product_id": None,
                "pipeline_id": None},
    "steps": [{"stage_id": 1, "stage": "Qualified", "kind": "open", "count": 12, "amount": "240000.00",
               "reached": 40, "reached_amount": "800000.00", "conversion_to_next": 0.55}],
    "total_count": 40, "total_amount": "800000.00", "open_count": 25, "open_amount": "500000.00",
    "weighted_amount": "210000.00", "won_count": 9, "won_amount": "190000.00", "lost_count": 6,
    "lost_amount": "110000.00", "win_rate": 0.6, "average_deal_size": "21111.11", "average_cycle_days": 34.5,
    "lost_by_stage": {"1": 4, "2": 2}, "counted_at": "2026-12-05T09:50:00",
}
DASHBOARD_EXAMPLE: dict[str, Any] = {
    "today": "2026-12-05", "period": "month", "period_start": "2026-12-01", "period_end": "2027-01-01",
    "previous_start": "2026-11-01",
    "compared": {"current": ["2026-12-01T00:00:00", "2026-12-05T10:00:00"],
                 "previous": ["2026-11-01T00:00:00", "2026-11-05T10:00:00"]},
    "open_pipeline": {"count": 25, "amount": "500000.00"}, "weighted_forecast": "210000.00",
    "won": {"count": 3, "amount": "61000.00"}, "won_previous": {"count": 2, "amount": "40000.00"},
    "new_customers": 14, "new_customers_previous": 11, "overdue_tasks": 3,
    "revenue_by_month": [{"month": "2026-12", "amount": "61000.00", "orders": 5}],
    "leaderboard": [{"owner_id": 7, "owner": "Rita Rep", "won_count": 2, "won_amount": "41000.00", "lost_count": 1,
                     "lost_amount": "9000.00", "win_rate": 0.6667}],
    "closing_this_month": {"count": 1, "amount": "20000.00", "deals": [
        {"id": 17, "name": "Scanner fleet", "customer": "Hangzhou Kestrel Trading Co.", "owner": "Rita Rep",
         "stage": "Proposal", "amount": "20000.00", "expected_close_date": "2026-12-20"}]},
    "counted_at": "2026-12-05T09:50:00",
}


class FunnelStepOut(BaseModel):
    """One step: an open stage, or the won stage(s) at the end."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": FUNNEL_EXAMPLE["steps"]})

    stage_id: int
    stage: str
    kind: str
    count: int = Field(description="Deals now at this stage.")
    amount: str = Field(description="Decimal string.")
    reached: int = Field(description="Deals that got this far.")
    reached_amount: str
    conversion_to_next: float | None = Field(description="0–1; null for the won step or when nobody reached it.")


class FunnelOut(BaseModel):
    """The funnel of one pipeline (the CLI's `report funnel --json`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [FUNNEL_EXAMPLE]})

    pipeline: dict[str, Any]
    filters: dict[str, Any]
    steps: list[FunnelStepOut]
    total_count: int
    total_amount: str
    open_count: int
    open_amount: str
    weighted_amount: str
    won_count: int
    won_amount: str
    lost_count: int
    lost_amount: str
    win_rate: float | None = Field(description="won ÷ (won + lost), 0–1.")
    average_deal_size: str | None
    average_cycle_days: float | None
    lost_by_stage: dict[str, int] = Field(description="Lost deals by the stage they were lost from (stage id).")
    counted_at: dt.datetime | None = Field(
        None, description="When the deals created before that day were counted (every 10 minutes); the deals created "
                          "since are live. Null: every deal is counted live.")


class DashboardOut(BaseModel):
    """The dashboard's figures for the caller's scope (the CLI's `report dashboard --json`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [DASHBOARD_EXAMPLE]})

    today: dt.date
    period: str
    period_start: dt.date
    period_end: dt.date = Field(description="Exclusive.")
    previous_start: dt.date
    compared: dict[str, Any] = Field(description="The like-for-like windows won and new customers are counted over.")
    open_pipeline: dict[str, Any]
    weighted_forecast: str
    won: dict[str, Any]
    won_previous: dict[str, Any]
    new_customers: int
    new_customers_previous: int
    overdue_tasks: int
    revenue_by_month: list[dict[str, Any]]
    leaderboard: list[dict[str, Any]]
    closing_this_month: dict[str, Any]
    counted_at: dt.datetime | None = Field(
        None, description="When the deals and orders before that day were counted (every 10 minutes); the rest is "
                          "live. Null: every figure is counted live.")


class FunnelQuery(BaseModel):
    """The funnel's filters (the Reports page's and the CLI's)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    since: Day | None = Field(default=None, description="Deals created on or after this day.")
    until: Day | None = Field(default=None, description="Deals created on or before this day.")
    owner_id: RecordId | None = None
    team_id: RecordId | None = Field(default=None, description="Deals of the team's members.")
    product_id: RecordId | None = Field(default=None, description="Deals that led to an order with this product.")
    pipeline_id: RecordId | None = Field(default=None, description="Default: the default pipeline.")


FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def _reportable(day: dt.date | None) -> dt.date | None:
    """A day the dashboard can report for: its windows and 12-month trend stay inside the calendar."""
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise PydanticCustomError("date_out_of_range", "A day from 1900-01-01 to 2999-12-31.")
    return day


class DashboardQuery(BaseModel):
    """The dashboard's period and day."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    period: Literal["month", "quarter", "year"] = "month"
    today: Annotated[Day | None, AfterValidator(_reportable)] = Field(
        default=None, description="The day to report for, 1900-01-01 to 2999-12-31 (default: today, UTC).")


@router.get("/funnel", response_model=FunnelOut, responses=errors_for(404, 422), summary="The sales funnel")
def funnel_endpoint(query: Annotated[FunnelQuery, Query()], db: Db, found: Caller) -> dict[str, Any]:
    """Deals by stage, conversion, win rate, deal size and cycle, over the deals the caller may see."""
    filters = ReportFilters(since=query.since, until=query.until, owner_id=query.owner_id, team_id=query.team_id,
                            product_id=query.product_id, pipeline_id=query.pipeline_id)
    with db.session(found.actor) as session:
        result = funnel(session, filters=filters)
        if result is None:
            raise NotFound("pipeline")
        return result.as_dict()


@router.get("/dashboard", response_model=DashboardOut, responses=errors_for(422), summary="The dashboard")
def dashboard_endpoint(query: Annotated[DashboardQuery, Query()], db: Db, found: Caller) -> dict[str, Any]:
    """KPIs, revenue by month, the leaderboard and the deals closing this month, for the caller's scope."""
    with db.session(found.actor) as session:
        return dashboard(session, today=query.today, period=query.period).as_dict()
