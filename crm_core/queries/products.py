"""Read side for the product catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm_core.models import Product


@dataclass(frozen=True)
class ProductRow:
    """A product as the catalogue and the order form show it."""

    id: int
    sku: str | None  # optional (migration 0035)
    name: str
    unit_price: Decimal
    currency: str
    is_active: bool
    version: int


def list_products(
    session: Session, *, search: str = "", active_only: bool = False, limit: int = 500
) -> list[ProductRow]:
    """Unarchived products by name, optionally only active ones or those matching ``search`` (SKU or name)."""
    statement = select(Product).where(Product.archived_at.is_(None)).order_by(Product.name, Product.id).limit(limit)
    if active_only:
        statement = statement.where(Product.is_active.is_(True))
    if search.strip():
        text = search.strip()
        statement = statement.where(
            or_(Product.name.contains(text, autoescape=True), Product.sku.contains(text, autoescape=True))
        )
    return [
        ProductRow(p.id, p.sku, p.name, p.unit_price, p.currency, p.is_active, p.version)
        for p in session.scalars(statement)
    ]


def get_product(session: Session, product_id: int) -> ProductRow | None:
    """One unarchived product."""
    product = session.get(Product, product_id)
    if product is None or product.archived_at is not None:
        return None
    return ProductRow(product.id, product.sku, product.name, product.unit_price, product.currency,
                      product.is_active, product.version)
