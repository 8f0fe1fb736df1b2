"""The public customer pool (公海): its rules per team and the ledger of every return and claim.

A customer in the pool is an unowned customer of a team (``owner_id`` NULL): the team's reps
see it (``access.py``) and may claim it under the rule's caps. ``pool_rules`` holds, per team
(or for the whole tenant when ``team_id`` is NULL), when an owned customer returns to the pool
and what claiming costs; ``pool_events`` is the ledger the caps, the cooldown, the reminders
and the 360's pool history are read from. See docs/decisions/0020-customer-pool.md.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned, utcnow


class PoolEventKind:
    """What happened to a customer's place in the pool."""

    RETURNED = "returned"  # the nightly rule took it from its owner
    RELEASED = "released"  # its owner (or a manager) gave it back
    CLAIMED = "claimed"  # a rep took it, within the caps
    ASSIGNED = "assigned"  # a manager or admin gave it to a rep, beyond the caps
    REMINDED = "reminded"  # its owner was told it will return soon (a follow-up task)
    LEFT_OWNER = (RETURNED, RELEASED)  # the kinds that start the previous owner's cooldown


class PoolReturnReason:
    IDLE = "idle"  # no follow-up activity for idle_days
    NO_DEAL = "no_deal"  # no open deal for no_deal_days


class PoolRule(TenantScoped, Versioned, Base):
    """When a team's owned customers return to its pool, and what claiming from it costs.

    ``team_id`` NULL is the tenant's default, used by teams without a rule of their own. A
    customer returns after ``idle_days`` without a follow-up activity (counted from its last
    contact or from when its owner got it, whichever is later), or — when ``no_deal_days`` is set —
    after that many days without an open or recently changed deal; never while it has an open
    deal in one of ``protected_stage_ids``. Its owner is reminded ``reminder_days`` before.
    """

    __tablename__ = "pool_rules"
    __table_args__ = (Index(None, "tenant_id", "team_id"),)

    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    idle_days: Mapped[int] = mapped_column(Integer, default=30)
    no_deal_days: Mapped[int | None] = mapped_column(Integer)
    protected_stage_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    reminder_days: Mapped[int] = mapped_column(Integer, default=3)
    daily_claim_cap: Mapped[int] = mapped_column(Integer, default=10)
    held_cap: Mapped[int | None] = mapped_column(Integer)
    cooldown_days: Mapped[int] = mapped_column(Integer, default=30)


class PoolEvent(TenantScoped, Base):
    """One entry of the pool's ledger (append-only, like the audit trail)."""

    __tablename__ = "pool_events"
    __table_args__ = (
        Index(None, "tenant_id", "customer_id", "occurred_at"),
        # today's claims of a rep (the daily cap)
        Index(None, "tenant_id", "user_id", "kind", "occurred_at"),
        # a previous owner's cooldown on one customer
        Index("ix_pool_events_cooldown", "tenant_id", "previous_owner_id", "customer_id", "occurred_at"),
        Index(None, "tenant_id", "run_key"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    # the owner after the event (claimed, assigned; the reminded owner), NULL when it went to the pool
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    previous_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL: the nightly rule
    reason: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    run_key: Mapped[str | None] = mapped_column(String(32))  # the return run that wrote it
