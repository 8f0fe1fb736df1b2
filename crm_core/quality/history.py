"""Read side of the Data quality page: past check runs and the pass/fail trend, aggregated in SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm_core.access import actor_of
from crm_core.errors import AccessDenied
from crm_core.models import User, utcnow
from crm_core.models.checks import CheckRun


@dataclass(frozen=True)
class CheckRunRow:
    """One past run, as the history table shows it."""

    run_id: int
    suite: str
    started_at: dt.datetime
    status: str
    expectations_total: int
    expectations_failed: int
    violations: int
    trigger: str
    run_by: str | None


@dataclass(frozen=True)
class TrendPoint:
    """Runs of one suite on one day: how many passed and failed, and the most violations seen."""

    day: dt.date
    suite: str
    passed: int
    failed: int
    violations: int


def _require_admin(session: Session) -> None:
    actor = actor_of(session)
    if actor is not None and not actor.is_admin:
        raise AccessDenied("only an admin may read data-quality results")


def list_check_runs(session: Session, *, suite: str | None = None, limit: int = 50) -> list[CheckRunRow]:
    """The latest runs, newest first (the session's actor scopes them to their tenant)."""
    _require_admin(session)
    statement = (
        select(CheckRun, User.full_name)
        .outerjoin(User, User.id == CheckRun.user_id)
        .order_by(CheckRun.started_at.desc(), CheckRun.id.desc())
        .limit(limit)
    )
    if suite:
        statement = statement.where(CheckRun.suite == suite)
    return [
        CheckRunRow(run.id, run.suite, run.started_at, run.status, run.expectations_total,
                    run.expectations_failed, run.violations, run.trigger, full_name)
        for run, full_name in session.execute(statement)
    ]


def check_run_details(session: Session, run_id: int) -> list[dict[str, Any]]:
    """The per-check results stored with one run (empty when the run is not visible)."""
    _require_admin(session)
    results = session.scalar(select(CheckRun.results).where(CheckRun.id == run_id))
    return list(results or [])


def check_trend(session: Session, *, days: int = 30, today: dt.date | None = None) -> list[TrendPoint]:
    """Passed and failed runs per suite and day over the last ``days`` days, oldest first."""
    _require_admin(session)
    since = dt.datetime.combine((today or utcnow().date()) - dt.timedelta(days=days - 1), dt.time())
    day = func.date(CheckRun.started_at)
    statement = (
        select(
            day.label("day"),
            CheckRun.suite,
            func.sum(case((CheckRun.status == "passed", 1), else_=0)).label("passed"),
            func.sum(case((CheckRun.status != "passed", 1), else_=0)).label("failed"),
            func.max(CheckRun.violations).label("violations"),
        )
        .where(CheckRun.started_at >= since)
        .group_by(day, CheckRun.suite)
        .order_by(day, CheckRun.suite)
    )
    points = []
    for row in session.execute(statement):
        value = row.day
        if isinstance(value, str):
            value = dt.date.fromisoformat(value[:10])
        elif isinstance(value, dt.datetime):
            value = value.date()
        points.append(
            TrendPoint(value, row.suite, int(row.passed or 0), int(row.failed or 0), int(row.violations or 0))
        )
    return points
