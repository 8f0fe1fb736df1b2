"""A deal's product lines (decision 0045): set them as a whole, read them, and the amount they make.

When a deal has lines its ``amount`` is their sum (:func:`lines_amount`, the one function the service
and the import share); a deal without lines keeps the amount typed on it. Each line's total is
quantity × unit price rounded to cents half-up (:func:`crm_core.services.orders.line_total`); a blank
price is the product's list price. Setting the lines is an edit of the deal: the same owner and role
rules, optimistic locking on the deal's version (which the change bumps), every row audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Opportunity, Product, utcnow
from crm_core.models.pipeline import OpportunityLine
from crm_core.rules import fields as rules
from crm_core.services.editing import stale_record_error
from crm_core.services.orders import OrderLineInput, line_total, read_lines

Errors = dict[str, tuple[str, dict[str, Any]]]
DealLineInput = OrderLineInput  # a product, a quantity (blank: 1) and a price (blank: the list price)


@dataclass(frozen=True)
class DealLineRow:
    """One line as shown under its deal."""

    position: int
    product_id: int
    sku: str | None
    product_name: str
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal


def lines_amount(totals: Iterable[Decimal]) -> Decimal:
    """A deal's amount when it has lines: the sum of their (already rounded) line totals."""
    return sum(totals, Decimal("0.00"))


def deal_lines(session: Session, opportunity_ids: list[int]) -> dict[int, list[DealLineRow]]:
    """The lines of each deal (visible ones only: the session's scope applies), in position order."""
    if not opportunity_ids:
        return {}
    grouped: dict[int, list[DealLineRow]] = {}
    rows = session.execute(
        select(OpportunityLine, Product.sku, Product.name)
        .join(Product, Product.id == OpportunityLine.product_id)
        .where(OpportunityLine.opportunity_id.in_(sorted(set(opportunity_ids))))
        .order_by(OpportunityLine.opportunity_id, OpportunityLine.position, OpportunityLine.id)
    )
    for line, sku, name in rows:
        grouped.setdefault(line.opportunity_id, []).append(DealLineRow(
            line.position, line.product_id, sku, name, line.quantity, line.unit_price, line.line_total))
    return grouped


def _build(session: Session, lines: list[DealLineInput], errors: Errors) -> list[tuple[Product, Decimal, Decimal]]:
    built = read_lines(session, lines, errors, inactive_products=True)  # a deal may name a product no longer sold
    if not errors and built and (
            problem := rules.check(rules.OPPORTUNITY["amount"], lines_amount(line_total(q, p) for _, q, p in built))):
        errors["lines"] = problem  # each line fits, their sum does not
    return built


def set_deal_lines(
    db: Database, actor: Actor, opportunity_id: int, lines: list[DealLineInput], *, expected_version: int
) -> int:
    """Replace the deal's lines (an empty list removes them; the amount then stays as it was); returns the
    deal's new version. Raises NotFound, StaleRecord, ValidationFailed or AccessDenied; nothing is written
    unless every line is valid."""

    def work() -> int:
        with db.transaction(actor) as session:
            deal = session.get(Opportunity, opportunity_id)
            if deal is None or deal.archived_at is not None:
                raise NotFound("opportunity")
            if deal.version != expected_version:
                raise stale_record_error(session, "opportunity", opportunity_id)
            errors: Errors = {}
            built = _build(session, lines, errors)
            if errors:
                raise ValidationFailed(errors)
            for old in session.scalars(select(OpportunityLine).where(OpportunityLine.opportunity_id == deal.id)):
                session.delete(old)  # one by one: each removal is audited
            session.flush()
            totals = []
            for position, (product, quantity, price) in enumerate(built, start=1):
                total = line_total(quantity, price)
                totals.append(total)
                session.add(OpportunityLine(tenant_id=actor.tenant_id, opportunity_id=deal.id, product_id=product.id,
                                            quantity=quantity, unit_price=price, line_total=total, position=position))
            if built:
                deal.amount = lines_amount(totals)
                if len(built) == 1 or deal.product_id is None:
                    deal.product_id = built[0][0].id
            deal.updated_at = utcnow()  # the lines are part of the deal: its version moves even when the sum does not
            session.flush()
            return deal.version

    try:
        return work()
    except StaleDataError:  # another writer committed between our read and our UPDATE
        with db.session(actor) as session:
            raise stale_record_error(session, "opportunity", opportunity_id) from None


def refresh_amounts(session: Session, opportunity_ids: Iterable[int]) -> None:
    """Set each deal's amount to the sum of its lines (deals without lines keep theirs): after an import."""
    ids = sorted(set(opportunity_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        totals: dict[int, list[Decimal]] = {}
        for deal_id, total in session.execute(
                select(OpportunityLine.opportunity_id, OpportunityLine.line_total)
                .where(OpportunityLine.opportunity_id.in_(chunk))):
            totals.setdefault(deal_id, []).append(total)
        for deal in session.scalars(select(Opportunity).where(Opportunity.id.in_(chunk))):
            if deal.id in totals:
                deal.amount = lines_amount(totals[deal.id])



