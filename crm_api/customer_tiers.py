"""Customer tiers over HTTP (read only): ``GET /v1/customer-tiers`` lists the tenant's tiers and their rule;
``GET /v1/customers/{id}/tier`` is a visible customer's tier now and why (their orders, an admin's pin, or
neither). Both call what the SLA settings page and a new case call (:mod:`crm_core.services.customer_tiers`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from crm_api.dependencies import Caller, Db
from crm_api.paging import ListPage
from crm_api.redirects import merged_redirect
from crm_api.routing import ApiRoute
from crm_api.schemas import Moment, errors_for
from crm_core.errors import NotFound
from crm_core.models import utcnow
from crm_core.models.merges import MergeEntity
from crm_core.queries.customer_tiers import list_tiers
from crm_core.queries.customers import get_customer
from crm_core.services.customer_tiers import customer_tier

router = APIRouter(prefix="/v1/customer-tiers", tags=["customer-tiers"], route_class=ApiRoute)
customers_router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=ApiRoute,
                             dependencies=[merged_redirect(MergeEntity.CUSTOMER, "customer_id", "/v1/customers")])


class TierOut(BaseModel):
    """A tier and its rule: confirmed and fulfilled orders over the last `months` reaching `min_order_total`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 2, "code": "gold", "name_en": "Gold", "name_zh": "金牌", "rank": 2, "min_order_total": "100000.00",
        "months": 12, "customers_by_orders": 1234, "customers_pinned": 5, "version": 1}]})

    id: int
    code: str
    name_en: str
    name_zh: str
    rank: int = Field(description="Higher is better: a customer is in the best tier they reach.")
    min_order_total: Decimal
    months: int
    customers_by_orders: int = Field(description="Customers whose orders reached it at the last refresh.")
    customers_pinned: int
    version: int


class CustomerTierOut(BaseModel):
    """A customer's tier now (`tier_id` null: the default SLA policies) and why."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": 42, "tier_id": 2, "tier_code": "gold", "basis": "orders", "order_total": "123456.00",
        "threshold": "100000.00", "months": 12, "pinned_until": None, "as_of": "2026-12-05T01:40:00Z"}]})

    customer_id: int
    tier_id: int | None
    tier_code: str | None
    basis: Literal["orders", "pinned", "default"] = Field(
        description="`orders`: their orders reached the tier (as of `as_of`); `pinned`: an admin set it, "
                    "until `pinned_until` (inclusive; null: for good); `default`: no tier.")
    order_total: Decimal | None
    threshold: Decimal | None
    months: int | None
    pinned_until: dt.date | None
    as_of: Moment | None


CustomerId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=ListPage[TierOut], responses=errors_for(422), summary="List the customer tiers")
def list_tiers_endpoint(db: Db, found: Caller) -> ListPage[TierOut]:
    """Every tier of the tenant, best first (a tenant has at most a few dozen: one page)."""
    with db.session(found.actor) as session:
        rows = list_tiers(session)
    return ListPage[TierOut](data=[TierOut(
        id=row.id, code=row.code, name_en=row.name_en, name_zh=row.name_zh, rank=row.rank,
        min_order_total=row.min_order_total, months=row.months, customers_by_orders=row.by_orders,
        customers_pinned=row.pinned, version=row.version) for row in rows], next_cursor=None, has_more=False)


@customers_router.get("/{customer_id}/tier", response_model=CustomerTierOut, responses=errors_for(404, 422),
                      summary="Get a customer's tier and why")
def get_customer_tier_endpoint(customer_id: CustomerId, db: Db, found: Caller) -> CustomerTierOut:
    """The tier a case opened now for this customer would follow; 404 when the customer is not visible."""
    with db.session(found.actor) as session:
        if get_customer(session, customer_id) is None:
            raise NotFound("customer")
        choice = customer_tier(session, found.actor.tenant_id, customer_id, today=utcnow().date())
        codes = {row.id: row.code for row in list_tiers(session)} if choice.tier_id is not None else {}
    return CustomerTierOut(customer_id=customer_id, tier_id=choice.tier_id, tier_code=codes.get(choice.tier_id or 0),
                           basis=choice.basis, order_total=choice.order_total,  # type: ignore[arg-type]
                           threshold=choice.threshold, months=choice.months, pinned_until=choice.pinned_until,
                           as_of=choice.as_of)
