"""``/v1/contacts``: the people at customers, over the contact services the customer profile uses.

A contact is visible (and writable) when its customer is: the access layer's rule, through
the caller's Actor. Archiving is the end of a contact's life here (there is no restore service).
"""

from __future__ import annotations

from typing import Annotated, Literal

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
from crm_api.schemas import NO_CONTROL_CHARACTERS, NOT_NULL, Moment, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.models.merges import MergeEntity
from crm_core.queries.contacts import ContactFilters, ContactListRow, get_contact, list_contacts
from crm_core.services.contacts import ContactInput, archive_contact, create_contact, update_contact

router = APIRouter(prefix="/v1/contacts", tags=["contacts"], route_class=ApiRoute,
                   dependencies=[merged_redirect(MergeEntity.CONTACT, "contact_id", "/v1/contacts")])

ContactSort = Literal["updated_at", "created_at", "name"]
SORT_PARSERS = {"updated_at": parse_datetime, "created_at": parse_datetime, "name": parse_text}


class ContactOut(BaseModel):
    """A contact as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 9, "customer_id": 42, "name": "Lin Mei", "title": "Purchasing manager", "email": "lin.mei@example.com",
        "phone": "+86 138 0013 8000", "is_primary": True, "created_at": "2026-12-01T08:31:00Z",
        "updated_at": "2026-12-01T08:31:00Z", "archived_at": None, "version": 1}]})

    id: int
    customer_id: int
    name: str
    title: str | None
    email: str | None
    phone: str | None
    is_primary: bool
    created_at: Moment
    updated_at: Moment
    archived_at: Moment | None
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to update or archive.")
    external_id: str | None = Field(default=None, description="The ID the record had in another system (imports "
                                    "link records by it); unique in the tenant when given.")


class ContactCreate(BaseModel):
    """A new contact of a customer the caller may see."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": 42, "name": "Lin Mei", "title": "Purchasing manager", "email": "lin.mei@example.com",
        "is_primary": True}]})

    customer_id: RecordId
    name: str = Field(max_length=1000)
    title: str | None = Field(default=None, max_length=1000)
    email: str | None = Field(default=None, max_length=1000)
    phone: str | None = Field(default=None, max_length=1000)
    is_primary: bool = False
    external_id: str | None = Field(default=None, max_length=1000,
                                    description="The ID in another system (up to 80 characters); unique when given.")


class ContactPatch(BaseModel):
    """The fields to change; the others keep their values. A contact never moves to another customer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"title": "Director", "version": 1}]})

    name: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=1000)
    title: str | None = Field(default=None, max_length=1000)
    email: str | None = Field(default=None, max_length=1000)
    phone: str | None = Field(default=None, max_length=1000)
    is_primary: Annotated[bool | None, NOT_NULL] = Field(default=None)
    external_id: str | None = Field(default=None, max_length=1000, description="Null or blank: none.")
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class ContactQuery(BaseModel):
    """Filters, search and sort of the contacts list."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    customer_id: RecordId | None = None
    search: str = Field(default="", max_length=200, pattern=NO_CONTROL_CHARACTERS,
                        description="A part of the name or the email.")
    include_archived: bool = False
    sort: ContactSort = "updated_at"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")


def contact_out(row: ContactListRow) -> ContactOut:
    """The API form of a contact."""
    return ContactOut(**row.__dict__)


def read_contact(db: Db, found: Caller, contact_id: int, response: Response) -> ContactOut:
    """The contact as the caller sees it now, with its ETag; 404 when not visible."""
    with db.session(found.actor) as session:
        row = get_contact(session, contact_id)
    if row is None:
        raise NotFound("contact")
    response.headers["ETag"] = etag(row.version)
    return contact_out(row)


ContactId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]
AllowDuplicate = Annotated[bool, Query(description=(
    "Save it although the duplicate rules warn of a match (a blocking rule: managers and admins only)."))]


@router.get("", response_model=ListPage[ContactOut], responses=errors_for(400, 422), summary="List contacts")
def list_contacts_endpoint(query: Annotated[ContactQuery, Query()], db: Db, found: Caller) -> ListPage[ContactOut]:
    """A page of the contacts the caller may see (those of visible customers)."""
    filters = ContactFilters(customer_id=query.customer_id, search=query.search,
                             include_archived=query.include_archived)
    descending = query.order == "desc"
    keyset = Keyset.of("contacts", query.sort, descending, {
        "customer_id": query.customer_id, "search": query.search.strip(), "include_archived": query.include_archived})
    after = keyset.position(query.after, SORT_PARSERS[query.sort])
    with db.session(found.actor) as session:
        page = list_contacts(session, filters=filters, per_page=query.limit, sort=query.sort, descending=descending,
                             after=after, with_total=query.include_total, count_cap=COUNT_CAP)
    return ListPage[ContactOut](data=[contact_out(row) for row in page.items],
                                next_cursor=keyset.cursor(page.next_cursor),
                                has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{contact_id}", response_model=ContactOut, responses=errors_for(404, 422), summary="Get one contact")
def get_contact_endpoint(contact_id: ContactId, db: Db, found: Caller, response: Response) -> ContactOut:
    """One contact (archived ones too); its `ETag` is its version."""
    return read_contact(db, found, contact_id, response)


@router.post("", response_model=ContactOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 404, 409, 415, 422), summary="Add a contact to a customer")
def create_contact_endpoint(
    body: ContactCreate, request: Request, response: Response, db: Db, found: Writer,
    allow_duplicate: AllowDuplicate = False,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> ContactOut:
    """Add a contact; 404 when the customer is not visible or archived, 409 when the tenant's contact duplicate
    rules find the same email or phone (at any customer); `allow_duplicate` lifts a warning, and a blocking
    rule only for managers and admins."""
    form = ContactInput(customer_id=body.customer_id, name=body.name, title=body.title or "",
                        email=body.email or "", phone=body.phone or "", is_primary=body.is_primary,
                        external_id=body.external_id)
    contact_id = create_contact(db, found.actor, form, allow_duplicate=allow_duplicate)
    response.headers["Location"] = str(request.url_for("get_contact_endpoint", contact_id=contact_id))
    return read_contact(db, found, contact_id, response)


@router.patch("/{contact_id}", response_model=ContactOut, responses=errors_for(403, 404, 409, 412, 415, 422, 428),
              summary="Change some fields of a contact")
def update_contact_endpoint(contact_id: ContactId, body: ContactPatch, response: Response, db: Db, found: Writer,
                            if_match: IfMatch = None, allow_duplicate: AllowDuplicate = False) -> ContactOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale, 409 when a
    changed email or phone meets the duplicate rules (see POST)."""
    version = expected_version(if_match, body.version)
    with db.session(found.actor) as session:
        current = get_contact(session, contact_id)
    if current is None or current.archived_at is not None:
        raise NotFound("contact")
    given = body.model_fields_set - {"version"}
    form = ContactInput(customer_id=current.customer_id, name=current.name, title=current.title or "",
                        email=current.email or "", phone=current.phone or "", is_primary=current.is_primary)
    for name in given & {"name", "title", "email", "phone"}:
        setattr(form, name, getattr(body, name) or "")
    if body.is_primary is not None:
        form.is_primary = body.is_primary
    if "external_id" in given:
        form.external_id = body.external_id or ""
    update_contact(db, found.actor, contact_id, form, expected_version=version, allow_duplicate=allow_duplicate)
    return read_contact(db, found, contact_id, response)


@router.delete("/{contact_id}", response_model=ContactOut, responses=errors_for(403, 404, 412, 422, 428),
               summary="Archive a contact")
def archive_contact_endpoint(contact_id: ContactId, response: Response, db: Db, found: Writer,
                             if_match: IfMatch = None) -> ContactOut:
    """Take the contact out of the lists (it stays in history)."""
    archive_contact(db, found.actor, contact_id, expected_version=expected_version(if_match))
    return read_contact(db, found, contact_id, response)
