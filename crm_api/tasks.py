"""``/v1/tasks``: follow-ups to do. Each change is the Tasks page's own use case, one endpoint each.

``complete`` (optionally logging its activity in the same transaction), ``reopen``,
``reschedule`` and ``reassign`` are actions, not a generic PATCH: each is one service call
with its own rules (only an open task moves; a rep assigns only to themselves). Every action
needs the version it acts on (`If-Match`), like any write.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.activities import ActivityType
from crm_api.concurrency import etag, expected_version
from crm_api.dependencies import Caller, Db, Writer
from crm_api.paging import (
    COUNT_CAP,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Keyset,
    ListPage,
    parse_datetime,
)
from crm_api.routing import ApiRoute
from crm_api.schemas import Day, Moment, RecordId, UtcDateTime, errors_for
from crm_core.errors import NotFound
from crm_core.queries.activity_pages import TaskListRow, get_task, list_task_page
from crm_core.services.activities import ActivityInput
from crm_core.services.tasks import TaskInput, complete_task, create_task, reassign_task, reopen_task, reschedule_task

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=ApiRoute)

TaskStatus = Literal["open", "done", "cancelled"]
Priority = Literal["low", "normal", "high"]


class TaskOut(BaseModel):
    """A task (times in UTC)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 77, "title": "Send the quote", "status": "open", "priority": "high", "due_at": "2026-12-08T09:00:00Z",
        "assignee_id": 7, "customer_id": 42, "opportunity_id": None, "completed_at": None, "created_by_id": 7,
        "created_at": "2026-12-04T07:31:12Z", "updated_at": "2026-12-04T07:31:12Z", "version": 1}]})

    id: int
    title: str
    status: TaskStatus
    priority: Priority
    due_at: Moment | None
    assignee_id: int | None
    customer_id: int | None
    opportunity_id: int | None
    completed_at: Moment | None
    created_by_id: int | None
    created_at: Moment
    updated_at: Moment
    version: int = Field(description="Send it back in `If-Match` to act on the task.")


class TaskCreate(BaseModel):
    """A new task; assigned to the caller unless `assignee_id` says otherwise."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Send the quote", "due_at": "2026-12-08T09:00:00Z", "customer_id": 42, "priority": "high"}]})

    title: str = Field(max_length=1000)
    due_at: UtcDateTime | None = None
    assignee_id: RecordId | None = None
    customer_id: RecordId | None = None
    priority: Priority = "normal"


class CompletedActivity(BaseModel):
    """The activity to log on the task's customer as the task is completed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"type": "call", "summary": "Quote sent and discussed.", "next_follow_up_at": "2026-12-15"}]})

    type: ActivityType
    summary: str = Field(max_length=20_000)
    occurred_at: UtcDateTime | None = None
    contact_id: RecordId | None = None
    next_follow_up_at: UtcDateTime | Day | None = None


class TaskCompletion(BaseModel):
    """Complete a task, optionally logging what was done (one transaction: both or neither)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"activity": {"type": "call", "summary": "Quote sent and discussed."}}]})

    activity: CompletedActivity | None = None


class TaskReschedule(BaseModel):
    """A new due moment for an open task (not before today)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"due_at": "2026-12-10T09:00:00Z"}]})

    due_at: UtcDateTime


class TaskReassign(BaseModel):
    """Who does an open task now (a rep: only themselves; a manager: their teams)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee_id": 8}]})

    assignee_id: RecordId


class TaskQuery(BaseModel):
    """Filters of the task list (newest first unless `order=asc`)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    status: TaskStatus | None = None
    assignee_id: RecordId | None = None
    customer_id: RecordId | None = None
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")


def task_out(row: TaskListRow) -> TaskOut:
    """The API form of a task."""
    return TaskOut(**row.__dict__)  # type: ignore[arg-type]


def read_task(db: Db, found: Caller, task_id: int, response: Response) -> TaskOut:
    """The task now, with its ETag; 404 when not visible."""
    with db.session(found.actor) as session:
        row = get_task(session, task_id)
    if row is None:
        raise NotFound("task")
    response.headers["ETag"] = etag(row.version)
    return task_out(row)


TaskId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]
ACTION_ERRORS = errors_for(403, 404, 412, 415, 422, 428)


@router.get("", response_model=ListPage[TaskOut], responses=errors_for(400, 422), summary="List tasks")
def list_tasks_endpoint(query: Annotated[TaskQuery, Query()], db: Db, found: Caller) -> ListPage[TaskOut]:
    """A page of the tasks the caller may see (assigned to them, or of customers they see)."""
    descending = query.order == "desc"
    keyset = Keyset.of("tasks", "created_at", descending, {
        "status": query.status, "assignee_id": query.assignee_id, "customer_id": query.customer_id})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        page = list_task_page(session, status=query.status, assignee_id=query.assignee_id,
                              customer_id=query.customer_id, per_page=query.limit, after=after,
                              descending=descending, with_total=query.include_total, count_cap=COUNT_CAP)
    return ListPage[TaskOut](data=[task_out(row) for row in page.items], next_cursor=keyset.cursor(page.next_cursor),
                             has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{task_id}", response_model=TaskOut, responses=errors_for(404, 422), summary="Get one task")
def get_task_endpoint(task_id: TaskId, db: Db, found: Caller, response: Response) -> TaskOut:
    """One task; its `ETag` is its version."""
    return read_task(db, found, task_id, response)


@router.post("", response_model=TaskOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 409, 415, 422), summary="Create a task")
def create_task_endpoint(
    body: TaskCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> TaskOut:
    """Create a task (for the caller unless `assignee_id` is given)."""
    task_id = create_task(db, found.actor, TaskInput(title=body.title, due_at=body.due_at, priority=body.priority,
                                                     assignee_id=body.assignee_id, customer_id=body.customer_id))
    response.headers["Location"] = str(request.url_for("get_task_endpoint", task_id=task_id))
    return read_task(db, found, task_id, response)


@router.post("/{task_id}/complete", response_model=TaskOut, responses=ACTION_ERRORS, summary="Complete a task")
def complete_task_endpoint(task_id: TaskId, response: Response, db: Db, found: Writer, if_match: IfMatch = None,
                           body: TaskCompletion | None = None) -> TaskOut:
    """Mark an open task done; with `activity`, log it on the task's customer in the same transaction."""
    version = expected_version(if_match)
    activity = None
    if body is not None and body.activity is not None:
        given = body.activity
        activity = ActivityInput(customer_id=0, type=given.type, summary=given.summary, occurred_at=given.occurred_at,
                                 contact_id=given.contact_id, next_follow_up_at=given.next_follow_up_at)
    complete_task(db, found.actor, task_id, expected_version=version, activity=activity)
    return read_task(db, found, task_id, response)


@router.post("/{task_id}/reopen", response_model=TaskOut, responses=ACTION_ERRORS, summary="Reopen a task")
def reopen_task_endpoint(task_id: TaskId, response: Response, db: Db, found: Writer,
                         if_match: IfMatch = None) -> TaskOut:
    """Undo a completion."""
    reopen_task(db, found.actor, task_id, expected_version=expected_version(if_match))
    return read_task(db, found, task_id, response)


@router.post("/{task_id}/reschedule", response_model=TaskOut, responses=ACTION_ERRORS, summary="Move a due date")
def reschedule_task_endpoint(task_id: TaskId, body: TaskReschedule, response: Response, db: Db, found: Writer,
                             if_match: IfMatch = None) -> TaskOut:
    """Move an open task's due moment (not before today)."""
    reschedule_task(db, found.actor, task_id, due_at=body.due_at, expected_version=expected_version(if_match))
    return read_task(db, found, task_id, response)


@router.post("/{task_id}/reassign", response_model=TaskOut, responses=ACTION_ERRORS, summary="Reassign a task")
def reassign_task_endpoint(task_id: TaskId, body: TaskReassign, response: Response, db: Db, found: Writer,
                           if_match: IfMatch = None) -> TaskOut:
    """Give an open task to someone else."""
    reassign_task(db, found.actor, task_id, assignee_id=body.assignee_id, expected_version=expected_version(if_match))
    return read_task(db, found, task_id, response)
