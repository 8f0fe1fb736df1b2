"""What a job's code sees while it runs, and the table of job kinds.

A job kind is a plain function ``run(ctx) -> dict`` registered with :func:`job_kind`; it does
its work through the same services and queries the pages call, reports progress with
``ctx.progress(done, total)`` and returns a JSON-able result (shown on the Jobs page and
printed by the CLI). A cancel request surfaces as :class:`JobCancelled` raised from
``ctx.progress`` — between two batches, so the kind's transaction rolls back whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huey import Huey

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.models import Role

ALL_ROLES = frozenset(Role)
PROGRESS_INTERVAL_SECONDS = 0.25  # at most four progress writes a second; the page polls each second


class JobCancelled(Exception):
    """Someone cancelled the running job; raised from :meth:`JobContext.progress`."""


@dataclass
class JobContext:
    """One running job: its database, who asked (``actor``; None for a schedule), its parameters."""

    db: Database
    job_id: int
    tenant_id: int
    actor: Actor | None
    params: dict[str, Any]
    queue: Huey | None = None
    language: str = "en"
    done: int = 0
    total: int | None = None
    message: dict[str, Any] = field(default_factory=dict)
    _last_report: float = 0.0

    def progress(self, done: int, total: int | None = None, key: str = "", **params: Any) -> None:
        """Report progress (``key`` a catalog key describing the step); stops the job if it was cancelled."""
        from crm_core.jobs import queue as job_queue

        self.done, self.total = done, total if total is not None else self.total
        if key:
            self.message = {"key": key, "params": params}
        now = time.monotonic()
        if now - self._last_report < PROGRESS_INTERVAL_SECONDS and (self.total is None or done < self.total):
            return
        self._last_report = now
        if job_queue.cancel_requested(self.job_id, self.queue):
            raise JobCancelled()
        job_queue.put_progress(self.job_id, self.done, self.total, self.message, self.queue)

    def progress_callback(self) -> Callable[[int, int | None, str], None]:
        """``progress(done, total, message_key)`` for services that take such a callback."""

        def report(done: int, total: int | None, message: str = "") -> None:
            self.progress(done, total, message)

        return report

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` when someone asked this job to stop."""
        from crm_core.jobs import queue as job_queue

        if job_queue.cancel_requested(self.job_id, self.queue):
            raise JobCancelled()

    def require_actor(self) -> Actor:
        """The user the job runs for (kinds that only users may start)."""
        if self.actor is None:
            from crm_core.errors import AccessDenied

            raise AccessDenied("this job needs a user")
        return self.actor


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its code, the roles that may start it, and whether admins may schedule it."""

    name: str
    run: Callable[[JobContext], dict[str, Any]]
    roles: frozenset[Role]
    schedulable: bool = False
    default_schedule: tuple[str, str, str] | None = None  # (minute, hour, day_of_week), UTC

    @property
    def title_key(self) -> str:
        """Catalog key of the kind's name."""
        return f"jobs.kind.{self.name}"


JOB_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    roles: frozenset[Role] = ALL_ROLES,
    schedulable: bool = False,
    default_schedule: tuple[str, str, str] | None = None,
) -> Callable[[Callable[[JobContext], dict[str, Any]]], Callable[[JobContext], dict[str, Any]]]:
    """Register ``run`` as the code of job kind ``name``."""

    def register(run: Callable[[JobContext], dict[str, Any]]) -> Callable[[JobContext], dict[str, Any]]:
        JOB_KINDS[name] = JobKind(name, run, roles, schedulable, default_schedule)
        return run

    return register


def kinds() -> dict[str, JobKind]:
    """Every registered kind (importing the module that registers them first)."""
    import crm_core.jobs.kinds  # noqa: F401  - registers the kinds

    return JOB_KINDS
