"""Tables of the pipeline area (see docs/ARCHITECTURE.md); every business table is TenantScoped.

``opportunity_stage_changes`` is the stage history of every deal: one row per move, written
in the same transaction as the move by :mod:`crm_core.services.deals`. The funnel uses it to
know at which stage a lost deal dropped out (see :mod:`crm_core.queries.reports`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Index, Integer, Numeric
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, Money, Opportunity, Order, TenantScoped, utcnow


class OpportunityStageChange(TenantScoped, Base):
    """A deal moved from one stage to another (``from_stage_id`` is NULL when it was created)."""

    __tablename__ = "opportunity_stage_changes"
    __table_args__ = (
        Index(None, "tenant_id", "opportunity_id", "changed_at"),
        Index(None, "tenant_id", "to_stage_id", "opportunity_id"),
    )

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id"))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OpportunityLine(TenantScoped, Base):
    """One product a deal sells (migration 0038, decision 0045): when a deal has lines its amount is their sum.

    ``line_total`` is quantity × unit price rounded to cents half-up, stored so reports and the amount
    read one column (:func:`crm_core.services.deal_lines.lines_amount`).
    """

    __tablename__ = "opportunity_lines"
    __table_args__ = (
        Index(None, "tenant_id", "opportunity_id", "position"),
        Index(None, "tenant_id", "product_id"),
    )

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    line_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    position: Mapped[int] = mapped_column(Integer, default=1)


# Covering indexes for the board, funnel and dashboard aggregates (migration 0008): each lets
# the database answer a sum over many deals from the index alone, without visiting the table.
# Named explicitly: the naming convention would exceed MariaDB's and PostgreSQL's 64/63 chars.
Index(
    "ix_opportunities_board_cover",
    Opportunity.tenant_id, Opportunity.pipeline_id, Opportunity.stage_id, Opportunity.archived_at,
    Opportunity.amount, Opportunity.owner_id, Opportunity.probability, Opportunity.created_at, Opportunity.closed_at,
    Opportunity.lost_from_stage_id,
)
Index(
    "ix_opportunities_closing_cover",
    Opportunity.tenant_id, Opportunity.expected_close_date, Opportunity.stage_id, Opportunity.archived_at,
    Opportunity.owner_id, Opportunity.amount,
)
Index(
    "ix_opportunities_closed_cover",
    Opportunity.tenant_id, Opportunity.closed_at, Opportunity.stage_id, Opportunity.archived_at,
    Opportunity.owner_id, Opportunity.amount,
)
Index(
    "ix_orders_revenue_cover",
    Order.tenant_id, Order.ordered_at, Order.status, Order.archived_at, Order.customer_owner_id,
    Order.customer_team_id, Order.total_amount,
)
Index(  # a rep's or manager's board, funnel and sums (migration 0009)
    "ix_opportunities_owner_cover",
    Opportunity.tenant_id, Opportunity.owner_id, Opportunity.pipeline_id, Opportunity.stage_id,
    Opportunity.archived_at, Opportunity.amount, Opportunity.probability, Opportunity.created_at,
    Opportunity.closed_at, Opportunity.lost_from_stage_id,
)
