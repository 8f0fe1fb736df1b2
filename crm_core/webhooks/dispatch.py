"""Deliver due webhooks: claim a batch, send each, record each attempt — safe with many workers.

Pattern: claim by conditional UPDATE (as the schedules claim their minute). A claim sets a
``claim_token`` and a lease on deliveries still pending, due and unleased; a second worker's
UPDATE of the same rows matches nothing. Each attempt is recorded in a transaction of its
own, conditional on the claim. A worker killed mid-batch leaves its claimed deliveries
pending; when the lease lapses another worker sends them again with the same ``webhook-id``
— the receiver deduplicates on it (Standard Webhooks), so each event is processed once.
At most the one request in flight at the kill is sent twice.

``now`` is passed in (tests and the benchmark freeze and advance it; the job passes the clock).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from crm_core.db import Database
from crm_core.models import utcnow
from crm_core.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSettings,
    WebhookSubscription,
)
from crm_core.rules.webhooks import is_success, next_attempt_at, should_disable
from crm_core.webhooks.sending import REQUEST_KEEP, TIMEOUT_SECONDS, Answer, post, signature_headers

LOG = logging.getLogger("kestrel.webhooks")
LEASE = dt.timedelta(seconds=120)
BATCH = 50

Sender = Callable[[str, str, dict[str, str], bool, float], Answer]


def http_sender(url: str, body: str, headers: dict[str, str], allow_private: bool, timeout: float) -> Answer:
    """The real sender: an HTTP POST to a vetted address."""
    return post(url, body, headers, allow_private=allow_private, timeout=timeout)


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds: what to send, where, with which secrets."""

    delivery_id: int
    tenant_id: int
    subscription_id: int
    webhook_id: str
    attempts: int
    url: str
    body: str
    secrets: list[str]
    allow_private: bool
    claim_token: str
    endpoint_failing: bool = False  # its subscription had failed since its last success, at the claim


@dataclass
class DispatchReport:
    """What a dispatch run did."""

    attempts: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)


def claim_due(db: Database, *, now: dt.datetime, tenant_id: int | None = None, limit: int = BATCH,
              lease: dt.timedelta = LEASE) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries (of ``tenant_id``, or all) for this worker; returns them."""
    token = secrets.token_hex(16)
    due = [
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
    ]
    if tenant_id is not None:
        due.append(WebhookDelivery.tenant_id == tenant_id)
    with db.system_transaction("webhooks: claim", tenant_id=tenant_id) as session:
        ids = session.scalars(
            select(WebhookDelivery.id).where(*due).order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        ).all()
        if not ids:
            return []
        session.execute(  # ``due`` names the tenant when there is one (the job's, always)
            update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), *due)
            .values(claim_token=token, lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
    mine = [WebhookDelivery.claim_token == token]
    if tenant_id is not None:
        mine.append(WebhookDelivery.tenant_id == tenant_id)
    with db.system_session("webhooks: claimed", tenant_id=tenant_id) as session:
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.tenant_id, WebhookDelivery.subscription_id,
                   WebhookDelivery.webhook_id, WebhookDelivery.attempts, WebhookSubscription.url,
                   WebhookEvent.payload, WebhookSubscription.signing_secret,
                   WebhookSubscription.previous_signing_secret, WebhookSubscription.previous_secret_expires_at,
                   WebhookSubscription.failing_since, WebhookSettings.allow_private_targets)
            # joined on the tenant too: co-located rows, one shard under Citus (decision 0057)
            .join(WebhookEvent, and_(WebhookEvent.id == WebhookDelivery.event_id,
                                     WebhookEvent.tenant_id == WebhookDelivery.tenant_id))
            .join(WebhookSubscription, and_(WebhookSubscription.id == WebhookDelivery.subscription_id,
                                            WebhookSubscription.tenant_id == WebhookDelivery.tenant_id))
            .outerjoin(WebhookSettings, WebhookSettings.tenant_id == WebhookDelivery.tenant_id)
            .where(*mine)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        ).all()
    claimed = []
    for row in rows:
        signing = [row.signing_secret]
        if row.previous_signing_secret and row.previous_secret_expires_at and row.previous_secret_expires_at > now:
            signing.append(row.previous_signing_secret)
        claimed.append(Claimed(row.id, row.tenant_id, row.subscription_id, row.webhook_id, row.attempts, row.url,
                               row.payload, signing, bool(row.allow_private_targets), token,
                               row.failing_since is not None))
    return claimed


def send_claimed(db: Database, delivery: Claimed, *, now: dt.datetime, sender: Sender = http_sender,
                 report: DispatchReport | None = None, timeout: float = TIMEOUT_SECONDS) -> bool:
    """Send one claimed delivery and record the attempt; True when the receiver accepted it."""
    headers = signature_headers(delivery.webhook_id, delivery.body, now, delivery.secrets)
    answer = sender(delivery.url, delivery.body, headers, delivery.allow_private, timeout)
    accepted = record_attempt(db, delivery, answer, headers, now=now, report=report)
    return accepted


_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_RECORD_DELIVERY = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.tenant_id == bindparam("held_tenant"), _DELIVERIES.c.id == bindparam("held_id"),
           _DELIVERIES.c.claim_token == bindparam("held_token"))
    .values(status=bindparam("new_status"), attempts=bindparam("new_attempts"),
            next_attempt_at=bindparam("new_next_attempt_at"), claim_token=None, lease_until=None,
            last_status_code=bindparam("new_status_code"), last_error=bindparam("new_error"),
            last_latency_ms=bindparam("new_latency_ms"), delivered_at=bindparam("new_delivered_at"),
            updated_at=bindparam("new_updated_at"))
)
_INSERT_ATTEMPT = insert(cast(Table, WebhookAttempt.__table__))


def record_attempt(db: Database, delivery: Claimed, answer: Answer, headers: dict[str, str], *,
                   now: dt.datetime, report: DispatchReport | None = None) -> bool:
    """Write the attempt and the delivery's next state, if this worker still holds the claim."""
    report = report if report is not None else DispatchReport()
    attempt = delivery.attempts + 1
    success = is_success(answer.status_code)
    retry_at = None if success else next_attempt_at(attempt, now)
    if success:
        status = DeliveryStatus.SUCCEEDED
    else:
        status = DeliveryStatus.PENDING if retry_at is not None else DeliveryStatus.FAILED
    with db.system_transaction("webhooks: attempt", tenant_id=delivery.tenant_id) as session:
        connection = session.connection()  # Core statements built once: this runs for every attempt
        held = connection.execute(_RECORD_DELIVERY, {
            "held_tenant": delivery.tenant_id, "held_id": delivery.delivery_id, "held_token": delivery.claim_token,
            "new_status": status.value,
            "new_attempts": attempt, "new_next_attempt_at": retry_at, "new_status_code": answer.status_code,
            "new_error": answer.error, "new_latency_ms": answer.latency_ms,
            "new_delivered_at": now if success else None, "new_updated_at": now,
        }).rowcount
        if not held:
            return False
        connection.execute(_INSERT_ATTEMPT, {
            "tenant_id": delivery.tenant_id, "delivery_id": delivery.delivery_id, "attempt": attempt,
            "attempted_at": now, "status_code": answer.status_code, "latency_ms": answer.latency_ms,
            "error": answer.error, "request_headers": headers, "request_body": delivery.body[:REQUEST_KEEP],
            "response_body": answer.body, "created_at": now, "updated_at": now,
        })
        report.attempts += 1
        if success:
            report.succeeded += 1
            if delivery.endpoint_failing:  # only then: clearing it on every success would lock the row each time
                session.execute(
                    update(WebhookSubscription)
                    .where(WebhookSubscription.tenant_id == delivery.tenant_id,
                           WebhookSubscription.id == delivery.subscription_id,
                           WebhookSubscription.failing_since.is_not(None))
                    .values(failing_since=None).execution_options(synchronize_session=False)
                )
        else:
            if retry_at is None:
                report.failed += 1
            else:
                report.retrying += 1
            if _note_failure(session, delivery.tenant_id, delivery.subscription_id, now):
                report.disabled.append(delivery.subscription_id)
    return success


def _note_failure(session: Session, tenant_id: int, subscription_id: int, now: dt.datetime) -> bool:
    """Remember when the endpoint began failing; disable it (audited) after 5 days without a success."""
    session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.tenant_id == tenant_id, WebhookSubscription.id == subscription_id,
               WebhookSubscription.failing_since.is_(None))
        .values(failing_since=now).execution_options(synchronize_session=False)
    )
    subscription = session.scalars(select(WebhookSubscription).where(
        WebhookSubscription.tenant_id == tenant_id, WebhookSubscription.id == subscription_id)).one_or_none()
    if subscription is None or not subscription.enabled or not should_disable(subscription.failing_since, now):
        return False
    subscription.enabled = False  # through the ORM: the audit trail records who (the system) and why
    subscription.disabled_at = now
    subscription.disabled_reason = "failures"
    cancel_pending(session, tenant_id, subscription_id)
    LOG.warning("webhook subscription %s disabled: failing since %s", subscription_id, subscription.failing_since)
    return True


def cancel_pending(session: Session, tenant_id: int, subscription_id: int) -> int:
    """Cancel the deliveries of a disabled subscription that have not gone out (a replay sends them later)."""
    return int(session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.subscription_id == subscription_id,
               WebhookDelivery.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.CANCELLED.value, next_attempt_at=None, claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount)  # type: ignore[attr-defined]


def release(db: Database, deliveries: list[Claimed]) -> None:
    """Give back claimed deliveries this worker will not send (its lease would not cover them)."""
    if not deliveries:
        return
    with db.system_transaction("webhooks: release") as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.tenant_id.in_(sorted({d.tenant_id for d in deliveries})),
                   WebhookDelivery.id.in_([d.delivery_id for d in deliveries]),
                   WebhookDelivery.claim_token == deliveries[0].claim_token)
            .values(claim_token=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


def dispatch_due(db: Database, *, tenant_id: int | None = None, now: dt.datetime | None = None,
                 sender: Sender = http_sender, limit: int = BATCH, lease: dt.timedelta = LEASE,
                 should_stop: Callable[[], bool] | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> DispatchReport:
    """Send every delivery due at ``now`` (of ``tenant_id``, or all), batch by batch, until none is left.

    ``clock`` gives the time of each batch and attempt (default: ``now`` fixed, else the real clock).
    A request starts only while the batch's lease still covers its whole timeout, so no other
    worker can take a delivery this one is sending; the rest of the batch is released.
    """
    current = clock or ((lambda: now) if now is not None else utcnow)  # type: ignore[return-value,assignment]
    timeout = min(TIMEOUT_SECONDS, lease.total_seconds() / 4)
    report = DispatchReport()
    while True:
        claimed_at = current()
        batch = claim_due(db, now=claimed_at, tenant_id=tenant_id, limit=limit, lease=lease)
        if not batch:
            return report
        send_by = claimed_at + lease - dt.timedelta(seconds=2 * timeout)
        for index, delivery in enumerate(batch):
            moment = current()
            if (should_stop is not None and should_stop()) or moment > send_by:
                release(db, batch[index:])
                if moment > send_by:
                    break
                return report
            send_claimed(db, delivery, now=moment, sender=sender, report=report, timeout=timeout)


def next_due_at(db: Database, *, tenant_id: int | None = None, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the earliest pending delivery (of ``tenant_id``, or all) can be sent: due and not held by a
    worker's lease; None when none waits."""
    now = now or utcnow()
    with db.system_session("webhooks: next due", tenant_id=tenant_id) as session:
        pending = [WebhookDelivery.status == DeliveryStatus.PENDING.value]
        if tenant_id is not None:
            pending.append(WebhookDelivery.tenant_id == tenant_id)
        free = session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at))
            .where(*pending, or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now))
        )
        held = session.scalar(
            select(func.min(WebhookDelivery.lease_until)).where(*pending, WebhookDelivery.lease_until >= now)
        )
    candidates = [moment for moment in (free, held) if moment is not None]
    return min(candidates) if candidates else None
