"""Read side for the product catalogue one page at a time (the API's list): keyset on (name, id).

``queries.products.list_products`` gives the whole (bounded) catalogue to the pages and the
order form; this pages through it by name, with the same search (a part of the SKU or the
name), for clients that may hold any number of products.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from crm_core.models import Product
from crm_core.queries.paging import Page
from crm_core.rules.fields import search_text

Cursor = tuple[str, int]


@dataclass
class ProductFilters:
    """Which products: a search text, active ones only, archived ones too."""

    search: str = ""
    active_only: bool = False
    include_archived: bool = False


@dataclass(frozen=True)
class ProductListRow:
    """A product with its timestamps and archive state."""

    id: int
    sku: str
    name: str
    unit_price: Decimal
    currency: str
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None
    version: int
    external_id: str | None = None


@dataclass(frozen=True)
class ProductPage(Page[ProductListRow]):
    """A page of products and the (name, id) of its last row when more follow."""

    next_cursor: Cursor | None = None
    total_capped: bool = False


_COLUMNS = (Product.id, Product.sku, Product.name, Product.unit_price, Product.currency, Product.is_active,
            Product.created_at, Product.updated_at, Product.archived_at, Product.version, Product.external_id)


def _filtered(statement: Any, filters: ProductFilters) -> Any:
    if not filters.include_archived:
        statement = statement.where(Product.archived_at.is_(None))
    if filters.active_only:
        statement = statement.where(Product.is_active.is_(True))
    text = search_text(filters.search)
    if text:
        statement = statement.where(or_(Product.name.contains(text, autoescape=True),
                                        Product.sku.contains(text, autoescape=True)))
    return statement


def list_product_page(
    session: Session, *, filters: ProductFilters | None = None, per_page: int = 50, after: Cursor | None = None,
    with_total: bool = False, count_cap: int | None = None,
) -> ProductPage:
    """One page of products by name (then id); pass the previous page's ``next_cursor`` as ``after``."""
    filters = filters or ProductFilters()
    per_page = max(1, min(per_page, 500))
    statement = _filtered(select(*_COLUMNS), filters).order_by(Product.name, Product.id).limit(per_page + 1)
    if after is not None:
        statement = statement.where(tuple_(Product.name, Product.id) > tuple_(*after))
    rows = session.execute(statement).all()
    items = [ProductListRow(*row) for row in rows[:per_page]]
    has_next = len(rows) > per_page
    total, capped = None, False
    if with_total:
        inner = _filtered(select(Product.id), filters)
        if count_cap is not None:
            inner = inner.limit(count_cap + 1)
        total = int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)
        capped = count_cap is not None and total > count_cap
        total = min(total, count_cap) if count_cap is not None else total
    return ProductPage(items=items, per_page=per_page, has_next=has_next, total=total, total_capped=capped,
                       next_cursor=(items[-1].name, items[-1].id) if has_next else None)


def get_product_row(session: Session, product_id: int) -> ProductListRow | None:
    """One product (archived ones too)."""
    row = session.execute(select(*_COLUMNS).where(Product.id == product_id)).first()
    return ProductListRow(**row._asdict()) if row is not None else None
