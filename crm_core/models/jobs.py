"""Tables of the job queue: one ``jobs`` row per piece of long work, and the admins' schedules.

The queue itself (Huey, on SQLite or Redis) only carries a job's id; the ``jobs`` row is the
record users see: who asked for what, its status, progress, result or error. It is tenant
scoped and read under the same access rules as every other table (``crm_core.access``): a
user sees the jobs they asked for, an administrator every job of the tenant.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class JobStatus(enum.StrEnum):
    """Where a job is in its life: queued → running → one of the four ends."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its worker died (killed, machine restart); nothing of it was committed

    @property
    def finished(self) -> bool:
        """A job in this status will not change any more (it may be retried as a new job)."""
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(TenantScoped, Base):
    """One piece of long work run by a worker: an import, a refresh, a check …"""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "tenant_id", "requested_by_id", "created_at"),
        Index(None, "tenant_id", "created_at"),
        Index(None, "status", "worker"),
    )

    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: a schedule
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("job_schedules.id"))
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_message: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"key": …, "params": {…}}
    worker: Mapped[str | None] = mapped_column(String(120))  # host:pid of the worker running it
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_key: Mapped[str | None] = mapped_column(String(80))
    error_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_detail: Mapped[str | None] = mapped_column(Text)


class JobSchedule(TenantScoped, Versioned, Base):
    """A periodic job of a tenant: its kind, parameters and a crontab (UTC), edited by admins."""

    __tablename__ = "job_schedules"
    __table_args__ = (Index(None, "tenant_id", "kind"),)

    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    minute: Mapped[str] = mapped_column(String(60), default="0")
    hour: Mapped[str] = mapped_column(String(60), default="*")
    day_of_week: Mapped[str] = mapped_column(String(30), default="*")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_job_id: Mapped[int | None] = mapped_column(Integer)
