"""The service dashboard's daily counts: the ``service_daily`` job recounts a tenant's last days.

Pattern: a periodic rebuild of derived rows (decision 0032). One system transaction per tenant
deletes the tenant's ``service_daily`` rows and inserts, per figure, the facts of the last
:data:`~crm_core.queries.service_reports.KEEP_DAYS` days before today with one INSERT … SELECT
(:func:`crm_core.queries.service_reports.fact_statements`, the statements the dashboard runs live
for today), then records the days covered and the instant in ``service_daily_runs``. Recounting
every kept day, not only the days a change touched, is what keeps the rows right whatever
changed a case: a reassignment, a reopening, a customer changing hands, a recomputed SLA clock.
The rows are derived from audited records and are not audited themselves.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from crm_core.db import Database
from crm_core.models import utcnow
from crm_core.models.service import ServiceDaily, ServiceDailyRun
from crm_core.queries.service_reports import KEEP_DAYS, fact_statements

COLUMNS = ["day", "team_id", "assignee_id", "customer_owner_id", "customer_team_id", "figure", "bucket", "cases",
           "minutes"]


@dataclass(frozen=True)
class DailyCount:
    """What one recount wrote."""

    first_day: dt.date
    end_day: dt.date
    rows: int
    seconds: float


def count_service_days(session: Session, tenant_id: int, *, now: dt.datetime | None = None) -> DailyCount:
    """Recount the tenant's ``service_daily`` rows for the kept days before today, in ``session``'s transaction."""
    started = time.perf_counter()
    now = now or utcnow()
    end_day = now.date()
    first_day = end_day - dt.timedelta(days=KEEP_DAYS)
    table = cast(Table, ServiceDaily.__table__)
    session.execute(delete(table).where(table.c.tenant_id == tenant_id))
    start, end = dt.datetime.combine(first_day, dt.time()), dt.datetime.combine(end_day, dt.time())
    for statement in fact_statements(session, start=start, end=end, now=now, tenant_id=tenant_id, slices=True):
        rows = select(literal(tenant_id), literal(now), literal(now), *statement.subquery().c)
        session.execute(insert(table).from_select(["tenant_id", "created_at", "updated_at", *COLUMNS], rows))
    written = session.scalar(select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)) or 0
    runs = cast(Table, ServiceDailyRun.__table__)
    session.execute(delete(runs).where(runs.c.tenant_id == tenant_id))
    session.execute(insert(runs).values(tenant_id=tenant_id, created_at=now, updated_at=now, first_day=first_day,
                                        end_day=end_day, refreshed_at=now))
    return DailyCount(first_day, end_day, int(written), time.perf_counter() - started)


def run_service_daily(db: Database, tenant_id: int, *, now: dt.datetime | None = None) -> DailyCount:
    """The recount in its own system transaction (the job and the benchmark call this)."""
    with db.system_transaction("service daily counts") as session:
        return count_service_days(session, tenant_id, now=now)
