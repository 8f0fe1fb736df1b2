"""How long the delivery log keeps finished deliveries: ``RETENTION`` (30 days, as Svix and Stripe keep theirs).

Each ``webhook_dispatch`` run ends by deleting at most ``BATCH`` of its tenant's deliveries that
finished (succeeded, failed or cancelled) before the cutoff, their attempts, and events no delivery
refers to any more. The every-minute run keeps the tables bounded without a job of its own, and a
batch is small enough never to hold SQLite's write lock for long. Deliveries still pending are never
touched, whatever their age (the endpoint is disabled after 5 days of failures anyway).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, exists, select

from crm_core.db import Database
from crm_core.models.webhooks import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent

RETENTION = dt.timedelta(days=30)
BATCH = 500
FINISHED = (DeliveryStatus.SUCCEEDED.value, DeliveryStatus.FAILED.value, DeliveryStatus.CANCELLED.value)


def prune_history(db: Database, *, tenant_id: int, now: dt.datetime, keep: dt.timedelta = RETENTION,
                  batch: int = BATCH) -> int:
    """Delete up to ``batch`` finished deliveries older than ``keep`` (with attempts and orphaned events)."""
    cutoff = now - keep
    with db.system_transaction("webhooks: retention", tenant_id=tenant_id) as session:
        ids = list(session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.status.in_(FINISHED),
                   WebhookDelivery.created_at < cutoff)
            .order_by(WebhookDelivery.id).limit(batch)
        ))
        if ids:
            session.execute(delete(WebhookAttempt)
                            .where(WebhookAttempt.tenant_id == tenant_id, WebhookAttempt.delivery_id.in_(ids))
                            .execution_options(synchronize_session=False))
            session.execute(delete(WebhookDelivery)
                            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id.in_(ids))
                            .execution_options(synchronize_session=False))
        orphans = list(session.scalars(
            select(WebhookEvent.id)
            .where(WebhookEvent.tenant_id == tenant_id, WebhookEvent.occurred_at < cutoff,
                   ~exists().where(WebhookDelivery.tenant_id == WebhookEvent.tenant_id,
                                   WebhookDelivery.event_id == WebhookEvent.id))
            .order_by(WebhookEvent.id).limit(batch)
        ))
        if orphans:
            session.execute(delete(WebhookEvent)
                            .where(WebhookEvent.tenant_id == tenant_id, WebhookEvent.id.in_(orphans))
                            .execution_options(synchronize_session=False))
    return len(ids)
