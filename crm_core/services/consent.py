"""The consent ledger's core: the decision a sender asks for at the moment a message leaves, and the
entries written inside a caller's transaction (an unsubscribe, the preference page, a bounce, an import).

Both work on the caller's session and name the tenant themselves (a job's or the unsubscribe route's
session is a system session, unscoped), so the check and the send's own bookkeeping commit together
(decision 0046). The rule itself is pure (:mod:`crm_core.rules.consent`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import Contact, Customer, Role, utcnow
from crm_core.models.marketing import ANY_CHANNEL, Channel, ConsentAction, ConsentRecord, DoNotContact, ProofKind
from crm_core.rules.consent import SENDABLE_BASES, LedgerEntry, SendDecision, decide, normalise_address
from crm_core.rules.contact_details import is_valid_email, is_valid_phone
from crm_core.rules.fields import clean_text, free_text_problem


def latest_entry(
    session: Session, tenant_id: int, channel: str, address: str, *, now: dt.datetime | None = None
) -> LedgerEntry | None:
    """The latest ledger entry on ``channel`` for the normalised ``address`` (entries after ``now`` wait)."""
    statement = (
        select(ConsentRecord.id, ConsentRecord.action, ConsentRecord.basis, ConsentRecord.recorded_at)
        .where(ConsentRecord.tenant_id == tenant_id, ConsentRecord.channel == channel,
               ConsentRecord.address == address)
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    if now is not None:
        statement = statement.where(ConsentRecord.recorded_at <= now)
    row = session.execute(statement).first()
    return None if row is None else LedgerEntry(row.id, row.action, row.basis, row.recorded_at)


def blocked_channels(session: Session, tenant_id: int, address: str) -> set[str]:
    """The channels (or ``all``) the do-not-contact list names for ``address``."""
    return set(session.scalars(select(DoNotContact.channel).where(DoNotContact.tenant_id == tenant_id,
                                                                  DoNotContact.address == address)))


def send_decision(
    session: Session, tenant_id: int, channel: str, address: str | None, *, now: dt.datetime | None = None
) -> SendDecision:
    """May a marketing message of ``tenant_id`` go to ``address`` over ``channel`` now, and why."""
    key = normalise_address(channel, address)
    if key is None:
        return decide(channel, None, blocked_channels=set(), latest=None)
    blocked = blocked_channels(session, tenant_id, key)
    latest = None if blocked & {channel, ANY_CHANNEL} else latest_entry(session, tenant_id, channel, key, now=now)
    return decide(channel, key, blocked_channels=blocked, latest=latest)


def record_in(
    session: Session,
    *,
    channel: str,
    address: str,
    action: ConsentAction,
    proof_kind: str,
    proof: str = "",
    basis: str | None = None,
    customer_id: int | None = None,
    contact_id: int | None = None,
    recorded_by_id: int | None = None,
    tenant_id: int | None = None,
    now: dt.datetime | None = None,
) -> ConsentRecord:
    """Add one entry to the ledger in the caller's transaction (a grant needs its basis; a withdrawal has
    none). ``tenant_id`` is needed in a system session (a job, the unsubscribe route); an actor's session
    fills it in. Raises ValueError on an address that cannot be normalised or a grant without basis."""
    key = normalise_address(channel, address)
    if key is None:
        raise ValueError(f"not an address for {channel}: {address!r}")
    if action == ConsentAction.GRANT and not basis:
        raise ValueError("a grant needs its lawful basis")
    record = ConsentRecord(
        channel=channel, address=key, action=action.value, basis=basis if action == ConsentAction.GRANT else None,
        proof_kind=proof_kind, proof=proof[:1000], customer_id=customer_id, contact_id=contact_id,
        recorded_by_id=recorded_by_id, recorded_at=now or utcnow(),
    )
    if tenant_id is not None:
        record.tenant_id = tenant_id
    session.add(record)
    session.flush()
    return record


# --- a user's entries and the do-not-contact list (decision 0047) ------------------------------------------------

Errors = dict[str, tuple[str, dict[str, object]]]
USER_PROOF_KINDS = (ProofKind.FORM.value, ProofKind.MANUAL.value, ProofKind.IMPORT.value)
"""The evidence a user may name when recording an entry by hand: the web or paper form it came from, a note
of what the person said or signed (manual), or a list received from elsewhere (import). Unsubscribes,
the preference page and bounces are written by the routes and jobs that see them, never typed."""
PROOF_REQUIRED = (ProofKind.FORM.value, ProofKind.MANUAL.value)  # which form / what happened: no proof, no entry
PROOF_LENGTH = 1000
REASON_LENGTH = 500
CHANNELS = tuple(channel.value for channel in Channel)
DNC_CHANNELS = (*CHANNELS, ANY_CHANNEL)


@dataclass
class ConsentInput:
    """The consent form of a customer's 360: about one of its contacts (or the customer's own address when
    ``contact_id`` is None) on one channel. A blank ``address`` takes the contact's (or customer's) email for
    email, its phone for phone and SMS; a WeChat id is typed."""

    customer_id: int
    channel: str
    action: str  # ConsentAction: grant | withdraw
    basis: str = ""  # LawfulBasis, for a grant
    proof_kind: str = ProofKind.MANUAL.value
    proof: str = ""
    contact_id: int | None = None
    address: str = ""


def _on_file(channel: str, email: str | None, phone: str | None) -> str | None:
    if channel == Channel.EMAIL:
        return email
    if channel in (Channel.PHONE, Channel.SMS):
        return phone
    return None


def _address_problem(channel: str, typed: str) -> tuple[str, dict[str, object]] | None:
    if channel == Channel.EMAIL and not is_valid_email(typed):
        return ("consent.error.bad_email", {})
    if channel in (Channel.PHONE, Channel.SMS) and not is_valid_phone(typed):
        return ("consent.error.bad_phone", {})
    return free_text_problem("address", typed, 254)


def _checked_form(form: ConsentInput) -> tuple[Errors, str]:
    """The problems of the form that need no database, and the cleaned proof."""
    errors: Errors = {}
    proof = (form.proof or "").strip()
    if form.channel not in CHANNELS:
        errors["channel"] = ("validation.choice", {})
    if form.action not in (ConsentAction.GRANT.value, ConsentAction.WITHDRAW.value):
        errors["action"] = ("validation.choice", {})
    if form.action == ConsentAction.GRANT.value:
        if not form.basis:
            errors["basis"] = ("consent.error.basis_required", {})
        elif form.basis not in SENDABLE_BASES:
            errors["basis"] = ("validation.choice", {})
    if form.proof_kind not in USER_PROOF_KINDS:
        errors["proof_kind"] = ("validation.choice", {})
    elif form.proof_kind in PROOF_REQUIRED and not proof:
        errors["proof"] = (f"consent.error.proof_required_{form.proof_kind}", {})
    if proof and (problem := free_text_problem("proof", proof, PROOF_LENGTH)) is not None:
        errors["proof"] = problem
    return errors, proof


def record_consent(db: Database, actor: Actor, form: ConsentInput, *, now: dt.datetime | None = None) -> int:
    """Record a grant (with its lawful basis and proof) or a withdrawal for one address of a customer;
    returns the ledger entry's id. All or nothing, audited. Raises ValidationFailed (field by field),
    NotFound (a customer outside the actor's scope), AccessDenied (an analyst)."""
    if not actor.can_write:
        raise AccessDenied("analysts cannot change records")
    errors, proof = _checked_form(form)
    with db.transaction(actor) as session:
        customer = session.scalar(select(Customer).where(Customer.id == form.customer_id,
                                                         Customer.archived_at.is_(None)))
        if customer is None:
            raise NotFound("customer")
        email, phone = customer.email, customer.phone
        if form.contact_id is not None:
            contact = session.scalar(select(Contact).where(Contact.id == form.contact_id,
                                                           Contact.customer_id == customer.id,
                                                           Contact.archived_at.is_(None)))
            if contact is None:
                errors["contact_id"] = ("consent.error.contact_unknown", {})
            else:
                email, phone = contact.email, contact.phone
        typed = clean_text(form.address) or ""
        address: str | None = None
        if "channel" not in errors and "contact_id" not in errors:
            if typed:
                if (problem := _address_problem(form.channel, typed)) is not None:
                    errors["address"] = problem
                else:
                    address = typed
            else:
                address = _on_file(form.channel, email, phone)
                if not address:
                    errors["address"] = (f"consent.error.no_address_{form.channel}", {})
        if errors:
            raise ValidationFailed(errors)
        assert address is not None
        try:
            record = record_in(
                session, channel=form.channel, address=address, action=ConsentAction(form.action),
                proof_kind=form.proof_kind, proof=proof, basis=form.basis or None, customer_id=customer.id,
                contact_id=form.contact_id, recorded_by_id=actor.user_id, now=now)
        except ValueError:  # an address that does not normalise (a phone of signs only)
            raise ValidationFailed({"address": (f"consent.error.no_address_{form.channel}", {})}) from None
        return record.id


def dnc_address(channel: str, address: str | None) -> str | None:
    """The do-not-contact list's form of an address: as the ledger keys it on ``channel``; for ``all``, an
    email lower-cased, a number in E.164, anything else trimmed."""
    if channel != ANY_CHANNEL:
        return normalise_address(channel, address)
    text = clean_text(address)
    if text is None:
        return None
    if "@" in text:
        return normalise_address(Channel.EMAIL, text)
    if is_valid_phone(text):
        return normalise_address(Channel.PHONE, text)
    return text


def add_do_not_contact(db: Database, actor: Actor, channel: str, address: str, reason: str = "") -> int:
    """Put ``address`` on the do-not-contact list for ``channel`` (or ``all``); returns the entry's id. Anyone who
    may write adds one; an address already listed for that channel is refused with that reason."""
    if not actor.can_write:
        raise AccessDenied("analysts cannot change records")
    errors: Errors = {}
    typed = clean_text(address) or ""
    text = (reason or "").strip()
    if channel not in DNC_CHANNELS:
        errors["channel"] = ("validation.choice", {})
    if not typed:
        errors["address"] = ("validation.required", {})
    elif (problem := _address_problem(channel, typed) if channel in CHANNELS
          else free_text_problem("address", typed, 254)) is not None:
        errors["address"] = problem
    if text and (problem := free_text_problem("reason", text, REASON_LENGTH)) is not None:
        errors["reason"] = problem
    key = dnc_address(channel, typed) if not errors else None
    if not errors and key is None:
        errors["address"] = ("validation.required", {})
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        if session.scalar(select(DoNotContact.id).where(DoNotContact.channel == channel,
                                                        DoNotContact.address == key)) is not None:
            raise ValidationFailed({"address": ("consent.error.already_listed", {})})
        entry = DoNotContact(channel=channel, address=key, reason=text, added_by_id=actor.user_id)
        session.add(entry)
        session.flush()
        return entry.id


def remove_do_not_contact(db: Database, actor: Actor, entry_id: int) -> None:
    """Take an entry off the do-not-contact list (a manager or an admin); audited."""
    if actor.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only a manager or admin may take an address off the do-not-contact list")
    with db.transaction(actor) as session:
        entry = session.get(DoNotContact, entry_id)
        if entry is None:
            raise NotFound("do_not_contact")
        session.delete(entry)
