"""``/v1/customers``: the customers grid and form over HTTP — the worked example of a resource.

Every route calls the query or service the customers page calls (``list_customers``,
``get_customer``, ``create_customer``, ``update_customer``, ``archive_customer``,
``restore_customer``) under the token user's Actor; nothing here decides what a valid or a
visible customer is. See crm_api/README.md for the conventions this module shows.
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
    parse_text,
)
from crm_api.redirects import merged_redirect
from crm_api.routing import ApiRoute
from crm_api.schemas import NO_CONTROL_CHARACTERS, NOT_NULL, Day, Moment, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.models import Customer
from crm_core.models.merges import MergeEntity
from crm_core.queries.customers import CustomerFilters, CustomerRow, get_customer, list_customers
from crm_core.services.customers import (
    CustomerInput,
    archive_customer,
    create_customer,
    restore_customer,
    update_customer,
)
from crm_core.services.pool import claim_customers, release_to_pool

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=ApiRoute,
                   dependencies=[merged_redirect(MergeEntity.CUSTOMER, "customer_id", "/v1/customers")])

Kind = Literal["company", "person"]
Stage = Literal["prospect", "intent", "customer", "churned"]
SORT_PARSERS = {"updated_at": parse_datetime, "created_at": parse_datetime, "name": parse_text,
                "lifecycle_stage": parse_text}
CustomerSort = Literal["updated_at", "created_at", "name", "lifecycle_stage"]

EXAMPLE: dict[str, Any] = {
    "id": 42, "name": "Hangzhou Kestrel Trading Co.", "kind": "company", "industry": "Retail", "region": "Zhejiang",
    "source": "website", "lifecycle_stage": "prospect", "owner_id": 7, "email": "buyer@kestrel.example",
    "phone": "+86 138 0013 8000", "tags": ["vip", "expo-2026"], "custom_fields": {"employees": "120"},
    "credit_code": "91330106MA2H00001E", "province_code": "330000", "city_code": "330100", "district_code": "330106",
    "external_id": "0015g00000XyZ12AAB",
    "last_contacted_at": None, "created_at": "2026-12-01T08:30:00Z", "updated_at": "2026-12-04T16:02:11Z",
    "archived_at": None, "version": 3,
}


class CustomerOut(BaseModel):
    """A customer as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    name: str
    kind: str = Field(description="`company` or `person`.")
    industry: str | None
    region: str | None
    source: str | None
    lifecycle_stage: str = Field(description="`prospect`, `intent`, `customer` or `churned`.")
    owner_id: int | None
    email: str | None
    phone: str | None
    tags: list[str]
    custom_fields: dict[str, Any] = Field(description="The tenant's custom fields by name.")
    credit_code: str | None = Field(description="统一社会信用代码, 18 characters, compact and upper-case.")
    province_code: str | None = Field(description="GB/T 2260 code of the province (`330000`).")
    city_code: str | None = Field(description="GB/T 2260 code of the city (`330100`).")
    district_code: str | None = Field(description="GB/T 2260 code of the district or county (`330106`).")
    external_id: str | None = Field(description="The customer's ID in the system it was imported from (the "
                                                "import matches and links on it); null: none.")
    last_contacted_at: Moment | None
    created_at: Moment | None
    updated_at: Moment | None
    archived_at: Moment | None = Field(description="Set while the customer is archived.")
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to update or archive.")


class CustomerCreate(BaseModel):
    """A new customer. Omitting `owner_id` gives it to the caller (as the form does); `null` leaves it unowned."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Hangzhou Kestrel Trading Co.", "kind": "company", "email": "buyer@kestrel.example",
        "phone": "+86 138 0013 8000", "lifecycle_stage": "prospect", "source": "website", "tags": ["expo-2026"]}]})

    name: str = Field(max_length=1000)
    kind: Kind = "company"
    industry: str | None = Field(default=None, max_length=1000)
    region: str | None = Field(default=None, max_length=1000)
    source: str | None = Field(default=None, max_length=1000)
    owner_id: RecordId | None = None
    lifecycle_stage: Stage = "prospect"
    tags: list[str] = Field(default_factory=list, max_length=100)
    email: str | None = Field(default=None, max_length=1000)
    phone: str | None = Field(default=None, max_length=1000)
    external_id: str | None = Field(default=None, max_length=1000)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    credit_code: str | None = Field(default=None, max_length=1000, description=(
        "统一社会信用代码: checked by its check character; its region part must lie in the province/city given."))
    province_code: str | None = Field(default=None, max_length=1000, description="GB/T 2260 province code.")
    city_code: str | None = Field(default=None, max_length=1000, description="GB/T 2260 city code.")
    district_code: str | None = Field(default=None, max_length=1000, description="GB/T 2260 district code.")


class CustomerPatch(BaseModel):
    """The fields to change; the others keep their values (`null` clears an optional one; `name`, `kind`,
    `lifecycle_stage`, `tags` cannot be null). `custom_fields` merges (a `null` value clears one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"lifecycle_stage": "intent", "tags": ["vip"], "version": 3}]})

    name: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=1000)
    kind: Annotated[Kind | None, NOT_NULL] = Field(default=None)
    industry: str | None = Field(default=None, max_length=1000)
    region: str | None = Field(default=None, max_length=1000)
    source: str | None = Field(default=None, max_length=1000)
    owner_id: RecordId | None = None
    lifecycle_stage: Annotated[Stage | None, NOT_NULL] = Field(default=None)
    tags: Annotated[list[str] | None, NOT_NULL] = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=1000)
    phone: str | None = Field(default=None, max_length=1000)
    external_id: str | None = Field(default=None, max_length=1000)
    custom_fields: Annotated[dict[str, Any] | None, NOT_NULL] = Field(default=None)
    credit_code: str | None = Field(default=None, max_length=1000, description=(
        "统一社会信用代码: checked by its check character; its region part must lie in the province/city given."))
    province_code: str | None = Field(default=None, max_length=1000, description="GB/T 2260 province code.")
    city_code: str | None = Field(default=None, max_length=1000, description="GB/T 2260 city code.")
    district_code: str | None = Field(default=None, max_length=1000, description="GB/T 2260 district code.")
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class CustomerQuery(BaseModel):
    """The grid's filters, search and sort, as query parameters."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    search: str = Field(default="", max_length=200, pattern=NO_CONTROL_CHARACTERS,
                        description="Name (any position), email or phone.")
    owner_id: RecordId | None = None
    unowned: bool = False
    team_id: RecordId | None = None
    lifecycle_stage: Stage | None = None
    industry: str | None = Field(default=None, max_length=80, pattern=NO_CONTROL_CHARACTERS)
    region: str | None = Field(default=None, max_length=80, pattern=NO_CONTROL_CHARACTERS)
    province_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="GB/T 2260 province code.")
    tag: str | None = Field(default=None, max_length=80, pattern=NO_CONTROL_CHARACTERS)
    created_from: Day | None = None
    created_to: Day | None = None
    last_contacted_from: Day | None = None
    last_contacted_to: Day | None = None
    never_contacted: bool = False
    include_archived: bool = False
    sort: CustomerSort = "updated_at"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")

    def filters(self) -> CustomerFilters:
        return CustomerFilters(
            search=self.search, owner_id=self.owner_id, unowned=self.unowned, team_id=self.team_id,
            lifecycle_stage=self.lifecycle_stage, industry=self.industry, region=self.region,
            province_code=self.province_code, tag=self.tag,
            created_from=self.created_from, created_to=self.created_to,
            last_contacted_from=self.last_contacted_from, last_contacted_to=self.last_contacted_to,
            never_contacted=self.never_contacted, include_archived=self.include_archived,
        )


def customer_out(record: Customer | CustomerRow) -> CustomerOut:
    """The API form of a customer, from the grid's row or the record."""
    tags = record.tags if isinstance(record, CustomerRow) else record.tag_list
    return CustomerOut(
        id=record.id, name=record.name, kind=record.kind, industry=record.industry, region=record.region,
        source=record.source, lifecycle_stage=record.lifecycle_stage, owner_id=record.owner_id,
        email=record.email, phone=record.phone, tags=list(tags), custom_fields=dict(record.custom_fields or {}),
        credit_code=record.credit_code, province_code=record.province_code, city_code=record.city_code,
        district_code=record.district_code, external_id=record.external_id,
        last_contacted_at=record.last_contacted_at,
        created_at=record.created_at, updated_at=record.updated_at,
        archived_at=record.archived_at, version=record.version,
    )


def read_customer(db: Db, found: Caller, customer_id: int, response: Response) -> CustomerOut:
    """The customer as the caller sees it now, with its ETag; 404 when not visible."""
    with db.session(found.actor) as session:
        record = get_customer(session, customer_id)
        if record is None:
            raise NotFound("customer")
        out = customer_out(record)
    response.headers["ETag"] = etag(out.version)
    return out


CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]


@router.get("", response_model=ListPage[CustomerOut], responses=errors_for(400, 422),
            summary="List customers (the grid's filters, search and sort)")
def list_customers_endpoint(query: Annotated[CustomerQuery, Query()], db: Db, found: Caller) -> ListPage[CustomerOut]:
    """A page of the customers the caller may see, newest change first unless `sort`/`order` say otherwise."""
    filters = query.filters()
    descending = query.order == "desc"
    keyset = Keyset.of("customers", query.sort, descending, {"filters": filters.as_dict()})
    after = keyset.position(query.after, SORT_PARSERS[query.sort])
    with db.session(found.actor) as session:
        page = list_customers(session, filters=filters, per_page=query.limit, sort=query.sort, descending=descending,
                              with_total=query.include_total, count_cap=COUNT_CAP, after=after)
    return ListPage[CustomerOut](data=[customer_out(row) for row in page.items],
                                 next_cursor=keyset.cursor(page.next_cursor),
                                 has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{customer_id}", response_model=CustomerOut, responses=errors_for(404, 422),
            summary="Get one customer")
def get_customer_endpoint(customer_id: CustomerId, db: Db, found: Caller, response: Response) -> CustomerOut:
    """One customer (archived ones too); its `ETag` is its version."""
    return read_customer(db, found, customer_id, response)


@router.post("", response_model=CustomerOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 409, 415, 422), summary="Create a customer")
def create_customer_endpoint(
    body: CustomerCreate, request: Request, response: Response, db: Db, found: Writer,
    allow_duplicate: Annotated[bool, Query(description=(
        "Create it although the duplicate rules warn of a match (a blocking rule: managers and admins only)."
    ))] = False,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> CustomerOut:
    """Create a customer, refused as 409 when the tenant's duplicate rules find one (credit code, email, phone,
    name); `allow_duplicate` lifts a warning, and a blocking rule only for managers and admins."""
    owner_id = body.owner_id if "owner_id" in body.model_fields_set else found.actor.user_id
    form = CustomerInput(
        name=body.name, kind=body.kind, industry=body.industry or "", region=body.region or "",
        source=body.source or "", owner_id=owner_id, lifecycle_stage=body.lifecycle_stage, tags=",".join(body.tags),
        email=body.email or "", phone=body.phone or "", external_id=body.external_id or "",
        custom_fields=dict(body.custom_fields), credit_code=body.credit_code or "",
        province_code=body.province_code or "", city_code=body.city_code or "", district_code=body.district_code or "",
    )
    customer_id = create_customer(db, found.actor, form, allow_duplicate=allow_duplicate)
    response.headers["Location"] = str(request.url_for("get_customer_endpoint", customer_id=customer_id))
    return read_customer(db, found, customer_id, response)


def _current_form(db: Db, found: Caller, customer_id: int) -> CustomerInput:
    with db.session(found.actor) as session:
        record = get_customer(session, customer_id)
        if record is None or record.archived_at is not None:
            raise NotFound("customer")
        return CustomerInput(
            name=record.name, kind=record.kind, industry=record.industry or "", region=record.region or "",
            source=record.source or "", owner_id=record.owner_id, lifecycle_stage=record.lifecycle_stage,
            tags=",".join(record.tag_list), email=record.email or "", phone=record.phone or "",
            external_id=record.external_id or "", custom_fields=dict(record.custom_fields or {}),
            credit_code=record.credit_code or "", province_code=record.province_code or "",
            city_code=record.city_code or "", district_code=record.district_code or "",
        )


@router.patch("/{customer_id}", response_model=CustomerOut,
              responses=errors_for(403, 404, 409, 412, 415, 422, 428),
              summary="Change some fields of a customer")
def update_customer_endpoint(
    customer_id: CustomerId, body: CustomerPatch, response: Response, db: Db, found: Writer, if_match: IfMatch = None,
    allow_duplicate: Annotated[bool, Query(description=(
        "Save it although a changed key matches another customer under a warning rule (a blocking rule: managers "
        "and admins only)."))] = False,
) -> CustomerOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale."""
    version = expected_version(if_match, body.version)
    form = _current_form(db, found, customer_id)
    given = body.model_fields_set - {"version"}
    for name in given & {"name", "kind", "industry", "region", "source", "lifecycle_stage", "email", "phone",
                         "external_id", "credit_code", "province_code", "city_code", "district_code"}:
        setattr(form, name, getattr(body, name) or "")  # null (allowed on optional fields only) clears
    if "owner_id" in given:
        form.owner_id = body.owner_id
    if body.tags is not None:
        form.tags = ",".join(body.tags)
    if body.custom_fields is not None:
        merged = {**form.custom_fields, **body.custom_fields}
        form.custom_fields = {name: value for name, value in merged.items() if value is not None}
    update_customer(db, found.actor, customer_id, form, expected_version=version, allow_duplicate=allow_duplicate)
    return read_customer(db, found, customer_id, response)


@router.delete("/{customer_id}", response_model=CustomerOut, responses=errors_for(403, 404, 412, 422, 428),
               summary="Archive a customer")
def archive_customer_endpoint(customer_id: CustomerId, response: Response, db: Db, found: Writer,
                              if_match: IfMatch = None) -> CustomerOut:
    """Take the customer out of every list (it stays in history; `restore` brings it back)."""
    archive_customer(db, found.actor, customer_id, expected_version=expected_version(if_match))
    return read_customer(db, found, customer_id, response)


@router.post("/{customer_id}/restore", response_model=CustomerOut, responses=errors_for(403, 404, 412, 422, 428),
             summary="Restore an archived customer")
def restore_customer_endpoint(customer_id: CustomerId, response: Response, db: Db, found: Writer,
                              if_match: IfMatch = None) -> CustomerOut:
    """Bring an archived customer back into the lists."""
    restore_customer(db, found.actor, customer_id, expected_version=expected_version(if_match))
    return read_customer(db, found, customer_id, response)



class ReleaseBody(BaseModel):
    """Why the customer goes back to the pool (optional, kept in its pool history)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "Outside our region"}]})
    note: str | None = Field(default=None, max_length=500)


@router.post("/{customer_id}/claim", response_model=CustomerOut, responses=errors_for(403, 404, 409, 422),
             summary="Claim a customer from the pool (公海)")
def claim_customer_endpoint(customer_id: CustomerId, response: Response, db: Db, found: Writer) -> CustomerOut:
    """Take an unowned customer of the caller's team pool; a rep within the pool rule's caps and cooldown
    (409 with `code` naming the rule that refused)."""
    claim_customers(db, found.actor, [customer_id])
    return read_customer(db, found, customer_id, response)


@router.post("/{customer_id}/release", response_model=CustomerOut,
             responses=errors_for(403, 404, 409, 412, 422, 428), summary="Give a customer back to the pool")
def release_customer_endpoint(customer_id: CustomerId, response: Response, db: Db, found: Writer,
                              body: ReleaseBody | None = None, if_match: IfMatch = None) -> CustomerOut:
    """The customer goes to its team's pool; its previous owner may not claim it again during the cooldown."""
    release_to_pool(db, found.actor, customer_id, expected_version=expected_version(if_match),
                    note=body.note if body else None)
    return read_customer(db, found, customer_id, response)
