"""``/v1/notifications`` (my bell) and ``/v1/access-requests`` (撞单): the pages' own queries and services.

A notification's ``message`` is rendered in the caller's language (``Accept-Language``) from its kind and
``params``; ``params`` hold user text (titles, names, a note's excerpt) for clients that render their own.
An access request names no customer: the client sends what it tried to create (name, email, phone), the
core finds the duplicate again, and the answer carries only the request (decision 0028).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.dependencies import Caller, Db, Writer
from crm_api.paging import DEFAULT_LIMIT, MAX_LIMIT
from crm_api.routing import ApiRoute
from crm_api.schemas import Moment, errors_for
from crm_core.errors import NotFound
from crm_core.i18n import normalise_language, t
from crm_core.queries.notifications import AccessRequestRow, get_access_request, list_notifications
from crm_core.rules.notifications import message_key
from crm_core.services.access_requests import decide_access_request, request_access
from crm_core.services.notifications import mark_read

router = APIRouter(prefix="/v1", tags=["notifications"], route_class=ApiRoute)
RecordPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


NOTIFICATION_EXAMPLE: dict[str, Any] = {
    "id": 5, "kind": "task_assigned", "message": "Mia Manager gave you a task: Call back (due 2026-12-08)",
    "params": {"title": "Call back", "by": "Mia Manager", "due": "2026-12-08"}, "entity": "task",
    "entity_id": 77, "created_at": "2026-12-05T09:00:00Z", "read_at": None}


class NotificationOut(BaseModel):
    """One of my notifications (times in UTC)."""

    model_config = ConfigDict(json_schema_extra={"examples": [NOTIFICATION_EXAMPLE]})

    id: int
    kind: str
    message: str
    params: dict[str, Any]
    entity: str | None
    entity_id: int | None
    created_at: Moment
    read_at: Moment | None


class NotificationPage(BaseModel):
    """A page of my notifications, newest first; pass `next_before` as `before` for the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"data": [NOTIFICATION_EXAMPLE], "has_more": False, "next_before": None}]})

    data: list[NotificationOut]
    has_more: bool
    next_before: int | None = Field(description="The `before` of the next page; null on the last page.")


class NotificationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unread: bool = False
    before: int | None = Field(default=None, ge=1, le=2**31 - 1)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


def _language(request: Request) -> str:
    return normalise_language((request.headers.get("accept-language") or "en").split(",")[0].strip())


@router.get("/notifications", response_model=NotificationPage, responses=errors_for(422),
            summary="List my notifications")
def list_notifications_endpoint(query: Annotated[NotificationQuery, Query()], request: Request, db: Db,
                                found: Caller) -> NotificationPage:
    """My notifications, newest first (`unread=true`: the unread ones only)."""
    with db.session(found.actor) as session:
        page = list_notifications(session, unread_only=query.unread, before_id=query.before, limit=query.limit)
    language = _language(request)
    data = [NotificationOut(id=row.id, kind=row.kind, message=t(message_key(row.kind, row.params), language,
                                                               **row.params),
                            params=row.params, entity=row.entity, entity_id=row.entity_id,
                            created_at=row.created_at, read_at=row.read_at) for row in page.items]
    return NotificationPage(data=data, has_more=page.has_next,
                            next_before=page.items[-1].id if page.has_next and page.items else None)


@router.post("/notifications/{notification_id}/read", status_code=status.HTTP_204_NO_CONTENT,
             responses=errors_for(404, 422), summary="Mark a notification read")
def mark_read_endpoint(notification_id: RecordPath, db: Db, found: Caller) -> Response:
    """Mark one of my notifications read (404 for anyone else's)."""
    mark_read(db, found.actor, notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class AccessRequestOut(BaseModel):
    """An access request; `customer_name` only for a reader who sees the customer."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 12, "status": "pending", "requester_id": 4, "requester_name": "Rita Rep", "customer_name": None,
        "requested_name": "Harbour Freight Ltd", "reason": "I met them at the fair",
        "created_at": "2026-12-05T09:00:00Z", "decided_at": None}]})

    id: int
    status: Literal["pending", "approved", "declined", "cancelled"]
    requester_id: int
    requester_name: str
    customer_name: str | None
    requested_name: str
    reason: str
    created_at: Moment
    decided_at: Moment | None


class AccessRequestCreate(BaseModel):
    """What the caller tried to create (and was refused as a duplicate of), and why they ask for it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Harbour Freight Ltd", "email": "", "phone": "", "reason": "I met them at the fair"}]})

    name: str = Field(default="", max_length=1000)
    email: str = Field(default="", max_length=1000)
    phone: str = Field(default="", max_length=1000)
    reason: str = Field(default="", max_length=2000)


class AccessDecision(BaseModel):
    """Approve (the customer goes to the requester) or decline."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"decision": "approve"}]})

    decision: Literal["approve", "decline"]


def _request_out(row: AccessRequestRow) -> AccessRequestOut:
    return AccessRequestOut(id=row.id, status=row.status, requester_id=row.requester_id,  # type: ignore[arg-type]
                            requester_name=row.requester_name, customer_name=row.customer_name,
                            requested_name=row.requested_name, reason=row.reason, created_at=row.created_at,
                            decided_at=row.decided_at)


def _read_request(db: Db, found: Caller, request_id: int) -> AccessRequestOut:
    with db.session(found.actor) as session:
        row = get_access_request(session, request_id)
    if row is None:
        raise NotFound("access_request")
    return _request_out(row)


@router.post("/access-requests", response_model=AccessRequestOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(403, 404, 415, 422), summary="Ask for a customer the duplicate check refused")
def create_access_request_endpoint(body: AccessRequestCreate, db: Db, found: Writer) -> AccessRequestOut:
    """Ask the owner of the customer these values duplicate (404: none does) for it."""
    request_id = request_access(db, found.actor, name=body.name, email=body.email, phone=body.phone,
                                reason=body.reason)
    return _read_request(db, found, request_id)


@router.post("/access-requests/{request_id}/decision", response_model=AccessRequestOut,
             responses=errors_for(403, 404, 415, 422), summary="Decide an access request")
def decide_access_request_endpoint(request_id: RecordPath, body: AccessDecision, db: Db,
                                   found: Writer) -> AccessRequestOut:
    """The owner, their manager or an admin approves (ownership moves to the requester) or declines."""
    decide_access_request(db, found.actor, request_id, approve=body.decision == "approve")
    return _read_request(db, found, request_id)

