"""The last audited change of one record: who, when, and which fields (for a refused stale write)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import AuditEvent, User


@dataclass(frozen=True)
class LastChange:
    """The newest audit event of a record; ``changes`` maps each field to ``[old, new]``."""

    action: str
    changed_by: str | None
    changed_at: dt.datetime
    changes: dict[str, Any] = field(default_factory=dict)


def last_change(session: Session, entity: str, entity_id: int) -> LastChange | None:
    """The newest audit event of ``entity`` ``entity_id`` that the session may see (None: none visible)."""
    row = session.execute(
        select(AuditEvent.action, User.full_name, AuditEvent.occurred_at, AuditEvent.changes)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return LastChange(row.action, row.full_name, row.occurred_at, dict(row.changes or {}))
