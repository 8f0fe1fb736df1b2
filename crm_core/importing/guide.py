"""The "Move in" guide's facts: the order in which another CRM's files are imported, and which entities the
tenant already holds records of (the guide marks those steps; texts are in the ``move_in.*`` catalog keys)."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.db import Database
from crm_core.importing.runner import MODELS

MOVE_IN_ORDER = ("products", "customers", "contacts", "opportunities", "deal_lines", "orders", "activities", "tasks")
"""Each file may name records of the files before it (a deal its customer and product, an order its lines'
products), so they go in this order."""


def entities_present(db: Database, tenant_id: int) -> dict[str, bool]:
    """Per step of :data:`MOVE_IN_ORDER`: does the tenant hold at least one record of it (anyone's, not only
    the ones the reader may see: the guide is about the tenant's move-in)."""
    with db.system_session("move-in guide: which entities hold records") as session:
        return {
            entity: session.scalar(
                select(MODELS[entity].id).where(MODELS[entity].tenant_id == tenant_id).limit(1)
            ) is not None
            for entity in MOVE_IN_ORDER
        }
