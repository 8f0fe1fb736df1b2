"""Order use cases: book, edit and archive orders with their lines.

The total is always computed here from the lines (quantity × unit price, in Decimal,
rounded to cents half-up): nobody types a total. A line's price defaults to the
product's list price. Editing replaces the lines as a whole, in one transaction, with
optimistic locking on the order. Every change asks for its customer's tier after the commit
(:func:`crm_core.services.customer_tiers.orders_changed`). A valid order and line are what
:data:`crm_core.rules.fields.ORDER` and :data:`~crm_core.rules.fields.ORDER_LINE` say, as for
an import of order lines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Customer, Opportunity, Order, OrderLine, OrderStatus, Product, Tenant, utcnow
from crm_core.rules import fields as rules
from crm_core.rules.fields import clean_text
from crm_core.services.customer_tiers import orders_changed
from crm_core.services.editing import check_version, checked_external_id, translate_stale
from crm_core.services.lifecycle import refresh_lifecycle
from crm_core.services.products import parse_money

Errors = dict[str, tuple[str, dict[str, Any]]]
CENT = Decimal("0.01")


@dataclass
class OrderLineInput:
    """One line as typed: a product, a quantity, and optionally a price (else the list price)."""

    product_id: int
    quantity: Decimal | str | int | float = Decimal("1")
    unit_price: Decimal | str | int | float | None = None


@dataclass
class OrderInput:
    """The fields of the order form; ``order_number`` empty means "assign the next one"."""

    customer_id: int
    lines: list[OrderLineInput] = field(default_factory=list)
    order_number: str = ""
    status: str = OrderStatus.CONFIRMED.value
    ordered_at: dt.datetime | dt.date | None = None
    currency: str = ""
    opportunity_id: int | None = None
    external_id: str | None = None  # the old system's ID (unique per tenant); None: left as it is


def line_total(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """Quantity × unit price, rounded to cents half-up."""
    return (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


def order_total(lines: list[tuple[Decimal, Decimal]]) -> Decimal:
    """The order total: the sum of its rounded line totals."""
    return sum((line_total(quantity, price) for quantity, price in lines), Decimal("0.00"))


def _parse_quantity(raw: Any, key: str, errors: Errors) -> Decimal:
    """The quantity of a line; blank is 1, as in an import."""
    value, problem = rules.read_decimal(rules.ORDER_LINE["quantity"], raw)
    if problem is not None:
        errors[key] = problem
        return Decimal("0")
    return Decimal("1") if value is None else value


def read_lines(
    session: Any, lines: list[OrderLineInput], errors: Errors, *, inactive_products: bool = False
) -> list[tuple[Product, Decimal, Decimal]]:
    """Each line's product, quantity (blank: 1) and price (blank: the product's list price), as an order's and a
    deal's lines are read; a line that names no live product (no inactive one unless ``inactive_products``)
    or holds a bad number is an error keyed ``line<N>.<field>`` and left out."""
    ids = {line.product_id for line in lines}
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(sorted(ids))))} if ids else {}
    built = []
    for index, line in enumerate(lines, start=1):
        product = products.get(line.product_id)
        if product is None or product.archived_at is not None or not (product.is_active or inactive_products):
            errors[f"line{index}.product"] = ("validation.choice", {})
            continue
        quantity = _parse_quantity(line.quantity, f"line{index}.quantity", errors)
        if line.unit_price is None or (isinstance(line.unit_price, str) and not line.unit_price.strip()):
            price = product.unit_price
        else:
            price = parse_money(line.unit_price, f"line{index}.unit_price", errors, rules.ORDER_LINE["unit_price"])
        built.append((product, quantity, price))
    return built


def _build_lines(session: Any, form: OrderInput, errors: Errors) -> list[tuple[Product, Decimal, Decimal]]:
    if not form.lines:
        errors["lines"] = ("sales.order_needs_lines", {})
        return []
    built = read_lines(session, form.lines, errors)
    if not errors and (problem := rules.check(rules.ORDER_TOTAL, order_total([(q, p) for _, q, p in built]))):
        errors["lines"] = problem  # each line fits, their sum does not
    return built


def _header(form: OrderInput) -> dict[str, Any]:
    """The form's order fields in their stored form, as the rules see them (blank currency: the default)."""
    return {
        "order_number": clean_text(form.order_number),
        "status": form.status,
        "currency": (clean_text(form.currency) or "").upper() or None,
    }


def _validate_header(session: Any, form: OrderInput, errors: Errors, order_id: int | None = None) -> None:
    values = _header(form)
    errors.update(rules.check_values(rules.ORDER, values))
    number = values["order_number"]
    if number and "order_number" not in errors:
        statement = select(Order.id).where(Order.order_number == number)
        if order_id is not None:
            statement = statement.where(Order.id != order_id)
        if session.scalar(statement.limit(1)) is not None:
            errors["order_number"] = ("sales.order_number_taken", {"number": number})
    if form.opportunity_id is not None:
        deal = session.get(Opportunity, form.opportunity_id)
        if deal is None or deal.customer_id != form.customer_id:
            errors["opportunity_id"] = ("validation.choice", {})


def _ordered_at(value: dt.datetime | dt.date | None) -> dt.datetime:
    if value is None:
        return utcnow()
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(12, 0))


def next_order_number(session: Any, when: dt.datetime) -> str:
    """``SO-YYYYMM-NNNNN``: the next free number of the month (unique per tenant)."""
    prefix = f"SO-{when:%Y%m}-"
    last = session.scalar(select(func.max(Order.order_number)).where(Order.order_number.startswith(prefix)))
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last and last.rsplit("-", 1)[1].isdigit() else 1
    return f"{prefix}{sequence:05d}"


def create_order(db: Database, actor: Actor, form: OrderInput) -> int:
    """Book an order for a visible customer; the total is computed from the lines."""
    with db.transaction(actor) as session:
        customer = session.get(Customer, form.customer_id)
        if customer is None or customer.archived_at is not None:
            raise NotFound("customer")
        errors: Errors = {}
        _validate_header(session, form, errors)
        lines = _build_lines(session, form, errors)
        external_id = checked_external_id(session, actor, Order, form.external_id, errors)
        if errors:
            raise ValidationFailed(errors)
        ordered_at = _ordered_at(form.ordered_at)
        header = _header(form)
        currency = header["currency"] or session.scalar(select(Tenant.default_currency)) or "CNY"
        order = Order(
            tenant_id=actor.tenant_id,
            customer_id=customer.id,
            owner_id=customer.owner_id or actor.user_id,
            opportunity_id=form.opportunity_id,
            external_id=external_id,
            order_number=header["order_number"] or next_order_number(session, ordered_at),
            status=form.status,
            ordered_at=ordered_at,
            currency=currency,
            total_amount=order_total([(quantity, price) for _, quantity, price in lines]),
        )
        session.add(order)
        session.flush()
        _add_lines(session, actor, order, lines)
        session.flush()
        refresh_lifecycle(session, actor.tenant_id, [order.customer_id])
        orders_changed(session, actor.tenant_id, [order.customer_id])
        return order.id


def update_order(db: Database, actor: Actor, order_id: int, form: OrderInput, *, expected_version: int) -> int:
    """Save an edit (header and the full set of lines); raises StaleRecord if someone saved since."""

    def work() -> int:
        with db.transaction(actor) as session:
            order = session.get(Order, order_id)
            if order is None or order.archived_at is not None:
                raise NotFound("order")
            check_version(session, order, "order", expected_version)
            form.customer_id = order.customer_id
            errors: Errors = {}
            _validate_header(session, form, errors, order_id=order_id)
            lines = _build_lines(session, form, errors)
            if form.external_id is not None:
                order.external_id = checked_external_id(session, actor, Order, form.external_id, errors,
                                                        exclude_id=order_id)
            if errors:
                raise ValidationFailed(errors)
            for old_line in list(order.lines):
                session.delete(old_line)
            session.flush()
            header = _header(form)
            if header["order_number"]:
                order.order_number = header["order_number"]
            order.status = form.status
            if form.ordered_at is not None:
                order.ordered_at = _ordered_at(form.ordered_at)
            if header["currency"]:
                order.currency = header["currency"]
            order.opportunity_id = form.opportunity_id
            order.total_amount = order_total([(quantity, price) for _, quantity, price in lines])
            _add_lines(session, actor, order, lines)
            session.flush()
            refresh_lifecycle(session, actor.tenant_id, [order.customer_id])
            orders_changed(session, actor.tenant_id, [order.customer_id])
            return order.version

    return translate_stale(db, actor, "order", order_id, work)


def archive_order(db: Database, actor: Actor, order_id: int, *, expected_version: int) -> None:
    """Take an order out of the lists; it stays in history."""

    def work() -> None:
        with db.transaction(actor) as session:
            order = session.get(Order, order_id)
            if order is None:
                raise NotFound("order")
            check_version(session, order, "order", expected_version)
            if order.archived_at is None:
                order.archived_at = utcnow()
                session.flush()
                refresh_lifecycle(session, actor.tenant_id, [order.customer_id])
                orders_changed(session, actor.tenant_id, [order.customer_id])

    translate_stale(db, actor, "order", order_id, work)


def _add_lines(session: Any, actor: Actor, order: Order, lines: list[tuple[Product, Decimal, Decimal]]) -> None:
    for product, quantity, price in lines:
        session.add(
            OrderLine(tenant_id=actor.tenant_id, order_id=order.id, product_id=product.id, quantity=quantity,
                      unit_price=price)
        )
