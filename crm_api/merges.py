"""Merges over HTTP: ``POST /v1/customers/{id}/merge`` and ``/v1/contacts/{id}/merge`` (docs/decisions/0027-merge.md).

The path's record is the one that lives on; the body names the record merged into it, the version
of it the client saw, and the field choices. ``If-Match`` carries the survivor's version, as for any
write (428 without it). The answer is the survivor as it is now, with the rows moved and dropped.
A request for a merged id is redirected to the survivor: see :mod:`crm_api.redirects`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from crm_api.concurrency import expected_version
from crm_api.contacts import ContactOut, read_contact
from crm_api.customers import CustomerOut, read_customer
from crm_api.dependencies import Db, Writer
from crm_api.redirects import REDIRECT
from crm_api.routing import ApiRoute
from crm_api.schemas import RecordId, errors_for
from crm_core.services.merging import MergeResult, Versions, merge_contacts, merge_customers

customers_router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=ApiRoute)
contacts_router = APIRouter(prefix="/v1/contacts", tags=["contacts"], route_class=ApiRoute)

Choice = Literal["survivor", "merged", "both"]


class MergeBody(BaseModel):
    """The record to merge into the path's record, the version of it the client saw, and the field choices."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"merged_id": 43, "merged_version": 2, "field_choices": {"email": "merged", "tags": "both"}}]})

    merged_id: RecordId
    merged_version: RecordId = Field(description="The merged record's version (its ETag) the choices were made on.")
    field_choices: dict[Annotated[str, Field(max_length=80)], Choice] = Field(
        default_factory=dict, max_length=200,
        description="Per field, whose value the survivor keeps: `survivor` or `merged` (`both` for `tags`). "
                    "Fields left out: the survivor's non-empty value, else the merged record's; tags combined. "
                    "Customers: name, kind, industry, region, source, owner (owner and team), email, phone, "
                    "external_id, tags, `custom.<name>`. Contacts: name, title, email, phone.")


class CustomerMergeOut(BaseModel):
    """The survivor after the merge, and the rows that now point at it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "merge_id": 5, "merged_id": 43, "survivor": {"id": 42, "name": "Hangzhou Kestrel Trading Co.", "version": 7},
        "moved": {"contacts.customer_id": 2, "orders.customer_id": 14}, "dropped": {}}]})

    merge_id: int
    merged_id: int
    survivor: CustomerOut
    moved: dict[str, int] = Field(description="Rows moved to the survivor, by `table.column`.")
    dropped: dict[str, int] = Field(description="Rows dropped because the survivor already had their twin "
                                                "(the same campaign, automation firing or scorer).")


class ContactMergeOut(BaseModel):
    """The contact that lives on after the merge, and the rows that now point at it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "merge_id": 6, "merged_id": 10, "survivor": {"id": 9, "name": "Lin Mei", "version": 3},
        "moved": {"activities.contact_id": 4}, "dropped": {}}]})

    merge_id: int
    merged_id: int
    survivor: ContactOut
    moved: dict[str, int]
    dropped: dict[str, int]


CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ContactId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` of the record that lives on (its ETag).')]


@customers_router.post(
    "/{customer_id}/merge", response_model=CustomerMergeOut,
    responses={**errors_for(403, 404, 409, 412, 415, 422, 428), **REDIRECT},
    summary="Merge a duplicate customer into this one",
)
def merge_customer_endpoint(customer_id: CustomerId, body: MergeBody, response: Response, db: Db, found: Writer,
                            if_match: IfMatch = None) -> CustomerMergeOut:
    """Move everything of `merged_id` to this customer (managers and admins, both records visible); the merged
    customer is archived and its id answers 308 to this one. 409 `merge.error.*` when it cannot be merged."""
    versions = Versions(expected_version(if_match), body.merged_version)
    result = merge_customers(db, found.actor, customer_id, body.merged_id, dict(body.field_choices), versions)
    return CustomerMergeOut(merge_id=result.merge_id, merged_id=body.merged_id,
                            survivor=read_customer(db, found, customer_id, response), **_rows(result))


@contacts_router.post(
    "/{contact_id}/merge", response_model=ContactMergeOut,
    responses={**errors_for(403, 404, 409, 412, 415, 422, 428), **REDIRECT},
    summary="Merge a duplicate contact of the same customer into this one",
)
def merge_contact_endpoint(contact_id: ContactId, body: MergeBody, response: Response, db: Db, found: Writer,
                           if_match: IfMatch = None) -> ContactMergeOut:
    """Move the activities and cases of `merged_id` to this contact; the merged contact is archived."""
    versions = Versions(expected_version(if_match), body.merged_version)
    result = merge_contacts(db, found.actor, contact_id, body.merged_id, dict(body.field_choices), versions)
    return ContactMergeOut(merge_id=result.merge_id, merged_id=body.merged_id,
                           survivor=read_contact(db, found, contact_id, response), **_rows(result))


def _rows(result: MergeResult) -> dict[str, Any]:
    return {"moved": result.moved, "dropped": result.dropped}
