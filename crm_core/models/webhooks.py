"""Tables of the webhooks: subscriptions, the outbox of events, deliveries and their attempts.

Pattern: a transactional outbox. The change and its ``webhook_events`` row (plus one
``webhook_deliveries`` row per subscription that wants it) are written in the same
transaction (``crm_core.webhooks.outbox``, called from the audit hook), so a rolled-back
change never fires and a committed one always does. Workers claim due deliveries with a
conditional UPDATE (``crm_core.webhooks.dispatch``) and log each attempt.

A subscription's signing secret must be readable to sign (HMAC), so it is stored as is; it is
never audited, never shown after creation or rotation, and never put in a payload
(docs/decisions/0016-webhooks-outbox.md).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class DeliveryStatus(enum.StrEnum):
    """pending (waiting for its next attempt) → succeeded, or failed after the last retry."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # its subscription was deleted or disabled before it went out


class WebhookSubscription(TenantScoped, Versioned, Base):
    """An admin's subscription: POST the events of ``event_types`` to ``url``, signed with its secret."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index(None, "tenant_id", "enabled"),)

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    signing_secret: Mapped[str] = mapped_column(String(100))
    # after a rotation the old secret signs too, until it expires (receivers switch over meanwhile)
    previous_signing_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    failing_since: Mapped[dt.datetime | None] = mapped_column(DateTime)  # first failure since the last success
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(40))  # "failures" | "admin"
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class WebhookSettings(TenantScoped, Versioned, Base):
    """A tenant's webhook settings: whether targets on private addresses are allowed."""

    __tablename__ = "webhook_settings"
    __table_args__ = (Index(None, "tenant_id", unique=True),)

    allow_private_targets: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookEvent(TenantScoped, Base):
    """One event of the outbox: its type and the exact JSON body every delivery of it sends."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index(None, "tenant_id", "occurred_at"),)

    event_type: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str | None] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)


class WebhookDelivery(TenantScoped, Base):
    """One event to one subscription; ``webhook_id`` is what the receiver deduplicates on."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "webhook_id", unique=True),
        Index(None, "tenant_id", "status", "next_attempt_at"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "tenant_id", "subscription_id", "created_at"),
    )

    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"))
    webhook_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # a worker's claim: until lease_until no other worker takes it; a killed worker's claim lapses
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    replay_of_id: Mapped[int | None] = mapped_column(Integer)


class WebhookAttempt(TenantScoped, Base):
    """One HTTP attempt of a delivery: the request, the response (both truncated), status and latency."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "attempt"),)

    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    request_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_body: Mapped[str] = mapped_column(Text, default="")
    response_body: Mapped[str] = mapped_column(Text, default="")
