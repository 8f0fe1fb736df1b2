"""Order lists paged by keyset and one order with its lines: the API's ``/v1/orders``.

Rows carry the lines of :func:`crm_core.queries.orders.order_lines` (one query per page,
not per order). Ordered by ``(ordered_at, id)`` or ``(created_at, id)``, both never null,
so inserts never shift a page. Tenant and ownership scoping come from the session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from crm_core.models import Customer, Order
from crm_core.queries.orders import OrderLineRow, order_lines

SORTABLE_COLUMNS: dict[str, Any] = {"ordered_at": Order.ordered_at, "created_at": Order.created_at}

Position = tuple[dt.datetime, int]


@dataclass(frozen=True)
class OrderDetail:
    """An order as a list row or a record, with its lines."""

    id: int
    order_number: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    opportunity_id: int | None
    status: str
    ordered_at: dt.datetime
    currency: str
    total_amount: Decimal
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    lines: list[OrderLineRow] = field(default_factory=list)
    external_id: str | None = None  # the old system's ID (decision 0042)


@dataclass(frozen=True)
class OrderFilters:
    """What the order list is filtered by; empty values mean no filter."""

    customer_id: int | None = None
    opportunity_id: int | None = None
    status: str | None = None
    order_number: str = ""  # a prefix of the number
    ordered_from: dt.date | None = None
    ordered_to: dt.date | None = None
    include_archived: bool = False


@dataclass(frozen=True)
class OrderPage:
    """One keyset page of orders."""

    items: list[OrderDetail]
    has_next: bool
    next_position: Position | None
    total: int | None = None
    total_capped: bool = False


def _filtered(statement: Any, filters: OrderFilters) -> Any:
    if not filters.include_archived:
        statement = statement.where(Order.archived_at.is_(None))
    if filters.customer_id is not None:
        statement = statement.where(Order.customer_id == filters.customer_id)
    if filters.opportunity_id is not None:
        statement = statement.where(Order.opportunity_id == filters.opportunity_id)
    if filters.status is not None:
        statement = statement.where(Order.status == filters.status)
    if filters.order_number.strip():
        statement = statement.where(Order.order_number.startswith(filters.order_number.strip(), autoescape=True))
    if filters.ordered_from is not None:
        statement = statement.where(Order.ordered_at >= dt.datetime.combine(filters.ordered_from, dt.time()))
    if filters.ordered_to is not None:
        day_after = dt.datetime.combine(filters.ordered_to + dt.timedelta(days=1), dt.time())
        statement = statement.where(Order.ordered_at < day_after)
    return statement


def _details(session: Session, rows: list[Any]) -> list[OrderDetail]:
    lines = order_lines(session, [order.id for order, _ in rows])
    return [
        OrderDetail(
            id=order.id, order_number=order.order_number, customer_id=order.customer_id, customer_name=customer_name,
            owner_id=order.owner_id, opportunity_id=order.opportunity_id, status=order.status,
            ordered_at=order.ordered_at, currency=order.currency,
            total_amount=Decimal(str(order.total_amount)).quantize(Decimal("0.01")), archived_at=order.archived_at,
            created_at=order.created_at, updated_at=order.updated_at, version=order.version,
            lines=lines.get(order.id, []), external_id=order.external_id,
        )
        for order, customer_name in rows
    ]


def _statement() -> Any:
    return select(Order, Customer.name).join(Customer, Customer.id == Order.customer_id)


def list_order_page(
    session: Session,
    *,
    filters: OrderFilters | None = None,
    sort: str = "ordered_at",
    descending: bool = True,
    per_page: int = 50,
    after: Position | None = None,
    count_cap: int | None = None,
) -> OrderPage:
    """A page of the visible orders matching ``filters`` past ``after``; ``count_cap`` adds a capped count."""
    filters = filters or OrderFilters()
    per_page = max(1, min(per_page, 500))
    sort = sort if sort in SORTABLE_COLUMNS else "ordered_at"
    column = SORTABLE_COLUMNS[sort]
    statement = _filtered(_statement(), filters)
    if after is not None:
        position, bound = tuple_(column, Order.id), tuple_(*after)
        statement = statement.where(position < bound if descending else position > bound)
    order = [column.desc(), Order.id.desc()] if descending else [column.asc(), Order.id.asc()]
    rows = list(session.execute(statement.order_by(*order).limit(per_page + 1)).all())
    items = _details(session, rows[:per_page])
    has_next = len(rows) > per_page
    next_position = (getattr(items[-1], sort), items[-1].id) if has_next else None
    total, capped = None, False
    if count_cap is not None:
        inner = _filtered(select(Order.id), filters).limit(count_cap + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(inner)) or 0)
        capped, total = total > count_cap, min(total, count_cap)
    return OrderPage(items=items, has_next=has_next, next_position=next_position, total=total, total_capped=capped)


def get_order(session: Session, order_id: int) -> OrderDetail | None:
    """One visible order (archived ones included) with its lines, or None."""
    rows = list(session.execute(_statement().where(Order.id == order_id)).all())
    return _details(session, rows)[0] if rows else None
