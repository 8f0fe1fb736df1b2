"""Contact use cases: add, edit and archive the people at a customer.

Each opens its own transaction; the session checks that the customer is visible to the
actor and writes the audit trail. Edits use optimistic locking (``expected_version``).
A valid contact is what :data:`crm_core.rules.fields.CONTACT` says, as for an import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Contact, Customer, utcnow
from crm_core.rules import fields as rules
from crm_core.rules.fields import clean_text
from crm_core.services.editing import check_version, translate_stale

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


def _apply(contact: Contact, form: ContactInput) -> None:
    values = _values(form)
    contact.name = values["name"]
    contact.title = values["title"]
    contact.email = values["email"]
    contact.phone = values["phone"]
    contact.is_primary = form.is_primary


def create_contact(db: Database, actor: Actor, form: ContactInput) -> int:
    """Add a contact to a visible, active customer; raises ValidationFailed or NotFound."""
    errors = _validate(form)
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        customer = session.get(Customer, form.customer_id)
        if customer is None or customer.archived_at is not None:
            raise NotFound("customer")
        if form.is_primary:
            _clear_primary(session, form.customer_id)
        contact = Contact(customer_id=form.customer_id, tenant_id=actor.tenant_id)
        _apply(contact, form)
        session.add(contact)
        session.flush()
        return contact.id


def update_contact(db: Database, actor: Actor, contact_id: int, form: ContactInput, *, expected_version: int) -> int:
    """Save an edit made on ``expected_version``; raises StaleRecord if someone saved since."""
    errors = _validate(form)
    if errors:
        raise ValidationFailed(errors)

    def work() -> int:
        with db.transaction(actor) as session:
            contact = session.get(Contact, contact_id)
            if contact is None or contact.archived_at is not None:
                raise NotFound("contact")
            check_version(session, contact, "contact", expected_version)
            if form.is_primary and not contact.is_primary:
                _clear_primary(session, contact.customer_id, keep=contact.id)
            form.customer_id = contact.customer_id  # a contact does not move between customers
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


__all__ = ["ContactInput", "archive_contact", "create_contact", "update_contact"]
