"""Read side of the consent ledger (decisions 0046, 0047): a customer's state per address and channel and its
history, the do-not-contact list paged and searched on the server, and the lawful-basis counts of a campaign's
audience — each one query (or one per batch of addresses), aggregated in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from crm_core.models import Contact, Customer, User
from crm_core.models.marketing import ANY_CHANNEL, Channel, ConsentAction, ConsentRecord, DoNotContact
from crm_core.queries.paging import Page
from crm_core.rules.consent import SENDABLE_BASES, normalise_address
from crm_core.rules.fields import search_text

ADDRESS_BATCH = 500  # addresses per statement (every database's bound-parameter limit is far above)


@dataclass(frozen=True)
class ConsentState:
    """Where one address of a customer stands on one channel: the latest entry (None: nothing recorded),
    and whether the do-not-contact list names it."""

    contact_id: int | None  # None: the customer's own address
    who: str  # the contact's name, or the customer's
    channel: str
    address: str  # normalised
    action: str | None  # ConsentAction of the latest entry
    basis: str | None
    since: dt.datetime | None
    proof_kind: str | None
    proof: str
    recorded_by: str | None  # the user's name; None: the person or the system
    do_not_contact: bool

    @property
    def state(self) -> str:
        """``do_not_contact``, ``withdrawn``, ``granted`` or ``none`` (no lawful basis recorded)."""
        if self.do_not_contact:
            return "do_not_contact"
        if self.action == ConsentAction.WITHDRAW:
            return "withdrawn"
        if self.action == ConsentAction.GRANT and self.basis in SENDABLE_BASES:
            return "granted"
        return "none"


@dataclass(frozen=True)
class ConsentEntry:
    """One entry of the ledger as the history shows it."""

    id: int
    channel: str
    address: str
    contact_id: int | None
    action: str
    basis: str | None
    proof_kind: str
    proof: str
    recorded_at: dt.datetime
    recorded_by: str | None


@dataclass(frozen=True)
class DoNotContactRow:
    id: int
    channel: str
    address: str
    reason: str
    added_at: dt.datetime
    added_by: str | None


@dataclass(frozen=True)
class LawfulCounts:
    """How many distinct addresses of an audience may be written to on a channel, and why the others may not."""

    with_basis: int
    do_not_contact: int
    withdrawn: int
    no_basis: int

    @property
    def blocked(self) -> int:
        return self.do_not_contact + self.withdrawn

    @property
    def total(self) -> int:
        return self.with_basis + self.blocked + self.no_basis


def _slots(session: Session, customer_id: int) -> tuple[str, list[tuple[int | None, str, str, str]]] | None:
    """The customer's name and its (contact, who, channel, normalised address) slots: every email on the email
    channel, every phone on phone and SMS, and any other address its ledger entries name (WeChat)."""
    customer = session.execute(select(Customer.name, Customer.email, Customer.phone).where(
        Customer.id == customer_id)).first()
    if customer is None:
        return None
    people: list[tuple[int | None, str, str | None, str | None]] = [(None, customer.name, customer.email,
                                                                     customer.phone)]
    people += [(row.id, row.name, row.email, row.phone) for row in session.execute(
        select(Contact.id, Contact.name, Contact.email, Contact.phone)
        .where(Contact.customer_id == customer_id, Contact.archived_at.is_(None))
        .order_by(Contact.is_primary.desc(), Contact.name, Contact.id))]
    names = {contact_id: name for contact_id, name, _, _ in people}
    slots: list[tuple[int | None, str, str, str]] = []
    seen: set[tuple[int | None, str, str]] = set()

    def add(contact_id: int | None, channel: str, raw: str | None) -> None:
        key = normalise_address(channel, raw)
        if key and (contact_id, channel, key) not in seen:
            seen.add((contact_id, channel, key))
            slots.append((contact_id, names.get(contact_id, customer.name), channel, key))

    for contact_id, _, email, phone in people:
        add(contact_id, Channel.EMAIL, email)
        add(contact_id, Channel.PHONE, phone)
        add(contact_id, Channel.SMS, phone)
    for contact_id, channel, address in session.execute(
            select(ConsentRecord.contact_id, ConsentRecord.channel, ConsentRecord.address)
            .where(ConsentRecord.customer_id == customer_id).distinct()):
        add(contact_id if contact_id in names else None, channel, address)
    return customer.name, slots


def _latest(session: Session, tenant_id: int, addresses: list[str], *, now: dt.datetime | None = None):  # type: ignore[no-untyped-def]
    """A subquery of the latest entry per (channel, address) among ``addresses`` (column ``rank`` 1)."""
    rank = func.row_number().over(partition_by=(ConsentRecord.channel, ConsentRecord.address),
                                  order_by=(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc()))
    statement = select(ConsentRecord.id, ConsentRecord.channel, ConsentRecord.address, ConsentRecord.action,
                       ConsentRecord.basis, ConsentRecord.recorded_at, ConsentRecord.proof_kind, ConsentRecord.proof,
                       ConsentRecord.recorded_by_id, rank.label("rank")).where(
        ConsentRecord.tenant_id == tenant_id, ConsentRecord.address.in_(addresses))
    if now is not None:
        statement = statement.where(ConsentRecord.recorded_at <= now)
    return statement.subquery()


def consent_state(session: Session, tenant_id: int, customer_id: int) -> list[ConsentState] | None:
    """Per contact (and the customer's own address) and channel: the lawful basis that holds, since when, on
    what proof and recorded by whom — or that nothing does. None when the customer is not visible."""
    found = _slots(session, customer_id)
    if found is None:
        return None
    _, slots = found
    addresses = sorted({address for *_, address in slots})
    latest: dict[tuple[str, str], tuple[str, str | None, dt.datetime, str, str, str | None]] = {}
    blocked: dict[str, set[str]] = {}
    if addresses:
        entries = _latest(session, tenant_id, addresses)
        for row in session.execute(
                select(entries, User.full_name).outerjoin(User, User.id == entries.c.recorded_by_id)
                .where(entries.c.rank == 1)):
            latest[(row.channel, row.address)] = (row.action, row.basis, row.recorded_at, row.proof_kind, row.proof,
                                                  row.full_name)
        for channel, address in session.execute(select(DoNotContact.channel, DoNotContact.address).where(
                DoNotContact.address.in_(addresses))):
            blocked.setdefault(address, set()).add(channel)
    states = []
    for contact_id, who, channel, address in slots:
        action, basis, since, proof_kind, proof, by = latest.get((channel, address), (None, None, None, None, "",
                                                                                      None))
        states.append(ConsentState(contact_id, who, channel, address, action, basis, since, proof_kind, proof or "",
                                   by, bool(blocked.get(address, set()) & {channel, ANY_CHANNEL})))
    return states


def consent_history(session: Session, customer_id: int, *, page: int = 1, per_page: int = 50,
                    after: tuple[dt.datetime, int] | None = None) -> Page[ConsentEntry]:
    """Every ledger entry about the customer or one of its addresses, newest first, paged by number or (the API)
    by keyset: ``after`` is the last row's (recorded_at, id)."""
    found = _slots(session, customer_id)
    if found is None:
        return Page(page=page, per_page=per_page)
    addresses = sorted({address for *_, address in found[1]})
    condition = ConsentRecord.customer_id == customer_id
    if addresses:
        condition = or_(condition, ConsentRecord.address.in_(addresses))
    if after is not None:
        condition = and_(condition, tuple_(ConsentRecord.recorded_at, ConsentRecord.id) < tuple_(*after))
    rows = session.execute(
        select(ConsentRecord, User.full_name).outerjoin(User, User.id == ConsentRecord.recorded_by_id)
        .where(condition).order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        .offset(0 if after is not None else (page - 1) * per_page).limit(per_page + 1)).all()
    items = [ConsentEntry(record.id, record.channel, record.address, record.contact_id, record.action, record.basis,
                          record.proof_kind, record.proof, record.recorded_at, name)
             for record, name in rows[:per_page]]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


def list_do_not_contact(session: Session, *, search: str = "", channel: str | None = None, page: int = 1,
                        per_page: int = 50, after: tuple[dt.datetime, int] | None = None) -> Page[DoNotContactRow]:
    """The tenant's do-not-contact list, newest first, paged on the server by number or (the API) by keyset
    (``after``: the last row's added_at and id); ``search`` finds text in the address or the reason
    (case-insensitive). ``total`` counts every match."""
    adder = aliased(User)
    statement = select(DoNotContact, adder.full_name).outerjoin(adder, adder.id == DoNotContact.added_by_id)
    counted = select(func.count(DoNotContact.id))
    term = search_text(search).strip().lower()
    conditions = []
    if term:
        conditions.append(or_(func.lower(DoNotContact.address).contains(term, autoescape=True),
                              func.lower(DoNotContact.reason).contains(term, autoescape=True)))
    if channel:
        conditions.append(DoNotContact.channel == channel)
    if conditions:
        statement, counted = statement.where(and_(*conditions)), counted.where(and_(*conditions))
    if after is not None:
        statement = statement.where(tuple_(DoNotContact.added_at, DoNotContact.id) < tuple_(*after))
    rows = session.execute(statement.order_by(DoNotContact.added_at.desc(), DoNotContact.id.desc())
                           .offset(0 if after is not None else (page - 1) * per_page).limit(per_page + 1)).all()
    items = [DoNotContactRow(entry.id, entry.channel, entry.address, entry.reason, entry.added_at, name)
             for entry, name in rows[:per_page]]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page,
                total=session.scalar(counted) or 0)


def get_do_not_contact(session: Session, entry_id: int) -> DoNotContactRow | None:
    """One entry of the tenant's do-not-contact list."""
    row = session.execute(select(DoNotContact, User.full_name).outerjoin(User, User.id == DoNotContact.added_by_id)
                          .where(DoNotContact.id == entry_id)).first()
    if row is None:
        return None
    entry, name = row
    return DoNotContactRow(entry.id, entry.channel, entry.address, entry.reason, entry.added_at, name)


def lawful_counts(session: Session, tenant_id: int, addresses: Iterable[str | None], *, channel: str = "email",
                  now: dt.datetime | None = None) -> LawfulCounts:
    """For a campaign's audience: how many distinct addresses have a lawful basis on ``channel``, are on the
    do-not-contact list, have withdrawn, or have nothing recorded (the send-time rule, :mod:`crm_core.rules.consent`,
    counted in SQL over batches of addresses). Works in a system session: names its tenant itself."""
    keys = sorted({key for raw in addresses if (key := normalise_address(channel, raw))})
    with_basis = listed = withdrawn = 0
    for start in range(0, len(keys), ADDRESS_BATCH):
        batch = keys[start:start + ADDRESS_BATCH]
        listed_here = select(DoNotContact.address).where(
            DoNotContact.tenant_id == tenant_id, DoNotContact.address.in_(batch),
            DoNotContact.channel.in_((channel, ANY_CHANNEL))).distinct().subquery()
        listed += session.scalar(select(func.count()).select_from(listed_here)) or 0
        entries = _latest(session, tenant_id, batch, now=now)
        row = session.execute(
            select(func.sum(case((and_(entries.c.action == ConsentAction.GRANT.value,
                                       entries.c.basis.in_(sorted(SENDABLE_BASES))), 1), else_=0)),
                   func.sum(case((entries.c.action == ConsentAction.WITHDRAW.value, 1), else_=0)))
            .where(entries.c.rank == 1, entries.c.channel == channel,
                   entries.c.address.not_in(select(listed_here.c.address)))).one()
        with_basis += int(row[0] or 0)
        withdrawn += int(row[1] or 0)
    return LawfulCounts(with_basis, listed, withdrawn, len(keys) - with_basis - listed - withdrawn)
