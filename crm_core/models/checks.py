"""Tables of the checks area: data-quality check runs and database-migration progress.

``check_runs`` is the history behind the Data quality page's pass/fail trend (one row per
suite run per tenant). ``migration_progress`` is a system table written only by
``python -m crm_core migrate`` into its *target*: one row per copied table, updated in the
same transaction as each batch, so an interrupted copy can be resumed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, utcnow


class CheckRun(TenantScoped, Base):
    """One run of a data-quality suite against one tenant's live data."""

    __tablename__ = "check_runs"
    __table_args__ = (Index(None, "tenant_id", "suite", "started_at"), Index(None, "tenant_id", "started_at"))

    suite: Mapped[str] = mapped_column(String(64))
    # "page" or "cli": who asked for the run
    trigger: Mapped[str] = mapped_column(String(16), default="page")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # "passed" or "failed"
    status: Mapped[str] = mapped_column(String(16), default="passed")
    expectations_total: Mapped[int] = mapped_column(Integer, default=0)
    expectations_failed: Mapped[int] = mapped_column(Integer, default=0)
    violations: Mapped[int] = mapped_column(Integer, default=0)
    # per check: {"check", "expectation", "success", "violations", "examples"}
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class MigrationProgress(Base):
    """How far ``migrate`` got with one table of its target (system table, not tenant data)."""

    __tablename__ = "migration_progress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64), unique=True)
    # the source URL without its password: a resume must continue from the same source
    source: Mapped[str] = mapped_column(String(500))
    rows_copied: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="copying")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # PostgreSQL: the secondary indexes dropped for the bulk load, recreated once the table is copied
    deferred_ddl: Mapped[list[str] | None] = mapped_column(JSON)
