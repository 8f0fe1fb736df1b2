"""The daily task sweep (``task_reminders`` job): each open task due today tells its assignee once that day,
each overdue one once. Idempotent: a notification's ``dedupe_key`` (``task_due:<task>:<day>``,
``task_overdue:<task>``) is unique per user, so a second run the same day — or a second worker — adds nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from crm_core.jobs.context import JobContext, job_kind
from crm_core.models import Base, Role, TaskStatus, utcnow
from crm_core.services.notifications import Notice, notify_many

tasks = Base.metadata.tables["tasks"]
CHUNK = 5000


def sweep_task_reminders(db: Database, tenant_id: int, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Notify the assignees of the tenant's open tasks due today (UTC) or overdue; counts of each written."""
    now = now or utcnow()
    today = dt.datetime.combine(now.date(), dt.time())
    tomorrow = today + dt.timedelta(days=1)
    counts = {"due": 0, "overdue": 0}
    with db.system_session("notifications: tasks due", tenant_id=tenant_id) as session:
        rows = session.connection().execute(
            select(tasks.c.id, tasks.c.title, tasks.c.assignee_id, tasks.c.due_at).where(
                tasks.c.tenant_id == tenant_id, tasks.c.status == TaskStatus.OPEN.value,
                tasks.c.assignee_id.is_not(None), tasks.c.due_at < tomorrow)
            .order_by(tasks.c.id)).all()
    for start in range(0, len(rows), CHUNK):
        notices = []
        for row in rows[start:start + CHUNK]:
            overdue = row.due_at < today
            notices.append(Notice(
                row.assignee_id, "task_overdue" if overdue else "task_due",
                {"title": row.title, "due": row.due_at.strftime("%Y-%m-%d")}, "task", row.id,
                f"task_overdue:{row.id}" if overdue else f"task_due:{row.id}:{today.date().isoformat()}"))
        with db.system_transaction("notifications: task sweep", tenant_id=tenant_id) as session:
            for notice in notify_many(session, tenant_id=tenant_id, notices=notices, now=now):
                counts["overdue" if notice.kind == "task_overdue" else "due"] += 1
    return counts


@job_kind("task_reminders", roles=frozenset({Role.ADMIN}), schedulable=True, default_schedule=("30", "0", "*"))
def task_reminders(ctx: JobContext) -> dict[str, Any]:
    """Tell assignees of the tasks due today and of the overdue ones (daily; idempotent)."""
    ctx.progress(0, 1, "jobs.progress.task_reminders")
    as_of = ctx.params.get("as_of")
    now = dt.datetime.fromisoformat(as_of).replace(tzinfo=None) if as_of else None
    counts = sweep_task_reminders(ctx.db, ctx.tenant_id, now=now)
    ctx.progress(1, 1)
    return counts
