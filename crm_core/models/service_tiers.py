"""Tables of customer tiers for SLA entitlements (issue 13): the tiers a tenant defines, an admin's pin
of a tier on a customer, each customer's standing as the last refresh computed it from their orders,
and the tier a case was opened under (with the reason, for its SLA panel).

A customer qualifies for the best-ranked tier whose threshold their confirmed and fulfilled orders
over the tier's last ``months`` reach (:mod:`crm_core.rules.customer_tiers`); a pin in force wins.
``customer_tier_standings`` is brought up to date per tenant by two set-based statements
(:func:`crm_core.services.customer_tiers.refresh_customer_tiers`); a customer below every threshold
has no row (the default policies apply).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, Money, TenantScoped, Versioned, utcnow


class CustomerTier(TenantScoped, Versioned, Base):
    """A tier of customers (e.g. gold) and its rule: orders over the last ``months`` reaching ``min_order_total``."""

    __tablename__ = "customer_tiers"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(120))
    name_zh: Mapped[str] = mapped_column(String(120))
    rank: Mapped[int] = mapped_column(Integer, default=1)  # higher is better: the best tier reached wins
    min_order_total: Mapped[Decimal] = mapped_column(Money)
    months: Mapped[int] = mapped_column(Integer, default=12)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # the last refresh: every standing held then


class CustomerTierPin(TenantScoped, Versioned, Base):
    """An admin's explicit tier for one customer (an entitlement), in force until ``until`` (inclusive) or for good."""

    __tablename__ = "customer_tier_pins"
    __table_args__ = (UniqueConstraint("customer_id"), Index(None, "tenant_id", "tier_id"))

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    tier_id: Mapped[int] = mapped_column(ForeignKey("customer_tiers.id"))
    until: Mapped[dt.date | None] = mapped_column(Date)


class CustomerTierStanding(TenantScoped, Base):
    """The tier a customer's orders reached at the last refresh, and the total that reached it.

    A refresh rewrites only the standings that changed: ``computed_at`` is when this one was written (it has
    held since); the tier's ``refreshed_at`` is when all were last checked.
    """

    __tablename__ = "customer_tier_standings"
    __table_args__ = (UniqueConstraint("customer_id"), Index(None, "tenant_id", "tier_id"))

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    tier_id: Mapped[int] = mapped_column(ForeignKey("customer_tiers.id"))
    order_total: Mapped[Decimal] = mapped_column(Money)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CaseEntitlement(TenantScoped, Base):
    """The tier a case was opened under and why (``basis``: orders, pinned or default), kept for its SLA panel."""

    __tablename__ = "case_entitlements"
    __table_args__ = (UniqueConstraint("case_id"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("customer_tiers.id"))
    basis: Mapped[str] = mapped_column(String(8))
    order_total: Mapped[Decimal | None] = mapped_column(Money)
    threshold: Mapped[Decimal | None] = mapped_column(Money)
    months: Mapped[int | None] = mapped_column(Integer)
    pinned_until: Mapped[dt.date | None] = mapped_column(Date)
    as_of: Mapped[dt.datetime | None] = mapped_column(DateTime)  # when the standing was computed
