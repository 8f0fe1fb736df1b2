"""Product use cases: the catalogue that order lines draw from (managers and admins write it).

A valid product is what :data:`crm_core.rules.fields.PRODUCT` says, as for an import."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Product, utcnow
from crm_core.rules import fields as rules
from crm_core.rules.fields import clean_text
from crm_core.services.editing import check_version, checked_external_id, translate_stale

Errors = dict[str, tuple[str, dict[str, Any]]]
DEFAULT_CURRENCY = "CNY"  # a blank currency, as in an import


@dataclass
class ProductInput:
    """The fields of the product form, as typed."""

    sku: str  # blank: no SKU (optional; unique per tenant when given)
    name: str
    unit_price: Decimal | str | int | float = Decimal("0")
    currency: str = "CNY"
    is_active: bool = True
    external_id: str | None = None  # the old system's ID (unique per tenant); None: left as it is


def parse_money(
    raw: Decimal | str | int | float | None,
    field_name: str,
    errors: Errors,
    rule: rules.Field = rules.PRODUCT["unit_price"],
) -> Decimal:
    """An amount read as an import reads it (``1,200.50``, ``１２００``, ``¥30``) and checked by ``rule``.

    Blank is 0. A problem goes to ``errors[field_name]`` and the amount returned is then 0.
    """
    value, problem = rules.read_decimal(rule, raw)
    if problem is not None:
        errors[field_name] = problem
        return Decimal("0.00")
    return (value or Decimal(0)).quantize(Decimal("0.01"))


def _values(form: ProductInput) -> dict[str, Any]:
    """The form's fields in their stored form, as the rules see them."""
    return {
        "sku": clean_text(form.sku),
        "name": clean_text(form.name),
        "currency": (clean_text(form.currency) or DEFAULT_CURRENCY).upper(),
    }


def _validate(form: ProductInput) -> tuple[Errors, Decimal]:
    errors = rules.check_values(rules.PRODUCT, _values(form))
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
        sku = _values(form)["sku"]
        if sku and "sku" not in errors and _sku_taken(session, sku):
            errors["sku"] = ("sales.sku_taken", {"sku": sku})
        external_id = checked_external_id(session, actor, Product, form.external_id, errors)
        if errors:
            raise ValidationFailed(errors)
        product = Product(tenant_id=actor.tenant_id, external_id=external_id)
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
            sku = _values(form)["sku"]
            if sku and "sku" not in errors and _sku_taken(session, sku, exclude_id=product_id):
                errors["sku"] = ("sales.sku_taken", {"sku": sku})
            if form.external_id is not None:
                product.external_id = checked_external_id(session, actor, Product, form.external_id, errors,
                                                          exclude_id=product_id)
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
    values = _values(form)
    product.sku = values["sku"]
    product.name = values["name"]
    product.unit_price = price
    product.currency = values["currency"]
    product.is_active = form.is_active
