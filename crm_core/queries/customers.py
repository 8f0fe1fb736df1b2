"""Read side for customers: the server-side filtered, sorted, paginated grid.

Only the rows of one page leave the database; the total is a separate COUNT that
callers may skip. Tenant and ownership scoping come from the session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import Customer, User
from crm_core.queries.paging import Page
from crm_core.rules.contact_details import normalise_email, normalise_phone

SORTABLE_COLUMNS = {
    "updated_at": Customer.updated_at,
    "created_at": Customer.created_at,
    "name": Customer.name,
    "lifecycle_stage": Customer.lifecycle_stage,
    "last_contacted_at": Customer.last_contacted_at,
}


@dataclass
class CustomerFilters:
    """What the grid is filtered by; empty values mean no filter."""

    search: str = ""
    owner_id: int | None = None
    unowned: bool = False
    lifecycle_stage: str | None = None
    industry: str | None = None
    region: str | None = None
    tag: str | None = None
    include_archived: bool = False


@dataclass(frozen=True)
class CustomerRow:
    """One line of the customers grid."""

    id: int
    name: str
    kind: str
    industry: str | None
    region: str | None
    lifecycle_stage: str
    owner_id: int | None
    owner_name: str | None
    email: str | None
    phone: str | None
    tags: list[str] = field(default_factory=list)
    last_contacted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    version: int = 1


def _filtered(statement: Select[Any], filters: CustomerFilters) -> Select[Any]:
    if not filters.include_archived:
        statement = statement.where(Customer.archived_at.is_(None))
    if filters.owner_id is not None:
        statement = statement.where(Customer.owner_id == filters.owner_id)
    elif filters.unowned:
        statement = statement.where(Customer.owner_id.is_(None))
    if filters.lifecycle_stage:
        statement = statement.where(Customer.lifecycle_stage == filters.lifecycle_stage)
    if filters.industry:
        statement = statement.where(Customer.industry == filters.industry)
    if filters.region:
        statement = statement.where(Customer.region == filters.region)
    if filters.tag:
        statement = statement.where(Customer.tags.contains(f",{filters.tag.strip()},", autoescape=True))
    text = filters.search.strip()
    if text:
        statement = statement.where(search_condition(text))
    return statement


def search_condition(text: str) -> Any:
    """Match ``text`` in the name (any script, any position), or an email or phone."""
    conditions = [Customer.name.contains(text, autoescape=True)]
    email_key = normalise_email(text)
    if email_key and "@" in email_key:
        conditions.append(Customer.email_normalized.startswith(email_key, autoescape=True))
    else:
        conditions.append(Customer.email_normalized.contains(text.lower(), autoescape=True))
    phone_key = normalise_phone(text)
    if phone_key and len(phone_key.lstrip("+")) >= 3:
        conditions.append(Customer.phone_normalized.contains(phone_key.lstrip("+"), autoescape=True))
    return or_(*conditions)


def list_customers(
    session: Session,
    *,
    filters: CustomerFilters | None = None,
    page: int = 1,
    per_page: int = 50,
    sort: str = "updated_at",
    descending: bool = True,
    with_total: bool = True,
) -> Page[CustomerRow]:
    """One page of customers matching ``filters``, sorted by ``sort``."""
    filters = filters or CustomerFilters()
    page = max(1, page)
    per_page = max(1, min(per_page, 500))
    owner = aliased(User)
    sort_column = SORTABLE_COLUMNS.get(sort, Customer.updated_at)
    order = [sort_column.desc(), Customer.id.desc()] if descending else [sort_column.asc(), Customer.id.asc()]
    statement = _filtered(
        select(Customer, owner.full_name).outerjoin(owner, owner.id == Customer.owner_id), filters
    )
    rows = session.execute(
        statement.order_by(*order).limit(per_page + 1).offset((page - 1) * per_page)
    ).all()
    items = [
        CustomerRow(
            id=customer.id,
            name=customer.name,
            kind=customer.kind,
            industry=customer.industry,
            region=customer.region,
            lifecycle_stage=customer.lifecycle_stage,
            owner_id=customer.owner_id,
            owner_name=owner_name,
            email=customer.email,
            phone=customer.phone,
            tags=customer.tag_list,
            last_contacted_at=customer.last_contacted_at,
            updated_at=customer.updated_at,
            version=customer.version,
        )
        for customer, owner_name in rows[:per_page]
    ]
    total = count_customers(session, filters=filters) if with_total else None
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page, total=total)


def count_customers(session: Session, *, filters: CustomerFilters | None = None) -> int:
    """How many customers match ``filters`` (within the session's scope)."""
    statement = _filtered(select(func.count(Customer.id)), filters or CustomerFilters())
    return int(session.scalar(statement) or 0)


def get_customer(session: Session, customer_id: int) -> Customer | None:
    """One customer, if visible to the session's actor."""
    return session.get(Customer, customer_id)


def distinct_values(session: Session, column: str, *, limit: int = 200) -> list[str]:
    """Values in use for ``industry`` or ``region`` (for filter choices)."""
    target = {"industry": Customer.industry, "region": Customer.region}[column]
    return [
        value
        for value in session.scalars(
            select(target).where(target.is_not(None)).group_by(target).order_by(target).limit(limit)
        )
        if value
    ]
