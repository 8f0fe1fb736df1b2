"""Read side for contacts across customers: a filtered, keyset-paged list (the API's contacts list).

The customer profile shows one customer's contacts (``customer_profile.customer_contacts``);
this lists every contact the session may see — a contact is visible when its customer is
(the access layer's rule) — one page at a time, by keyset on the sort column and id.

Text search (:func:`searched_contacts`, also the global search's) is the customers' search over
the contact's name, email and phone (migration 0033): on SQLite the FTS5 trigram table
``contacts_fts`` drives the query (three or more characters, or one or two Chinese ones through
its vocabulary; matches are read in index order and each contact fetched by rowid, so a common
term stops at the ``LIMIT``); PostgreSQL ``ILIKE``/``LIKE`` served by pg_trgm GIN indexes (one or two
characters: by the short-gram GIN indexes of migration 0036); MariaDB,
and one or two Latin characters anywhere, ``LIKE`` under a ``LIMIT``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, column, func, or_, select, table, tuple_
from sqlalchemy.orm import Session

from crm_core.models import Contact
from crm_core.queries.customers import MIN_FTS_CHARS, fts_match_query, pg_text_condition
from crm_core.queries.paging import Page
from crm_core.rules.contact_details import normalise_email, phone_search_keys
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
    search: str = ""  # a substring of the name, the email or the phone (digits)
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
    external_id: str | None = None


@dataclass(frozen=True)
class ContactPage(Page[ContactListRow]):
    """A page of contacts and the keyset position of its last row (None: no more)."""

    next_cursor: Cursor | None = None
    total_capped: bool = False


_COLUMNS = (
    Contact.id, Contact.customer_id, Contact.name, Contact.title, Contact.email, Contact.phone, Contact.is_primary,
    Contact.created_at, Contact.updated_at, Contact.archived_at, Contact.version, Contact.external_id,
)


_FTS = table("contacts_fts", column("rowid"))
_FTS_MATCH: Any = column("contacts_fts")


def searched_contacts(session: Session, columns: Any, text: str) -> Select[Any]:
    """``SELECT columns`` from the contacts matching ``text`` (all contacts when it is blank), for the session's
    database: see the module docstring. More joins and conditions may be added; on SQLite every other
    table joined should be read by primary key (``NOT INDEXED``) so the full-text matches drive the query."""
    dialect = session.get_bind().dialect.name
    text = search_text(text)
    match = fts_match_query(text, "contacts_fts_vocab") if text and dialect == "sqlite" else None
    if match is not None:
        return (
            select(*columns)
            .select_from(_FTS)
            .join(Contact, Contact.id == _FTS.c.rowid)
            .where(_FTS_MATCH.match(match))
            .with_hint(Contact, "NOT INDEXED", dialect_name="sqlite")
        )
    statement = select(*columns)
    return statement.where(contact_text_condition(text, dialect)) if text else statement


def contact_text_condition(text: str, dialect: str) -> Any:
    """``text`` in the name (anywhere), the normalised email or the phone (E.164 digits), as ``LIKE`` conditions:
    PostgreSQL's are served by the pg_trgm indexes, or for one or two characters the short-gram ones
    (:func:`crm_core.queries.customers.pg_text_condition`); elsewhere they are tested row by row."""
    email_key = normalise_email(text) or ""
    email_terms = [email_key] if email_key and " " not in email_key else []
    phone_keys = [key for key in phone_search_keys(text) if len(key) >= MIN_FTS_CHARS]
    if dialect == "postgresql":
        return pg_text_condition(
            (Contact.name, text, True), *((Contact.email_normalized, key, False) for key in email_terms),
            *((Contact.phone_normalized, key, False) for key in phone_keys),
        )
    conditions: list[Any] = [Contact.name.contains(text, autoescape=True)]
    conditions.extend(Contact.email_normalized.contains(key, autoescape=True) for key in email_terms)
    conditions.extend(Contact.phone_normalized.contains(key, autoescape=True) for key in phone_keys)
    return or_(*conditions)


def _filtered(session: Session, columns: Any, filters: ContactFilters) -> Any:
    text = search_text(filters.search)
    if filters.customer_id is not None and text:
        # one customer's few contacts: found by its index, each tested (the full-text matches may be many)
        statement = select(*columns).where(contact_text_condition(text, session.get_bind().dialect.name))
    else:
        statement = searched_contacts(session, columns, text)
    if not filters.include_archived:
        statement = statement.where(Contact.archived_at.is_(None))
    if filters.customer_id is not None:
        statement = statement.where(Contact.customer_id == filters.customer_id)
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
    statement = _filtered(session, _COLUMNS, filters).order_by(*order).limit(per_page + 1)
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
    inner = _filtered(session, [Contact.id], filters or ContactFilters())
    if cap is not None:
        inner = inner.limit(cap + 1)
    return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


def get_contact(session: Session, contact_id: int) -> ContactListRow | None:
    """One contact (archived ones too), if the session may see it."""
    row = session.execute(select(*_COLUMNS).where(Contact.id == contact_id)).first()
    return ContactListRow(*row) if row is not None else None
