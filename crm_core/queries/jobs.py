"""Read side of the job queue: the jobs a user may see (their own; an admin the tenant's), with live progress.

The ``jobs`` row holds the final state; a running job's progress lives beside the queue
(``crm_core.jobs.queue``) and is merged in here, so a page shows it within a second of the
worker reporting it without the database being written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from huey import Huey
from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from crm_core.errors import NotFound
from crm_core.jobs import queue as job_queue
from crm_core.models import User
from crm_core.models.jobs import Job, JobSchedule, JobStatus
from crm_core.queries.paging import Page


@dataclass(frozen=True)
class JobView:
    """One job as the Jobs page and the CLI show it."""

    id: int
    tenant_id: int
    kind: str
    status: JobStatus
    params: dict[str, Any]
    requested_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    done: int
    total: int | None
    message: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    error_key: str | None = None
    error_params: dict[str, Any] = field(default_factory=dict)
    retry_of_id: int | None = None
    schedule_id: int | None = None
    cancel_requested: bool = False  # queued or running, and someone asked it to stop

    @property
    def fraction(self) -> float | None:
        """Share done (0..1) when the total is known."""
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


def _view(job: Job, requester: str | None, live: dict[str, Any] | None, cancel_requested: bool = False) -> JobView:
    done, total, message = job.progress_done, job.progress_total, job.progress_message or {}
    if live is not None and job.status == JobStatus.RUNNING:
        done, total, message = live["done"], live["total"], live["message"] or message
    return JobView(
        id=job.id, tenant_id=job.tenant_id, kind=job.kind, status=JobStatus(job.status), params=dict(job.params or {}),
        requested_by=requester, created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at, done=done, total=total, message=message, result=dict(job.result or {}),
        error_key=job.error_key, error_params=dict(job.error_params or {}), retry_of_id=job.retry_of_id,
        schedule_id=job.schedule_id, cancel_requested=cancel_requested and not JobStatus(job.status).finished,
    )


def list_jobs(
    session: Session,
    *,
    statuses: list[JobStatus] | None = None,
    kinds: list[str] | None = None,
    mine_only: bool = False,
    page: int = 1,
    per_page: int = 25,
    queue: Huey | None = None,
) -> Page[JobView]:
    """Newest first; the access rules already limit it to what the session's actor may see."""
    from crm_core.access import actor_of

    statement = select(Job, User.username).outerjoin(User, User.id == Job.requested_by_id)
    if statuses:
        statement = statement.where(Job.status.in_([status.value for status in statuses]))
    if kinds:
        statement = statement.where(Job.kind.in_(kinds))
    actor = actor_of(session)
    if mine_only and actor is not None:
        statement = statement.where(Job.requested_by_id == actor.user_id)
    rows = session.execute(
        statement.order_by(Job.created_at.desc(), Job.id.desc()).offset((page - 1) * per_page).limit(per_page + 1)
    ).all()
    running = [job.id for job, _ in rows[:per_page] if job.status == JobStatus.RUNNING]
    active = [job.id for job, _ in rows[:per_page] if job.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
    live = job_queue.read_progress(running, queue) if running else {}
    stopping = job_queue.cancel_requests(active, queue) if active else set()
    items = [_view(job, username, live.get(job.id), job.id in stopping) for job, username in rows[:per_page]]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


def get_job(session: Session, job_id: int, *, queue: Huey | None = None, with_user: bool = True) -> JobView:
    """One job the session's actor may see, or NotFound.

    ``with_user=False`` leaves out who asked for it (``requested_by`` None) and so never reads ``users``: a
    progress poll must not wait behind a job that holds that table (a PostgreSQL demo load drops the foreign
    keys pointing at it, which locks it until the load commits).
    """
    if with_user:
        statement = select(Job, User.username).outerjoin(User, User.id == Job.requested_by_id)
    else:
        statement = select(Job, literal(None).label("username"))
    row = session.execute(statement.where(Job.id == job_id)).one_or_none()
    if row is None:
        raise NotFound("job", id=job_id)
    job, username = row
    live = job_queue.read_progress([job.id], queue).get(job.id) if job.status == JobStatus.RUNNING else None
    active = job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    return _view(job, username, live, active and job.id in job_queue.cancel_requests([job.id], queue))


def count_active(session: Session) -> int:
    """Jobs of the actor's scope still queued or running (the sidebar badge)."""
    return int(session.scalar(
        select(func.count()).select_from(Job).where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
    ) or 0)


@dataclass(frozen=True)
class ScheduleView:
    """A tenant's periodic job as the Automation page shows it."""

    id: int
    kind: str
    minute: str
    hour: str
    day_of_week: str
    enabled: bool
    last_run_at: dt.datetime | None
    last_job_id: int | None
    version: int


def list_schedules(session: Session) -> list[ScheduleView]:
    """The tenant's schedules, by kind."""
    return [
        ScheduleView(s.id, s.kind, s.minute, s.hour, s.day_of_week, s.enabled, s.last_run_at, s.last_job_id,
                     s.version)
        for s in session.scalars(select(JobSchedule).order_by(JobSchedule.kind, JobSchedule.id))
    ]
