"""Contact use cases: add, edit and archive the people at a customer.

Each opens its own transaction; the session checks that the customer is visible to the
actor and writes the audit trail. Edits use optimistic locking (``expected_version``).
A valid contact is what :data:`crm_core.rules.fields.CONTACT` says, as for an import.
A new email or phone meets the tenant's contact duplicate rules (:func:`find_duplicate_contact`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import DuplicateContact, NotFound, ValidationFailed
from crm_core.models import Contact, Customer, User, utcnow
from crm_core.rules import fields as rules
from crm_core.rules.contact_details import normalise_email, normalise_phone
from crm_core.rules.duplicates import CONTACT, CONTACT_KEYS, may_override
from crm_core.rules.fields import clean_text
from crm_core.services.duplicate_rules import match_by_rules
from crm_core.services.editing import check_version, checked_external_id, translate_stale

Errors = dict[str, tuple[str, dict[str, Any]]]


@dataclass
class ContactInput:
    """The fields of the contact form, as typed."""

    customer_id: int
    name: str
    title: str = ""
    email: str = ""
    phone: str = ""
    is_primary: bool = False
    external_id: str | None = None  # the old system's ID (unique per tenant); None: left as it is


def _values(form: ContactInput) -> dict[str, Any]:
    """The form's text fields in their stored form, as the rules see them."""
    return {
        "name": clean_text(form.name),
        "title": clean_text(form.title),
        "email": clean_text(form.email),
        "phone": clean_text(form.phone),
    }


def _validate(form: ContactInput) -> Errors:
    return rules.check_values(rules.CONTACT, _values(form))


def _keys(form: ContactInput) -> dict[str, str | None]:
    """The duplicate keys of what was typed: the normalised email and phone (E.164)."""
    values = _values(form)
    return {"email": normalise_email(values["email"]), "phone": normalise_phone(values["phone"])}


def _apply(contact: Contact, form: ContactInput) -> None:
    values = _values(form)
    keys = _keys(form)
    contact.name = values["name"]
    contact.title = values["title"]
    contact.email = values["email"]
    contact.email_normalized = keys["email"]
    contact.phone = values["phone"]
    contact.phone_normalized = keys["phone"]
    contact.is_primary = form.is_primary


def find_duplicate_contact(
    db: Database, actor: Actor, *, email: str, phone: str, exclude_id: int | None = None,
    keys: Collection[str] | None = None, within: Session | None = None,
) -> DuplicateContact | None:
    """A live contact of the tenant, at any customer, that the contact duplicate rules call the same person.

    As for customers (:func:`crm_core.services.customers.find_duplicate`): one indexed look-up per
    checked key, united; a blocking match wins over a warning one; ``keys`` limits the check (an
    edit checks what it changes). The contact and its customer are named only when the actor may
    see that customer; its owner always is.
    """
    values = {"email": normalise_email(email), "phone": normalise_phone(phone)}
    columns = {"email": Contact.email_normalized, "phone": Contact.phone_normalized}
    with db.system_session("contact duplicate check", tenant_id=actor.tenant_id, beside=within) as session:
        match = match_by_rules(
            session, actor.tenant_id, CONTACT, Contact, values, columns,
            live=lambda arm: arm.join(Customer, Customer.id == Contact.customer_id).where(
                Contact.archived_at.is_(None), Customer.archived_at.is_(None)),
            exclude_id=exclude_id, keys=keys)
        if match is None:
            return None
        existing = match.record
        customer = session.get(Customer, existing.customer_id)
        assert customer is not None
        visible = access.can_view(
            actor, tenant_id=customer.tenant_id, owner_id=customer.owner_id, team_id=customer.team_id)
        owner = session.get(User, customer.owner_id) if customer.owner_id is not None else None
        duplicate = DuplicateContact(
            existing.id if visible else 0, existing.name if visible else "", match.key,
            owner.full_name if owner is not None else "", action=match.action,
            customer_id=customer.id if visible else 0, customer_name=customer.name if visible else "")
        duplicate.record_id = existing.id  # never shown
        return duplicate


def _check_duplicate(
    db: Database, actor: Actor, form: ContactInput, within: Session, *, allow_duplicate: bool,
    exclude_id: int | None = None, keys: Collection[str] | None = None,
) -> None:
    """Raise the duplicate the rules find, unless the user confirmed and may override its action."""
    values = _values(form)
    duplicate = find_duplicate_contact(db, actor, email=values["email"] or "", phone=values["phone"] or "",
                                       exclude_id=exclude_id, keys=keys, within=within)
    if duplicate is not None and not (allow_duplicate and may_override(actor.role, duplicate.action)):
        raise duplicate


def create_contact(db: Database, actor: Actor, form: ContactInput, *, allow_duplicate: bool = False) -> int:
    """Add a contact to a visible, active customer; raises ValidationFailed, NotFound or DuplicateContact.

    ``allow_duplicate``: the user confirmed that the duplicate the rules warn about is another
    person; a blocking rule yields to it only for managers and admins.
    """
    errors = _validate(form)
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        customer = session.get(Customer, form.customer_id)
        if customer is None or customer.archived_at is not None:
            raise NotFound("customer")
        _check_duplicate(db, actor, form, session, allow_duplicate=allow_duplicate)
        if form.is_primary:
            _clear_primary(session, form.customer_id)
        contact = Contact(customer_id=form.customer_id, tenant_id=actor.tenant_id)
        external_id = checked_external_id(session, actor, Contact, form.external_id, errors)
        if errors:
            raise ValidationFailed(errors)
        _apply(contact, form)
        contact.external_id = external_id
        session.add(contact)
        session.flush()
        return contact.id


def update_contact(
    db: Database, actor: Actor, contact_id: int, form: ContactInput, *, expected_version: int,
    allow_duplicate: bool = False,
) -> int:
    """Save an edit made on ``expected_version``; raises StaleRecord if someone saved since.

    A changed email or phone meets the duplicate rules as on create (an unchanged one does not:
    an old pair must not block every edit)."""
    errors = _validate(form)
    if errors:
        raise ValidationFailed(errors)

    def work() -> int:
        with db.transaction(actor) as session:
            contact = session.get(Contact, contact_id)
            if contact is None or contact.archived_at is not None:
                raise NotFound("contact")
            check_version(session, contact, "contact", expected_version)
            new = _keys(form)
            old = {"email": contact.email_normalized, "phone": contact.phone_normalized}
            if changed := [key for key in CONTACT_KEYS if new[key] and new[key] != old[key]]:
                _check_duplicate(db, actor, form, session, allow_duplicate=allow_duplicate, exclude_id=contact_id,
                                 keys=changed)
            if form.is_primary and not contact.is_primary:
                _clear_primary(session, contact.customer_id, keep=contact.id)
            form.customer_id = contact.customer_id  # a contact does not move between customers
            if form.external_id is not None:
                contact.external_id = checked_external_id(session, actor, Contact, form.external_id, errors,
                                                          exclude_id=contact_id)
                if errors:
                    raise ValidationFailed(errors)
            _apply(contact, form)
            session.flush()
            return contact.version

    return translate_stale(db, actor, "contact", contact_id, work)


def archive_contact(db: Database, actor: Actor, contact_id: int, *, expected_version: int) -> None:
    """Take a contact out of the lists; it stays in history."""

    def work() -> None:
        with db.transaction(actor) as session:
            contact = session.get(Contact, contact_id)
            if contact is None:
                raise NotFound("contact")
            check_version(session, contact, "contact", expected_version)
            if contact.archived_at is None:
                contact.archived_at = utcnow()
                contact.is_primary = False

    translate_stale(db, actor, "contact", contact_id, work)


def _clear_primary(session: Any, customer_id: int, keep: int | None = None) -> None:
    # through the ORM so each change is checked and audited
    statement = select(Contact).where(Contact.customer_id == customer_id, Contact.is_primary.is_(True))
    for other in session.scalars(statement):
        if other.id != keep:
            other.is_primary = False


__all__ = ["ContactInput", "archive_contact", "create_contact", "find_duplicate_contact", "update_contact"]
