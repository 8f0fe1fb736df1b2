"""``/v1/customers/{id}/consent`` and ``/v1/do-not-contact``: the consent ledger (decisions 0046, 0047).

A customer's consent is read and recorded under the customer's rule (a rep: their own customers'); the
ledger is append-only, so there is no PATCH or DELETE of an entry: a withdrawal is a new entry. Anyone who
writes adds an address to the do-not-contact list; only a manager or an admin takes one off (403 otherwise).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.dependencies import Caller, Db, Writer
from crm_api.paging import DEFAULT_LIMIT, MAX_LIMIT, Keyset, ListPage, parse_datetime
from crm_api.redirects import merged_redirect
from crm_api.routing import ApiRoute
from crm_api.schemas import NO_CONTROL_CHARACTERS, Moment, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.models.merges import MergeEntity
from crm_core.queries.consent import (
    ConsentEntry,
    ConsentState,
    DoNotContactRow,
    consent_history,
    consent_state,
    get_do_not_contact,
    list_do_not_contact,
)
from crm_core.services.consent import ConsentInput, add_do_not_contact, record_consent, remove_do_not_contact

customers_router = APIRouter(prefix="/v1/customers", tags=["consent"], route_class=ApiRoute,
                             dependencies=[merged_redirect(MergeEntity.CUSTOMER, "customer_id", "/v1/customers")])
router = APIRouter(prefix="/v1/do-not-contact", tags=["consent"], route_class=ApiRoute)

ChannelName = Literal["email", "phone", "sms", "wechat"]
ListChannel = Literal["email", "phone", "sms", "wechat", "all"]
CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ConsentStateOut(BaseModel):
    """Where one address of the customer stands on one channel now."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "contact_id": 9, "channel": "email", "address": "lin.mei@example.com", "state": "granted",
        "basis": "consent", "since": "2026-12-01T08:31:00Z", "proof_kind": "form", "proof": "Trade fair form",
        "recorded_by": "Rita Rep"}]})

    contact_id: int | None = Field(description="Null: the customer's own address.")
    channel: str
    address: str = Field(description="As the ledger keys it: an email lower-cased, a phone in E.164.")
    state: str = Field(description="`granted`, `withdrawn`, `do_not_contact` or `none` (no lawful basis recorded).")
    basis: str | None = Field(description="consent, contract or legitimate_interest, when granted.")
    since: Moment | None
    proof_kind: str | None
    proof: str
    recorded_by: str | None = Field(description="The user's name; null: the person or the system.")


class ConsentEntryOut(BaseModel):
    """One entry of the ledger."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 31, "contact_id": 9, "channel": "email", "address": "lin.mei@example.com", "action": "withdraw",
        "basis": None, "proof_kind": "unsubscribe", "proof": "marketing message <mkt-1f2e@kestrel-crm.invalid>",
        "recorded_at": "2026-12-03T10:02:00Z", "recorded_by": None}]})

    id: int
    contact_id: int | None
    channel: str
    address: str
    action: str = Field(description="`grant` or `withdraw`.")
    basis: str | None
    proof_kind: str
    proof: str
    recorded_at: Moment
    recorded_by: str | None


class ConsentOut(BaseModel):
    """A customer's consent: the state per address and channel, and a page of its history (newest first)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": 42, "current": [{
            "contact_id": 9, "channel": "email", "address": "lin.mei@example.com", "state": "granted",
            "basis": "consent", "since": "2026-12-01T08:31:00Z", "proof_kind": "form", "proof": "Trade fair form",
            "recorded_by": "Rita Rep"}],
        "history": {"data": [], "next_cursor": None, "has_more": False, "total": None, "total_capped": False}}]})

    customer_id: int
    current: list[ConsentStateOut]
    history: ListPage[ConsentEntryOut]


class ConsentCreate(BaseModel):
    """A grant (with its lawful basis and proof) or a withdrawal, for a contact of the customer (or its own
    address). A blank `address` takes the contact's email (email) or phone (phone, SMS); a WeChat id is given."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "contact_id": 9, "channel": "email", "action": "grant", "basis": "consent", "proof_kind": "form",
        "proof": "Trade fair form, stand 12"}]})

    channel: str = Field(max_length=40)
    action: str = Field(max_length=40, description="`grant` or `withdraw`.")
    basis: str | None = Field(default=None, max_length=40,
                              description="For a grant: consent, contract or legitimate_interest.")
    proof_kind: str = Field(default="manual", max_length=40, description="form, manual or import.")
    proof: str = Field(default="", max_length=2000, description="Which form, or a note (required for form, manual).")
    contact_id: RecordId | None = None
    address: str | None = Field(default=None, max_length=1000)


class DoNotContactOut(BaseModel):
    """An address nobody may contact over `channel` (or `all`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "channel": "all", "address": "zhang@example.cn", "reason": "Asked on the phone",
        "added_at": "2026-12-01T08:31:00Z", "added_by": "Rita Rep"}]})

    id: int
    channel: str
    address: str
    reason: str
    added_at: Moment
    added_by: str | None


class DoNotContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "all", "address": "zhang@example.cn", "reason": "Asked on the phone"}]})

    channel: str = Field(max_length=40, description="email, phone, sms, wechat or all.")
    address: str = Field(max_length=1000)
    reason: str = Field(default="", max_length=2000)


class DoNotContactQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search: str = Field(default="", max_length=200, pattern=NO_CONTROL_CHARACTERS,
                        description="A part of the address or the reason.")
    channel: ListChannel | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = False


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous history page.")


def state_out(row: ConsentState) -> ConsentStateOut:
    return ConsentStateOut(contact_id=row.contact_id, channel=row.channel, address=row.address, state=row.state,
                           basis=row.basis, since=row.since, proof_kind=row.proof_kind, proof=row.proof,
                           recorded_by=row.recorded_by)


def entry_out(row: ConsentEntry) -> ConsentEntryOut:
    return ConsentEntryOut(id=row.id, contact_id=row.contact_id, channel=row.channel, address=row.address,
                           action=row.action, basis=row.basis, proof_kind=row.proof_kind, proof=row.proof,
                           recorded_at=row.recorded_at, recorded_by=row.recorded_by)


def dnc_out(row: DoNotContactRow) -> DoNotContactOut:
    return DoNotContactOut(id=row.id, channel=row.channel, address=row.address, reason=row.reason,
                           added_at=row.added_at, added_by=row.added_by)


def _consent(db: Db, found: Caller, customer_id: int, query: HistoryQuery) -> ConsentOut:
    keyset = Keyset.of("consent", "recorded_at", True, {"customer_id": customer_id})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        current = consent_state(session, found.actor.tenant_id, customer_id)
        if current is None:
            raise NotFound("customer")
        page = consent_history(session, customer_id, per_page=query.limit, after=after)
    last = page.items[-1] if page.has_next and page.items else None
    history = ListPage[ConsentEntryOut](data=[entry_out(row) for row in page.items], has_more=page.has_next,
                                        next_cursor=keyset.cursor((last.recorded_at, last.id) if last else None))
    return ConsentOut(customer_id=customer_id, current=[state_out(row) for row in current], history=history)


@customers_router.get("/{customer_id}/consent", response_model=ConsentOut, responses=errors_for(404, 422),
                      summary="Get a customer's consent: the state now and the history")
def get_consent_endpoint(customer_id: CustomerId, query: Annotated[HistoryQuery, Query()], db: Db,
                         found: Caller) -> ConsentOut:
    """Per contact (and the customer's own address) and channel, the lawful basis that holds, since when, on what
    proof; and the ledger's entries, newest first, paged by `after`. 404 when the customer is not visible."""
    return _consent(db, found, customer_id, query)


@customers_router.post("/{customer_id}/consent", response_model=ConsentOut, status_code=status.HTTP_201_CREATED,
                       responses=errors_for(403, 404, 415, 422),
                       summary="Record a grant or a withdrawal of consent")
def record_consent_endpoint(customer_id: CustomerId, body: ConsentCreate, db: Db, found: Writer) -> ConsentOut:
    """Add an entry to the customer's ledger (append-only); 422 names each field that is wrong, 404 when the
    customer is not visible. Answers the consent as GET does."""
    form = ConsentInput(customer_id=customer_id, channel=body.channel, action=body.action, basis=body.basis or "",
                        proof_kind=body.proof_kind, proof=body.proof, contact_id=body.contact_id,
                        address=body.address or "")
    record_consent(db, found.actor, form)
    return _consent(db, found, customer_id, HistoryQuery())


@router.get("", response_model=ListPage[DoNotContactOut], responses=errors_for(400, 422),
            summary="List the do-not-contact list")
def list_dnc_endpoint(query: Annotated[DoNotContactQuery, Query()], db: Db,
                      found: Caller) -> ListPage[DoNotContactOut]:
    """A page of the tenant's do-not-contact list, newest first; `search` finds text in the address or reason."""
    keyset = Keyset.of("do_not_contact", "added_at", True, {"search": query.search.strip(), "channel": query.channel})
    after = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        page = list_do_not_contact(session, search=query.search, channel=query.channel, per_page=query.limit,
                                   after=after)
    last = page.items[-1] if page.has_next and page.items else None
    return ListPage[DoNotContactOut](data=[dnc_out(row) for row in page.items], has_more=page.has_next,
                                     next_cursor=keyset.cursor((last.added_at, last.id) if last else None),
                                     total=page.total if query.include_total else None)


@router.post("", response_model=DoNotContactOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(403, 415, 422), summary="Add an address to the do-not-contact list")
def add_dnc_endpoint(body: DoNotContactCreate, request: Request, response: Response, db: Db,
                     found: Writer) -> DoNotContactOut:
    """List an address for one channel or `all`; 422 when it is malformed or already listed for that channel."""
    entry_id = add_do_not_contact(db, found.actor, body.channel, body.address, body.reason)
    response.headers["Location"] = str(request.url_for("get_dnc_endpoint", entry_id=entry_id))
    return read_dnc(db, found, entry_id)


def read_dnc(db: Db, found: Caller, entry_id: int) -> DoNotContactOut:
    with db.session(found.actor) as session:
        row = get_do_not_contact(session, entry_id)
    if row is None:
        raise NotFound("do_not_contact")
    return dnc_out(row)


@router.get("/{entry_id}", response_model=DoNotContactOut, responses=errors_for(404, 422),
            summary="Get one entry of the do-not-contact list")
def get_dnc_endpoint(entry_id: EntryId, db: Db, found: Caller) -> DoNotContactOut:
    """One entry; 404 when there is no such entry in the tenant."""
    return read_dnc(db, found, entry_id)


@router.delete("/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors_for(403, 404, 422),
               summary="Take an address off the do-not-contact list")
def remove_dnc_endpoint(entry_id: EntryId, db: Db, found: Writer) -> Response:
    """A manager's or an admin's decision (403 for a rep); 404 when there is no such entry in the tenant."""
    remove_do_not_contact(db, found.actor, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
