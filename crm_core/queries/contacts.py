"""Read side for contacts across customers: a filtered, keyset-paged list (the API's contacts list).

The customer profile shows one customer's contacts (``customer_profile.customer_contacts``);
this lists every contact the session may see — a contact is visible when its customer is
(the access layer's rule) — one page at a time, by keyset on the sort column and id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from crm_core.models import Contact
from crm_core.queries.paging import Page
from crm_core.rules.fields import search_text

SORTABLE_COLUMNS: dict[str, Any] = {
    "updated_at": Contact.updated_at,
    "created_at": Contact.created_at,
    "name": Contact.name,
}
Cursor = tuple[Any, int]


@dataclass
class ContactFilters:
    """What the list is filtered by; empty values mean no filter."""

    customer_id: int | None = None
    search: str = ""  # a substring of the name or the email
    include_archived: bool = False


@dataclass(frozen=True)
class ContactListRow:
    """One contact in a list."""

    id: int
    customer_id: int
    name: str
    title: str | None
    email: str | None
    phone: str | None
    is_primary: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None
    version: int


@dataclass(frozen=True)
class ContactPage(Page[ContactListRow]):
    """A page of contacts and the keyset position of its last row (None: no more)."""

    next_cursor: Cursor | None = None
    total_capped: bool = False


_COLUMNS = (
    Contact.id, Contact.customer_id, Contact.name, Contact.title, Contact.email, Contact.phone, Contact.is_primary,
    Contact.created_at, Contact.updated_at, Contact.archived_at, Contact.version,
)


def _filtered(statement: Any, filters: ContactFilters) -> Any:
    if not filters.include_archived:
        statement = statement.where(Contact.archived_at.is_(None))
    if filters.customer_id is not None:
        statement = statement.where(Contact.customer_id == filters.customer_id)
    text = search_text(filters.search)
    if text:
        statement = statement.where(or_(Contact.name.contains(text, autoescape=True),
                                        Contact.email.contains(text, autoescape=True)))
    return statement


def list_contacts(
    session: Session, *, filters: ContactFilters | None = None, per_page: int = 50, sort: str = "updated_at",
    descending: bool = True, after: Cursor | None = None, with_total: bool = False, count_cap: int | None = None,
) -> ContactPage:
    """One page of contacts matching ``filters``; pass the previous page's ``next_cursor`` as ``after``."""
    filters = filters or ContactFilters()
    per_page = max(1, min(per_page, 500))
    sort = sort if sort in SORTABLE_COLUMNS else "updated_at"
    column = SORTABLE_COLUMNS[sort]
    order = [column.desc(), Contact.id.desc()] if descending else [column.asc(), Contact.id.asc()]
    statement = _filtered(select(*_COLUMNS), filters).order_by(*order).limit(per_page + 1)
    if after is not None:
        position, bound = tuple_(column, Contact.id), tuple_(*after)
        statement = statement.where(position < bound if descending else position > bound)
    rows = session.execute(statement).all()
    items = [ContactListRow(*row) for row in rows[:per_page]]
    has_next = len(rows) > per_page
    next_cursor = (getattr(items[-1], sort), items[-1].id) if has_next else None
    total, capped = None, False
    if with_total:
        total = count_contacts(session, filters=filters, cap=count_cap)
        capped = count_cap is not None and total > count_cap
        total = min(total, count_cap) if count_cap is not None else total
    return ContactPage(items=items, per_page=per_page, has_next=has_next, total=total, next_cursor=next_cursor,
                       total_capped=capped)


def count_contacts(session: Session, *, filters: ContactFilters | None = None, cap: int | None = None) -> int:
    """How many contacts match ``filters``; with ``cap``, reads at most ``cap + 1`` of them."""
    inner = _filtered(select(Contact.id), filters or ContactFilters())
    if cap is not None:
        inner = inner.limit(cap + 1)
    return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


def get_contact(session: Session, contact_id: int) -> ContactListRow | None:
    """One contact (archived ones too), if the session may see it."""
    row = session.execute(select(*_COLUMNS).where(Contact.id == contact_id)).first()
    return ContactListRow(*row) if row is not None else None
