"""Task use cases: create, complete (optionally logging its activity in the same step),
reschedule and reassign. Each opens its own transaction and checks the version the form
loaded, so two people acting on one task never overwrite each other."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, StaleRecord, ValidationFailed
from crm_core.models import (
    AuditEvent,
    Customer,
    Priority,
    Role,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from crm_core.rules import fields
from crm_core.rules.fields import clean_text
from crm_core.services.activities import ActivityInput, record_activity
from crm_core.services.notifications import notify

TITLE_MAX = 200
PRIORITIES = tuple(priority.value for priority in Priority)

Errors = dict[str, tuple[str, dict[str, Any]]]


@dataclass
class TaskInput:
    """The fields of the new-task form."""

    title: str
    due_at: dt.datetime | None = None
    assignee_id: int | None = None
    customer_id: int | None = None
    priority: str = Priority.NORMAL.value


def _stale(session: Session, task_id: int) -> StaleRecord:
    row = session.execute(
        select(AuditEvent.occurred_at, User.full_name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.entity == "task", AuditEvent.entity_id == task_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return StaleRecord("task", task_id)
    return StaleRecord("task", task_id, changed_by=row.full_name, changed_at=row.occurred_at)


def _load(session: Session, task_id: int, expected_version: int | None) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound("task")
    if expected_version is not None and task.version != expected_version:
        raise _stale(session, task_id)
    return task


def _check_assignee(session: Session, actor: Actor, assignee_id: int | None, errors: Errors) -> None:
    if assignee_id is None:
        return
    user = session.get(User, assignee_id)
    if user is None or not user.is_active or user.role == Role.ANALYST.value:
        errors["assignee_id"] = ("validation.choice", {})
    elif not access.can_assign_owner(actor, assignee_id):
        raise AccessDenied("cannot assign a task to that user")


def create_task(db: Database, actor: Actor, form: TaskInput) -> int:
    """Create a task by hand (assigned to the actor unless someone else is chosen)."""
    errors: Errors = {}
    # the task table's field rules, as the import applies them: NFKC-folded and trimmed, and no markup,
    # hidden characters (NUL, bidi overrides) or spreadsheet formula in a title shown on every page
    title = clean_text(form.title) or ""
    problem = fields.check(fields.TASK["title"], title or None)
    if problem is not None:
        errors["title"] = problem
    elif len(title) > TITLE_MAX:
        errors["title"] = ("validation.too_long", {"max": TITLE_MAX})
    if form.priority not in PRIORITIES:
        errors["priority"] = ("validation.choice", {})
    with db.transaction(actor) as session:
        assignee_id = form.assignee_id if form.assignee_id is not None else actor.user_id
        _check_assignee(session, actor, assignee_id, errors)
        if form.customer_id is not None and session.get(Customer, form.customer_id) is None:
            errors["customer_id"] = ("validation.choice", {})
        if errors:
            raise ValidationFailed(errors)
        task = Task(
            tenant_id=actor.tenant_id, title=title, assignee_id=assignee_id, created_by_id=actor.user_id,
            due_at=form.due_at, priority=form.priority, customer_id=form.customer_id,
            status=TaskStatus.OPEN.value,
        )
        session.add(task)
        session.flush()
        notify_task_assigned(session, actor, task)
        return task.id


def complete_task(
    db: Database,
    actor: Actor,
    task_id: int,
    *,
    expected_version: int | None = None,
    activity: ActivityInput | None = None,
) -> int | None:
    """Mark a task done; with ``activity``, log it on the task's customer in the same transaction.

    Returns the activity id (None without one). Raises NotFound, StaleRecord, ValidationFailed
    (the activity's fields; then the task stays open) or AccessDenied.
    """
    with db.transaction(actor) as session:
        task = _load(session, task_id, expected_version)
        if task.status != TaskStatus.OPEN.value:
            raise ValidationFailed({"status": ("followups.task.not_open", {})})
        activity_id = None
        if activity is not None:
            if task.customer_id is None:
                raise ValidationFailed({"customer_id": ("followups.task.no_customer", {})})
            activity.customer_id = task.customer_id
            if activity.opportunity_id is None:
                activity.opportunity_id = task.opportunity_id
            activity_id = record_activity(session, actor, activity)
        task.status = TaskStatus.DONE.value
        task.completed_at = utcnow()
        session.flush()
        return activity_id


def reopen_task(db: Database, actor: Actor, task_id: int, *, expected_version: int | None = None) -> None:
    """Undo a completion."""
    with db.transaction(actor) as session:
        task = _load(session, task_id, expected_version)
        task.status = TaskStatus.OPEN.value
        task.completed_at = None
        session.flush()


def reschedule_task(
    db: Database, actor: Actor, task_id: int, *, due_at: dt.datetime, expected_version: int | None = None
) -> int:
    """Move an open task's due date; returns the new version."""
    with db.transaction(actor) as session:
        task = _load(session, task_id, expected_version)
        if task.status != TaskStatus.OPEN.value:
            raise ValidationFailed({"status": ("followups.task.not_open", {})})
        if due_at < dt.datetime.combine(utcnow().date(), dt.time()):
            raise ValidationFailed({"due_at": ("followups.task.due_in_past", {})})
        task.due_at = due_at
        session.flush()
        return task.version


def reassign_task(
    db: Database, actor: Actor, task_id: int, *, assignee_id: int, expected_version: int | None = None
) -> int:
    """Give an open task to someone else (reps: only to themselves; managers: their teams)."""
    with db.transaction(actor) as session:
        task = _load(session, task_id, expected_version)
        if task.status != TaskStatus.OPEN.value:
            raise ValidationFailed({"status": ("followups.task.not_open", {})})
        errors: Errors = {}
        _check_assignee(session, actor, assignee_id, errors)
        if errors:
            raise ValidationFailed(errors)
        changed = task.assignee_id != assignee_id
        task.assignee_id = assignee_id
        session.flush()
        if changed:
            notify_task_assigned(session, actor, task)
        return task.version


def notify_task_assigned(session: Session, actor: Actor, task: Task) -> None:
    """Tell the assignee a task is theirs now, unless they gave it to themselves."""
    if task.assignee_id is None:
        return
    notify(session, tenant_id=task.tenant_id, user_id=task.assignee_id, kind="task_assigned", entity="task",
           entity_id=task.id, actor_id=actor.user_id,
           params={"title": task.title, "by": actor.full_name or actor.username,
                   "due": task.due_at.strftime("%Y-%m-%d") if task.due_at else "—"})
