"""What the host's ``/m/…`` routes do with a marketing message's token (decision 0048): the one-click
unsubscribe (RFC 8058), the preference page's channels and choices, the open pixel and the signed click
redirect. Each is a short system transaction keyed by the message's token (secret, 256 bits, one per
message): no login, and a token that matches nothing is :class:`UnknownLink` (the route's 404 page).

Withdrawals go to the consent ledger (``services.consent.record_in``, proof ``unsubscribe`` or
``preference_page``) with an ``unsubscribed`` touch; opens and clicks are touches, recorded only while the
tenant's tracking is on. An open is counted at most once a minute per message (mail clients fetch the
pixel repeatedly); every click counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnClause, Select, literal_column, select
from sqlalchemy.orm import Session

from crm_core.db import Database
from crm_core.marketing.sender import link_key, marketing_settings, token_tenant
from crm_core.models import utcnow
from crm_core.models.marketing import (
    Channel,
    ConsentAction,
    ConsentRecord,
    MarketingEvent,
    MarketingMessage,
    MessageStatus,
    ProofKind,
    TouchKind,
)
from crm_core.rules.consent import normalise_address
from crm_core.rules.marketing_mail import preference_form_key, signature_matches
from crm_core.services.consent import latest_entry, record_in

OPEN_WINDOW = dt.timedelta(minutes=1)
TOKEN_LENGTH = 64
# the tokens of links sent before tokens named their tenant have no dot; the condition is written as a literal,
# word for word the partial index's (migration 0045), so PostgreSQL can match it
LEGACY_TOKEN_PATTERN: ColumnClause[str] = literal_column("'%.%'")


class UnknownLink(Exception):
    """No message has this token (mistyped, forged, or its tenant deleted it)."""


@dataclass(frozen=True)
class Unsubscribed:
    language: str
    address: str
    already: bool  # the address had withdrawn already: nothing new was written


@dataclass(frozen=True)
class ChannelChoice:
    channel: str
    address: str
    subscribed: bool  # the latest ledger entry is a grant

    @property
    def field(self) -> str:
        return f"{self.channel}:{self.address}"


@dataclass(frozen=True)
class Preferences:
    language: str
    form_key: str
    choices: list[ChannelChoice]
    changed: int = 0


def message_lookup(token: str) -> Select[MarketingMessage]:
    """The statement that finds the message behind ``token``, by its tenant and token where the token names one."""
    statement = select(MarketingMessage).where(MarketingMessage.token == token)
    tenant_id = token_tenant(token)
    if tenant_id is not None:
        return statement.where(MarketingMessage.tenant_id == tenant_id)
    # a link sent before tokens named their tenant: by the token alone, through the index of such tokens (0045)
    return statement.where(MarketingMessage.token.not_like(LEGACY_TOKEN_PATTERN))


def _message(session: Session, token: str) -> MarketingMessage:
    if not token or len(token) > TOKEN_LENGTH:
        raise UnknownLink()
    found = session.scalars(message_lookup(token)).first()
    if found is None:
        raise UnknownLink()
    return found


def message_language(db: Database, token: str) -> str:
    """The language of the message behind ``token`` (the pages answer in it)."""
    with db.system_session("marketing: link", tenant_id=token_tenant(token)) as session:
        return _message(session, token).language


def _event(message: MarketingMessage, kind: TouchKind, now: dt.datetime, detail: str = "") -> MarketingEvent:
    return MarketingEvent(tenant_id=message.tenant_id, campaign_id=message.campaign_id, step_id=message.step_id,
                          member_id=message.member_id, message_id=message.id, customer_id=message.customer_id,
                          contact_id=message.contact_id, cycle=message.cycle, kind=kind.value, occurred_at=now,
                          detail=detail[:500])


def _withdraw(session: Session, message: MarketingMessage, channel: str, address: str, proof_kind: ProofKind,
              now: dt.datetime) -> bool:
    """Withdraw ``address`` on ``channel`` unless its latest entry already is a withdrawal; True when written."""
    latest = latest_entry(session, message.tenant_id, channel, address)
    if latest is not None and latest.action == ConsentAction.WITHDRAW:
        return False
    record_in(session, channel=channel, address=address, action=ConsentAction.WITHDRAW, proof_kind=proof_kind,
              proof=f"marketing message {message.message_id}", customer_id=message.customer_id,
              contact_id=message.contact_id, tenant_id=message.tenant_id, now=now)
    return True


def unsubscribe(db: Database, token: str, *, now: dt.datetime | None = None) -> Unsubscribed:
    """The one click: the message's address withdraws from marketing email (the ledger, proof ``unsubscribe``)
    and an ``unsubscribed`` touch is recorded; a second click writes nothing more."""
    moment = now or utcnow()
    with db.system_transaction("marketing: unsubscribe", tenant_id=token_tenant(token)) as session:
        message = _message(session, token)
        address = normalise_address(Channel.EMAIL, message.to_address) or ""
        written = bool(address) and _withdraw(session, message, Channel.EMAIL, address, ProofKind.UNSUBSCRIBE,
                                              moment)
        if written:
            session.add(_event(message, TouchKind.UNSUBSCRIBED, moment, "unsubscribe link"))
            # the member leaves its sequences now (a tick after this commit), not at the next minute
            from crm_core.marketing.engine import tick_after_commit

            tick_after_commit(session, message.tenant_id)
        return Unsubscribed(message.language, address, already=not written)


def _choices(session: Session, message: MarketingMessage) -> list[ChannelChoice]:
    """The person's channels: the message's email, and every (channel, address) the ledger holds for the
    contact (or, without one, the customer), each with whether its latest entry is a grant."""
    owner = (ConsentRecord.contact_id == message.contact_id if message.contact_id is not None
             else ConsentRecord.customer_id == message.customer_id)
    rows = session.execute(
        select(ConsentRecord.channel, ConsentRecord.address)
        .where(ConsentRecord.tenant_id == message.tenant_id, owner)
        .order_by(ConsentRecord.channel, ConsentRecord.address)).all()
    pairs = list(dict.fromkeys((str(channel), str(address)) for channel, address in rows))
    email = normalise_address(Channel.EMAIL, message.to_address)
    if email and (Channel.EMAIL.value, email) not in pairs:
        pairs.insert(0, (Channel.EMAIL.value, email))
    order = [channel.value for channel in Channel]
    pairs.sort(key=lambda pair: (order.index(pair[0]) if pair[0] in order else len(order), pair[1]))
    choices = []
    for channel, address in pairs:
        latest = latest_entry(session, message.tenant_id, channel, address)
        choices.append(ChannelChoice(channel, address, latest is not None and latest.action == ConsentAction.GRANT))
    return choices


def preferences(db: Database, token: str) -> Preferences:
    """What the preference page shows for the message's person."""
    with db.system_session("marketing: preferences", tenant_id=token_tenant(token)) as session:
        message = _message(session, token)
        return Preferences(message.language, preference_form_key(link_key(), token), _choices(session, message))


class FormRefused(Exception):
    """The preference form did not come from our page for this token."""


def save_preferences(db: Database, token: str, form_key: str, wanted: dict[str, str], *,
                     now: dt.datetime | None = None) -> Preferences:
    """Apply the person's choices (``{"email:li@x.cn": "keep" | "withdraw"}``): a channel they withdraw gets a
    withdrawal (proof ``preference_page``) and an ``unsubscribed`` touch; one they keep or take back gets a grant
    on their own consent when its latest entry is not one already. Unknown fields are ignored; a form key that
    is not this token's raises :class:`FormRefused`."""
    import hmac

    moment = now or utcnow()
    with db.system_transaction("marketing: preferences", tenant_id=token_tenant(token)) as session:
        message = _message(session, token)
        if not hmac.compare_digest(preference_form_key(link_key(), token), form_key or ""):
            raise FormRefused()
        changed = 0
        for choice in _choices(session, message):
            decision = wanted.get(choice.field)
            if decision == "withdraw" and choice.subscribed:
                _withdraw(session, message, choice.channel, choice.address, ProofKind.PREFERENCE_PAGE, moment)
                session.add(_event(message, TouchKind.UNSUBSCRIBED, moment, f"preference page: {choice.channel}"))
                changed += 1
            elif decision == "keep" and not choice.subscribed:
                record_in(session, channel=choice.channel, address=choice.address, action=ConsentAction.GRANT,
                          basis="consent", proof_kind=ProofKind.PREFERENCE_PAGE,
                          proof=f"marketing message {message.message_id}", customer_id=message.customer_id,
                          contact_id=message.contact_id, tenant_id=message.tenant_id, now=moment)
                changed += 1
        session.flush()
        return Preferences(message.language, preference_form_key(link_key(), token), _choices(session, message),
                           changed)


def _tracking_on(session: Session, message: MarketingMessage) -> bool:
    return bool(marketing_settings(session, message.tenant_id).tracking_enabled)


def record_open(db: Database, token: str, *, now: dt.datetime | None = None) -> bool:
    """The pixel was fetched: an ``opened`` touch unless one was recorded for this message in the last minute
    or tracking is off; True when recorded. The pixel is served either way."""
    moment = now or utcnow()
    with db.system_transaction("marketing: open", tenant_id=token_tenant(token)) as session:
        message = _message(session, token)
        if message.status not in (MessageStatus.SENT.value, MessageStatus.BOUNCED.value) \
                or not _tracking_on(session, message):
            return False
        recent = session.scalar(select(MarketingEvent.id).where(
            MarketingEvent.tenant_id == message.tenant_id, MarketingEvent.member_id == message.member_id,
            MarketingEvent.kind == TouchKind.OPENED.value, MarketingEvent.message_id == message.id,
            MarketingEvent.occurred_at > moment - OPEN_WINDOW).limit(1))
        if recent is not None:
            return False
        session.add(_event(message, TouchKind.OPENED, moment))
        return True


def click_target(db: Database, token: str, url: str, signature: str, *, now: dt.datetime | None = None) -> str:
    """Where a click link leads: ``url`` when ``signature`` is ours for this token and ``url`` (else
    :class:`UnknownLink`: no open redirect); a ``clicked`` touch records it while tracking is on."""
    if not url.lower().startswith(("http://", "https://")) or not signature_matches(link_key(), token, url,
                                                                                     signature):
        raise UnknownLink()
    moment = now or utcnow()
    with db.system_transaction("marketing: click", tenant_id=token_tenant(token)) as session:
        message = _message(session, token)
        if _tracking_on(session, message):
            session.add(_event(message, TouchKind.CLICKED, moment, url))
    return url

