"""Read side for orders and their lines."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Order, OrderLine, Product


@dataclass(frozen=True)
class OrderLineRow:
    """One line of an order."""

    product_id: int
    sku: str | None  # a product may have none (migration 0035)
    product_name: str
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class OrderRow:
    """An order with its lines (lines only when asked for)."""

    id: int
    order_number: str
    status: str
    ordered_at: dt.datetime
    total_amount: Decimal
    currency: str
    opportunity_id: int | None
    version: int
    lines: list[OrderLineRow] = field(default_factory=list)


@dataclass(frozen=True)
class OrderTotals:
    """How many orders a customer has and what they add up to (cancelled ones excluded)."""

    count: int
    total_amount: Decimal


def customer_orders(session: Session, customer_id: int, *, limit: int = 50) -> list[OrderRow]:
    """A customer's unarchived orders, newest first, with their lines."""
    orders = list(
        session.scalars(
            select(Order)
            .where(Order.customer_id == customer_id, Order.archived_at.is_(None))
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit)
        )
    )
    lines = order_lines(session, [order.id for order in orders])
    return [
        OrderRow(o.id, o.order_number, o.status, o.ordered_at, o.total_amount, o.currency, o.opportunity_id,
                 o.version, lines.get(o.id, []))
        for o in orders
    ]


def order_lines(session: Session, order_ids: list[int]) -> dict[int, list[OrderLineRow]]:
    """The lines of ``order_ids``, keyed by order."""
    if not order_ids:
        return {}
    statement = (
        select(OrderLine, Product.sku, Product.name)
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.id)
    )
    grouped: dict[int, list[OrderLineRow]] = {}
    for line, sku, name in session.execute(statement):
        # half-up, as the order total is summed (services.orders.line_total): the lines add up to it
        total = (line.quantity * line.unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        grouped.setdefault(line.order_id, []).append(
            OrderLineRow(line.product_id, sku, name, line.quantity, line.unit_price, total)
        )
    return grouped


def customer_order_totals(session: Session, customer_id: int) -> OrderTotals:
    """Count and sum of a customer's unarchived, not cancelled orders (in SQL)."""
    row = session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.total_amount), 0)).where(
            Order.customer_id == customer_id, Order.archived_at.is_(None), Order.status != "cancelled"
        )
    ).one()
    return OrderTotals(int(row[0]), Decimal(str(row[1])).quantize(Decimal("0.01")))
