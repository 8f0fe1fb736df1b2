"""Read side for tasks: my tasks by due bucket, and the team workload for managers.

Buckets are computed against ``now`` (naive UTC, like every stored timestamp): ``overdue``
is due before the start of today, ``today`` due within today, ``upcoming`` due later or
without a date. Visibility comes from the session: a rep sees the tasks assigned to them
and those of customers they see; a manager also their teams'; admins the whole tenant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import Customer, Task, TaskStatus, User
from crm_core.queries.paging import Page

BUCKETS = ("overdue", "today", "upcoming")
VIEWS = (*BUCKETS, "open", "done")


@dataclass
class TaskFilters:
    """Which tasks to list: whose (None = every task the actor sees) and which view."""

    assignee_id: int | None = None
    view: str = "open"
    customer_id: int | None = None


@dataclass(frozen=True)
class TaskRow:
    """One line of a task list."""

    id: int
    title: str
    due_at: dt.datetime | None
    status: str
    priority: str
    bucket: str
    customer_id: int | None
    customer_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    completed_at: dt.datetime | None
    version: int


@dataclass(frozen=True)
class Workload:
    """One assignee's open tasks, and how many are overdue or due today."""

    assignee_id: int
    assignee_name: str
    open: int
    overdue: int
    due_today: int


def day_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Start of today and start of tomorrow for ``now``."""
    start = dt.datetime.combine(now.date(), dt.time())
    return start, start + dt.timedelta(days=1)


def bucket_of(due_at: dt.datetime | None, now: dt.datetime) -> str:
    """The bucket a due date falls in (the Python twin of :func:`_bucket_condition`)."""
    start, end = day_bounds(now)
    if due_at is None or due_at >= end:
        return "upcoming"
    return "overdue" if due_at < start else "today"


def _bucket_condition(bucket: str, now: dt.datetime) -> ColumnElement[bool]:
    start, end = day_bounds(now)
    if bucket == "overdue":
        return Task.due_at < start
    if bucket == "today":
        return and_(Task.due_at >= start, Task.due_at < end)
    return or_(Task.due_at.is_(None), Task.due_at >= end)


def _filtered(statement: Select, filters: TaskFilters, now: dt.datetime) -> Select:  # type: ignore[type-arg]
    if filters.assignee_id is not None:
        statement = statement.where(Task.assignee_id == filters.assignee_id)
    if filters.customer_id is not None:
        statement = statement.where(Task.customer_id == filters.customer_id)
    if filters.view == "done":
        return statement.where(Task.status == TaskStatus.DONE.value)
    statement = statement.where(Task.status == TaskStatus.OPEN.value)
    if filters.view in BUCKETS:
        statement = statement.where(_bucket_condition(filters.view, now))
    return statement


def list_tasks(
    session: Session, *, filters: TaskFilters | None = None, now: dt.datetime, page: int = 1, per_page: int = 50
) -> Page[TaskRow]:
    """One page of tasks, soonest due first (done: latest completed first)."""
    filters = filters or TaskFilters()
    assignee = aliased(User)
    statement = _filtered(
        select(Task, Customer.name.label("customer_name"), assignee.full_name.label("assignee_name"))
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .outerjoin(assignee, assignee.id == Task.assignee_id),
        filters,
        now,
    )
    if filters.view == "done":
        statement = statement.order_by(Task.completed_at.desc(), Task.id.desc())
    elif filters.view in ("overdue", "today"):
        # every task here has a due date: the index's own order, so a page reads its 50 rows and stops
        # (the undated-last expression below made SQLite join and sort a manager's 30,000 overdue tasks)
        statement = statement.order_by(Task.due_at, Task.id)
    else:
        # undated tasks last on every database
        statement = statement.order_by(case((Task.due_at.is_(None), 1), else_=0), Task.due_at, Task.id)
    page = max(1, page)
    rows = session.execute(statement.offset((page - 1) * per_page).limit(per_page + 1)).all()
    items = [
        TaskRow(
            id=task.id, title=task.title, due_at=task.due_at, status=task.status, priority=task.priority,
            bucket=bucket_of(task.due_at, now), customer_id=task.customer_id, customer_name=customer_name,
            assignee_id=task.assignee_id, assignee_name=assignee_name, completed_at=task.completed_at,
            version=task.version,
        )
        for task, customer_name, assignee_name in rows[:per_page]
    ]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


def bucket_counts(session: Session, *, assignee_id: int | None, now: dt.datetime) -> dict[str, int]:
    """Open tasks per bucket (one SQL aggregate)."""
    start, end = day_bounds(now)
    statement = select(
        func.count(case((Task.due_at < start, 1))),
        func.count(case((and_(Task.due_at >= start, Task.due_at < end), 1))),
        func.count(case((or_(Task.due_at.is_(None), Task.due_at >= end), 1))),
    ).where(Task.status == TaskStatus.OPEN.value)
    if assignee_id is not None:
        statement = statement.where(Task.assignee_id == assignee_id)
    overdue, today, upcoming = session.execute(statement).one()
    return {"overdue": int(overdue), "today": int(today), "upcoming": int(upcoming)}


def task_overview(session: Session, *, now: dt.datetime) -> tuple[dict[str, int], list[Workload]]:
    """The bucket counts of every open task the actor sees, and the workload per assignee, in one pass.

    One aggregate grouped by assignee (read from ``ix_tasks_scope_cover`` alone); the counts are the
    groups' sums (unassigned tasks included), the workload the assigned groups with their names, most
    overdue first. A manager's Tasks page used to run a count and a per-assignee pass, two passes over the
    same 95,000 open tasks at 1M customers.
    """
    start, end = day_bounds(now)
    overdue = func.count(case((Task.due_at < start, 1)))
    today = func.count(case((and_(Task.due_at >= start, Task.due_at < end), 1)))
    rows = session.execute(
        select(Task.assignee_id, func.count(), overdue, today)
        .where(Task.status == TaskStatus.OPEN.value)
        .group_by(Task.assignee_id)
    ).all()
    counts = {"overdue": sum(int(row[2]) for row in rows), "today": sum(int(row[3]) for row in rows)}
    counts["upcoming"] = sum(int(row[1]) for row in rows) - counts["overdue"] - counts["today"]
    assigned = [(int(row[0]), int(row[1]), int(row[2]), int(row[3])) for row in rows if row[0] is not None]
    names = {user_id: name for user_id, name in session.execute(
        select(User.id, User.full_name).where(User.id.in_([row[0] for row in assigned])))} if assigned else {}
    workload = [
        Workload(assignee_id=row[0], assignee_name=names.get(row[0], "—"), open=row[1], overdue=row[2],
                 due_today=row[3])
        for row in assigned
    ]
    workload.sort(key=lambda item: (-item.overdue, item.assignee_name))
    return counts, workload
