"""Notifications: written inside the transaction of the change that causes them; read marks; preferences.

Pattern: :func:`notify` is called by other services on their open session (a task given, a note that
mentions someone, an access request), so a rolled-back change notifies nobody. It reads the recipient's
preference and their team's robot through the session's connection (Core, outside the ORM's scoping:
the acting user may not read a colleague's preferences or the admin-only robot settings), adds the row,
and — when the team has a robot the recipient wants — marks it for the robot and asks for the
``notification_robots`` job after commit. Notifications are not audited (derived from audited
changes; a read mark is a user's own state): see docs/decisions/0028-notifications-and-access-requests.md.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, and_, event, func, or_, select, update
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Base, Customer, User, utcnow
from crm_core.models.notifications import Notification, NotificationPreference, RobotStatus
from crm_core.rules.notifications import KINDS, MENTIONS_MAX, mention_handle, parse_mentions

ROBOT_KEY = "crm_notification_robots"  # tenant ids whose robot job runs after this session commits
notifications = Base.metadata.tables["notifications"]
preferences = Base.metadata.tables["notification_preferences"]
robots = Base.metadata.tables["team_robots"]
users = Base.metadata.tables["users"]


def notify(
    session: Session, *, tenant_id: int, user_id: int, kind: str, params: Mapping[str, Any] | None = None,
    entity: str | None = None, entity_id: int | None = None, actor_id: int | None = None,
    dedupe_key: str | None = None, now: dt.datetime | None = None,
) -> bool:
    """Tell ``user_id`` about ``kind`` in ``session``'s transaction; False when nothing was written
    (the recipient is the actor, inactive or of another tenant, or turned the kind off)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if actor_id is not None and user_id == actor_id:
        return False  # nobody is told about their own action
    connection = session.connection()
    recipient = connection.execute(
        select(users.c.team_id, users.c.is_active).where(users.c.id == user_id, users.c.tenant_id == tenant_id)
    ).one_or_none()
    if recipient is None or not recipient.is_active:
        return False
    choice = connection.execute(
        select(preferences.c.in_app, preferences.c.robot)
        .where(preferences.c.user_id == user_id, preferences.c.kind == kind)
    ).one_or_none()
    in_app, robot = (True, True) if choice is None else (bool(choice.in_app), bool(choice.robot))
    robot_team = None
    if robot and recipient.team_id is not None:
        robot_team = connection.execute(
            select(robots.c.team_id).where(robots.c.tenant_id == tenant_id, robots.c.team_id == recipient.team_id,
                                           robots.c.enabled.is_(True))
        ).scalar_one_or_none()
    if not in_app and robot_team is None:
        return False
    if dedupe_key is not None and connection.execute(
            select(notifications.c.id).where(notifications.c.user_id == user_id,
                                             notifications.c.dedupe_key == dedupe_key)).first() is not None:
        return False
    now = now or utcnow()
    session.add(Notification(
        tenant_id=tenant_id, user_id=user_id, kind=kind, entity=entity, entity_id=entity_id,
        params=dict(params or {}), dedupe_key=dedupe_key, created_at=now, updated_at=now,
        read_at=None if in_app else now,  # robot only: kept for its delivery, never in the bell
        robot_team_id=robot_team, robot_status=RobotStatus.PENDING if robot_team is not None else None,
        robot_next_at=now if robot_team is not None else None, robot_attempts=0,
    ))
    if robot_team is not None:
        session.info.setdefault(ROBOT_KEY, set()).add(tenant_id)
    return True


@event.listens_for(Session, "after_commit")
def _robots_after_commit(session: Session) -> None:
    tenant_ids = session.info.pop(ROBOT_KEY, None)
    if not tenant_ids or os.environ.get("CRM_JOBS_INLINE", "").strip().lower() in ("1", "yes", "true"):
        return
    try:
        bind = session.get_bind()
    except Exception:  # an unbound session: the robots' schedule sends them
        return
    if not isinstance(bind, Engine):
        return  # a test's connection, rolled back at its end: no worker will see these rows
    from crm_core.notifications.robots import request_robot_delivery

    for tenant_id in sorted(tenant_ids):
        request_robot_delivery(Database(bind), tenant_id)


@event.listens_for(Session, "after_rollback")
def _forget_robots(session: Session) -> None:
    session.info.pop(ROBOT_KEY, None)


def mark_read(db: Database, actor: Actor, notification_id: int) -> None:
    """Mark one of the actor's notifications read (NotFound for anyone else's)."""
    with db.transaction(actor) as session:
        notification = session.scalars(select(Notification).where(Notification.id == notification_id)).one_or_none()
        if notification is None:
            raise NotFound("notification", id=notification_id)
        if notification.read_at is None:
            notification.read_at = utcnow()


def mark_all_read(db: Database, actor: Actor) -> int:
    """Mark every unread notification of the actor read, in one UPDATE; how many."""
    with db.transaction(actor) as session:
        # Core, on the actor's own rows by construction (the scoped ORM UPDATE is refused to analysts)
        result = session.connection().execute(
            update(notifications)
            .where(and_(notifications.c.tenant_id == actor.tenant_id, notifications.c.user_id == actor.user_id,
                        notifications.c.read_at.is_(None)))
            .values(read_at=utcnow())
        )
        return int(result.rowcount or 0)


def preferences_of(session: Session) -> dict[str, tuple[bool, bool]]:
    """The session's user's choice per kind: ``{kind: (in_app, robot)}``, every kind (default: both on)."""
    stored = {row.kind: (row.in_app, row.robot) for row in session.scalars(select(NotificationPreference))}
    return {kind: stored.get(kind, (True, True)) for kind in KINDS}


def save_preferences(db: Database, actor: Actor, choices: Mapping[str, tuple[bool, bool]]) -> int:
    """Store the actor's choice per kind (``{kind: (in_app, robot)}``); how many changed. Audited."""
    unknown = sorted(set(choices) - set(KINDS))
    if unknown:
        raise ValidationFailed({"kind": ("validation.choice", {})})
    changed = 0
    with db.transaction(actor) as session:
        stored = {row.kind: row for row in session.scalars(select(NotificationPreference))}
        for kind, (in_app, robot) in choices.items():
            row = stored.get(kind)
            if row is None:
                if in_app and robot:
                    continue  # the default: no row needed
                session.add(NotificationPreference(tenant_id=actor.tenant_id, user_id=actor.user_id, kind=kind,
                                                   in_app=bool(in_app), robot=bool(robot)))
                changed += 1
            elif (row.in_app, row.robot) != (bool(in_app), bool(robot)):
                row.in_app, row.robot = bool(in_app), bool(robot)
                changed += 1
    return changed



EXCERPT_MAX = 140


def notify_mentions(session: Session, actor: Actor, customer: Customer, activity_id: int, note: str) -> int:
    """Tell each active user of the tenant named ``@username`` (or ``@FullName`` without spaces) in ``note``
    who may see ``customer``; how many were told. Someone who may not see it is not told (the message names it)."""
    from crm_core import access
    from crm_core.services.auth import actor_of_user

    handles = parse_mentions(note)
    if not handles:
        return 0
    candidates = session.scalars(select(User).where(
        User.tenant_id == actor.tenant_id, User.is_active.is_(True),
        or_(func.lower(User.username).in_(handles),
            func.lower(func.replace(User.full_name, " ", "")).in_(handles)),
    ).order_by(User.id).limit(MENTIONS_MAX * 2)).all()
    excerpt = " ".join(note.split())
    excerpt = excerpt if len(excerpt) <= EXCERPT_MAX else excerpt[:EXCERPT_MAX - 1] + "…"
    told = 0
    for user in candidates:
        named = mention_handle(user.username) in handles or mention_handle(user.full_name) in handles
        if user.id == actor.user_id or not named:
            continue
        reader = actor_of_user(session, user)
        if not access.can_view(reader, tenant_id=customer.tenant_id, owner_id=customer.owner_id,
                               team_id=customer.team_id):
            continue
        told += notify(session, tenant_id=actor.tenant_id, user_id=user.id, kind="mention", entity="customer",
                       entity_id=customer.id, actor_id=actor.user_id,
                       params={"by": actor.full_name or actor.username, "name": customer.name, "excerpt": excerpt},
                       dedupe_key=f"mention:{activity_id}")
    return told
