"""Command line of the job queue: ``worker``, ``jobs list|show|cancel|retry``, and waiting for a job.

Commands that do long work (``import``, ``lifecycle refresh``, ``check`` …) submit a job and,
by default, wait for it: a progress bar on a terminal, plain lines otherwise. ``--no-wait``
prints the job id and returns; ``--inline`` runs the job in this process (same code, same
``jobs`` row), for a machine without a worker. ``CRM_JOBS_INLINE=1`` makes ``--inline`` the default.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from huey import Huey
from sqlalchemy import select

from crm_core import logs
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.i18n import t
from crm_core.jobs.after_commit import jobs_inline
from crm_core.models import Tenant
from crm_core.models.jobs import JobStatus
from crm_core.queries.jobs import JobView, get_job, list_jobs

POLL_SECONDS = 0.5
WORKER_HINT_AFTER_SECONDS = 5.0


def _lang() -> str:
    from crm_core.cli import cli_language

    return cli_language()


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """``--no-wait`` and ``--inline`` for a command that runs as a job."""
    parser.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    parser.add_argument("--inline", action="store_true", default=None,
                        help="run the job in this process instead of a worker (CRM_JOBS_INLINE=1: the default)")


def _inline(args: argparse.Namespace) -> bool:
    if getattr(args, "inline", None):
        return True
    return jobs_inline()


def error_text(view: JobView, lang: str) -> str:
    """The job's error in ``lang`` (field errors listed)."""
    if view.status == JobStatus.INTERRUPTED:
        return t("jobs.error.interrupted", lang)
    if view.status == JobStatus.CANCELLED:
        return t("jobs.status.cancelled", lang)
    fields = view.error_params.get("fields") if view.error_key == "error.validation_failed" else None
    if fields:
        return "; ".join(f"{name}: {t(key, lang, **params)}" for name, (key, params) in fields.items())
    return t(view.error_key or "error.generic", lang, **view.error_params)


def message_text(message: dict[str, Any], lang: str) -> str:
    """A progress message (``{"key": …, "params": …}``) in ``lang``."""
    if not message or not message.get("key"):
        return ""
    return t(message["key"], lang, **(message.get("params") or {}))


def queue_for(db: Database) -> Huey:
    """The queue the workers of ``db`` read: Redis (``CRM_REDIS_URL``), else the SQLite file beside ``db``.

    ``--database-url`` names the database; its queue follows it, so that the CLI and a worker
    started with the same URL meet (``CRM_JOBS_PATH`` overrides the file).
    """
    from crm_core.config import jobs_queue_name, jobs_queue_path, redis_url
    from crm_core.jobs import queue as job_queue

    url = db.engine.url.render_as_string(hide_password=False)
    key = (redis_url() or "", jobs_queue_name(), str(jobs_queue_path(url)))
    if key not in _QUEUES:
        _QUEUES[key] = job_queue.make_queue(url)
    return _QUEUES[key]


_QUEUES: dict[tuple[str, str, str], Huey] = {}


def run_jobs(
    args: argparse.Namespace,
    db: Database,
    kind: str,
    params: dict[str, Any],
    *,
    actor: Actor | None = None,
    tenant_ids: Sequence[int] | None = None,
    inline: bool | None = None,
    secret_params: dict[str, Any] | None = None,
) -> list[JobView] | None:
    """Submit ``kind`` for ``actor`` (or as the system for each of ``tenant_ids``) and wait for the end.

    Returns the finished jobs, or None with ``--no-wait`` (the ids are printed). ``inline``
    True runs the jobs here whatever the options say (no worker serves that database).
    ``secret_params`` (a password) are known to this process only, so such jobs always run here.
    """
    from crm_core.jobs.service import submit_job, submit_system_job

    here = True if secret_params else (_inline(args) if inline is None else inline)
    queue = queue_for(db)
    if actor is not None:
        job_ids = [submit_job(db, actor, kind, params, enqueue=not here, queue=queue)]
    else:
        job_ids = [submit_system_job(db, tenant_id, kind, params, enqueue=not here, queue=queue)
                   for tenant_id in (tenant_ids if tenant_ids is not None else active_tenant_ids(db))]
    quiet = bool(getattr(args, "json", False) or getattr(args, "no_progress", False))
    if here:
        return [run_here(db, job_id, queue=queue, quiet=quiet, secret_params=secret_params) for job_id in job_ids]
    if getattr(args, "no_wait", False):
        lang = _lang()
        for job_id in job_ids:
            if getattr(args, "json", False):
                print(json.dumps({"status": "queued", "job_id": job_id}))
            else:
                print(t("jobs.cli.queued", lang, id=job_id))
        return None
    return [wait_for(db, job_id, quiet=quiet, queue=queue) for job_id in job_ids]


def run_here(
    db: Database, job_id: int, *, queue: Huey | None = None, quiet: bool = False,
    secret_params: dict[str, Any] | None = None,
) -> JobView:
    """Run job ``job_id`` in this process (``--inline``), drawing its progress as :func:`wait_for` does.

    The job runs in a thread while this one draws; Ctrl-C cancels it (its transaction rolls back).
    """
    from crm_core.jobs.runner import execute_job

    if quiet:
        execute_job(db, job_id, queue=queue, secret_params=secret_params)
        return _read(db, job_id, queue)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            execute_job(db, job_id, queue=queue, secret_params=secret_params)
        except BaseException as error:  # re-raised in the caller's thread below
            failure.append(error)

    thread = threading.Thread(target=run, name=f"job-{job_id}", daemon=True)
    thread.start()
    try:
        return wait_for(db, job_id, queue=queue, thread=thread, failure=failure)
    finally:
        thread.join()


def active_tenant_ids(db: Database) -> list[int]:
    """Every active tenant, oldest first."""
    with db.system_session("cli: tenants") as session:
        return list(session.scalars(select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.id)))


def _read(db: Database, job_id: int, queue: Huey | None = None, *, with_user: bool = True) -> JobView:
    with db.system_session("cli: read job") as session:
        return get_job(session, job_id, queue=queue, with_user=with_user)


def wait_for(
    db: Database,
    job_id: int,
    *,
    quiet: bool = False,
    queue: Huey | None = None,
    thread: threading.Thread | None = None,
    failure: list[BaseException] | None = None,
) -> JobView:
    """Poll job ``job_id`` until it ends, drawing its progress on stderr; Ctrl-C leaves it running.

    With ``thread`` (the job runs in this process) Ctrl-C cancels the job instead, and an error
    that ended the thread early (``failure``) is raised here.
    """
    lang = _lang()
    draw = _Progress(job_id, lang, enabled=not quiet)
    started = time.monotonic()
    hinted = False
    try:
        while True:
            ended_here = thread is not None and not thread.is_alive()
            view = _read(db, job_id, queue, with_user=False)  # a poll: what the job holds must not stall it
            if view.status.finished:
                view = _read(db, job_id, queue)
                draw.close(view)
                return view
            if ended_here:
                draw.close(None)
                if failure:
                    raise failure[0]
                return view  # not queued any more when it started (cancelled meanwhile): as it is
            waited = time.monotonic() - started
            if thread is None and view.status == JobStatus.QUEUED and not hinted \
                    and waited > WORKER_HINT_AFTER_SECONDS:
                print(t("jobs.cli.waiting_for_worker", lang), file=sys.stderr)
                hinted = True
            draw.update(view)
            if thread is not None:
                thread.join(POLL_SECONDS)
            else:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        draw.close(None)
        if thread is not None:
            from crm_core.jobs import queue as job_queue

            job_queue.request_cancel(job_id, queue)
            print(t("jobs.cli.cancelling_here", lang, id=job_id), file=sys.stderr)
            thread.join()
            raise SystemExit(130) from None
        print(t("jobs.cli.left_running", lang, id=job_id), file=sys.stderr)
        raise SystemExit(130) from None


class _Progress:
    """A tqdm bar on a terminal, otherwise a line each time the step or the tenth changes."""

    def __init__(self, job_id: int, lang: str, *, enabled: bool) -> None:
        self.job_id, self.lang, self.enabled = job_id, lang, enabled
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.last_step: tuple[str, int] | None = None  # plain lines: the step and tenth last printed

    def update(self, view: JobView) -> None:
        if not self.enabled or view.status != JobStatus.RUNNING:
            return
        text = message_text(view.message, self.lang)
        if self.tty:
            from tqdm import tqdm

            if self.bar is None:
                self.bar = tqdm(total=view.total, desc=f"#{view.id}", file=sys.stderr, unit="")
            if view.total is not None and self.bar.total != view.total:
                self.bar.total = view.total
            self.bar.n = view.done
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.refresh()
            return
        tenth = int(10 * view.done / view.total) if view.total else view.done
        line = f"#{view.id} {text} {view.done:,}" + (f"/{view.total:,}" if view.total else "")
        if (text, tenth) != self.last_step:
            print(line, file=sys.stderr, flush=True)
            self.last_step = (text, tenth)

    def close(self, view: JobView | None) -> None:
        if self.bar is not None:
            if view is not None and view.status == JobStatus.SUCCEEDED and view.total is not None:
                self.bar.n = view.total
                self.bar.refresh()
            self.bar.close()
            self.bar = None


def report_failures(views: list[JobView]) -> int:
    """Print each job that did not succeed (stderr, in the CLI language); 0 when all succeeded, else 1."""
    lang = _lang()
    failed = [view for view in views if view.status != JobStatus.SUCCEEDED]
    for view in failed:
        print(t("jobs.cli.failed", lang, id=view.id, error=error_text(view, lang)), file=sys.stderr)
    return 1 if failed else 0


# --- the commands ------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace, db: Database) -> int:
    """Run a Huey consumer: ``--workers N`` processes take jobs; the schedule tick runs every minute.

    It serves the database of ``--database-url`` (else ``CRM_DATABASE_URL``), reading the queue
    :func:`queue_for` that database, as the commands that submit jobs do.
    """
    from crm_core.jobs.queue import use_queue

    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logs.formatter())  # CRM_LOG_FORMAT=json: JSON lines with the job's ids
    if args.workers < 1:
        from crm_core.cli import UsageError

        raise UsageError(t("jobs.cli.bad_workers", _lang()))
    # the worker processes (forked below) open the same database: they read it from the settings
    os.environ["CRM_DATABASE_URL"] = db.engine.url.render_as_string(hide_password=False)
    queue = use_queue(queue_for(db))
    db.engine.dispose()  # the worker processes open their own connections
    consumer = queue.create_consumer(workers=args.workers, worker_type=args.worker_type, periodic=True,
                                     check_worker_health=True, health_check_interval=1, initial_delay=0.1,
                                     max_delay=1.0)
    consumer.run()
    return 0


def _actor_or_system(db: Database, username: str | None) -> Actor | None:
    if not username:
        return None
    from crm_core.services.auth import load_actor

    actor = load_actor(db, username.strip().lower())
    if actor is None:
        from crm_core.cli import UsageError

        raise UsageError(t("cli.user.unknown", _lang(), username=username))
    return actor


def _session(db: Database, actor: Actor | None) -> Any:
    return db.session(actor) if actor is not None else db.system_session("cli: jobs")


def _row(view: JobView, lang: str) -> str:
    progress = f"{view.done:,}/{view.total:,}" if view.total else f"{view.done:,}"
    return (f"{view.id:>6}  {t(f'jobs.kind.{view.kind}', lang):<24} {t(f'jobs.status.{view.status.value}', lang):<12} "
            f"{progress:>15}  {view.created_at:%Y-%m-%d %H:%M}  {view.requested_by or '-'}")


def _as_dict(view: JobView) -> dict[str, Any]:
    return {"id": view.id, "kind": view.kind, "status": view.status.value, "params": view.params,
            "requested_by": view.requested_by, "created_at": view.created_at, "started_at": view.started_at,
            "finished_at": view.finished_at, "done": view.done, "total": view.total, "result": view.result,
            "error_key": view.error_key, "error_params": view.error_params, "retry_of_id": view.retry_of_id}


def cmd_jobs_list(args: argparse.Namespace, db: Database) -> int:
    """List jobs, newest first (every tenant's, or what ``--as USER`` sees)."""
    from crm_core.cli import _emit

    lang = _lang()
    statuses = [JobStatus(args.status)] if args.status else None
    with _session(db, _actor_or_system(db, args.as_user)) as session:
        page = list_jobs(session, statuses=statuses, per_page=args.limit, queue=queue_for(db))
    _emit(args, {"status": "ok", "jobs": [_as_dict(view) for view in page.items]},
          [_row(view, lang) for view in page.items] or [t("jobs.cli.none", lang)])
    return 0


def cmd_jobs_show(args: argparse.Namespace, db: Database) -> int:
    """One job: status, progress, result or error."""
    from crm_core.cli import _emit

    lang = _lang()
    with _session(db, _actor_or_system(db, args.as_user)) as session:
        view = get_job(session, args.job_id, queue=queue_for(db))
    lines = [_row(view, lang)]
    if message := message_text(view.message, lang):
        lines.append("  " + message)
    if view.result:
        lines.extend(f"  {key}: {value}" for key, value in view.result.items())
    if view.status in (JobStatus.FAILED, JobStatus.INTERRUPTED):
        lines.append("  " + error_text(view, lang))
    _emit(args, {"status": "ok", "job": _as_dict(view)}, lines)
    return 0


def _admin_or_requester(db: Database, username: str | None, job_id: int) -> Actor:
    """``--as USER``, else the job's requester, else the first admin of its tenant."""
    from crm_core.models import User
    from crm_core.models.jobs import Job
    from crm_core.services.auth import load_actor

    actor = _actor_or_system(db, username)
    if actor is not None:
        return actor
    with db.system_session("cli: job owner") as session:
        job = session.get(Job, job_id)
        if job is None:
            from crm_core.errors import NotFound

            raise NotFound("job", id=job_id)
        name = session.scalar(select(User.username).where(User.id == job.requested_by_id)) if job.requested_by_id \
            else session.scalar(select(User.username).where(User.tenant_id == job.tenant_id, User.role == "admin",
                                                           User.is_active.is_(True)).order_by(User.id).limit(1))
    found = load_actor(db, name) if name else None
    if found is None:
        from crm_core.cli import UsageError

        raise UsageError(t("imports.cli.need_as", _lang()))
    return found


def cmd_jobs_cancel(args: argparse.Namespace, db: Database) -> int:
    """Cancel a queued job, or ask a running one to stop."""
    from crm_core.cli import _emit
    from crm_core.jobs.service import cancel_job

    status = cancel_job(db, _admin_or_requester(db, args.as_user, args.job_id), args.job_id, queue=queue_for(db))
    key = {JobStatus.CANCELLED: "jobs.cli.cancelled", JobStatus.QUEUED: "jobs.cli.cancel_queued"}.get(
        status, "jobs.cli.cancel_requested")
    _emit(args, {"status": "ok", "job_id": args.job_id, "job_status": status.value}, [t(key, _lang(), id=args.job_id)])
    return 0


def cmd_jobs_retry(args: argparse.Namespace, db: Database) -> int:
    """Start a failed, cancelled or interrupted job again (a new job)."""
    from crm_core.cli import _emit
    from crm_core.jobs.service import retry_job

    new_id = retry_job(db, _admin_or_requester(db, args.as_user, args.job_id), args.job_id, queue=queue_for(db))
    _emit(args, {"status": "ok", "job_id": new_id, "retry_of": args.job_id}, [t("jobs.cli.queued", _lang(), id=new_id)])
    return 0


def add_commands(commands: Any) -> None:
    """Register ``worker`` and ``jobs …`` on the CLI's subparsers."""
    worker = commands.add_parser("worker", help="run a job worker (Huey consumer); Ctrl-C stops it")
    worker.add_argument("--workers", type=int, default=1, help="jobs run at once (processes)")
    worker.add_argument("--worker-type", default="process", choices=["process", "thread"])
    worker.set_defaults(handler=cmd_worker)

    jobs = commands.add_parser("jobs", help="background jobs").add_subparsers(dest="action", required=True)
    listing = jobs.add_parser("list")
    listing.add_argument("--status", choices=[status.value for status in JobStatus])
    listing.add_argument("--limit", type=int, default=50)
    for name, handler in (("show", cmd_jobs_show), ("cancel", cmd_jobs_cancel), ("retry", cmd_jobs_retry)):
        parser = jobs.add_parser(name)
        parser.add_argument("job_id", type=int)
        parser.set_defaults(handler=handler)
        parser.add_argument("--as", dest="as_user", help="act as this user (default: the requester)")
        parser.add_argument("--json", action="store_true")
    listing.add_argument("--as", dest="as_user", help="list what this user sees (default: every tenant)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_jobs_list)

