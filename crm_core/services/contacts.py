"""Contact use cases: add, edit and archive the people at a customer.

Each opens its own transaction; the session checks that the customer is visible to the
actor and writes the audit trail. Edits use optimistic locking (``expected_version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Contact, Customer, utcnow
from crm_core.rules.contact_details import is_valid_email, is_valid_phone
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


def _validate(form: ContactInput) -> Errors:
    errors: Errors = {}
    name = form.name.strip()
    if not name:
        errors["name"] = ("validation.required", {})
    elif len(name) > 120:
        errors["name"] = ("validation.too_long", {"max": 120})
    if len(form.title.strip()) > 120:
        errors["title"] = ("validation.too_long", {"max": 120})
    if form.email.strip() and not is_valid_email(form.email):
        errors["email"] = ("validation.email", {})
    if form.phone.strip() and not is_valid_phone(form.phone):
        errors["phone"] = ("validation.phone", {})
    return errors


def _apply(contact: Contact, form: ContactInput) -> None:
    contact.name = form.name.strip()
    contact.title = form.title.strip() or None
    contact.email = form.email.strip() or None
    contact.phone = form.phone.strip() or None
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
