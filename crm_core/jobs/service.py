"""Use cases of the job queue: submit, cancel, retry — the same for pages, CLI, API and schedules.

Each writes the ``jobs`` row in a transaction of its own (audited like every write) and only
then puts the job's id on the queue, so a worker never picks up a job that is not committed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from huey import Huey
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import (
    AccessDenied,
    JobNotCancellable,
    JobNotRetryable,
    NotFound,
    QueueUnavailable,
    UnknownJobKind,
    ValidationFailed,
)
from crm_core.jobs import queue as job_queue
from crm_core.jobs.context import kinds
from crm_core.models import utcnow
from crm_core.models.jobs import Job, JobSchedule, JobStatus

RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED)


def _checked_params(params: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(params)))
    except (TypeError, ValueError):
        raise ValidationFailed({"params": ("jobs.error.bad_params", {})}) from None


def submit_job(
    db: Database,
    actor: Actor,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    retry_of_id: int | None = None,
    enqueue: bool = True,
    queue: Huey | None = None,
) -> int:
    """Record a job of ``kind`` for ``actor`` and queue it; returns the job's id.

    ``enqueue=False`` records it only: the caller runs it itself (``--inline`` on the CLI).
    """
    spec = kinds().get(kind)
    if spec is None:
        raise UnknownJobKind(kind=kind)
    if actor.role not in spec.roles:
        raise AccessDenied("this role may not start this job")
    with db.transaction(actor) as session:
        job_id = _record(session, Job(tenant_id=actor.tenant_id, kind=kind, params=_checked_params(params or {}),
                                      requested_by_id=actor.user_id, retry_of_id=retry_of_id))
    if enqueue:
        _enqueue_or_fail(db, actor.tenant_id, job_id, queue)
    return job_id


def submit_system_job(
    db: Database, tenant_id: int, kind: str, params: dict[str, Any] | None = None, *,
    schedule_id: int | None = None, queue: Huey | None = None, enqueue: bool = True,
) -> int:
    """Record and queue a job no user asked for (a schedule's run, an operator's CLI call) for ``tenant_id``."""
    if kind not in kinds():
        raise UnknownJobKind(kind=kind)
    with db.system_transaction(f"schedule {schedule_id}") as session:
        job_id = _record(session, Job(tenant_id=tenant_id, kind=kind, params=_checked_params(params or {}),
                                      schedule_id=schedule_id))
    if enqueue:
        _enqueue_or_fail(db, tenant_id, job_id, queue)
    return job_id


EVERY_MINUTE = ("*", "*", "*")  # minute, hour, day of week (UTC)
LOG = logging.getLogger(__name__)


def ensure_schedule(session: Any, tenant_id: int, kind: str, schedule: tuple[str, str, str] = EVERY_MINUTE) -> bool:
    """Give the tenant a schedule of ``kind`` unless it has one (in ``session``, a system transaction: schedules
    are admins' rows); True when added. Kinds that only some tenants need (mail, webhooks, robots) get theirs
    the first time they are used instead of a default schedule for every tenant."""
    exists = session.scalar(select(JobSchedule.id).where(JobSchedule.tenant_id == tenant_id, JobSchedule.kind == kind))
    if exists is not None:
        return False
    minute, hour, day_of_week = schedule
    session.add(JobSchedule(tenant_id=tenant_id, kind=kind, params={}, minute=minute, hour=hour,
                            day_of_week=day_of_week, enabled=True))
    return True


def request_job(db: Database, tenant_id: int, kind: str, *, schedule: tuple[str, str, str] | None = None,
                queue: Huey | None = None) -> int | None:
    """Queue a system job of ``kind`` for the tenant unless one already waits, after giving the tenant its
    schedule of that kind when ``schedule`` is set; the job's id. None when one waits, or when the queue is
    down: the change that asked is committed, and the minute's schedule does the work then (logged)."""
    try:
        if schedule is not None:
            with db.system_transaction(f"{kind}: schedule") as session:
                ensure_schedule(session, tenant_id, kind, schedule)
        with db.system_session(f"{kind}: waiting run") as session:
            waiting = session.scalar(select(Job.id).where(Job.tenant_id == tenant_id, Job.kind == kind,
                                                          Job.status == JobStatus.QUEUED.value).limit(1))
        if waiting is not None:
            return None
        return submit_system_job(db, tenant_id, kind, queue=queue)
    except Exception:
        LOG.exception("could not queue a %s run for tenant %s", kind, tenant_id)
        return None


def _record(session: Any, job: Job) -> int:
    """Add ``job`` as queued in ``session``'s transaction; its id (committed before it is enqueued)."""
    job.status = JobStatus.QUEUED.value
    session.add(job)
    session.flush()
    return job.id


def _enqueue_or_fail(db: Database, tenant_id: int, job_id: int, queue: Huey | None) -> None:
    try:
        job_queue.enqueue_job(job_id, queue, tenant_id=tenant_id)
    except Exception as error:  # the queue's storage is down: say so, and leave no job waiting forever
        with db.system_transaction("job queue unavailable", tenant_id=tenant_id) as session:
            job = session.get(Job, job_id)
            if job is not None:
                job.status = JobStatus.FAILED.value
                job.finished_at = utcnow()
                job.error_key = QueueUnavailable.message_key
        raise QueueUnavailable(str(error)) from None


def _visible_job(session: Any, job_id: int) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id)).one_or_none()
    if job is None:
        raise NotFound("job", id=job_id)
    return job


def cancel_job(db: Database, actor: Actor, job_id: int, *, queue: Huey | None = None) -> JobStatus:
    """Cancel a job: a queued one at once, a running one at its next progress report.

    Returns the job's status after the request: ``cancelled``; ``running`` (it stops at its
    next step); or ``queued`` on SQLite while another job runs — that job holds the only
    write lock (an import, for its whole length), so the row is not written now: the worker
    ends the job as cancelled, without running it, when it reaches it. The request itself
    lives in the queue's store (``JobView.cancel_requested``), so it never waits for a lock.
    """
    with db.session(actor) as session:  # a read: a running SQLite job holds the write lock
        job = _visible_job(session, job_id)
        if job.requested_by_id != actor.user_id and not actor.is_admin:
            raise AccessDenied("only its requester or an admin cancels a job")
        status = JobStatus(job.status)
        if status.finished:
            raise JobNotCancellable(status=status.value)
        writer_busy = db.dialect_name == "sqlite" and bool(
            session.scalar(select(Job.id).where(Job.status == JobStatus.RUNNING.value).limit(1))
        )
    job_queue.request_cancel(job_id, queue)
    if status == JobStatus.RUNNING:
        return JobStatus.RUNNING
    if writer_busy:
        return JobStatus.QUEUED
    with db.transaction(actor) as session:
        job = _visible_job(session, job_id)
        if job.status != JobStatus.QUEUED:
            return JobStatus(job.status)  # a worker took it meanwhile: it stops at its next step
        job.status = JobStatus.CANCELLED.value
        job.finished_at = utcnow()
    job_queue.forget_job(job_id, queue)  # the row says it all now: no worker will run it
    return JobStatus.CANCELLED


def retry_job(db: Database, actor: Actor, job_id: int, *, queue: Huey | None = None) -> int:
    """Start a failed, cancelled or interrupted job again, as a new job with the same parameters."""
    with db.session(actor) as session:
        job = _visible_job(session, job_id)
        if JobStatus(job.status) not in RETRYABLE:
            raise JobNotRetryable(status=job.status)
        kind, params = job.kind, dict(job.params or {})
    return submit_job(db, actor, kind, params, retry_of_id=job_id, queue=queue)
