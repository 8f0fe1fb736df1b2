"""Product use cases: the catalogue that order lines draw from (managers and admins write it)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Product, utcnow
from crm_core.services.editing import check_version, translate_stale

Errors = dict[str, tuple[str, dict[str, Any]]]
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass
class ProductInput:
    """The fields of the product form, as typed."""

    sku: str
    name: str
    unit_price: Decimal | str | int | float = Decimal("0")
    currency: str = "CNY"
    is_active: bool = True


def parse_money(raw: Decimal | str | int | float, field_name: str, errors: Errors) -> Decimal:
    """A non-negative amount with at most two decimals (``1,200.50`` and ``１２００`` accepted)."""
    try:
        text = str(raw).strip().replace(",", "").replace("，", "")
        value = Decimal(unicodedata.normalize("NFKC", text) or "0")
    except (InvalidOperation, ValueError):
        errors[field_name] = ("validation.number", {})
        return Decimal("0")
    if not value.is_finite():
        errors[field_name] = ("validation.number", {})
        return Decimal("0")
    if value < 0:
        errors[field_name] = ("sales.not_negative", {})
    elif value >= Decimal("1e12"):
        errors[field_name] = ("sales.too_large", {})
    elif value != value.quantize(Decimal("0.01")):
        errors[field_name] = ("sales.two_decimals", {})
    return value.quantize(Decimal("0.01")) if field_name not in errors else Decimal("0")


def _validate(form: ProductInput) -> tuple[Errors, Decimal]:
    errors: Errors = {}
    if not form.sku.strip():
        errors["sku"] = ("validation.required", {})
    elif not _SKU.match(form.sku.strip()):
        errors["sku"] = ("sales.sku_invalid", {})
    if not form.name.strip():
        errors["name"] = ("validation.required", {})
    elif len(form.name.strip()) > 200:
        errors["name"] = ("validation.too_long", {"max": 200})
    if not _CURRENCY.match(form.currency.strip().upper()):
        errors["currency"] = ("sales.currency_invalid", {})
    price = parse_money(form.unit_price, "unit_price", errors)
    return errors, price


def _sku_taken(session: Any, sku: str, exclude_id: int | None = None) -> bool:
    statement = select(Product.id).where(Product.sku == sku)
    if exclude_id is not None:
        statement = statement.where(Product.id != exclude_id)
    return session.scalar(statement.limit(1)) is not None


def create_product(db: Database, actor: Actor, form: ProductInput) -> int:
    """Add a product; raises ValidationFailed (including a taken SKU) or AccessDenied."""
    errors, price = _validate(form)
    with db.transaction(actor) as session:
        if "sku" not in errors and _sku_taken(session, form.sku.strip()):
            errors["sku"] = ("sales.sku_taken", {"sku": form.sku.strip()})
        if errors:
            raise ValidationFailed(errors)
        product = Product(tenant_id=actor.tenant_id)
        _apply(product, form, price)
        session.add(product)
        session.flush()
        return product.id


def update_product(db: Database, actor: Actor, product_id: int, form: ProductInput, *, expected_version: int) -> int:
    """Save an edit made on ``expected_version``; raises StaleRecord if someone saved since."""
    errors, price = _validate(form)

    def work() -> int:
        with db.transaction(actor) as session:
            product = session.get(Product, product_id)
            if product is None or product.archived_at is not None:
                raise NotFound("product")
            check_version(session, product, "product", expected_version)
            if "sku" not in errors and _sku_taken(session, form.sku.strip(), exclude_id=product_id):
                errors["sku"] = ("sales.sku_taken", {"sku": form.sku.strip()})
            if errors:
                raise ValidationFailed(errors)
            _apply(product, form, price)
            session.flush()
            return product.version

    return translate_stale(db, actor, "product", product_id, work)


def archive_product(db: Database, actor: Actor, product_id: int, *, expected_version: int) -> None:
    """Retire a product: it leaves the catalogue and order forms; past orders keep it."""

    def work() -> None:
        with db.transaction(actor) as session:
            product = session.get(Product, product_id)
            if product is None:
                raise NotFound("product")
            check_version(session, product, "product", expected_version)
            if product.archived_at is None:
                product.archived_at = utcnow()
                product.is_active = False

    translate_stale(db, actor, "product", product_id, work)


def _apply(product: Product, form: ProductInput, price: Decimal) -> None:
    product.sku = form.sku.strip()
    product.name = form.name.strip()
    product.unit_price = price
    product.currency = form.currency.strip().upper()
    product.is_active = form.is_active
