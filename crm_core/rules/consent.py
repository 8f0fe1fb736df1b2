"""The lawful-basis rule of marketing messages, pure: given what the ledger and the do-not-contact list
hold for one address, may a message leave now, and why (decision 0046).

Order of precedence: the do-not-contact list (the channel's or ``all``) wins over everything; then
the latest ledger entry for the channel and address: a withdrawal stops, a grant allows on its basis;
no entry at all means no lawful basis recorded, so no send.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from crm_core.models.marketing import ANY_CHANNEL, Channel, ConsentAction, LawfulBasis
from crm_core.rules.contact_details import normalise_email, normalise_phone

SENDABLE_BASES = frozenset(basis.value for basis in LawfulBasis)


@dataclass(frozen=True)
class LedgerEntry:
    """The latest ledger entry for one address and channel."""

    record_id: int
    action: str  # ConsentAction
    basis: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True)
class SendDecision:
    """Whether a message may leave, the message key that says why (``marketing.consent.*``) and the
    entry it rests on. ``reason`` is the stored, language-neutral form: ``basis:consent#12``,
    ``blocked:do_not_contact``, ``blocked:withdrawn#14``, ``blocked:no_basis``, ``blocked:no_address``."""

    allowed: bool
    reason_key: str
    reason: str
    record_id: int | None = None


def normalise_address(channel: str, address: str | None) -> str | None:
    """The ledger's form of an address: an email lower-cased and trimmed, a phone (phone, SMS) in E.164,
    a WeChat id trimmed; None when there is nothing to key on."""
    if not address or not address.strip():
        return None
    if channel == Channel.EMAIL:
        return normalise_email(address)
    if channel in (Channel.PHONE, Channel.SMS):
        return normalise_phone(address)
    return address.strip()


def decide(
    channel: str, address: str | None, *, blocked_channels: set[str], latest: LedgerEntry | None
) -> SendDecision:
    """The decision for ``address`` over ``channel``: ``blocked_channels`` are the channels (or ``all``)
    its do-not-contact entries name, ``latest`` its latest ledger entry on ``channel``."""
    if not address:
        return SendDecision(False, "marketing.consent.no_address", "blocked:no_address")
    if channel in blocked_channels or ANY_CHANNEL in blocked_channels:
        return SendDecision(False, "marketing.consent.do_not_contact", "blocked:do_not_contact")
    if latest is None:
        return SendDecision(False, "marketing.consent.no_basis", "blocked:no_basis")
    if latest.action == ConsentAction.WITHDRAW:
        return SendDecision(False, "marketing.consent.withdrawn", f"blocked:withdrawn#{latest.record_id}",
                            latest.record_id)
    if latest.basis not in SENDABLE_BASES:
        return SendDecision(False, "marketing.consent.no_basis", "blocked:no_basis", latest.record_id)
    return SendDecision(True, f"marketing.consent.basis.{latest.basis}", f"basis:{latest.basis}#{latest.record_id}",
                        latest.record_id)
