"""Read side of the notification centre: my unread count, my notifications (newest first, by keyset), the
access requests I may decide. Every statement runs under the session's actor: a user reads only their own
notifications (``access.visibility_clause``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import Customer, User
from crm_core.models.notifications import AccessRequest, AccessRequestStatus, Notification
from crm_core.queries.paging import Page

PAGE_MAX = 100


@dataclass(frozen=True)
class NotificationRow:
    """One notification as the bell lists it (``params`` hold user text: show them as text)."""

    id: int
    kind: str
    entity: str | None
    entity_id: int | None
    params: dict[str, Any]
    created_at: dt.datetime
    read_at: dt.datetime | None


def unread_count(session: Session) -> int:
    """How many of my notifications are unread (one indexed COUNT)."""
    return int(session.scalar(select(func.count()).select_from(Notification).where(Notification.read_at.is_(None)))
               or 0)


def list_notifications(session: Session, *, unread_only: bool = False, before_id: int | None = None,
                       limit: int = 20) -> Page[NotificationRow]:
    """My notifications, newest first, ``limit`` at a time; the next page starts before the last row's id."""
    limit = max(1, min(limit, PAGE_MAX))
    statement = select(Notification).order_by(Notification.id.desc()).limit(limit + 1)
    if unread_only:
        statement = statement.where(Notification.read_at.is_(None))
    if before_id is not None:
        statement = statement.where(Notification.id < before_id)
    rows = list(session.scalars(statement))
    items = [NotificationRow(row.id, row.kind, row.entity, row.entity_id, dict(row.params or {}), row.created_at,
                             row.read_at) for row in rows[:limit]]
    return Page(items=items, per_page=limit, has_next=len(rows) > limit)


@dataclass(frozen=True)
class AccessRequestRow:
    """An access request as its decider sees it (``customer_name`` None for whoever may not see the customer)."""

    id: int
    status: str
    requester_id: int
    requester_name: str
    customer_id: int
    customer_name: str | None
    reason: str
    requested_name: str
    created_at: dt.datetime
    decided_at: dt.datetime | None


def get_access_request(session: Session, request_id: int) -> AccessRequestRow | None:
    """One visible access request (the customer's name only when the reader sees the customer)."""
    rows = _request_rows(session, AccessRequest.id == request_id)
    return rows[0] if rows else None


def pending_access_requests(session: Session, *, limit: int = 50) -> list[AccessRequestRow]:
    """Pending requests I may see other than my own (those I, my team's manager or an admin decide), oldest first."""
    return _request_rows(session, AccessRequest.status == AccessRequestStatus.PENDING, limit=limit, others=True)


def _request_rows(session: Session, *criteria: Any, limit: int = 50, others: bool = False) -> list[AccessRequestRow]:
    requester = aliased(User)
    statement = (
        select(AccessRequest, requester.full_name, Customer.name)
        .join(requester, requester.id == AccessRequest.requester_id)
        .outerjoin(Customer, Customer.id == AccessRequest.customer_id)  # scoped: None when not visible
        .where(*criteria).order_by(AccessRequest.id).limit(limit)
    )
    if others:
        from crm_core.access import actor_of

        actor = actor_of(session)
        if actor is not None:
            statement = statement.where(AccessRequest.requester_id != actor.user_id)
    return [AccessRequestRow(request.id, request.status, request.requester_id, requester_name, request.customer_id,
                             customer_name, request.reason, request.requested_name, request.created_at,
                             request.decided_at)
            for request, requester_name, customer_name in session.execute(statement)]


@dataclass(frozen=True)
class TeamRobotRow:
    """A team's robot as admins see it: never its secret, only whether one is stored."""

    team_id: int
    platform: str
    url: str
    language: str
    enabled: bool
    has_secret: bool
    last_sent_at: dt.datetime | None
    last_failed_at: dt.datetime | None
    last_error: str | None


def team_robots(session: Session) -> dict[int, TeamRobotRow]:
    """The tenant's team robots by team (admins; nobody else reads them)."""
    from crm_core.models.notifications import TeamRobot

    return {robot.team_id: TeamRobotRow(robot.team_id, robot.platform, robot.url, robot.language, robot.enabled,
                                        bool(robot.signing_secret), robot.last_sent_at, robot.last_failed_at,
                                        robot.last_error)
            for robot in session.scalars(select(TeamRobot))}
