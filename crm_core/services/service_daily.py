"""The service dashboard's daily counts: the ``service_daily`` job recounts a tenant's last days.

Pattern: a periodic rebuild of derived rows (decision 0033). The facts of the last
:data:`~crm_core.queries.service_reports.KEEP_DAYS` days before today are read per figure
(:func:`crm_core.queries.service_reports.fact_statements`, the statements the dashboard runs live
for today) in a read-only session, so SQLite's single write lock is not held while they are
counted; then one short system transaction replaces the tenant's ``service_daily`` rows with them
and records the days covered and the instant in ``service_daily_runs``. Recounting every kept
day, not only the days a change touched, is what keeps the rows right whatever changed a case: a
reassignment, a reopening, a customer changing hands, a recomputed SLA clock. The rows are
derived from audited records and are not audited themselves.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, insert
from sqlalchemy.orm import Session

from crm_core.bulk import insert_rows
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


def service_days(session: Session, tenant_id: int, *, now: dt.datetime) -> tuple[dt.date, dt.date, list[Any]]:
    """The facts of the tenant's kept days before ``now``'s day: (first day, end day, rows of :data:`COLUMNS`)."""
    end_day = now.date()
    first_day = end_day - dt.timedelta(days=KEEP_DAYS)
    start, end = dt.datetime.combine(first_day, dt.time()), dt.datetime.combine(end_day, dt.time())
    rows: list[Any] = []
    for statement in fact_statements(session, start=start, end=end, now=now, tenant_id=tenant_id, slices=True):
        rows.extend(session.execute(statement).all())
    return first_day, end_day, rows


def store_service_days(session: Session, tenant_id: int, *, first_day: dt.date, end_day: dt.date,
                       rows: list[Any], now: dt.datetime) -> None:
    """Replace the tenant's ``service_daily`` rows by ``rows`` and record the days they cover, in ``session``."""
    table, runs = cast(Table, ServiceDaily.__table__), cast(Table, ServiceDailyRun.__table__)
    session.execute(delete(table).where(table.c.tenant_id == tenant_id))
    insert_rows(session, table, [(tenant_id, now, now, *row) for row in rows],
                columns=["tenant_id", "created_at", "updated_at", *COLUMNS])
    session.execute(delete(runs).where(runs.c.tenant_id == tenant_id))
    session.execute(insert(runs).values(tenant_id=tenant_id, created_at=now, updated_at=now, first_day=first_day,
                                        end_day=end_day, refreshed_at=now))


def run_service_daily(db: Database, tenant_id: int, *, now: dt.datetime | None = None) -> DailyCount:
    """Count the facts in a read session, then store them in a short system transaction (the job calls this)."""
    started = time.perf_counter()
    now = now or utcnow()
    with db.system_session("service daily counts", tenant_id=tenant_id) as session:
        first_day, end_day, rows = service_days(session, tenant_id, now=now)
    with db.system_transaction("service daily counts", tenant_id=tenant_id) as session:
        store_service_days(session, tenant_id, first_day=first_day, end_day=end_day, rows=rows, now=now)
    return DailyCount(first_day, end_day, len(rows), time.perf_counter() - started)
