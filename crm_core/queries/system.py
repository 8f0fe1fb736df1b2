"""The System page's read side: what an admin checks first when something seems wrong.

Version and schema revision (against the code's head), the database kind, the workspace's job
queue (waiting and running per kind, failures of the last day with the reference a user quotes),
and the newest backup with its restore drill (``crm_core.backup``; the drill's result is kept
beside the backup file). Aggregates are counted in SQL; nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import __version__, schema
from crm_core.access import actor_of
from crm_core.backup import BackupFile, list_backups
from crm_core.errors import AccessDenied
from crm_core.incidents import Incident, recent_incidents
from crm_core.models import utcnow
from crm_core.models.jobs import Job, JobStatus

RECENT_FAILURES = 10


@dataclass(frozen=True)
class FailedJob:
    id: int
    kind: str
    finished_at: dt.datetime | None
    error_key: str | None
    reference: str | None  # the correlation id the user saw, when the failure was unexpected


@dataclass(frozen=True)
class SystemStatus:
    version: str
    dialect: str
    revision: str | None
    head: str
    queued: dict[str, int]
    running: dict[str, int]
    failed_last_day: int
    recent_failures: list[FailedJob] = field(default_factory=list)
    last_backup: BackupFile | None = None
    last_drill: dict[str, Any] | None = None
    incidents: list[Incident] = field(default_factory=list)

    @property
    def schema_current(self) -> bool:
        return self.revision == self.head


def drill_record(backup: BackupFile) -> Path:
    """Where the drill's result of ``backup`` is kept: beside it."""
    return backup.path.with_name(backup.path.name + ".drill.json")


def system_status(session: Session, backup_dir: Path, *, now: dt.datetime | None = None) -> SystemStatus:
    """The System page's figures for the session's admin (their workspace's jobs; the installation's backups)."""
    actor = actor_of(session)
    if actor is None or not actor.is_admin:
        raise AccessDenied("only an admin may read the system status")
    now = now or utcnow()
    counts = session.execute(
        select(Job.kind, Job.status, func.count())
        .where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
        .group_by(Job.kind, Job.status)
    )
    queued: dict[str, int] = {}
    running: dict[str, int] = {}
    for kind, status, count in counts:
        (queued if status == JobStatus.QUEUED.value else running)[str(kind)] = int(count)
    since = now - dt.timedelta(days=1)
    failed = select(Job).where(Job.status == JobStatus.FAILED.value, Job.finished_at >= since)
    failed_count = int(session.scalar(select(func.count()).select_from(failed.subquery())) or 0)
    recent = [FailedJob(job.id, job.kind, job.finished_at, job.error_key, job.error_detail)
              for job in session.scalars(failed.order_by(Job.finished_at.desc()).limit(RECENT_FAILURES))]
    backups = list_backups(backup_dir)
    last = backups[0] if backups else None
    drill = None
    if last is not None and drill_record(last).exists():
        try:
            drill = json.loads(drill_record(last).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            drill = None
    connection = session.connection()
    revision = MigrationContext.configure(connection).get_current_revision()
    return SystemStatus(__version__, connection.dialect.name, revision, schema.head_revision(), queued, running,
                        failed_count, recent, last, drill, recent_incidents(actor.tenant_id))
