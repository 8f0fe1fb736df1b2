"""Marketing mail coming back (decision 0048): a delivery status notification about one of our messages marks
it ``bounced`` (a ``bounced`` touch; a permanent failure also puts the address on the do-not-contact list for
email, reason ``bounce: <status>``), and a reply to one of them is a ``replied`` touch — never a support case.

Both are called by ``crm_core.mail.inbound.receive_message`` before its own rules: a DSN comes from a machine
(and would be dropped), and a reply to a campaign is an answer to marketing, seen by the campaign's branches and
exit rules and on the 360 timeline, not a request for support. A message is found by its Message-ID (ours:
``<mkt-…@kestrel-crm.invalid>``, unique across tenants); when the envelope names a tenant it must be that one.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import Tenant, utcnow
from crm_core.models.marketing import DoNotContact, MarketingEvent, MarketingMessage, MessageStatus, TouchKind
from crm_core.rules import mail as mail_rules
from crm_core.rules.consent import normalise_address
from crm_core.rules.marketing_mail import is_marketing_message_id, read_bounce


def _ours(session: Session, message_ids: list[str], recipients: list[str]) -> MarketingMessage | None:
    """The first of ``message_ids`` that is one of our marketing messages (of the recipients' tenant, if named)."""
    wanted = [value for value in message_ids if is_marketing_message_id(value)]
    if not wanted:
        return None
    slugs = {slug for slug in (mail_rules.tenant_slug(address) for address in recipients) if slug}
    found = list(session.scalars(select(MarketingMessage).where(MarketingMessage.message_id.in_(wanted))))
    by_id = {row.message_id: row for row in found}
    for value in wanted:
        row = by_id.get(value)
        if row is None:
            continue
        if slugs:
            slug = session.scalar(select(Tenant.slug).where(Tenant.id == row.tenant_id))
            if slug not in slugs:
                continue
        return row
    return None


def _touch(message: MarketingMessage, kind: TouchKind, now: dt.datetime, detail: str) -> MarketingEvent:
    return MarketingEvent(tenant_id=message.tenant_id, campaign_id=message.campaign_id, step_id=message.step_id,
                          member_id=message.member_id, message_id=message.id, customer_id=message.customer_id,
                          contact_id=message.contact_id, cycle=message.cycle, kind=kind.value, occurred_at=now,
                          detail=detail[:500])


def record_bounce(session: Session, email: EmailMessage, recipients: list[str], *,
                  now: dt.datetime | None = None) -> MarketingMessage | None:
    """When ``email`` is a DSN reporting that one of our marketing messages failed: mark it, add the touch and,
    for a permanent failure, the do-not-contact entry; the message, or None (not a DSN of ours)."""
    bounce = read_bounce(email)
    if bounce is None:
        return None
    message = _ours(session, [bounce.message_id], recipients)
    if message is None:
        return None
    moment = now or utcnow()
    if message.status == MessageStatus.BOUNCED.value:
        return message  # the same DSN again
    message.status = MessageStatus.BOUNCED.value
    message.last_error = f"bounce: {bounce.status}"
    session.add(_touch(message, TouchKind.BOUNCED, moment, f"bounce: {bounce.status}"))
    address = normalise_address("email", message.to_address)
    if bounce.permanent and address:
        listed = session.scalar(select(DoNotContact.id).where(
            DoNotContact.tenant_id == message.tenant_id, DoNotContact.channel == "email",
            DoNotContact.address == address))
        if listed is None:
            session.add(DoNotContact(tenant_id=message.tenant_id, channel="email", address=address,
                                     reason=f"bounce: {bounce.status}", added_at=moment))
    session.flush()
    return message


def record_reply(session: Session, email: EmailMessage, recipients: list[str], *,
                 now: dt.datetime | None = None) -> MarketingMessage | None:
    """When ``email`` answers one of our marketing messages (In-Reply-To/References): a ``replied`` touch
    (once per reply: its Message-ID is the touch's detail); the message answered, or None."""
    ids = mail_rules.thread_ids(str(email.get("In-Reply-To", "")), str(email.get("References", "")))
    message = _ours(session, ids, recipients)
    if message is None:
        return None
    reply_id = str(email.get("Message-ID", "")).strip()[:500]
    if reply_id:
        seen = session.scalar(select(MarketingEvent.id).where(
            MarketingEvent.tenant_id == message.tenant_id, MarketingEvent.message_id == message.id,
            MarketingEvent.kind == TouchKind.REPLIED.value, MarketingEvent.detail == reply_id).limit(1))
        if seen is not None:
            return message
    session.add(_touch(message, TouchKind.REPLIED, now or utcnow(), reply_id))
    session.flush()
    return message
