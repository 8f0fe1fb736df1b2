"""The consent ledger's core: the decision a sender asks for at the moment a message leaves, and the
entries written inside a caller's transaction (an unsubscribe, the preference page, a bounce, an import).

Both work on the caller's session and name the tenant themselves (a job's or the unsubscribe route's
session is a system session, unscoped), so the check and the send's own bookkeeping commit together
(decision 0046). The rule itself is pure (:mod:`crm_core.rules.consent`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import utcnow
from crm_core.models.marketing import ANY_CHANNEL, ConsentAction, ConsentRecord, DoNotContact
from crm_core.rules.consent import LedgerEntry, SendDecision, decide, normalise_address


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
