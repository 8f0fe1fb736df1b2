"""Saved views: a user names the current grid setup (filters, columns, sort) to reopen it,
optionally sharing it with their team. Only the owner changes or deletes a view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import User
from crm_core.models.sales import SavedView
from crm_core.queries.customers import SORTABLE_COLUMNS


@dataclass
class SavedViewInput:
    """What the grid's "save view" form sends."""

    name: str
    filters: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    sort: str = "updated_at"
    descending: bool = True
    shared_with_team: bool = False
    entity: str = "customer"


def save_view(db: Database, actor: Actor, form: SavedViewInput) -> int:
    """Create the actor's view named ``form.name``, or replace the one they already have by that name."""
    name = form.name.strip()
    if not name:
        raise ValidationFailed({"name": ("validation.required", {})})
    if len(name) > 120:
        raise ValidationFailed({"name": ("validation.too_long", {"max": 120})})
    if form.sort not in SORTABLE_COLUMNS:
        raise ValidationFailed({"sort": ("validation.choice", {})})
    with db.transaction(actor) as session:
        team_id = session.scalar(select(User.team_id).where(User.id == actor.user_id))
        if form.shared_with_team and team_id is None:
            raise ValidationFailed({"shared_with_team": ("saved_views.no_team", {})})
        view = session.scalars(
            select(SavedView).where(SavedView.user_id == actor.user_id, SavedView.name == name)
        ).one_or_none()
        if view is None:
            view = SavedView(tenant_id=actor.tenant_id, user_id=actor.user_id, name=name, entity=form.entity)
            session.add(view)
        view.team_id = team_id
        view.filters = form.filters
        view.columns = list(form.columns)
        view.sort = form.sort
        view.descending = form.descending
        view.shared_with_team = form.shared_with_team
        session.flush()
        return view.id


def delete_view(db: Database, actor: Actor, view_id: int) -> None:
    """Delete one of the actor's own views (a teammate's shared view is not theirs to delete)."""
    with db.transaction(actor) as session:
        view = session.get(SavedView, view_id)
        if view is None:
            raise NotFound("saved_view")
        if view.user_id != actor.user_id:
            raise AccessDenied("only the owner deletes a view")
        session.delete(view)
