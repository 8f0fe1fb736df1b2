"""Reads of the email templates page: whom a template can be previewed over (customers the user sees, by
name, and their contacts)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import Contact, Customer

PREVIEW_CHOICES = 20


def preview_customers(session: Session, text: str) -> list[tuple[int, str]]:
    """Up to 20 live customers whose name contains ``text`` (the newest first when ``text`` is empty)."""
    statement = select(Customer.id, Customer.name).where(Customer.archived_at.is_(None))
    cleaned = " ".join((text or "").split())
    if cleaned:
        escaped = cleaned.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Customer.name.ilike(f"%{escaped}%", escape="\\"))
    rows = session.execute(statement.order_by(Customer.id.desc()).limit(PREVIEW_CHOICES)).all()
    return [(int(row.id), str(row.name)) for row in rows]


def customer_contacts(session: Session, customer_id: int) -> list[tuple[int, str, str | None]]:
    """The customer's contacts: (id, name, email)."""
    rows = session.execute(select(Contact.id, Contact.name, Contact.email)
                           .where(Contact.customer_id == customer_id).order_by(Contact.id)).all()
    return [(int(row.id), str(row.name), row.email) for row in rows]
