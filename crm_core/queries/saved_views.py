"""Read side for saved views: the actor's own views and those their team shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import User
from crm_core.models.sales import SavedView


@dataclass(frozen=True)
class SavedViewRow:
    """A view as the grid's view picker shows it."""

    id: int
    name: str
    owner_name: str
    mine: bool
    shared_with_team: bool
    filters: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    sort: str = "updated_at"
    descending: bool = True


def list_views(session: Session, *, user_id: int, entity: str = "customer") -> list[SavedViewRow]:
    """Views ``user_id`` may open (scoping in :mod:`crm_core.access`): own first, then shared, by name."""
    statement = (
        select(SavedView, User.full_name)
        .join(User, User.id == SavedView.user_id)
        .where(SavedView.entity == entity)
        .order_by(SavedView.name, SavedView.id)
    )
    rows = [
        SavedViewRow(
            id=view.id, name=view.name, owner_name=owner_name, mine=view.user_id == user_id,
            shared_with_team=view.shared_with_team, filters=dict(view.filters or {}),
            columns=list(view.columns or []), sort=view.sort, descending=view.descending,
        )
        for view, owner_name in session.execute(statement)
    ]
    return sorted(rows, key=lambda row: (not row.mine, row.name))
