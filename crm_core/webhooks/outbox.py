"""The outbox: audited changes become webhook events and deliveries in the SAME transaction.

Called once per flush from the audit hook (``crm_core.access._write_audit``) with the changes
it has just audited. For each change that makes an event type some enabled subscription of
its tenant wants, it inserts one ``webhook_events`` row (the exact JSON body) and one
``webhook_deliveries`` row per such subscription, due at once. Rolled back with the change;
committed with it. Core INSERTs on the flush's own connection: the outbox is derived from
the audit trail, so it is neither access-checked nor audited again.

Without a single enabled subscription in the tenant, the cost is one indexed SELECT per flush
that audited a customer, contact, deal, order, task, case or import run.

When a transaction that wrote deliveries commits, a ``webhook_dispatch`` job is queued for its
tenant (unless one is already waiting), so the first attempt goes out in about a second
instead of at the next minute's tick. Not in the inline mode (no worker) nor on a test's
shared connection.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from crm_core.jobs.after_commit import JobAfterCommit
from crm_core.models import PipelineStage, utcnow
from crm_core.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription
from crm_core.rules.webhooks import OBJECT_NAMES, event_types_for, wants
from crm_core.webhooks.payloads import event_body, public_fields

LOG = logging.getLogger("kestrel.webhooks")

# (the changed object, its audit entity name, action, {field: [old, new]}, tenant id)
AuditedChange = tuple[Any, str, str, dict[str, list[Any]], int]


def new_webhook_id() -> str:
    """A delivery's ``webhook-id``: unique, stable across its retries (receivers deduplicate on it)."""
    return "msg_" + secrets.token_hex(12)


def record_outbox(session: Session, changes: Sequence[AuditedChange]) -> int:
    """Add the events and deliveries of ``changes`` to ``session``'s transaction; returns the deliveries added."""
    relevant = [change for change in changes if change[1] in OBJECT_NAMES]
    if not relevant:
        return 0
    tenant_ids = sorted({change[4] for change in relevant})
    connection = session.connection()
    subscriptions = connection.execute(
        select(WebhookSubscription.tenant_id, WebhookSubscription.id, WebhookSubscription.event_types)
        .where(WebhookSubscription.tenant_id.in_(tenant_ids), WebhookSubscription.enabled.is_(True))
    ).all()
    if not subscriptions:
        return 0
    added = 0
    now = utcnow()
    for obj, entity, action, diff, tenant_id in relevant:
        stage_kind = _new_stage_kind(connection, diff) if entity == "opportunity" else None
        for event_type in event_types_for(entity, action, diff, stage_kind=stage_kind):
            targets = [sub_id for sub_tenant, sub_id, types in subscriptions
                       if sub_tenant == tenant_id and wants(types or [], event_type)]
            if not targets:
                continue
            body = event_body(event_type, now, tenant_id=tenant_id, entity=entity, record_id=obj.id,
                              record=public_fields(obj), changes=diff if action != "create" else None)
            add_event(connection, tenant_id, event_type, body, targets, entity=entity, entity_id=obj.id, now=now)
            added += len(targets)
            mark_for_dispatch(session, tenant_id)
    return added


def record_created(session: Session, model: Any, entity: str, tenant_id: int, ids: Sequence[int]) -> int:
    """The ``<object>.created`` events of records written outside the ORM's flush (an import's bulk insert), as
    :func:`record_outbox` makes them for a form's: in the same transaction, only when an enabled subscription
    of the tenant wants them (the records are read back then, and only then); returns the deliveries added."""
    if entity not in OBJECT_NAMES or not ids:
        return 0
    wanted = f"{OBJECT_NAMES[entity]}.created"
    subscriptions = session.connection().execute(
        select(WebhookSubscription.event_types).where(WebhookSubscription.tenant_id == tenant_id,
                                                      WebhookSubscription.enabled.is_(True))).all()
    if not any(wants(types or [], wanted) for (types,) in subscriptions):
        return 0
    added = 0
    for start in range(0, len(ids), 500):
        records = session.scalars(select(model).where(model.id.in_(ids[start:start + 500])).order_by(model.id)).all()
        added += record_outbox(session, [(record, entity, "create", {}, tenant_id) for record in records])
    return added


_DISPATCH = JobAfterCommit("webhook_dispatch")


def mark_for_dispatch(session: Session, tenant_id: int) -> None:
    """Queue a dispatch for ``tenant_id`` when ``session``'s transaction commits."""
    _DISPATCH.mark(session, tenant_id)


def add_event(
    connection: Any, tenant_id: int, event_type: str, body: str, subscription_ids: Sequence[int], *,
    entity: str | None, entity_id: int | None, now: Any, replay_of: dict[int, int] | None = None,
) -> list[int]:
    """Insert one event and a due delivery of it per subscription (on ``connection``); the deliveries' ids."""
    result = connection.execute(
        insert(WebhookEvent.__table__).values(  # type: ignore[arg-type]
            tenant_id=tenant_id, event_type=event_type, entity=entity, entity_id=entity_id, payload=body,
            occurred_at=now, created_at=now, updated_at=now,
        )
    )
    event_id = result.inserted_primary_key.id  # the key is (tenant_id, id): decision 0057
    return add_deliveries(connection, tenant_id, event_id, event_type, subscription_ids, now=now, replay_of=replay_of)


def add_deliveries(
    connection: Any, tenant_id: int, event_id: int, event_type: str, subscription_ids: Sequence[int], *,
    now: Any, replay_of: dict[int, int] | None = None,
) -> list[int]:
    """A due delivery of event ``event_id`` to each subscription, each with a new ``webhook-id``."""
    rows = [
        {"tenant_id": tenant_id, "subscription_id": sub_id, "event_id": event_id, "webhook_id": new_webhook_id(),
         "event_type": event_type, "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
         "replay_of_id": (replay_of or {}).get(sub_id), "created_at": now, "updated_at": now}
        for sub_id in subscription_ids
    ]
    # the ids come back from the INSERT itself: a look-up by (tenant, webhook-id) was planned on SQLite through
    # a tenant index, reading every delivery the tenant has ever had for each event written
    table = cast(Table, WebhookDelivery.__table__)
    inserted = connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return list(inserted.scalars().all())


def _new_stage_kind(connection: Any, diff: dict[str, list[Any]]) -> str | None:
    stage = diff.get("stage_id")
    if not stage or stage[1] is None:
        return None
    kind = connection.execute(select(PipelineStage.kind).where(PipelineStage.id == stage[1])).scalar()
    return str(kind) if kind is not None else None
