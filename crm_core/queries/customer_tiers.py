"""Read side of customer tiers: the tiers with how many customers each holds, and the admins' pins
(the SLA settings page and the API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Customer
from crm_core.models.service_tiers import CustomerTier, CustomerTierPin, CustomerTierStanding

PINS_SHOWN = 200


@dataclass(frozen=True)
class TierRow:
    """A tier, its rule, and the customers it holds (by their orders at the last refresh, and pinned)."""

    id: int
    code: str
    name_en: str
    name_zh: str
    rank: int
    min_order_total: Decimal
    months: int
    version: int
    by_orders: int
    pinned: int

    def name(self, language: str) -> str:
        """The tier's name in ``language`` (zh-CN or English)."""
        return self.name_zh if language == "zh-CN" else self.name_en


def list_tiers(session: Session) -> list[TierRow]:
    """The tenant's tiers, best first, with their customer counts (two grouped queries)."""
    by_orders = dict(session.execute(select(CustomerTierStanding.tier_id, func.count())
                                     .group_by(CustomerTierStanding.tier_id)).all())
    pinned = dict(session.execute(select(CustomerTierPin.tier_id, func.count())
                                  .group_by(CustomerTierPin.tier_id)).all())
    tiers = session.scalars(select(CustomerTier).order_by(CustomerTier.rank.desc(),
                                                          CustomerTier.min_order_total.desc(), CustomerTier.id))
    return [TierRow(tier.id, tier.code, tier.name_en, tier.name_zh, tier.rank, Decimal(tier.min_order_total),
                    tier.months, tier.version, int(by_orders.get(tier.id, 0)), int(pinned.get(tier.id, 0)))
            for tier in tiers]


@dataclass(frozen=True)
class PinRow:
    """An admin's pin: the customer, the tier and its last day (None: for good)."""

    customer_id: int
    customer_name: str
    tier_id: int
    until: dt.date | None


def list_pins(session: Session, *, limit: int = PINS_SHOWN) -> list[PinRow]:
    """The latest pins of visible customers (at most ``limit``)."""
    rows = session.execute(select(CustomerTierPin.customer_id, Customer.name, CustomerTierPin.tier_id,
                                  CustomerTierPin.until)
                           .join(Customer, Customer.id == CustomerTierPin.customer_id)
                           .order_by(CustomerTierPin.updated_at.desc(), CustomerTierPin.id.desc()).limit(limit)).all()
    return [PinRow(customer_id, name, tier_id, until) for customer_id, name, tier_id, until in rows]
