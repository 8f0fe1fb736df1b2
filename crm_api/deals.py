"""``/v1/deals``: deals (opportunities) over HTTP — the deal form, the board's moves, won and lost.

Reads call :func:`crm_core.queries.deal_pages.list_deal_page` (the board's filters and search,
paged by keyset), :func:`crm_core.queries.deals.get_deal` and ``stage_history``; writes call
the deal services the board and the form call (``create_opportunity``, ``update_opportunity``,
``move_stage``, ``archive_opportunity``, ``restore_opportunity``) under the token user's Actor.
A move the pipeline does not allow is the rule's own refusal (422 ``deal.transition_refused``,
its text in the caller's language); lost needs a reason (422 on ``lost_reason``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.concurrency import etag, expected_version
from crm_api.dependencies import Caller, Db, Writer
from crm_api.orders import OrderLineIn, OrderLineOut, order_lines
from crm_api.paging import (
    COUNT_CAP,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Keyset,
    ListPage,
    parse_datetime,
)
from crm_api.routing import ApiRoute
from crm_api.schemas import NO_CONTROL_CHARACTERS, NOT_NULL, Day, Moment, RecordId, errors_for
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Opportunity, StageKind
from crm_core.queries.deal_pages import DealListFilters, list_deal_page
from crm_core.queries.deals import DealCard, DealFilters, get_deal, get_pipeline, stage_history
from crm_core.services.deal_lines import DealLineRow, deal_lines, set_deal_lines
from crm_core.services.deals import (
    OpportunityInput,
    archive_opportunity,
    create_opportunity,
    move_stage,
    restore_opportunity,
    update_opportunity,
)

router = APIRouter(prefix="/v1/deals", tags=["deals"], route_class=ApiRoute)

DealSort = Literal["created_at", "updated_at"]
# bounded so that no number reaches the rules with more digits than a Decimal context holds
Amount = Annotated[Annotated[Decimal, Field(max_digits=20)] | Annotated[str, Field(max_length=24)],
                   Field(union_mode="left_to_right", description='An amount: `"120000.00"` or `120000`.')]
Probability = Annotated[int, Field(ge=0, le=100)]

EXAMPLE: dict[str, Any] = {
    "id": 17, "name": "Scanner fleet 2027", "customer_id": 42, "customer_name": "Hangzhou Kestrel Trading Co.",
    "owner_id": 7, "owner_name": "Rita Rep", "pipeline_id": 1, "stage_id": 3, "stage_name": "Proposal",
    "stage_kind": "open", "amount": "120000.00", "currency": "CNY", "probability": 50,
    "hand_set_probability": None, "weighted_amount": "60000.00", "expected_close_date": "2027-01-31",
    "closed_at": None, "lost_reason": None, "archived_at": None, "created_at": "2026-12-01T08:30:00Z",
    "updated_at": "2026-12-04T16:02:11Z", "version": 4,
    "lines": [{"position": 1, "product_id": 5, "sku": "KS-100", "product_name": "Kestrel Scanner",
               "quantity": "100.00", "unit_price": "1200.00", "line_total": "120000.00"}],
    "stage_history": [{"changed_at": "2026-12-04T16:02:11Z", "from_stage": "Qualified", "to_stage": "Proposal",
                       "changed_by": "Rita Rep"}],
}


class StageMoveOut(BaseModel):
    """One move in a deal's stage history."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE["stage_history"][0]]})

    changed_at: Moment
    from_stage: str | None = Field(description="Null for the stage the deal was created in.")
    to_stage: str
    changed_by: str | None


class DealLineOut(OrderLineOut):
    """One product line of a deal (an order line's fields and its place): its total is quantity × unit price,
    rounded to cents."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE["lines"][0]]})

    position: int


class DealOut(BaseModel):
    """A deal as the API shows it, with its stage history (newest move first)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    name: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    owner_name: str | None
    pipeline_id: int
    stage_id: int
    stage_name: str
    stage_kind: str = Field(description="`open`, `won` or `lost`.")
    amount: Decimal = Field(description="Decimal string with two places.")
    currency: str
    probability: int = Field(description="Effective probability in percent (won 100, lost 0).")
    hand_set_probability: int | None = Field(description="Set by hand; null: the stage's applies.")
    weighted_amount: Decimal
    expected_close_date: dt.date | None
    closed_at: Moment | None
    lost_reason: str | None
    won_reason: str | None = Field(default=None, description="What won it, when the seller said.")
    archived_at: Moment | None = None
    created_at: Moment
    updated_at: Moment
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to change the deal.")
    stage_history: list[StageMoveOut] | None = Field(
        default=None, description="Single-deal answers only (null in lists): every move, newest first.")
    external_id: str | None = Field(default=None, description="The ID the record had in another system (imports "
                                    "link records by it); unique in the tenant when given.")
    lines: list[DealLineOut] = Field(default_factory=list, description="The products the deal sells, in order; "
                                     "when there are any, `amount` is the sum of their totals.")


class DealCreate(BaseModel):
    """A new deal. Omitted: the default pipeline, its first open stage, the caller as owner, the tenant's currency."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": 42, "name": "Scanner fleet 2027", "amount": "120000.00", "expected_close_date": "2027-01-31"}]})

    customer_id: RecordId
    name: str = Field(max_length=1000)
    amount: Amount = "0"
    currency: str = Field(default="", max_length=10)
    pipeline_id: RecordId | None = None
    stage_id: RecordId | None = None
    owner_id: RecordId | None = None
    probability: Probability | None = None
    expected_close_date: Day | None = None
    lost_reason: str = Field(default="", max_length=1000, description="Needed when `stage_id` is a lost stage.")
    closed_on: Day | None = Field(default=None, description="When created in a won/lost stage; else today.")
    external_id: str | None = Field(default=None, max_length=1000,
                                    description="The ID in another system (up to 80 characters); unique when given.")


class DealPatch(BaseModel):
    """The fields to change; the others keep their values. The stage moves through `POST /{id}/stage`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": "135000.00", "expected_close_date": "2027-02-15", "version": 4}]})

    customer_id: Annotated[RecordId | None, NOT_NULL] = Field(default=None)
    name: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=1000)
    amount: Annotated[Amount | None, NOT_NULL] = Field(default=None)
    currency: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=10)
    owner_id: Annotated[RecordId | None, NOT_NULL] = Field(default=None)
    probability: Probability | None = Field(default=None, description="Null: the stage's probability applies.")
    expected_close_date: Day | None = None
    lost_reason: Annotated[str | None, NOT_NULL] = Field(
        default=None, max_length=1000, description="A lost deal's reason, reworded.")
    external_id: str | None = Field(default=None, max_length=1000, description="Null or blank: none.")
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class StageMove(BaseModel):
    """Where to move the deal: a stage of its pipeline the transition table allows."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"stage_id": 4}, {"stage_id": 6, "lost_reason": "Chose a cheaper supplier"}]})

    stage_id: RecordId
    lost_reason: str | None = Field(default=None, max_length=1000, description="Required for a lost stage.")
    closed_on: Day | None = Field(default=None, description="For won/lost: the day it closed (default today).")


class DealWon(BaseModel):
    """Close the deal as won."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {}, {"closed_on": "2026-12-04", "won_reason": "The pilot convinced their CFO"}]})

    closed_on: Day | None = Field(default=None, description="The day it closed (default today).")
    won_reason: str | None = Field(default=None, max_length=1000, description="What won it, in words (optional).")


class DealLost(BaseModel):
    """Close the deal as lost: the reason is required."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"lost_reason": "Chose a cheaper supplier"}]})

    lost_reason: str = Field(max_length=1000)
    closed_on: Day | None = Field(default=None, description="The day it closed (default today).")


class DealQuery(BaseModel):
    """The board's and the deal list's filters and search, as query parameters."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    search: str = Field(default="", max_length=200, pattern=NO_CONTROL_CHARACTERS,
                        description="Deal name (any position) or its customer (the customers grid's search).")
    pipeline_id: RecordId | None = None
    stage_id: RecordId | None = None
    customer_id: RecordId | None = None
    owner_id: RecordId | None = None
    team_id: RecordId | None = None
    closed_since: Day | None = Field(default=None, description="Leave out won/lost deals closed before this day.")
    include_archived: bool = False
    sort: DealSort = "created_at"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")

    def filters(self) -> DealFilters:
        return DealFilters(owner_id=self.owner_id, team_id=self.team_id, search=self.search.strip(),
                           closed_since=self.closed_since, include_archived=self.include_archived)

    def narrowing(self) -> DealListFilters:
        return DealListFilters(pipeline_id=self.pipeline_id, stage_id=self.stage_id, customer_id=self.customer_id)


def deal_out(card: DealCard, archived_at: dt.datetime | None = None,
             history: list[StageMoveOut] | None = None, lines: list[DealLineRow] | None = None) -> DealOut:
    """The API form of a deal card."""
    return DealOut(
        id=card.id, name=card.name, customer_id=card.customer_id, customer_name=card.customer_name,
        owner_id=card.owner_id, owner_name=card.owner_name, pipeline_id=card.pipeline_id, stage_id=card.stage_id,
        stage_name=card.stage_name, stage_kind=card.stage_kind, amount=card.amount, currency=card.currency,
        probability=card.probability, hand_set_probability=card.hand_set_probability,
        weighted_amount=card.weighted_amount, expected_close_date=card.expected_close_date,
        closed_at=card.closed_at, lost_reason=card.lost_reason, won_reason=card.won_reason, archived_at=archived_at,
        created_at=card.created_at, updated_at=card.updated_at, version=card.version, stage_history=history,
        external_id=card.external_id,
        lines=[DealLineOut(position=line.position, product_id=line.product_id, sku=line.sku,
                           product_name=line.product_name, quantity=line.quantity, unit_price=line.unit_price,
                           line_total=line.line_total) for line in lines or ()],
    )


def _archived_at(session: Any, deal_id: int) -> dt.datetime | None:
    deal = session.get(Opportunity, deal_id)
    return deal.archived_at if deal is not None else None


def read_deal(db: Db, found: Caller, deal_id: int, response: Response) -> DealOut:
    """The deal as the caller sees it now, with its stage history and ETag; 404 when not visible."""
    with db.session(found.actor) as session:
        card = get_deal(session, deal_id)
        if card is None:
            raise NotFound("opportunity")
        history = [StageMoveOut(changed_at=move.changed_at, from_stage=move.from_stage, to_stage=move.to_stage,
                                changed_by=move.changed_by) for move in stage_history(session, deal_id)]
        out = deal_out(card, _archived_at(session, deal_id), history, deal_lines(session, [deal_id]).get(deal_id))
    response.headers["ETag"] = etag(out.version)
    return out


DealId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]


@router.get("", response_model=ListPage[DealOut], responses=errors_for(400, 422),
            summary="List deals (the board's filters and search)")
def list_deals_endpoint(query: Annotated[DealQuery, Query()], db: Db, found: Caller) -> ListPage[DealOut]:
    """A page of the deals the caller may see, across pipelines unless `pipeline_id` narrows it."""
    filters, narrowing = query.filters(), query.narrowing()
    descending = query.order == "desc"
    keyset = Keyset.of("deals", query.sort, descending, {"filters": {**vars(filters), **vars(narrowing)}})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        page = list_deal_page(session, filters=filters, narrowing=narrowing, sort=query.sort, descending=descending,
                              per_page=query.limit, after=after,
                              count_cap=COUNT_CAP if query.include_total else None)
        lines = deal_lines(session, [card.id for card in page.items])  # one query for the page
    return ListPage[DealOut](data=[deal_out(card, page.archived_at.get(card.id), lines=lines.get(card.id))
                                   for card in page.items],
                             next_cursor=keyset.cursor(page.next_position),
                             has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{deal_id}", response_model=DealOut, responses=errors_for(404, 422), summary="Get one deal")
def get_deal_endpoint(deal_id: DealId, db: Db, found: Caller, response: Response) -> DealOut:
    """One deal (archived ones too) with its stage history; its `ETag` is its version."""
    return read_deal(db, found, deal_id, response)


@router.post("", response_model=DealOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 404, 409, 415, 422), summary="Create a deal")
def create_deal_endpoint(
    body: DealCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> DealOut:
    """Create a deal for a customer the caller may see (404 otherwise)."""
    form = OpportunityInput(
        customer_id=body.customer_id, name=body.name, amount=body.amount, currency=body.currency,
        pipeline_id=body.pipeline_id, stage_id=body.stage_id, owner_id=body.owner_id, probability=body.probability,
        expected_close_date=body.expected_close_date, lost_reason=body.lost_reason, closed_on=body.closed_on,
        external_id=body.external_id,
    )
    deal_id = create_opportunity(db, found.actor, form)
    response.headers["Location"] = str(request.url_for("get_deal_endpoint", deal_id=deal_id))
    return read_deal(db, found, deal_id, response)


def _current_form(db: Db, found: Caller, deal_id: int) -> OpportunityInput:
    with db.session(found.actor) as session:
        card = get_deal(session, deal_id)
        if card is None or _archived_at(session, deal_id) is not None:
            raise NotFound("opportunity")
        return OpportunityInput(
            customer_id=card.customer_id, name=card.name, amount=card.amount, currency=card.currency,
            pipeline_id=card.pipeline_id, stage_id=card.stage_id, owner_id=card.owner_id,
            probability=card.hand_set_probability, expected_close_date=card.expected_close_date,
            lost_reason=card.lost_reason or "",
        )


@router.patch("/{deal_id}", response_model=DealOut, responses=errors_for(403, 404, 412, 415, 422, 428),
              summary="Change some fields of a deal")
def update_deal_endpoint(deal_id: DealId, body: DealPatch, response: Response, db: Db, found: Writer,
                         if_match: IfMatch = None) -> DealOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale."""
    version = expected_version(if_match, body.version)
    form = _current_form(db, found, deal_id)
    for name in body.model_fields_set - {"version"}:
        setattr(form, name, getattr(body, name))
    if "external_id" in body.model_fields_set:
        form.external_id = body.external_id or ""  # null: none (the form's None leaves it as it is)
    update_opportunity(db, found.actor, deal_id, form, expected_version=version)
    return read_deal(db, found, deal_id, response)


def _move(db: Db, found: Writer, deal_id: int, version: int, stage_id: int, lost_reason: str | None,
          closed_on: dt.date | None, response: Response, won_reason: str | None = None) -> DealOut:
    move_stage(db, found.actor, deal_id, stage_id, expected_version=version, lost_reason=lost_reason,
               closed_on=closed_on, won_reason=won_reason)
    return read_deal(db, found, deal_id, response)


@router.post("/{deal_id}/stage", response_model=DealOut, responses=errors_for(403, 404, 412, 415, 422, 428),
             summary="Move a deal to another stage")
def move_deal_endpoint(deal_id: DealId, body: StageMove, response: Response, db: Db, found: Writer,
                       if_match: IfMatch = None) -> DealOut:
    """Move the deal as the board does: only allowed transitions (a closed deal reopens first); lost needs a
    reason. A refused move is 422 `deal.transition_refused`; nothing is written."""
    return _move(db, found, deal_id, expected_version(if_match), body.stage_id, body.lost_reason, body.closed_on,
                 response)


def _closing_stage(db: Db, found: Caller, deal_id: int, kind: StageKind) -> int:
    """The first stage of ``kind`` in the deal's pipeline (422 on the field when the pipeline has none)."""
    with db.session(found.actor) as session:
        card = get_deal(session, deal_id)
        if card is None or _archived_at(session, deal_id) is not None:
            raise NotFound("opportunity")
        pipeline = get_pipeline(session, card.pipeline_id)
        stages = [stage for stage in (pipeline.stages if pipeline else []) if stage.kind == kind.value]
    if not stages:
        raise ValidationFailed({"stage_id": ("validation.choice", {})})
    return min(stages, key=lambda stage: stage.position).id


@router.post("/{deal_id}/won", response_model=DealOut, responses=errors_for(403, 404, 412, 415, 422, 428),
             summary="Close a deal as won")
def win_deal_endpoint(deal_id: DealId, body: DealWon, response: Response, db: Db, found: Writer,
                      if_match: IfMatch = None) -> DealOut:
    """Move the deal to its pipeline's won stage (a lost deal must be reopened first)."""
    version = expected_version(if_match)
    target = _closing_stage(db, found, deal_id, StageKind.WON)
    return _move(db, found, deal_id, version, target, None, body.closed_on, response, won_reason=body.won_reason)


@router.post("/{deal_id}/lost", response_model=DealOut, responses=errors_for(403, 404, 412, 415, 422, 428),
             summary="Close a deal as lost (with its reason)")
def lose_deal_endpoint(deal_id: DealId, body: DealLost, response: Response, db: Db, found: Writer,
                       if_match: IfMatch = None) -> DealOut:
    """Move the deal to its pipeline's lost stage; `lost_reason` is required (a blank one is a 422)."""
    version = expected_version(if_match)
    target = _closing_stage(db, found, deal_id, StageKind.LOST)
    return _move(db, found, deal_id, version, target, body.lost_reason, body.closed_on, response)


@router.delete("/{deal_id}", response_model=DealOut, responses=errors_for(403, 404, 412, 422, 428),
               summary="Archive a deal")
def archive_deal_endpoint(deal_id: DealId, response: Response, db: Db, found: Writer,
                          if_match: IfMatch = None) -> DealOut:
    """Take the deal out of every list, board and report (it stays in history; `restore` brings it back)."""
    archive_opportunity(db, found.actor, deal_id, expected_version=expected_version(if_match))
    return read_deal(db, found, deal_id, response)


@router.post("/{deal_id}/restore", response_model=DealOut, responses=errors_for(403, 404, 412, 422, 428),
             summary="Restore an archived deal")
def restore_deal_endpoint(deal_id: DealId, response: Response, db: Db, found: Writer,
                          if_match: IfMatch = None) -> DealOut:
    """Bring an archived deal back, when it is still at the version named by `If-Match`."""
    restore_opportunity(db, found.actor, deal_id, expected_version=expected_version(if_match))
    return read_deal(db, found, deal_id, response)


class DealLines(BaseModel):
    """All the deal's product lines, in order: they replace the ones it has (an empty list removes them)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"lines": [{"product_id": 5, "quantity": "2"}, {"product_id": 7, "quantity": "1", "unit_price": "880.00"}]}]})

    lines: list[OrderLineIn] = Field(max_length=200)


@router.put("/{deal_id}/lines", response_model=DealOut, responses=errors_for(403, 404, 412, 415, 422, 428),
            summary="Set the products a deal sells")
def set_deal_lines_endpoint(deal_id: DealId, body: DealLines, response: Response, db: Db, found: Writer,
                            if_match: IfMatch = None) -> DealOut:
    """Replace the deal's lines as the Pipeline panel's editor does; with lines, the deal's amount is their sum
    (an empty list keeps the amount). Sending the same lines again changes nothing but the version. 422 names
    the line (`line2.product`) that is wrong; nothing is written unless every line is valid."""
    set_deal_lines(db, found.actor, deal_id, order_lines(body.lines), expected_version=expected_version(if_match))
    return read_deal(db, found, deal_id, response)
