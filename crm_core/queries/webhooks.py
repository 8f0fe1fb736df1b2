"""Read side of webhooks: subscriptions (never their secrets), notices, the delivery log and its attempts.

Which rows a session sees is the access layer's rule (its tenant's); the Webhooks page is
for administrators.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSettings,
    WebhookSubscription,
)
from crm_core.queries.paging import Page

SUBSCRIPTIONS_LIMIT = 500


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as the page lists it, with its deliveries counted by status."""

    id: int
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    version: int
    created_at: dt.datetime
    failing_since: dt.datetime | None
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: dt.datetime | None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryRow:
    """One line of the delivery log."""

    id: int
    webhook_id: str
    event_type: str
    status: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    replay_of_id: int | None


@dataclass(frozen=True)
class AttemptRow:
    """One HTTP attempt: request and response (truncated), status, latency."""

    attempt: int
    attempted_at: dt.datetime
    status_code: int | None
    latency_ms: int | None
    error: str | None
    request_headers: dict[str, str]
    request_body: str
    response_body: str


@dataclass(frozen=True)
class DeliveryFilters:
    """The delivery log's filters (all optional)."""

    status: str | None = None
    event_type: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def list_subscriptions(session: Session) -> list[SubscriptionRow]:
    """The tenant's subscriptions, newest first, with delivery counts by status (one GROUP BY)."""
    subscriptions = session.scalars(
        select(WebhookSubscription).order_by(WebhookSubscription.id.desc()).limit(SUBSCRIPTIONS_LIMIT)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for subscription_id, status, number in session.execute(
        select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count())
        .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status)
    ):
        counts.setdefault(subscription_id, {})[status] = int(number)
    return [
        SubscriptionRow(s.id, s.url, s.description, list(s.event_types or []), s.enabled, s.version, s.created_at,
                        s.failing_since, s.disabled_at, s.disabled_reason, s.previous_secret_expires_at,
                        counts.get(s.id, {}))
        for s in subscriptions
    ]


def disabled_for_failures(session: Session) -> list[SubscriptionRow]:
    """The notices the Webhooks page shows every admin: endpoints the system disabled after failing."""
    return [row for row in list_subscriptions(session) if not row.enabled and row.disabled_reason == "failures"]


def list_deliveries(
    session: Session, subscription_id: int, *, filters: DeliveryFilters | None = None, page: int = 1,
    per_page: int = 50,
) -> Page[DeliveryRow]:
    """One page of a subscription's delivery log, newest first (paged in SQL)."""
    filters = filters or DeliveryFilters()
    query = select(
        WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.event_type, WebhookDelivery.status,
        WebhookDelivery.attempts, WebhookDelivery.created_at, WebhookDelivery.next_attempt_at,
        WebhookDelivery.delivered_at, WebhookDelivery.last_status_code, WebhookDelivery.last_latency_ms,
        WebhookDelivery.last_error, WebhookDelivery.replay_of_id,
    ).where(WebhookDelivery.subscription_id == subscription_id)
    if filters.status:
        query = query.where(WebhookDelivery.status == filters.status)
    if filters.event_type:
        query = query.where(WebhookDelivery.event_type == filters.event_type)
    if filters.since:
        query = query.where(WebhookDelivery.created_at >= filters.since)
    if filters.until:
        query = query.where(WebhookDelivery.created_at <= filters.until)
    page = max(1, page)
    rows = session.execute(
        query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .offset((page - 1) * per_page).limit(per_page + 1)
    ).all()
    items = [DeliveryRow(**row._asdict()) for row in rows[:per_page]]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


def delivery_payload(session: Session, delivery_id: int) -> str | None:
    """The JSON body a delivery sends (None when the session cannot see it)."""
    return session.scalar(
        select(WebhookEvent.payload).join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
        .where(WebhookDelivery.id == delivery_id)
    )


def delivery_attempts(session: Session, delivery_id: int) -> list[AttemptRow]:
    """Every attempt of a delivery, first first."""
    rows = session.execute(
        select(WebhookAttempt.attempt, WebhookAttempt.attempted_at, WebhookAttempt.status_code,
               WebhookAttempt.latency_ms, WebhookAttempt.error, WebhookAttempt.request_headers,
               WebhookAttempt.request_body, WebhookAttempt.response_body)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.attempt)
    ).all()
    return [AttemptRow(**row._asdict()) for row in rows]


def allow_private_targets(session: Session) -> bool:
    """The tenant's setting for private, loopback and link-local targets (default: refused)."""
    return bool(session.scalar(select(WebhookSettings.allow_private_targets).limit(1)))
