"""Read side for users and teams (owner pickers, the admin's user list)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from crm_core.access import Actor, can_assign_owner
from crm_core.models import Team, User


@dataclass(frozen=True)
class UserRow:
    """A user as the admin's list shows them."""

    id: int
    username: str
    full_name: str
    email: str | None
    role: str
    team_id: int | None
    team_name: str | None
    is_active: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None
    version: int


def list_users(session: Session, *, active_only: bool = False) -> list[UserRow]:
    """Users of the actor's tenant, by name."""
    statement = select(User, Team.name).outerjoin(Team, Team.id == User.team_id).order_by(User.full_name)
    if active_only:
        statement = statement.where(User.is_active.is_(True))
    return [
        UserRow(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            email=user.email,
            role=user.role,
            team_id=user.team_id,
            team_name=team_name,
            is_active=user.is_active,
            locked_until=user.locked_until,
            last_login_at=user.last_login_at,
            version=user.version,
        )
        for user, team_name in session.execute(statement)
    ]


def assignable_owners(session: Session, *, user_ids: frozenset[int] | None = None) -> list[tuple[int, str]]:
    """(id, name) of active users who may own records, optionally limited to ``user_ids``."""
    statement = select(User.id, User.full_name).where(User.is_active.is_(True)).order_by(User.full_name)
    if user_ids is not None:
        statement = statement.where(User.id.in_(sorted(user_ids)))
    return [(row.id, row.full_name) for row in session.execute(statement)]


def owner_choices(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """(username, full name) of the active users ``actor`` may give records to (``access.can_assign_owner``),
    by full name: the fallback owner an import offers."""
    statement = select(User.id, User.username, User.full_name).where(User.is_active.is_(True)).order_by(
        User.full_name, User.username)
    return [(row.username, row.full_name) for row in session.execute(statement) if can_assign_owner(actor, row.id)]


def list_teams(session: Session) -> list[tuple[int, str, str | None, str | None]]:
    """(id, name, region, manager name) of the tenant's teams."""
    manager = aliased(User)
    statement = (
        select(Team.id, Team.name, Team.region, manager.full_name)
        .outerjoin(manager, manager.id == Team.manager_id)
        .order_by(Team.name)
    )
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(statement)]


def tenant_name(session: Session) -> str:
    """The name of the actor's tenant."""
    from crm_core.models import Tenant

    return session.scalars(select(Tenant.name)).first() or ""
