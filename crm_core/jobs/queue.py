"""The job queue: Huey on a SQLite file beside the database (default) or on Redis (``CRM_REDIS_URL``).

Pattern: a task queue that carries job *ids* only. The ``jobs`` table is the record users
see (``crm_core.models.jobs``); Huey delivers "run job 42" to one worker, and runs the
schedule tick every minute. Huey's key-value store (the same SQLite file or Redis) carries
two small things that must not wait for the database: a running job's live progress and a
cancel request — on SQLite a running import holds the database's only write lock until it
commits, and a progress row written there would wait for that commit.

More workers on more machines need nothing but the same Redis URL (and a shared
``CRM_FILES_DIR`` for uploaded files); two installations sharing one Redis set
``CRM_JOBS_QUEUE`` to a name each.
"""

from __future__ import annotations

import time
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

from crm_core.config import jobs_queue_name, jobs_queue_path, keep_private, redis_url

PROGRESS_KEY = "kestrel.progress.{job_id}"
CANCEL_KEY = "kestrel.cancel.{job_id}"

_queue: Huey | None = None


def make_queue(database_url: str | None = None) -> Huey:
    """A Huey instance for this configuration: Redis when ``CRM_REDIS_URL`` is set, else SQLite."""
    url = redis_url()
    if url:
        return RedisHuey(jobs_queue_name(), url=url)
    path = jobs_queue_path(database_url)
    keep_private(path)  # job arguments name customers, files and users
    return SqliteHuey(jobs_queue_name(), filename=str(path), timeout=30)


def get_queue() -> Huey:
    """The process's queue, made from the settings on first use."""
    global _queue
    if _queue is None:
        use_queue(make_queue())
    assert _queue is not None
    return _queue


def use_queue(queue: Huey) -> Huey:
    """Make ``queue`` the process's queue and register Kestrel's tasks on it (tests, the worker)."""
    global _queue
    _register_tasks(queue)
    _queue = queue
    return queue


def _register_tasks(queue: Huey) -> None:
    if getattr(queue, "kestrel_run_job", None) is not None:
        return

    @queue.task(name="kestrel.run_job")
    def run_job(job_id: int, tenant_id: int | None = None) -> None:  # pragma: no cover - runs in the worker
        from crm_core.jobs.runner import execute_job, worker_database

        execute_job(worker_database(), job_id, queue=queue, tenant_id=tenant_id)

    @queue.periodic_task(crontab(minute="*"), name="kestrel.tick_schedules")
    def tick_schedules() -> None:  # pragma: no cover - runs in the worker process
        from crm_core.jobs.runner import worker_database
        from crm_core.jobs.schedules import run_due_schedules

        run_due_schedules(worker_database(), queue=queue)

    @queue.on_startup(name="kestrel.worker_started")
    def worker_started() -> None:  # pragma: no cover - runs in the worker process
        from crm_core.jobs.runner import mark_interrupted, worker_database

        mark_interrupted(worker_database())

    queue.kestrel_run_job = run_job  # type: ignore[attr-defined]


def enqueue_job(job_id: int, queue: Huey | None = None, *, tenant_id: int | None = None) -> None:
    """Ask a worker to run job ``job_id`` of ``tenant_id`` (the worker then reads the job from the tenant's
    rows: one node of a database distributed by tenant, decision 0057; None: a message from before that)."""
    queue = queue or get_queue()
    _register_tasks(queue)
    queue.kestrel_run_job(job_id, tenant_id)  # type: ignore[attr-defined]


def queue_reachable(queue: Huey | None = None) -> bool:
    """Whether the queue's storage answers (for ``/readyz``)."""
    try:
        (queue or get_queue()).pending_count()
    except Exception:  # any storage error means "not reachable"; the probe says which check failed
        return False
    return True


def pending_count(queue: Huey | None = None) -> int:
    """Messages waiting in the queue (jobs not yet picked up by a worker)."""
    return int((queue or get_queue()).pending_count())


# --- live progress and cancel requests, beside the queue -------------------------------


def put_progress(job_id: int, done: int, total: int | None, message: dict[str, Any], queue: Huey | None = None) -> None:
    """Publish a running job's progress (read by the Jobs page and the CLI within a second)."""
    (queue or get_queue()).put(
        PROGRESS_KEY.format(job_id=job_id), {"done": done, "total": total, "message": message, "at": time.time()}
    )


def read_progress(job_ids: list[int], queue: Huey | None = None) -> dict[int, dict[str, Any]]:
    """The last published progress of each of ``job_ids`` that has one."""
    queue = queue or get_queue()
    found: dict[int, dict[str, Any]] = {}
    for job_id in job_ids:
        value = queue.get(PROGRESS_KEY.format(job_id=job_id), peek=True)
        if value is not None:
            found[job_id] = value
    return found


def request_cancel(job_id: int, queue: Huey | None = None) -> None:
    """Ask the worker running ``job_id`` to stop at its next progress report."""
    (queue or get_queue()).put(CANCEL_KEY.format(job_id=job_id), True)


def cancel_requested(job_id: int, queue: Huey | None = None) -> bool:
    """Whether someone asked job ``job_id`` to stop."""
    return bool((queue or get_queue()).get(CANCEL_KEY.format(job_id=job_id), peek=True))


def cancel_requests(job_ids: list[int], queue: Huey | None = None) -> set[int]:
    """Which of ``job_ids`` someone asked to stop (queued ones end cancelled when a worker reaches them)."""
    queue = queue or get_queue()
    return {job_id for job_id in job_ids if queue.get(CANCEL_KEY.format(job_id=job_id), peek=True)}


def forget_job(job_id: int, queue: Huey | None = None) -> None:
    """Drop a finished job's live progress and cancel request (its row keeps the final state)."""
    queue = queue or get_queue()
    for key in (PROGRESS_KEY, CANCEL_KEY):
        queue.get(key.format(job_id=job_id), peek=False)
