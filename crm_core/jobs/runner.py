"""Running one job in a worker: status, actor, progress, result or error — and jobs whose worker died.

:func:`execute_job` is what the Huey task calls in the worker (and what ``--inline`` calls in
the CLI's own process): the same code either way. A kind's work owns its transaction, so a
job that fails, is cancelled or whose process is killed leaves nothing of its work behind;
the ``jobs`` row is written before and after, in short transactions of its own.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import secrets
import socket
import time
from typing import Any

from huey import Huey
from sqlalchemy import select

from crm_core import logs
from crm_core.db import Database, open_database
from crm_core.errors import DomainError, RequesterInactive, UnknownJobKind, ValidationFailed
from crm_core.i18n import normalise_language
from crm_core.incidents import is_database_outage
from crm_core.jobs import queue as job_queue
from crm_core.jobs.context import JobCancelled, JobContext, kinds
from crm_core.metrics import DATABASE_OUTAGES, JOB_SECONDS
from crm_core.models import utcnow
from crm_core.models.jobs import Job, JobStatus

LOG = logging.getLogger("kestrel.jobs")


def worker_identity() -> str:
    """``host:pid`` of this process, written on the jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


@functools.cache
def worker_database() -> Database:
    """The database of this worker process (from the settings, opened once per process)."""
    from crm_core.config import load_settings

    return open_database(load_settings().database_url)


def execute_job(
    db: Database, job_id: int, *, queue: Huey | None = None, secret_params: dict[str, Any] | None = None,
    tenant_id: int | None = None,
) -> JobStatus | None:
    """Run queued job ``job_id`` to its end; returns its final status (None when it was not queued).

    ``tenant_id``: the job's tenant, as the queue's message carries it (its rows are read on that tenant's
    node under Citus, decision 0057); None reads the job by its id alone.

    ``secret_params`` overlay the stored parameters in this process only (a migration's target
    URL with its password): they are never written to the jobs row, its audit trail or the queue.
    """
    from crm_core.services.auth import load_actor

    with db.system_transaction("job runner: start", tenant_id=tenant_id) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.QUEUED:
            return None  # cancelled while queued, or delivered twice
        cancelled = job_queue.cancel_requested(job_id, queue)
        if cancelled:
            _end(job, JobStatus.CANCELLED)
        else:
            job.status = JobStatus.RUNNING.value
            job.started_at = utcnow()
            job.worker = worker_identity()
        kind_name, tenant_id, params = job.kind, job.tenant_id, dict(job.params or {})
        requester_id = job.requested_by_id
        username = _username(session, requester_id)
    if cancelled:  # while it was queued
        job_queue.forget_job(job_id, queue)
        return JobStatus.CANCELLED
    actor = load_actor(db, username) if username else None
    context = JobContext(
        db=db, job_id=job_id, tenant_id=tenant_id, actor=actor, params={**params, **(secret_params or {})},
        queue=queue,
        language=normalise_language(actor.language if actor else None),
    )
    with logs.bound(job_id=job_id, kind=kind_name, tenant_id=tenant_id,
                    user_id=actor.user_id if actor else None):
        return _run_kind(db, job_id, kind_name, requester_id, actor, context, queue)


def _run_kind(db: Database, job_id: int, kind_name: str, requester_id: int | None, actor: Any,
              context: JobContext, queue: Huey | None) -> JobStatus:
    started = time.perf_counter()
    status, result = JobStatus.SUCCEEDED, {}
    error: tuple[str | None, dict[str, Any], str | None] = (None, {}, None)
    kind = kinds().get(kind_name)
    try:
        if kind is None:
            raise UnknownJobKind(kind=kind_name)
        if requester_id is not None and actor is None:
            raise RequesterInactive()
        result = kind.run(context)
    except JobCancelled:
        status = JobStatus.CANCELLED
    except ValidationFailed as failure:
        status = JobStatus.FAILED
        error = ("error.validation_failed", {"fields": {k: [v[0], v[1]] for k, v in failure.errors.items()}}, None)
    except DomainError as failure:
        status = JobStatus.FAILED
        error = (failure.message_key, _json_safe(failure.params), None)
    except Exception as failure:  # any bug or outage: logged with an id the user can quote, no trace shown
        status = JobStatus.FAILED
        correlation_id = secrets.token_hex(4)
        LOG.exception("job %s (%s) failed [%s]", job_id, kind_name, correlation_id)
        outage = is_database_outage(failure)
        if outage:
            DATABASE_OUTAGES.labels(where="job").inc()
        key = "jobs.error.database_unavailable" if outage else "jobs.error.unexpected"
        error = (key, {"id": correlation_id}, correlation_id)
    _finish(db, job_id, status, result, error, context)
    JOB_SECONDS.labels(kind=kind_name, status=status.value).observe(time.perf_counter() - started)
    job_queue.forget_job(job_id, queue)
    return status


def _username(session: Any, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    from crm_core.models import User

    return session.scalar(select(User.username).where(User.id == user_id))


def _json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
            for key, value in params.items()}


def _end(job: Job, status: JobStatus) -> None:
    job.status = status.value
    job.finished_at = utcnow()


def _finish(
    db: Database,
    job_id: int,
    status: JobStatus,
    result: dict[str, Any],
    error: tuple[str | None, dict[str, Any], str | None],
    context: JobContext,
) -> None:
    with db.system_transaction("job runner: finish", tenant_id=context.tenant_id) as session:
        job = session.get(Job, job_id)
        assert job is not None
        _end(job, status)
        job.result = result
        job.progress_done = context.done
        job.progress_total = context.total
        job.progress_message = context.message
        if status == JobStatus.SUCCEEDED and context.total is not None:
            job.progress_done = context.total
        job.error_key, job.error_params, job.error_detail = error


def mark_interrupted(db: Database, *, now: dt.datetime | None = None) -> list[int]:
    """Mark the running jobs of dead workers on this host as interrupted (called when a worker starts).

    A job's work is one transaction: a killed worker's database rolled it back, so the job is
    simply over; the user retries it. Workers on other hosts are judged by their own host.
    """
    host = socket.gethostname()
    ended: list[int] = []
    with db.system_transaction("job runner: interrupted jobs") as session:
        running = session.scalars(
            select(Job).where(Job.status == JobStatus.RUNNING.value, Job.worker.like(f"{host}:%"))
        ).all()
        for job in running:
            pid = int((job.worker or ":0").rsplit(":", 1)[1] or 0)
            if pid and _alive(pid):
                continue
            job.status = JobStatus.INTERRUPTED.value
            job.finished_at = now or utcnow()
            job.error_key = "jobs.error.interrupted"
            ended.append(job.id)
    for job_id in ended:
        LOG.warning("job %s was interrupted: its worker is gone", job_id)
    return ended


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child (killed, not yet reaped by the consumer) is dead too
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
