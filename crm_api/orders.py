"""``/v1/orders``: orders with their lines over HTTP — the order form of the Customer 360.

Writes call ``create_order``, ``update_order`` and ``archive_order``
(:mod:`crm_core.services.orders`), which compute every total from the lines (nobody sends
one); reads call :mod:`crm_core.queries.order_pages` (keyset pages with the lines). An edit
that sends ``lines`` replaces them all, as the form does.
"""

from __future__ import annotations

from decimal import Decimal
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
from crm_api.schemas import NO_CONTROL_CHARACTERS, NOT_NULL, Day, Moment, RecordId, UtcDateTime, errors_for
from crm_core.errors import NotFound
from crm_core.queries.order_pages import OrderDetail, OrderFilters, get_order, list_order_page
from crm_core.services.orders import OrderInput, OrderLineInput, archive_order, create_order, update_order

router = APIRouter(prefix="/v1/orders", tags=["orders"], route_class=ApiRoute)

Status = Literal["draft", "confirmed", "fulfilled", "cancelled"]
OrderSort = Literal["ordered_at", "created_at"]
# bounded so that no number reaches the rules with more digits than a Decimal context holds
Number = Annotated[Annotated[Decimal, Field(max_digits=20)] | Annotated[str, Field(max_length=24)],
                   Field(union_mode="left_to_right", description='A number: `"2"`, `"1,200.50"` or `1200.5`.')]

LINE_EXAMPLE: dict[str, Any] = {"product_id": 5, "sku": "KS-100", "product_name": "Kestrel Scanner",
                                "quantity": "2.00", "unit_price": "1200.00", "line_total": "2400.00"}
EXAMPLE: dict[str, Any] = {
    "id": 31, "order_number": "SO-202612-00031", "customer_id": 42, "customer_name": "Hangzhou Kestrel Trading Co.",
    "owner_id": 7, "opportunity_id": 17, "status": "confirmed", "ordered_at": "2026-12-04T12:00:00Z",
    "currency": "CNY", "total_amount": "2400.00", "lines": [LINE_EXAMPLE], "archived_at": None,
    "created_at": "2026-12-04T12:00:03Z", "updated_at": "2026-12-04T12:00:03Z", "version": 1,
}


class OrderLineOut(BaseModel):
    """One line: its total is quantity × unit price, rounded to cents."""

    model_config = ConfigDict(json_schema_extra={"examples": [LINE_EXAMPLE]})

    product_id: int
    sku: str | None
    product_name: str
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal


class OrderOut(BaseModel):
    """An order with its lines; `total_amount` is computed from them."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    order_number: str
    customer_id: int
    customer_name: str
    owner_id: int | None = Field(description="The seller credited: the customer's owner when booked.")
    opportunity_id: int | None
    status: str = Field(description="`draft`, `confirmed`, `fulfilled` or `cancelled`.")
    ordered_at: Moment
    currency: str
    total_amount: Decimal = Field(description="The sum of the rounded line totals.")
    lines: list[OrderLineOut]
    archived_at: Moment | None
    created_at: Moment
    updated_at: Moment
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to change the order.")
    external_id: str | None = Field(default=None, description="The ID the record had in another system (imports "
                                    "link records by it); unique in the tenant when given.")


class OrderLineIn(BaseModel):
    """A line: a product, a quantity (default 1) and a price (default the product's list price)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"product_id": 5, "quantity": "2"}]})

    product_id: RecordId
    quantity: Number = "1"
    unit_price: Number | None = None


class OrderCreate(BaseModel):
    """A new order of a visible customer; a blank `order_number` takes the month's next one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": 42, "opportunity_id": 17, "lines": [{"product_id": 5, "quantity": "2"}]}]})

    customer_id: RecordId
    lines: list[OrderLineIn] = Field(max_length=500)
    order_number: str = Field(default="", max_length=100)
    status: Status = "confirmed"
    ordered_at: UtcDateTime | None = Field(default=None, description="Default: now.")
    currency: str = Field(default="", max_length=10, description="Default: the tenant's currency.")
    opportunity_id: RecordId | None = Field(default=None, description="A deal of the same customer.")
    external_id: str | None = Field(default=None, max_length=1000,
                                    description="The ID in another system (up to 80 characters); unique when given.")


class OrderPatch(BaseModel):
    """The fields to change; `lines`, when sent, replace all lines (the total follows)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "fulfilled", "version": 1}, {"lines": [{"product_id": 5, "quantity": "3"}], "version": 2}]})

    lines: Annotated[list[OrderLineIn] | None, NOT_NULL] = Field(default=None, max_length=500)
    order_number: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=100)
    status: Annotated[Status | None, NOT_NULL] = Field(default=None)
    ordered_at: Annotated[UtcDateTime | None, NOT_NULL] = Field(default=None)
    currency: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=10)
    opportunity_id: RecordId | None = None
    external_id: str | None = Field(default=None, max_length=1000, description="Null or blank: none.")
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class OrderQuery(BaseModel):
    """The order list's filters."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    customer_id: RecordId | None = None
    opportunity_id: RecordId | None = None
    status: Status | None = None
    order_number: str = Field(default="", max_length=100, pattern=NO_CONTROL_CHARACTERS,
                              description="The start of the order number.")
    ordered_from: Day | None = None
    ordered_to: Day | None = None
    include_archived: bool = False
    sort: OrderSort = "ordered_at"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")

    def filters(self) -> OrderFilters:
        return OrderFilters(customer_id=self.customer_id, opportunity_id=self.opportunity_id, status=self.status,
                            order_number=self.order_number, ordered_from=self.ordered_from,
                            ordered_to=self.ordered_to, include_archived=self.include_archived)


def order_out(order: OrderDetail) -> OrderOut:
    """The API form of an order."""
    return OrderOut(
        id=order.id, order_number=order.order_number, customer_id=order.customer_id,
        customer_name=order.customer_name, owner_id=order.owner_id, opportunity_id=order.opportunity_id,
        status=order.status, ordered_at=order.ordered_at, currency=order.currency, total_amount=order.total_amount,
        lines=[OrderLineOut(product_id=line.product_id, sku=line.sku, product_name=line.product_name,
                            quantity=line.quantity, unit_price=line.unit_price, line_total=line.line_total)
               for line in order.lines],
        archived_at=order.archived_at, created_at=order.created_at, updated_at=order.updated_at,
        version=order.version, external_id=order.external_id,
    )


def read_order(db: Db, found: Caller, order_id: int, response: Response) -> OrderOut:
    """The order as the caller sees it now, with its ETag; 404 when not visible."""
    with db.session(found.actor) as session:
        order = get_order(session, order_id)
        if order is None:
            raise NotFound("order")
        out = order_out(order)
    response.headers["ETag"] = etag(out.version)
    return out


def order_lines(lines: list[OrderLineIn]) -> list[OrderLineInput]:
    """The service's lines from the API's (orders and deals)."""
    return [OrderLineInput(product_id=line.product_id, quantity=line.quantity, unit_price=line.unit_price)
            for line in lines]


OrderId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]


@router.get("", response_model=ListPage[OrderOut], responses=errors_for(400, 422), summary="List orders")
def list_orders_endpoint(query: Annotated[OrderQuery, Query()], db: Db, found: Caller) -> ListPage[OrderOut]:
    """A page of the orders the caller may see (with their lines), newest first unless `sort`/`order` say otherwise."""
    filters = query.filters()
    descending = query.order == "desc"
    keyset = Keyset.of("orders", query.sort, descending, {"filters": vars(filters)})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        page = list_order_page(session, filters=filters, sort=query.sort, descending=descending,
                               per_page=query.limit, after=after,
                               count_cap=COUNT_CAP if query.include_total else None)
    return ListPage[OrderOut](data=[order_out(order) for order in page.items],
                              next_cursor=keyset.cursor(page.next_position),
                              has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{order_id}", response_model=OrderOut, responses=errors_for(404, 422), summary="Get one order")
def get_order_endpoint(order_id: OrderId, db: Db, found: Caller, response: Response) -> OrderOut:
    """One order (archived ones too) with its lines; its `ETag` is its version."""
    return read_order(db, found, order_id, response)


@router.post("", response_model=OrderOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 404, 409, 415, 422), summary="Book an order with its lines")
def create_order_endpoint(
    body: OrderCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> OrderOut:
    """Book an order for a customer the caller may see (404 otherwise); the total comes from the lines."""
    form = OrderInput(customer_id=body.customer_id, lines=order_lines(body.lines), order_number=body.order_number,
                      status=body.status, ordered_at=body.ordered_at, currency=body.currency,
                      opportunity_id=body.opportunity_id, external_id=body.external_id)
    order_id = create_order(db, found.actor, form)
    response.headers["Location"] = str(request.url_for("get_order_endpoint", order_id=order_id))
    return read_order(db, found, order_id, response)


@router.patch("/{order_id}", response_model=OrderOut, responses=errors_for(403, 404, 412, 415, 422, 428),
              summary="Change an order (its lines as a whole)")
def update_order_endpoint(order_id: OrderId, body: OrderPatch, response: Response, db: Db, found: Writer,
                          if_match: IfMatch = None) -> OrderOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale."""
    version = expected_version(if_match, body.version)
    with db.session(found.actor) as session:
        current = get_order(session, order_id)
        if current is None or current.archived_at is not None:
            raise NotFound("order")
    given = body.model_fields_set - {"version"}
    lines = order_lines(body.lines) if body.lines is not None else [
        OrderLineInput(product_id=line.product_id, quantity=line.quantity, unit_price=line.unit_price)
        for line in current.lines]
    form = OrderInput(
        customer_id=current.customer_id, lines=lines,
        order_number=body.order_number if body.order_number is not None else current.order_number,
        status=body.status or current.status,
        ordered_at=body.ordered_at, currency=body.currency or current.currency,
        opportunity_id=body.opportunity_id if "opportunity_id" in given else current.opportunity_id,
        external_id=(body.external_id or "") if "external_id" in given else None,
    )
    update_order(db, found.actor, order_id, form, expected_version=version)
    return read_order(db, found, order_id, response)


@router.delete("/{order_id}", response_model=OrderOut, responses=errors_for(403, 404, 412, 422, 428),
               summary="Archive an order")
def archive_order_endpoint(order_id: OrderId, response: Response, db: Db, found: Writer,
                           if_match: IfMatch = None) -> OrderOut:
    """Take the order out of the lists and totals (it stays in history)."""
    archive_order(db, found.actor, order_id, expected_version=expected_version(if_match))
    return read_order(db, found, order_id, response)
