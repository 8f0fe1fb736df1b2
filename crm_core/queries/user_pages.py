"""The admin's user list paged by keyset (the API's ``/v1/users``), with the user list's own rows.

Ordered by id, so a user added meanwhile never shifts a page; rows are the ``UserRow`` of
:mod:`crm_core.queries.users`. Tenant scoping comes from the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Team, User
from crm_core.queries.users import UserRow


@dataclass(frozen=True)
class UserPage:
    """One keyset page of users."""

    items: list[UserRow]
    has_next: bool
    next_position: int | None
    total: int | None = None
    total_capped: bool = False


def _row(user: User, team_name: str | None) -> UserRow:
    return UserRow(id=user.id, username=user.username, full_name=user.full_name, email=user.email, role=user.role,
                   team_id=user.team_id, team_name=team_name, is_active=user.is_active,
                   locked_until=user.locked_until, last_login_at=user.last_login_at, version=user.version)


def _filtered(statement: Any, *, active_only: bool, role: str | None, team_id: int | None) -> Any:
    if active_only:
        statement = statement.where(User.is_active.is_(True))
    if role is not None:
        statement = statement.where(User.role == role)
    if team_id is not None:
        statement = statement.where(User.team_id == team_id)
    return statement


def list_user_page(session: Session, *, active_only: bool = False, role: str | None = None,
                   team_id: int | None = None, per_page: int = 50, after: int | None = None,
                   count_cap: int | None = None) -> UserPage:
    """Users of the actor's tenant by id, past ``after``; ``count_cap`` adds a count capped there."""
    per_page = max(1, min(per_page, 500))
    joined = select(User, Team.name).outerjoin(Team, Team.id == User.team_id)
    statement = _filtered(joined, active_only=active_only, role=role, team_id=team_id)
    if after is not None:
        statement = statement.where(User.id > after)
    rows = session.execute(statement.order_by(User.id).limit(per_page + 1)).all()
    items = [_row(user, team_name) for user, team_name in rows[:per_page]]
    has_next = len(rows) > per_page
    total, capped = None, False
    if count_cap is not None:
        ids = _filtered(select(User.id), active_only=active_only, role=role, team_id=team_id)
        inner = ids.limit(count_cap + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(inner)) or 0)
        capped, total = total > count_cap, min(total, count_cap)
    return UserPage(items=items, has_next=has_next, next_position=items[-1].id if has_next else None,
                    total=total, total_capped=capped)


def get_user_row(session: Session, user_id: int) -> UserRow | None:
    """One user of the actor's tenant as the user list shows them, or None."""
    row = session.execute(
        select(User, Team.name).outerjoin(Team, Team.id == User.team_id).where(User.id == user_id)
    ).first()
    return _row(row[0], row[1]) if row is not None else None
