"""Use cases of webhooks (admins): subscribe, change, enable/disable, rotate the secret, ping, replay.

Each opens its transaction as the acting admin; the access layer refuses anyone else and
audits every ORM write. Deliveries made by a ping or a replay are written with Core INSERTs
(a replay of a time range may make thousands) and audited by one explicit audit event each.
The signing secret is returned once, by :func:`create_subscription` and :func:`rotate_secret`.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.jobs.service import ensure_schedule
from crm_core.models import AuditEvent, utcnow
from crm_core.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSettings,
    WebhookSubscription,
)
from crm_core.rules.webhooks import PING, SECRET_GRACE, url_problem, valid_event_types
from crm_core.services.editing import stale_record_error
from crm_core.webhooks.dispatch import cancel_pending
from crm_core.webhooks.jobs import KIND as DISPATCH_KIND
from crm_core.webhooks.outbox import add_deliveries, add_event, mark_for_dispatch
from crm_core.webhooks.payloads import event_body
from crm_core.webhooks.sending import TargetRefused, vetted_addresses

DESCRIPTION_MAX = 200
REPLAY_MAX = 50_000


@dataclass(frozen=True)
class SubscriptionForm:
    """What an admin enters for a subscription."""

    url: str
    event_types: list[str] = field(default_factory=list)
    description: str = ""


def new_secret() -> str:
    """A signing secret in Standard Webhooks' format: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise AccessDenied("only an admin manages webhooks")


def allows_private_targets(session: Session) -> bool:
    """The tenant's setting (read in ``session``'s scope): may targets be private addresses?"""
    return bool(session.scalar(select(WebhookSettings.allow_private_targets).limit(1)))


def target_url_problem(session: Session, url: str) -> str | None:
    """The catalog key of what is wrong with an address the server will POST to (a webhook, a team's robot):
    not an http(s) URL, or one that resolves to a private address while the tenant does not allow those."""
    problem = url_problem(url)
    if problem is None:
        parts = urlsplit(url)
        try:
            vetted_addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                             allow_private=allows_private_targets(session))
        except TargetRefused:
            problem = "webhooks.error.url_private"
    return problem


def _checked(session: Session, form: SubscriptionForm) -> tuple[str, list[str], str]:
    url = form.url.strip()
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    problem = target_url_problem(session, url)
    if problem:
        errors["url"] = (problem, {})
    chosen = list(dict.fromkeys(form.event_types))
    if not chosen:
        errors["event_types"] = ("webhooks.error.no_event_types", {})
    elif len(valid_event_types(chosen)) != len(chosen):
        errors["event_types"] = ("webhooks.error.unknown_event_type", {})
    description = form.description.strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = ("webhooks.error.description_too_long", {"max": DESCRIPTION_MAX})
    if errors:
        raise ValidationFailed(errors)  # type: ignore[arg-type]
    return url, chosen, description


def create_subscription(db: Database, actor: Actor, form: SubscriptionForm) -> tuple[int, str]:
    """Subscribe ``form.url`` to ``form.event_types``; returns the subscription's id and its secret (shown once)."""
    _require_admin(actor)
    secret = new_secret()
    with db.transaction(actor) as session:
        url, event_types, description = _checked(session, form)
        subscription = WebhookSubscription(url=url, event_types=event_types, description=description, enabled=True,
                                           signing_secret=secret, created_by_id=actor.user_id)
        session.add(subscription)
        ensure_schedule(session, actor.tenant_id, DISPATCH_KIND)
        session.flush()
        return subscription.id, secret


def _subscription(session: Session, subscription_id: int, version: int | None = None) -> WebhookSubscription:
    subscription = session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.id == subscription_id)
    ).one_or_none()
    if subscription is None:
        raise NotFound("webhook_subscription", id=subscription_id)
    if version is not None and subscription.version != version:
        raise stale_record_error(session, "webhook_subscription", subscription_id)  # names who, from the audit
    return subscription


def update_subscription(db: Database, actor: Actor, subscription_id: int, form: SubscriptionForm, *,
                        version: int) -> None:
    """Change a subscription's URL, event types and description."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        subscription = _subscription(session, subscription_id, version)
        subscription.url, subscription.event_types, subscription.description = _checked(session, form)


def set_enabled(db: Database, actor: Actor, subscription_id: int, enabled: bool, *, version: int | None = None) -> None:
    """Enable (clearing a disable for failures: the admin has been told) or disable a subscription.

    Disabling cancels its deliveries that have not gone out; a replay sends them later.
    """
    _require_admin(actor)
    with db.transaction(actor) as session:
        subscription = _subscription(session, subscription_id, version)
        if subscription.enabled == enabled:
            return
        subscription.enabled = enabled
        if enabled:
            subscription.disabled_at = None
            subscription.disabled_reason = None
            subscription.failing_since = None
        else:
            subscription.disabled_at = utcnow()
            subscription.disabled_reason = "admin"
            cancel_pending(session, actor.tenant_id, subscription_id)


def rotate_secret(db: Database, actor: Actor, subscription_id: int, *, now: dt.datetime | None = None) -> str:
    """A new signing secret (returned once); the old one keeps signing too for SECRET_GRACE."""
    _require_admin(actor)
    now = now or utcnow()
    secret = new_secret()
    with db.transaction(actor) as session:
        subscription = _subscription(session, subscription_id)
        subscription.previous_signing_secret = subscription.signing_secret
        subscription.previous_secret_expires_at = now + SECRET_GRACE
        subscription.signing_secret = secret
    return secret


def _audit(session: Session, actor: Actor, action: str, subscription_id: int, changes: dict[str, list[object]]) -> None:
    session.add(AuditEvent(tenant_id=actor.tenant_id, actor_id=actor.user_id, action=action,
                           entity="webhook_subscription", entity_id=subscription_id, changes=changes))


def send_ping(db: Database, actor: Actor, subscription_id: int, *, now: dt.datetime | None = None) -> int:
    """Queue a ``webhook.ping`` event to one subscription (enabled or not); returns the delivery's id."""
    _require_admin(actor)
    now = now or utcnow()
    with db.transaction(actor) as session:
        subscription = _subscription(session, subscription_id)
        body = event_body(PING, now, tenant_id=actor.tenant_id, entity=None, record_id=None,
                          record={"subscription_id": subscription.id, "url": subscription.url})
        delivery_ids = add_event(session.connection(), actor.tenant_id, PING, body, [subscription.id],
                                 entity=None, entity_id=None, now=now)
        _audit(session, actor, "ping", subscription.id, {"delivery_id": [None, delivery_ids[0]]})
        mark_for_dispatch(session, actor.tenant_id)
        return delivery_ids[0]


def replay_delivery(db: Database, actor: Actor, delivery_id: int, *, now: dt.datetime | None = None) -> int:
    """Send one delivery's event again to its subscription, as a new delivery (a new ``webhook-id``)."""
    _require_admin(actor)
    now = now or utcnow()
    with db.transaction(actor) as session:
        delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)).one_or_none()
        if delivery is None:
            raise NotFound("webhook_delivery", id=delivery_id)
        new_ids = add_deliveries(session.connection(), actor.tenant_id, delivery.event_id, delivery.event_type,
                                 [delivery.subscription_id], now=now, replay_of={delivery.subscription_id: delivery.id})
        _audit(session, actor, "replay", delivery.subscription_id,
               {"replayed": [delivery.id, new_ids[0]]})
        mark_for_dispatch(session, actor.tenant_id)
        return new_ids[0]


def replay_range(
    db: Database, actor: Actor, subscription_id: int, since: dt.datetime, until: dt.datetime, *,
    statuses: Iterable[str] | None = None, now: dt.datetime | None = None,
) -> int:
    """Send again every event delivered to a subscription between ``since`` and ``until`` (optionally only
    deliveries in ``statuses``); returns how many deliveries were queued."""
    _require_admin(actor)
    if until < since:
        raise ValidationFailed({"until": ("webhooks.error.range_reversed", {})})
    now = now or utcnow()
    wanted = list(statuses or [])
    with db.transaction(actor) as session:
        subscription = _subscription(session, subscription_id)
        query = (
            select(WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.event_type)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.created_at >= since,
                   WebhookDelivery.created_at <= until, WebhookDelivery.replay_of_id.is_(None))
            .order_by(WebhookDelivery.id)
            .limit(REPLAY_MAX + 1)
        )
        if wanted:
            query = query.where(WebhookDelivery.status.in_(wanted))
        rows = session.execute(query).all()
        if len(rows) > REPLAY_MAX:
            raise ValidationFailed({"since": ("webhooks.error.replay_too_many", {"max": REPLAY_MAX})})
        connection = session.connection()
        for row in rows:
            add_deliveries(connection, actor.tenant_id, row.event_id, row.event_type, [subscription.id], now=now,
                           replay_of={subscription.id: row.id})
        _audit(session, actor, "replay", subscription.id,
               {"range": [since.isoformat(), until.isoformat()], "deliveries": [None, len(rows)]})
        if rows:
            mark_for_dispatch(session, actor.tenant_id)
        return len(rows)


def set_allow_private_targets(db: Database, actor: Actor, allow: bool) -> None:
    """The tenant's setting: may webhook targets be private, loopback or link-local addresses?"""
    _require_admin(actor)
    with db.transaction(actor) as session:
        settings = session.scalars(select(WebhookSettings)).one_or_none()
        if settings is None:
            session.add(WebhookSettings(allow_private_targets=allow))
        else:
            settings.allow_private_targets = allow


__all__ = [
    "DeliveryStatus", "SubscriptionForm", "create_subscription", "new_secret", "replay_delivery", "replay_range",
    "rotate_secret", "send_ping", "set_allow_private_targets", "set_enabled", "update_subscription",
]
