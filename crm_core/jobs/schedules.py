"""Periodic jobs: each tenant's schedules (crontab fields, UTC), edited by admins, run by the worker.

Huey runs one periodic task, the tick, every minute; it starts the jobs whose schedule
matches that minute. Several workers (on several machines) may tick the same minute: a
schedule is claimed with a conditional UPDATE on ``last_run_at``, so only one of them
starts its job. No cron is needed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from huey import Huey, crontab
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import InvalidSchedule, NotFound, StaleRecord, UnknownJobKind
from crm_core.jobs.context import kinds
from crm_core.models import Tenant, utcnow
from crm_core.models.jobs import JobSchedule

LOG = logging.getLogger("kestrel.jobs")


def check_crontab(minute: str, hour: str, day_of_week: str) -> None:
    """Refuse a schedule Huey's crontab would not understand (field by field)."""
    for field, value in (("minute", minute), ("hour", hour), ("day_of_week", day_of_week)):
        try:
            crontab(**{field: value.strip()}, strict=True)
        except (ValueError, TypeError):
            raise InvalidSchedule(field=field, value=value) from None
        if not value.strip():
            raise InvalidSchedule(field=field, value=value)


def is_due(schedule: JobSchedule, at: dt.datetime) -> bool:
    """Whether ``schedule`` fires in the minute of ``at`` (UTC)."""
    matches = crontab(minute=schedule.minute, hour=schedule.hour, day_of_week=schedule.day_of_week)
    return bool(matches(at))


def add_default_schedules(session: Session, tenant_id: int) -> int:
    """Give tenant ``tenant_id`` the default schedule of every schedulable kind it lacks (in ``session``)."""
    have = set(session.scalars(select(JobSchedule.kind).where(JobSchedule.tenant_id == tenant_id)))
    created = 0
    for kind in kinds().values():
        if kind.schedulable and kind.default_schedule and kind.name not in have:
            minute, hour, day_of_week = kind.default_schedule
            session.add(JobSchedule(tenant_id=tenant_id, kind=kind.name, params={}, minute=minute, hour=hour,
                                    day_of_week=day_of_week, enabled=True))
            created += 1
    return created


def ensure_default_schedules(db: Database) -> int:
    """Every tenant gets the default schedules it lacks (``init``: tenants created before schedules existed)."""
    with db.system_transaction("default job schedules") as session:
        return sum(add_default_schedules(session, tenant_id) for tenant_id in session.scalars(select(Tenant.id)).all())


def run_due_schedules(db: Database, *, queue: Huey | None = None, now: dt.datetime | None = None) -> list[int]:
    """Start the job of every enabled schedule due this minute; returns the new jobs' ids.

    Tenant by tenant: each read names its tenant, so a database distributed by tenant (Citus, decision 0057)
    answers it from one node instead of asking every node for every tenant's schedules each minute."""
    from crm_core.jobs.service import submit_system_job

    minute = (now or utcnow()).replace(second=0, microsecond=0)
    with db.system_session("schedules: due") as session:
        tenant_ids = session.scalars(select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.id)).all()
        schedules = [schedule for tenant_id in tenant_ids for schedule in session.scalars(
            select(JobSchedule).where(JobSchedule.tenant_id == tenant_id, JobSchedule.enabled.is_(True))
            .order_by(JobSchedule.id))]
    started: list[int] = []
    for schedule in schedules:
        if not is_due(schedule, minute):
            continue
        with db.system_transaction("schedules: claim") as session:
            claimed = session.execute(
                update(JobSchedule)
                .where(JobSchedule.tenant_id == schedule.tenant_id, JobSchedule.id == schedule.id,
                       or_(JobSchedule.last_run_at.is_(None), JobSchedule.last_run_at < minute))
                .values(last_run_at=minute)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            continue  # another worker started it this minute
        try:
            job_id = submit_system_job(db, schedule.tenant_id, schedule.kind, schedule.params,
                                       schedule_id=schedule.id, queue=queue)
        except Exception:  # one broken schedule must not stop the others
            LOG.exception("schedule %s (%s) could not start its job", schedule.id, schedule.kind)
            continue
        with db.system_transaction("schedules: last job") as session:
            session.execute(update(JobSchedule)
                            .where(JobSchedule.tenant_id == schedule.tenant_id, JobSchedule.id == schedule.id)
                            .values(last_job_id=job_id).execution_options(synchronize_session=False))
        started.append(job_id)
    return started


@dataclass(frozen=True)
class ScheduleChange:
    """What an admin edits on a schedule."""

    minute: str
    hour: str
    day_of_week: str
    enabled: bool


def update_schedule(db: Database, actor: Actor, schedule_id: int, change: ScheduleChange, *, version: int) -> None:
    """Change a schedule (admins only, enforced by the access rules); refuses a malformed crontab."""
    check_crontab(change.minute, change.hour, change.day_of_week)
    with db.transaction(actor) as session:
        schedule = session.scalars(select(JobSchedule).where(JobSchedule.id == schedule_id)).one_or_none()
        if schedule is None:
            raise NotFound("schedule", id=schedule_id)
        if schedule.kind not in kinds():
            raise UnknownJobKind(kind=schedule.kind)
        if schedule.version != version:
            raise StaleRecord("job_schedule", schedule.id, changed_at=schedule.updated_at)
        schedule.minute = change.minute.strip()
        schedule.hour = change.hour.strip()
        schedule.day_of_week = change.day_of_week.strip()
        schedule.enabled = change.enabled
