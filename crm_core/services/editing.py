"""Shared steps of the edit use cases: optimistic-lock checks and archiving.

Every editable entity carries ``version``. A form remembers the version it loaded; the
service compares it before writing (:func:`check_version`) and SQLAlchemy's version
counter catches a writer that commits in between (:func:`translate_stale`). Either way
the user is told who changed the record and when, from the audit trail, and nothing is
overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import StaleRecord
from crm_core.models import AuditEvent, User

T = TypeVar("T")


def stale_record_error(session: Session, entity: str, entity_id: int) -> StaleRecord:
    """A StaleRecord naming who last changed the record, and when, from the audit trail."""
    row = session.execute(
        select(AuditEvent.occurred_at, User.full_name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return StaleRecord(entity, entity_id)
    return StaleRecord(entity, entity_id, changed_by=row.full_name, changed_at=row.occurred_at)


def check_version(session: Session, record: Any, entity: str, expected_version: int) -> None:
    """Raise StaleRecord when ``record`` was saved by someone after the form loaded it."""
    if record.version != expected_version:
        raise stale_record_error(session, entity, record.id)


def translate_stale(db: Database, actor: Actor, entity: str, entity_id: int, work: Callable[[], T]) -> T:
    """Run ``work``; a concurrent commit caught at UPDATE time becomes a StaleRecord."""
    try:
        return work()
    except StaleDataError:
        with db.session(actor) as session:
            raise stale_record_error(session, entity, entity_id) from None


def checked_external_id(
    session: Session, actor: Actor, model: Any, raw: str | None, errors: dict[str, Any], *,
    exclude_id: int | None = None,
) -> str | None:
    """The old system's ID as stored (None when blank); a value its field's rules refuse, or one another record of
    the tenant holds, goes to ``errors["external_id"]``.

    Unique per tenant on contacts, deals, orders and products (decision 0042): archived records and records the
    actor may not see count too, so the table itself is read."""
    from crm_core.rules import fields

    value = fields.clean_text(raw)
    if value is None:
        return None
    problem = fields.check(fields.TABLES[EXTERNAL_ID_TABLES[model.__tablename__]]["external_id"], value)
    if problem is not None:
        errors["external_id"] = problem
        return value
    table = model.__table__
    statement = select(table.c.id).where(table.c.tenant_id == actor.tenant_id, table.c.external_id == value)
    if exclude_id is not None:
        statement = statement.where(table.c.id != exclude_id)
    if session.scalar(statement.limit(1)) is not None:
        errors["external_id"] = ("validation.external_id_taken", {"value": value})
    return value


EXTERNAL_ID_TABLES = {"contacts": "contact", "opportunities": "opportunity", "orders": "order", "products": "product"}
"""The tables whose external ID is unique per tenant → their field table (crm_core.rules.fields.TABLES)."""
