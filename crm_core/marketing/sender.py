"""The marketing outbox (decision 0046). :func:`queue_email` renders one step's email for one member
into a ``marketing_messages`` row in the caller's transaction — once per member, step and cycle —
or records why it cannot go (no address, a missing variable, no public address for the unsubscribe
link). Sending, with the ledger checked again at that moment, is the ``marketing_send`` job's.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.config import public_url
from crm_core.models import Contact, Customer, User, utcnow
from crm_core.models.mail import TenantMailSettings
from crm_core.models.marketing import (
    CampaignStep,
    EmailTemplate,
    MarketingEvent,
    MarketingMessage,
    MarketingSettings,
    MessageStatus,
    TouchKind,
)
from crm_core.models.segments import CampaignMember
from crm_core.rules.consent import normalise_address
from crm_core.rules.email_templates import MissingVariable, TemplateProblem, render
from crm_core.rules.mail import OUR_MESSAGE_ID_DOMAIN

UNSUBSCRIBE_PATH = "/m/u/"  # + token: one click (GET shows the page, POST is RFC 8058's one-click)
PREFERENCES_PATH = "/m/p/"  # + token: the person's channels and their choices
OPEN_PATH = "/m/o/"  # + token + ".gif"
CLICK_PATH = "/m/c/"  # + token + "?u=…&s=…"


def marketing_settings(session: Session, tenant_id: int) -> MarketingSettings:
    """The tenant's marketing settings (unsaved defaults when an admin never saved any)."""
    found = session.scalars(select(MarketingSettings).where(MarketingSettings.tenant_id == tenant_id)).first()
    return found or MarketingSettings(tenant_id=tenant_id, tracking_enabled=True, daily_cap_per_sender=2000,
                                      sender_name="", sender_address="", postal_address="")


def sender_address(session: Session, tenant_id: int, settings: MarketingSettings) -> str:
    """Who marketing mail is from: the marketing settings' address, else the tenant's mail settings', else
    the deployment's ``CRM_MAIL_FROM``; empty when none is set (the send is then held with that reason)."""
    if settings.sender_address:
        return settings.sender_address
    mail = session.scalars(
        select(TenantMailSettings.from_address).where(TenantMailSettings.tenant_id == tenant_id)).first()
    return mail or os.environ.get("CRM_MAIL_FROM", "").strip()


def recipient(session: Session, member: CampaignMember) -> tuple[Customer, Contact | None, str | None]:
    """The member's customer, the person written to and their normalised email (None: nobody to write to)."""
    customer = session.get(Customer, member.customer_id)
    assert customer is not None
    contact = session.get(Contact, member.contact_id) if member.contact_id is not None else None
    raw = contact.email if contact is not None else customer.email
    return customer, contact, normalise_address("email", raw)


def template_context(
    session: Session, customer: Customer, contact: Contact | None, settings: MarketingSettings, sender: str,
    token: str | None,
) -> dict[str, dict[str, Any]]:
    """The variables a template sees (rules.email_templates.VARIABLES): the person, the company, its owner,
    the sender's identity and the person's links (absent without a public address or a token)."""
    owner = session.get(User, customer.owner_id) if customer.owner_id is not None else None
    base = public_url()
    links = {} if base is None or token is None else {
        "unsubscribe": f"{base}{UNSUBSCRIBE_PATH}{token}", "preferences": f"{base}{PREFERENCES_PATH}{token}"}
    return {
        "contact": {"name": contact.name if contact is not None else customer.name,
                    "title": contact.title if contact is not None else None,
                    "email": contact.email if contact is not None else customer.email},
        "customer": {"name": customer.name, "industry": customer.industry, "region": customer.region},
        "owner": {"name": owner.full_name if owner is not None else None,
                  "email": owner.email if owner is not None else None},
        "sender": {"name": settings.sender_name, "address": sender, "postal_address": settings.postal_address},
        "links": links,
    }


def queue_email(session: Session, member: CampaignMember, step: CampaignStep, *,
                now: dt.datetime | None = None) -> MarketingMessage:
    """The member's email of ``step`` in its current cycle: queued, or skipped with the reason (then a
    ``skipped`` touch says why). Called again for the same member, step and cycle it returns the row
    already written (the outbox's unique key makes a second one impossible anyway)."""
    existing = session.scalars(select(MarketingMessage).where(
        MarketingMessage.tenant_id == member.tenant_id, MarketingMessage.member_id == member.id,
        MarketingMessage.step_id == step.id, MarketingMessage.cycle == member.cycle)).first()
    if existing is not None:
        return existing
    moment = now or utcnow()
    settings = marketing_settings(session, member.tenant_id)
    sender = sender_address(session, member.tenant_id, settings)
    customer, contact, address = recipient(session, member)
    token = secrets.token_urlsafe(32)
    template_id = (step.config or {}).get("template_id")
    template = session.get(EmailTemplate, template_id) if isinstance(template_id, int) else None
    message = MarketingMessage(
        tenant_id=member.tenant_id, campaign_id=member.campaign_id, step_id=step.id, member_id=member.id,
        cycle=member.cycle, customer_id=member.customer_id, contact_id=member.contact_id,
        template_id=template.id if template is not None else None,
        language=template.language if template is not None else "en", to_address=address or "",
        from_address=sender, token=token, message_id=f"<mkt-{uuid.uuid4().hex}@{OUR_MESSAGE_ID_DOMAIN}>",
        status=MessageStatus.QUEUED.value, queued_at=moment,
    )
    reason = None
    if template is None or template.archived_at is not None:
        reason = "blocked:no_template"
    elif address is None:
        reason = "blocked:no_address"
    elif not sender:
        reason = "blocked:no_sender"
    elif public_url() is None:
        reason = "blocked:no_public_url"  # no way out for the person: Advertising Law art. 43, RFC 8058
    else:
        context = template_context(session, customer, contact, settings, sender, token)
        try:
            rendered = render(template.subject, template.body, context)
        except MissingVariable as missing:
            reason = f"blocked:missing_variable:{missing.name}"
        except TemplateProblem:
            reason = "blocked:template_broken"
        else:
            message.subject, message.body = rendered.subject, rendered.body
    if reason is not None:
        message.status, message.reason = MessageStatus.SKIPPED.value, reason
    session.add(message)
    session.flush()
    if reason is not None:
        session.add(MarketingEvent(
            tenant_id=member.tenant_id, campaign_id=member.campaign_id, step_id=step.id, member_id=member.id,
            message_id=message.id, customer_id=member.customer_id, contact_id=member.contact_id, cycle=member.cycle,
            kind=TouchKind.SKIPPED.value, occurred_at=moment, detail=reason))
        session.flush()
    return message
