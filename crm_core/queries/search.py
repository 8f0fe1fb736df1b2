"""Read side for the global search: customers, contacts and deals matching one query, grouped.

Pattern: three small bounded queries, each scoped by the session (``access.py``), merged into
:class:`SearchResults`. Customers reuse the grid's own search (:func:`list_customers` with
``CustomerFilters(search=…)``: the FTS5 trigram index on SQLite, pg_trgm on PostgreSQL, the
same Chinese and phone-fragment rules), so a customer found in the grid is found here and
vice versa. Contacts match by name, email or phone digits through their own full-text index
(``queries.contacts.searched_contacts``, migration 0033); deals by name, with no text index: read
with a ``LIMIT`` (a common term stops early). Contacts and deals are searched only for queries
of two or more characters (one Chinese character is enough), so a single Latin letter never
scans them.

The best match — what Enter opens — is ranked by how the query meets a value: equal
(name, email or phone digits) before a prefix before anywhere inside; customers before
contacts before deals at the same rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import Contact, Customer, Opportunity, PipelineStage
from crm_core.queries.contacts import searched_contacts
from crm_core.queries.customers import CustomerFilters, has_cjk, list_customers
from crm_core.rules.contact_details import normalise_name, normalise_phone
from crm_core.rules.fields import search_text

PER_KIND = 5
"""Hits shown per group."""
MIN_QUERY_CHARS = 2
"""Contacts and deals are searched from this many characters (one Chinese character is enough)."""
MIN_PHONE_DIGITS = 3
KINDS = ("customer", "contact", "deal")

# how a query meets a value: lower is better
EXACT, PREFIX, INSIDE = 0, 1, 2


@dataclass(frozen=True)
class SearchHit:
    """One found record: what to show and which customer 360 opens it."""

    kind: str
    id: int
    customer_id: int
    title: str
    detail: str
    rank: int

    @property
    def order(self) -> tuple[int, int, int]:
        """Sort key of the best match: the rank, then customers before contacts before deals."""
        return (self.rank, KINDS.index(self.kind), -self.id)


@dataclass(frozen=True)
class SearchResults:
    """Hits grouped by kind, each group best first."""

    query: str
    customers: list[SearchHit] = field(default_factory=list)
    contacts: list[SearchHit] = field(default_factory=list)
    deals: list[SearchHit] = field(default_factory=list)

    @property
    def groups(self) -> dict[str, list[SearchHit]]:
        return {"customer": self.customers, "contact": self.contacts, "deal": self.deals}

    @property
    def best(self) -> SearchHit | None:
        """The hit Enter opens, or None when nothing matched."""
        hits = [*self.customers, *self.contacts, *self.deals]
        return min(hits, key=lambda hit: hit.order) if hits else None

    def __bool__(self) -> bool:
        return bool(self.customers or self.contacts or self.deals)


def match_rank(query: str, *values: str | None) -> int:
    """How well ``query`` meets the best of ``values``: :data:`EXACT`, :data:`PREFIX` or :data:`INSIDE`.

    Names are compared case- and width-folded, emails lower-cased, phones by their digits.
    """
    wanted = normalise_name(query)
    digits = _digits(query)
    best = INSIDE
    for value in values:
        if not value:
            continue
        candidates = [normalise_name(value)]
        if digits and len(digits) >= MIN_PHONE_DIGITS:
            candidates.extend(_phone_forms(value))
        for candidate in candidates:
            key = digits if candidate and candidate.isdigit() and digits else wanted
            if not key:
                continue
            if candidate == key:
                return EXACT
            if candidate.startswith(key):
                best = min(best, PREFIX)
    return best


def _digits(text: str | None) -> str:
    """The digits of a phone-like text (no letters), else ''."""
    if not text or any(ch.isalpha() for ch in text):
        return ""
    return "".join(ch for ch in text if ch.isdigit())


def _phone_forms(text: str | None) -> list[str]:
    """A phone as a user may type it: its digits as written, in E.164 and national (without +86) form."""
    forms = [_digits(text)]
    stored = (normalise_phone(text) or "").lstrip("+").split(";")[0]
    if stored.isdigit():
        forms.extend([stored, stored.removeprefix("86")])
    return [form for form in dict.fromkeys(forms) if form]


def global_search(session: Session, query: str, *, per_kind: int = PER_KIND) -> SearchResults:
    """Customers, contacts and deals the session's actor may see that match ``query``."""
    text = search_text(query)
    if not text:
        return SearchResults(query=text)
    wide = len(text) >= MIN_QUERY_CHARS or has_cjk(text)
    return SearchResults(
        query=text,
        customers=search_customers(session, text, limit=per_kind),
        contacts=search_contacts(session, text, limit=per_kind) if wide else [],
        deals=search_deals(session, text, limit=per_kind) if wide else [],
    )


def search_customers(session: Session, text: str, *, limit: int = PER_KIND) -> list[SearchHit]:
    """Customers found by the grid's search (name anywhere, email, phone fragment), best first."""
    page = list_customers(session, filters=CustomerFilters(search=text), per_page=limit * 4, with_total=False)
    hits = [
        SearchHit("customer", row.id, row.id, row.name, _detail(row.email, row.phone, row.owner_name),
                  match_rank(text, row.name, row.email, row.phone))
        for row in page.items
    ]
    return sorted(hits, key=lambda hit: hit.order)[:limit]


def search_contacts(session: Session, text: str, *, limit: int = PER_KIND) -> list[SearchHit]:
    """Unarchived contacts whose name, email or phone contains ``text`` (the contacts list's search, served by
    the contacts' full-text index), with their customer's name."""
    statement = (
        searched_contacts(session, [Contact.id, Contact.customer_id, Contact.name, Contact.email, Contact.phone,
                                    Customer.name], text)
        .join(Customer, Customer.id == Contact.customer_id)
        # the customer by primary key: the text matches drive the query (see searched_contacts)
        .with_hint(Customer, "NOT INDEXED", dialect_name="sqlite")
        .where(Contact.archived_at.is_(None), Customer.archived_at.is_(None))
        .limit(limit * 4)
    )
    hits = [
        SearchHit("contact", contact_id, customer_id, name, _detail(customer_name, email, phone),
                  match_rank(text, name, email, phone))
        for contact_id, customer_id, name, email, phone, customer_name in session.execute(statement)
    ]
    return sorted(hits, key=lambda hit: hit.order)[:limit]


def search_deals(session: Session, text: str, *, limit: int = PER_KIND) -> list[SearchHit]:
    """Unarchived deals whose name contains ``text``, with their stage and customer."""
    dialect = session.get_bind().dialect.name
    statement = (
        select(Opportunity.id, Opportunity.customer_id, Opportunity.name, PipelineStage.name, Customer.name)
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .where(Opportunity.archived_at.is_(None), Customer.archived_at.is_(None),
               _contains(Opportunity.name, text, dialect))
        .limit(limit * 4)
    )
    hits = [
        SearchHit("deal", deal_id, customer_id, name, _detail(customer_name, stage_name), match_rank(text, name))
        for deal_id, customer_id, name, stage_name, customer_name in session.execute(statement)
    ]
    return sorted(hits, key=lambda hit: hit.order)[:limit]


def _contains(column: Any, text: str, dialect: str) -> Any:
    # PostgreSQL's LIKE is case-sensitive; SQLite's (ASCII) and MariaDB's collation are not
    return column.icontains(text, autoescape=True) if dialect == "postgresql" else column.contains(
        text, autoescape=True)


def _detail(*values: str | None) -> str:
    return " · ".join(value for value in values if value)
