"""``/v1/cases``: customer-service cases (工单) over HTTP.

Reads call :mod:`crm_core.queries.cases`; writes call :mod:`crm_core.services.cases`
(``create_case``, ``update_case``, ``close_case``) under the token user's Actor: a case is
seen and changed by whoever sees its customer. Cases have no archive column: ``DELETE``
closes the case (status ``closed``, final), which takes it out of the default list
(``include_closed=true`` or ``status=closed`` lists it again). A status change (PATCH of `status`
or ``POST /{id}/transition``) must be one the case flow allows (problem+json 422 naming why not);
a resolved case reopens within 7 days. ``sla_due_at`` is the earliest running SLA due time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

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
from crm_api.schemas import NO_CONTROL_CHARACTERS, NOT_NULL, Moment, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.queries.cases import CaseFilters, CaseRow, get_case, list_cases
from crm_core.services.cases import CaseInput, close_case, create_case, transition_case, update_case

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=ApiRoute)

CaseStatus = Literal["new", "open", "pending", "on_hold", "resolved", "closed"]
CasePriority = Literal["urgent", "high", "normal", "low"]
CaseChannel = Literal["phone", "email", "web", "chat", "visit"]
CaseSort = Literal["opened_at", "updated_at", "sla_due"]

EXAMPLE: dict[str, Any] = {
    "id": 12, "customer_id": 42, "customer_name": "Hangzhou Kestrel Trading Co.", "contact_id": 3,
    "assignee_id": 7, "assignee_name": "Rita Rep", "subject": "Scanner does not pair", "description": "Since Monday.",
    "status": "open", "priority": "high", "opened_at": "2026-12-04T09:00:00Z", "resolved_at": None,
    "created_at": "2026-12-04T09:00:00Z", "updated_at": "2026-12-04T09:00:00Z", "version": 1,
    "channel": "phone", "category": "Hardware", "team_id": 2, "first_responded_at": None,
    "sla_due_at": "2026-12-04T13:00:00Z", "order_id": 31, "product_id": 5, "merged_into_id": None,
}


class CaseOut(BaseModel):
    """A case as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    customer_id: int
    customer_name: str
    contact_id: int | None
    assignee_id: int | None
    assignee_name: str | None
    subject: str
    description: str
    status: str = Field(description="`new`, `open`, `pending`, `on_hold`, `resolved` or `closed`.")
    priority: str = Field(description="`urgent`, `high`, `normal` or `low`.")
    opened_at: Moment
    resolved_at: Moment | None = Field(description="Set when the case became resolved or closed.")
    created_at: Moment
    updated_at: Moment
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to change the case.")
    channel: str = Field(description="`phone`, `email`, `web`, `chat` or `visit`.")
    category: str | None
    team_id: int | None = Field(description="The team whose queue the case is in.")
    first_responded_at: Moment | None
    sla_due_at: Moment | None = Field(description="The earliest running SLA due time (none while paused).")
    order_id: int | None = Field(default=None, description="The customer's order the case is about.")
    product_id: int | None = Field(default=None, description="The product the case is about.")
    merged_into_id: int | None = Field(
        default=None, description="Set when the case was merged into that case (closed; its conversation is there).")


class CaseTransition(BaseModel):
    """A move of the case to another status of its flow."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "pending", "version": 3}]})

    status: CaseStatus
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version moved; or send it as If-Match.")


class CaseCreate(BaseModel):
    """A new case of a customer the caller may see."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": 42, "subject": "Scanner does not pair", "priority": "high", "assignee_id": 7}]})

    customer_id: RecordId
    subject: str = Field(max_length=1000)
    description: str = Field(default="", max_length=20_000)
    priority: CasePriority = "normal"
    contact_id: RecordId | None = Field(default=None, description="A contact of the same customer.")
    assignee_id: RecordId | None = Field(default=None, description="Null or omitted: unassigned (or the queue's pick).")
    channel: CaseChannel = "web"
    category: str = Field(default="", max_length=120)
    team_id: RecordId | None = Field(default=None, description="The team queue; assigns by its method.")
    order_id: RecordId | None = Field(default=None, description="One of the customer's orders the case is about.")
    product_id: RecordId | None = Field(default=None, description="The product the case is about.")


class CasePatch(BaseModel):
    """The fields to change; the others keep their values (`null` clears `contact_id`, `assignee_id`,
    `team_id`, `order_id` or `product_id`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "resolved", "version": 1}, {"assignee_id": 9, "priority": "high", "version": 2}]})

    subject: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=1000)
    description: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=20_000)
    status: Annotated[CaseStatus | None, NOT_NULL] = Field(default=None)
    priority: Annotated[CasePriority | None, NOT_NULL] = Field(default=None)
    contact_id: RecordId | None = None
    assignee_id: RecordId | None = None
    channel: Annotated[CaseChannel | None, NOT_NULL] = Field(default=None)
    category: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=120)
    team_id: RecordId | None = None
    order_id: RecordId | None = None
    product_id: RecordId | None = None
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class CaseQuery(BaseModel):
    """The case list's filters."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    search: str = Field(default="", max_length=200, pattern=NO_CONTROL_CHARACTERS, description="In the subject.")
    customer_id: RecordId | None = None
    assignee_id: RecordId | None = None
    unassigned: bool = False
    status: CaseStatus | None = None
    priority: CasePriority | None = None
    include_closed: bool = False
    team_id: RecordId | None = None
    channel: CaseChannel | None = None
    sort: CaseSort = "opened_at"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")

    def filters(self) -> CaseFilters:
        return CaseFilters(customer_id=self.customer_id, assignee_id=self.assignee_id, unassigned=self.unassigned,
                           status=self.status, priority=self.priority, search=self.search.strip(),
                           include_closed=self.include_closed, team_id=self.team_id, channel=self.channel)


def case_out(row: CaseRow) -> CaseOut:
    """The API form of a case."""
    return CaseOut(
        id=row.id, customer_id=row.customer_id, customer_name=row.customer_name, contact_id=row.contact_id,
        assignee_id=row.assignee_id, assignee_name=row.assignee_name, subject=row.subject,
        description=row.description, status=row.status, priority=row.priority, opened_at=row.opened_at,
        resolved_at=row.resolved_at, created_at=row.created_at, updated_at=row.updated_at, version=row.version,
        channel=row.channel, category=row.category, team_id=row.team_id, first_responded_at=row.first_responded_at,
        sla_due_at=row.sla_due_at, order_id=row.order_id, product_id=row.product_id,
        merged_into_id=row.merged_into_id,
    )


def read_case(db: Db, found: Caller, case_id: int, response: Response) -> CaseOut:
    """The case as the caller sees it now, with its ETag; 404 when not visible."""
    with db.session(found.actor) as session:
        row = get_case(session, case_id)
        if row is None:
            raise NotFound("case")
        out = case_out(row)
    response.headers["ETag"] = etag(out.version)
    return out


CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]


@router.get("", response_model=ListPage[CaseOut], responses=errors_for(400, 422), summary="List cases")
def list_cases_endpoint(query: Annotated[CaseQuery, Query()], db: Db, found: Caller) -> ListPage[CaseOut]:
    """A page of the cases the caller may see (closed ones only when asked), newest first by default."""
    filters = query.filters()
    descending = query.order == "desc"
    keyset = Keyset.of("cases", query.sort, descending, {"filters": vars(filters)})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        page = list_cases(session, filters=filters, sort=query.sort, descending=descending, per_page=query.limit,
                          after=after, count_cap=COUNT_CAP if query.include_total else None)
    return ListPage[CaseOut](data=[case_out(row) for row in page.items], next_cursor=keyset.cursor(page.next_position),
                             has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{case_id}", response_model=CaseOut, responses=errors_for(404, 422), summary="Get one case")
def get_case_endpoint(case_id: CaseId, db: Db, found: Caller, response: Response) -> CaseOut:
    """One case (closed ones too); its `ETag` is its version."""
    return read_case(db, found, case_id, response)


@router.post("", response_model=CaseOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 404, 409, 415, 422), summary="Open a case")
def create_case_endpoint(
    body: CaseCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> CaseOut:
    """Open a case for a customer the caller may see (404 otherwise)."""
    form = CaseInput(customer_id=body.customer_id, subject=body.subject, description=body.description,
                     priority=body.priority, contact_id=body.contact_id, assignee_id=body.assignee_id,
                     channel=body.channel, category=body.category, team_id=body.team_id,
                     order_id=body.order_id, product_id=body.product_id)
    case_id = create_case(db, found.actor, form)
    response.headers["Location"] = str(request.url_for("get_case_endpoint", case_id=case_id))
    return read_case(db, found, case_id, response)


@router.patch("/{case_id}", response_model=CaseOut, responses=errors_for(403, 404, 412, 415, 422, 428),
              summary="Change some fields of a case")
def update_case_endpoint(case_id: CaseId, body: CasePatch, response: Response, db: Db, found: Writer,
                         if_match: IfMatch = None) -> CaseOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale."""
    version = expected_version(if_match, body.version)
    with db.session(found.actor) as session:
        current = get_case(session, case_id)
        if current is None:
            raise NotFound("case")
    given = body.model_fields_set - {"version"}
    form = CaseInput(
        customer_id=current.customer_id,
        subject=body.subject if body.subject is not None else current.subject,
        description=body.description if body.description is not None else current.description,
        status=body.status or current.status, priority=body.priority or current.priority,
        contact_id=body.contact_id if "contact_id" in given else current.contact_id,
        assignee_id=body.assignee_id if "assignee_id" in given else current.assignee_id,
        channel=body.channel or current.channel,
        category=body.category if body.category is not None else (current.category or ""),
        team_id=body.team_id if "team_id" in given else current.team_id,
        order_id=body.order_id if "order_id" in given else current.order_id,
        product_id=body.product_id if "product_id" in given else current.product_id,
    )
    update_case(db, found.actor, case_id, form, expected_version=version)
    return read_case(db, found, case_id, response)


@router.delete("/{case_id}", response_model=CaseOut, responses=errors_for(403, 404, 412, 422, 428),
               summary="Close a case")
def close_case_endpoint(case_id: CaseId, response: Response, db: Db, found: Writer,
                        if_match: IfMatch = None) -> CaseOut:
    """Close the case: it leaves the default list and stays readable (closed is final)."""
    close_case(db, found.actor, case_id, expected_version=expected_version(if_match))
    return read_case(db, found, case_id, response)


@router.post("/{case_id}/transition", response_model=CaseOut,
             responses=errors_for(403, 404, 412, 415, 422, 428), summary="Move a case along its status flow")
def transition_case_endpoint(case_id: CaseId, body: CaseTransition, response: Response, db: Db, found: Writer,
                             if_match: IfMatch = None) -> CaseOut:
    """Move the case to `status` if the flow allows it from where it is; 422 (problem+json) names why not."""
    transition_case(db, found.actor, case_id, body.status,
                    expected_version=expected_version(if_match, body.version))
    return read_case(db, found, case_id, response)
