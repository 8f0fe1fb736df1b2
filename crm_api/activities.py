"""``/v1/activities``: the calls, meetings, emails, visits and notes logged on customers.

Logging one calls ``log_activity``, the customer profile's use case: in one transaction it
stores the activity, moves the customer's last contact, opens the next follow-up task when
asked and re-evaluates the lifecycle stage. An activity is a log entry: it is never edited
or archived, so it has no ``version`` and no ETag.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

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
from crm_core.queries.activity_pages import ActivityListRow, get_activity, list_activity_page
from crm_core.services.activities import ActivityInput, log_activity

router = APIRouter(prefix="/v1/activities", tags=["activities"], route_class=ApiRoute)

ActivityType = Literal["call", "meeting", "email", "visit", "note"]


class ActivityOut(BaseModel):
    """A logged activity (times in UTC)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 31, "customer_id": 42, "type": "call", "summary": "Asked for a quote for 20 scanners.",
        "occurred_at": "2026-12-04T07:30:00Z", "contact_id": 9, "opportunity_id": None, "author_id": 7,
        "created_at": "2026-12-04T07:31:12Z"}]})

    id: int
    customer_id: int
    type: ActivityType
    summary: str
    occurred_at: Moment
    contact_id: int | None
    opportunity_id: int | None
    author_id: int | None
    created_at: Moment


class ActivityCreate(BaseModel):
    """An activity to log on a customer the caller may see; `next_follow_up_at` also opens a follow-up task."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": 42, "type": "call", "summary": "Asked for a quote for 20 scanners.",
        "occurred_at": "2026-12-04T15:30:00+08:00", "next_follow_up_at": "2026-12-08"}]})

    customer_id: RecordId
    type: ActivityType
    summary: str = Field(max_length=20_000)
    occurred_at: UtcDateTime | None = Field(default=None, description="When it happened; now when omitted.")
    contact_id: RecordId | None = None
    opportunity_id: RecordId | None = None
    next_follow_up_at: UtcDateTime | Day | None = Field(
        default=None, description="A moment, or a day (09:00 UTC that day).")


class ActivityQuery(BaseModel):
    """Filters of the activities list (latest first unless `order=asc`)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    customer_id: RecordId | None = None
    type: ActivityType | None = None
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")


def activity_out(row: ActivityListRow) -> ActivityOut:
    """The API form of an activity."""
    return ActivityOut(**row.__dict__)  # type: ignore[arg-type]


ActivityId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=ListPage[ActivityOut], responses=errors_for(400, 422), summary="List activities")
def list_activities_endpoint(query: Annotated[ActivityQuery, Query()], db: Db, found: Caller
                             ) -> ListPage[ActivityOut]:
    """A page of the activities the caller may see (those of visible customers)."""
    descending = query.order == "desc"
    keyset = Keyset.of("activities", "occurred_at", descending, {"customer_id": query.customer_id, "type": query.type})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        page = list_activity_page(session, customer_id=query.customer_id, activity_type=query.type,
                                  per_page=query.limit, after=after, descending=descending,
                                  with_total=query.include_total, count_cap=COUNT_CAP)
    return ListPage[ActivityOut](data=[activity_out(row) for row in page.items],
                                 next_cursor=keyset.cursor(page.next_cursor),
                                 has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{activity_id}", response_model=ActivityOut, responses=errors_for(404, 422),
            summary="Get one activity")
def get_activity_endpoint(activity_id: ActivityId, db: Db, found: Caller) -> ActivityOut:
    """One activity, if its customer is visible to the caller."""
    with db.session(found.actor) as session:
        row = get_activity(session, activity_id)
    if row is None:
        raise NotFound("activity")
    return activity_out(row)


@router.post("", response_model=ActivityOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 404, 409, 415, 422), summary="Log an activity on a customer")
def log_activity_endpoint(
    body: ActivityCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> ActivityOut:
    """Log an activity; 404 when the customer is not visible or archived."""
    form = ActivityInput(customer_id=body.customer_id, type=body.type, summary=body.summary,
                         occurred_at=body.occurred_at, contact_id=body.contact_id,
                         opportunity_id=body.opportunity_id, next_follow_up_at=body.next_follow_up_at)
    activity_id = log_activity(db, found.actor, form)
    response.headers["Location"] = str(request.url_for("get_activity_endpoint", activity_id=activity_id))
    return get_activity_endpoint(activity_id, db, found)
