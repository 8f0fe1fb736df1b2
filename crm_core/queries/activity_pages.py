"""Read side for activities and tasks one page at a time (the API's lists): keyset, newest first.

The pages show a customer's latest activities (``customer_profile.customer_activities``) and a
user's tasks by due bucket (``queries.tasks.list_tasks``, offset pages). A client syncing
every activity or task needs pages that stay put while rows are added: these page by
``(occurred_at, id)`` for activities and ``(created_at, id)`` for tasks. Visibility is the
session's: an activity or task is seen with its customer (and a task by its assignee).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from crm_core.models import Activity, Task
from crm_core.queries.paging import Page

Cursor = tuple[dt.datetime, int]


@dataclass(frozen=True)
class ActivityListRow:
    """One logged activity."""

    id: int
    customer_id: int
    type: str
    summary: str
    occurred_at: dt.datetime
    contact_id: int | None
    opportunity_id: int | None
    author_id: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TaskListRow:
    """One task."""

    id: int
    title: str
    status: str
    priority: str
    due_at: dt.datetime | None
    assignee_id: int | None
    customer_id: int | None
    opportunity_id: int | None
    completed_at: dt.datetime | None
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


@dataclass(frozen=True)
class KeysetPage(Page[Any]):
    """A page and the keyset position of its last row when more follow."""

    next_cursor: Cursor | None = None
    total_capped: bool = False


_ACTIVITY = (Activity.id, Activity.customer_id, Activity.type, Activity.summary, Activity.occurred_at,
             Activity.contact_id, Activity.opportunity_id, Activity.author_id, Activity.created_at)
_TASK = (Task.id, Task.title, Task.status, Task.priority, Task.due_at, Task.assignee_id, Task.customer_id,
         Task.opportunity_id, Task.completed_at, Task.created_by_id, Task.created_at, Task.updated_at, Task.version)


def _page(session: Session, statement: Any, count: Any, key: Any, id_column: Any, *, per_page: int,
          after: Cursor | None, descending: bool, with_total: bool, count_cap: int | None, row_type: Any,
          key_name: str) -> KeysetPage:
    per_page = max(1, min(per_page, 500))
    order = [key.desc(), id_column.desc()] if descending else [key.asc(), id_column.asc()]
    statement = statement.order_by(*order).limit(per_page + 1)
    if after is not None:
        position, bound = tuple_(key, id_column), tuple_(*after)
        statement = statement.where(position < bound if descending else position > bound)
    rows = session.execute(statement).all()
    items = [row_type(**row._asdict()) for row in rows[:per_page]]
    has_next = len(rows) > per_page
    total, capped = None, False
    if with_total:
        if count_cap is not None:
            count = count.limit(count_cap + 1)
        total = int(session.scalar(select(func.count()).select_from(count.subquery())) or 0)
        capped = count_cap is not None and total > count_cap
        total = min(total, count_cap) if count_cap is not None else total
    cursor = (getattr(items[-1], key_name), items[-1].id) if has_next else None
    return KeysetPage(items=items, per_page=per_page, has_next=has_next, total=total, total_capped=capped,
                      next_cursor=cursor)


def list_activity_page(
    session: Session, *, customer_id: int | None = None, activity_type: str | None = None, per_page: int = 50,
    after: Cursor | None = None, descending: bool = True, with_total: bool = False, count_cap: int | None = None,
) -> KeysetPage:
    """Activities the session may see (of one customer, of one type), latest first unless ``descending`` is off."""
    conditions = []
    if customer_id is not None:
        conditions.append(Activity.customer_id == customer_id)
    if activity_type:
        conditions.append(Activity.type == activity_type)
    return _page(session, select(*_ACTIVITY).where(*conditions), select(Activity.id).where(*conditions),
                 Activity.occurred_at, Activity.id, per_page=per_page, after=after, descending=descending,
                 with_total=with_total, count_cap=count_cap, row_type=ActivityListRow, key_name="occurred_at")


def get_activity(session: Session, activity_id: int) -> ActivityListRow | None:
    """One activity, if the session may see it."""
    row = session.execute(select(*_ACTIVITY).where(Activity.id == activity_id)).first()
    return ActivityListRow(**row._asdict()) if row is not None else None


def list_task_page(
    session: Session, *, status: str | None = None, assignee_id: int | None = None, customer_id: int | None = None,
    per_page: int = 50, after: Cursor | None = None, descending: bool = True, with_total: bool = False,
    count_cap: int | None = None,
) -> KeysetPage:
    """Tasks the session may see (by status, assignee, customer), newest first unless ``descending`` is off."""
    conditions = []
    if status:
        conditions.append(Task.status == status)
    if assignee_id is not None:
        conditions.append(Task.assignee_id == assignee_id)
    if customer_id is not None:
        conditions.append(Task.customer_id == customer_id)
    return _page(session, select(*_TASK).where(*conditions), select(Task.id).where(*conditions), Task.created_at,
                 Task.id, per_page=per_page, after=after, descending=descending, with_total=with_total,
                 count_cap=count_cap, row_type=TaskListRow, key_name="created_at")


def get_task(session: Session, task_id: int) -> TaskListRow | None:
    """One task, if the session may see it."""
    row = session.execute(select(*_TASK).where(Task.id == task_id)).first()
    return TaskListRow(**row._asdict()) if row is not None else None
