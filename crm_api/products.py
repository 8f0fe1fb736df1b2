"""``/v1/products``: the catalogue order lines draw from; everyone reads it, managers and admins write it.

Routes call the product services the Products page calls; the access layer refuses writes
of other roles (403). Prices are decimal strings (``"1200.00"``): never floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.concurrency import etag, expected_version
from crm_api.dependencies import Caller, Db, Writer
from crm_api.paging import COUNT_CAP, DEFAULT_LIMIT, MAX_LIMIT, Keyset, ListPage
from crm_api.routing import ApiRoute
from crm_api.schemas import NO_CONTROL_CHARACTERS, NOT_NULL, Moment, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.queries.product_pages import ProductFilters, ProductListRow, get_product_row, list_product_page
from crm_core.services.products import ProductInput, archive_product, create_product, update_product

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=ApiRoute)

# bounded so that no number reaches the rules with more digits than a Decimal context holds
Amount = Annotated[Annotated[Decimal, Field(max_digits=20)] | Annotated[str, Field(max_length=24)],
                   Field(union_mode="left_to_right", description='A price: `"1200.50"`, `"1,200.50"` or `1200.5`.')]


class ProductOut(BaseModel):
    """A product as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 5, "sku": "KS-100", "name": "Kestrel Scanner", "unit_price": "1200.00", "currency": "CNY",
        "is_active": True, "created_at": "2026-11-30T10:00:00Z", "updated_at": "2026-12-02T09:15:00Z",
        "archived_at": None, "version": 2}]})

    id: int
    sku: str | None = Field(description="Optional; unique in the tenant when given.")
    name: str
    unit_price: Decimal = Field(description="Decimal string with two places.")
    currency: str
    is_active: bool
    created_at: Moment
    updated_at: Moment
    archived_at: Moment | None
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to update or archive.")
    external_id: str | None = Field(default=None, description="The ID the record had in another system (imports "
                                    "link records by it); unique in the tenant when given.")


class ProductCreate(BaseModel):
    """A new product (managers and admins)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"sku": "KS-100", "name": "Kestrel Scanner", "unit_price": "1200.00", "currency": "CNY"}]})

    sku: str = Field(default="", max_length=1000, description="Optional (blank: none); unique when given.")
    name: str = Field(max_length=1000)
    unit_price: Amount = "0"
    currency: str = Field(default="CNY", max_length=100)
    is_active: bool = True
    external_id: str | None = Field(default=None, max_length=1000,
                                    description="The ID in another system (up to 80 characters); unique when given.")


class ProductPatch(BaseModel):
    """The fields to change; the others keep their values."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"unit_price": "1150.00", "version": 2}]})

    sku: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=1000)
    name: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=1000)
    unit_price: Annotated[Amount | None, NOT_NULL] = Field(default=None)
    currency: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=100)
    is_active: Annotated[bool | None, NOT_NULL] = Field(default=None)
    external_id: str | None = Field(default=None, max_length=1000, description="Null or blank: none.")
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class ProductQuery(BaseModel):
    """Search and filters of the catalogue (sorted by name)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    search: str = Field(default="", max_length=200, pattern=NO_CONTROL_CHARACTERS,
                        description="A part of the SKU or the name.")
    active_only: bool = False
    include_archived: bool = False
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")


def product_out(row: ProductListRow) -> ProductOut:
    """The API form of a product."""
    return ProductOut(**row.__dict__)


def read_product(db: Db, found: Caller, product_id: int, response: Response) -> ProductOut:
    """The product now, with its ETag; 404 when there is none."""
    with db.session(found.actor) as session:
        row = get_product_row(session, product_id)
    if row is None:
        raise NotFound("product")
    response.headers["ETag"] = etag(row.version)
    return product_out(row)


def _name_cursor(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a name")
    return value


ProductId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]


@router.get("", response_model=ListPage[ProductOut], responses=errors_for(400, 422), summary="List products")
def list_products_endpoint(query: Annotated[ProductQuery, Query()], db: Db, found: Caller) -> ListPage[ProductOut]:
    """A page of the catalogue, by name."""
    filters = ProductFilters(search=query.search, active_only=query.active_only,
                             include_archived=query.include_archived)
    keyset = Keyset.of("products", "name", False, {
        "search": query.search.strip(), "active_only": query.active_only, "include_archived": query.include_archived})
    after = keyset.position(query.after, _name_cursor)
    with db.session(found.actor) as session:
        page = list_product_page(session, filters=filters, per_page=query.limit, after=after,
                                 with_total=query.include_total, count_cap=COUNT_CAP)
    return ListPage[ProductOut](data=[product_out(row) for row in page.items],
                                next_cursor=keyset.cursor(page.next_cursor),
                                has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{product_id}", response_model=ProductOut, responses=errors_for(404, 422), summary="Get one product")
def get_product_endpoint(product_id: ProductId, db: Db, found: Caller, response: Response) -> ProductOut:
    """One product (archived ones too); its `ETag` is its version."""
    return read_product(db, found, product_id, response)


@router.post("", response_model=ProductOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 409, 415, 422), summary="Add a product")
def create_product_endpoint(
    body: ProductCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> ProductOut:
    """Add a product; a SKU already in the catalogue is a 422 on `sku`."""
    form = ProductInput(sku=body.sku, name=body.name, unit_price=body.unit_price, currency=body.currency,
                        is_active=body.is_active, external_id=body.external_id)
    product_id = create_product(db, found.actor, form)
    response.headers["Location"] = str(request.url_for("get_product_endpoint", product_id=product_id))
    return read_product(db, found, product_id, response)


@router.patch("/{product_id}", response_model=ProductOut, responses=errors_for(403, 404, 412, 415, 422, 428),
              summary="Change some fields of a product")
def update_product_endpoint(product_id: ProductId, body: ProductPatch, response: Response, db: Db, found: Writer,
                            if_match: IfMatch = None) -> ProductOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale."""
    version = expected_version(if_match, body.version)
    with db.session(found.actor) as session:
        current = get_product_row(session, product_id)
    if current is None or current.archived_at is not None:
        raise NotFound("product")
    given = body.model_fields_set - {"version"}
    form = ProductInput(sku=current.sku or "", name=current.name, unit_price=current.unit_price,
                        currency=current.currency, is_active=current.is_active)
    for name in given & {"sku", "name", "currency"}:
        setattr(form, name, getattr(body, name))
    if body.unit_price is not None:
        form.unit_price = body.unit_price
    if body.is_active is not None:
        form.is_active = body.is_active
    if "external_id" in given:
        form.external_id = body.external_id or ""
    update_product(db, found.actor, product_id, form, expected_version=version)
    return read_product(db, found, product_id, response)


@router.delete("/{product_id}", response_model=ProductOut, responses=errors_for(403, 404, 412, 422, 428),
               summary="Archive a product")
def archive_product_endpoint(product_id: ProductId, response: Response, db: Db, found: Writer,
                             if_match: IfMatch = None) -> ProductOut:
    """Retire a product from the catalogue and order forms; past orders keep it."""
    archive_product(db, found.actor, product_id, expected_version=expected_version(if_match))
    return read_product(db, found, product_id, response)
