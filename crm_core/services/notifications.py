"""Notifications: written inside the transaction of the change that causes them; read marks; preferences.

Pattern: :func:`notify` is called by other services on their open session (a task given, a note that
mentions someone, an access request), so a rolled-back change notifies nobody; :func:`notify_many` writes
thousands at once (the nightly pool run, the daily task sweep). They read the recipients, their preferences
and their teams' robots through the session's connection (Core, outside the ORM's scoping: the acting user
may not read a colleague's preferences or the admin-only robot settings), insert the rows, and — when the
team has a robot the recipient wants — mark them for the robot and ask for the ``notification_robots`` job
after commit. Notifications are not audited (derived from audited
changes; a read mark is a user's own state): see docs/decisions/0028-notifications-and-access-requests.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.bulk import insert_new, insert_rows
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.jobs.after_commit import JobAfterCommit
from crm_core.models import Base, Customer, User, utcnow
from crm_core.models.notifications import Notification, NotificationPreference, RobotStatus
from crm_core.rules.notifications import KINDS, MENTIONS_MAX, mention_handle, parse_mentions

notifications = Base.metadata.tables["notifications"]
preferences = Base.metadata.tables["notification_preferences"]
robots = Base.metadata.tables["team_robots"]
users = Base.metadata.tables["users"]


@dataclass(frozen=True)
class Notice:
    """One notification to write: for whom, what (a kind and its values), about which record."""

    user_id: int
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    entity: str | None = None
    entity_id: int | None = None
    dedupe_key: str | None = None  # unique per user: a second notice with the same key is not written


def notify(
    session: Session, *, tenant_id: int, user_id: int, kind: str, params: Mapping[str, Any] | None = None,
    entity: str | None = None, entity_id: int | None = None, actor_id: int | None = None,
    dedupe_key: str | None = None, now: dt.datetime | None = None,
) -> bool:
    """Tell ``user_id`` about ``kind`` in ``session``'s transaction; False when nothing was written
    (the recipient is the actor, inactive or of another tenant, turned the kind off, or was told already)."""
    notice = Notice(user_id, kind, dict(params or {}), entity, entity_id, dedupe_key)
    return bool(notify_many(session, tenant_id=tenant_id, notices=[notice], actor_id=actor_id, now=now))


LOOKUP_CHUNK = 500


def notify_many(session: Session, *, tenant_id: int, notices: Sequence[Notice], actor_id: int | None = None,
                now: dt.datetime | None = None) -> list[Notice]:
    """Write ``notices`` in ``session``'s transaction with a few set-based reads (recipients, their preferences,
    the tenant's robots, keys already used) and one multi-row INSERT; the notices written.

    The nightly pool run and the daily task sweep tell thousands at once: per notice, this costs no statement."""
    for notice in notices:
        if notice.kind not in KINDS:
            raise ValueError(f"unknown notification kind {notice.kind!r}")
    wanted = [notice for notice in notices if actor_id is None or notice.user_id != actor_id]  # not one's own
    if not wanted:
        return []
    connection = session.connection()
    user_ids = sorted({notice.user_id for notice in wanted})
    kinds = sorted({notice.kind for notice in wanted})
    keys = sorted({notice.dedupe_key for notice in wanted if notice.dedupe_key is not None})
    team_of: dict[int, int | None] = {}
    choices: dict[tuple[int, str], tuple[bool, bool]] = {}
    for chunk in _chunks(user_ids):
        team_of.update((row.id, row.team_id) for row in connection.execute(select(users.c.id, users.c.team_id).where(
            users.c.id.in_(chunk), users.c.tenant_id == tenant_id, users.c.is_active.is_(True))))
        for row in connection.execute(select(preferences.c.user_id, preferences.c.kind, preferences.c.in_app,
                                             preferences.c.robot)
                                      .where(preferences.c.user_id.in_(chunk), preferences.c.kind.in_(kinds))):
            choices[(row.user_id, row.kind)] = (bool(row.in_app), bool(row.robot))
    robot_teams = set(connection.execute(select(robots.c.team_id).where(
        robots.c.tenant_id == tenant_id, robots.c.enabled.is_(True))).scalars())
    used: set[tuple[int, str]] = set()
    for chunk in _chunks(keys):
        used.update((row.user_id, row.dedupe_key) for row in connection.execute(
            select(notifications.c.user_id, notifications.c.dedupe_key).where(
                notifications.c.tenant_id == tenant_id, notifications.c.dedupe_key.in_(chunk))))
    now = now or utcnow()
    written: list[Notice] = []
    rows: list[dict[str, Any]] = []
    for notice in wanted:
        if notice.user_id not in team_of:
            continue  # inactive, unknown or of another tenant
        if notice.dedupe_key is not None:
            if (notice.user_id, notice.dedupe_key) in used:
                continue
            used.add((notice.user_id, notice.dedupe_key))
        in_app, robot = choices.get((notice.user_id, notice.kind), (True, True))
        team_id = team_of[notice.user_id]
        robot_team = team_id if robot and team_id in robot_teams else None
        if not in_app and robot_team is None:
            continue
        rows.append({
            "tenant_id": tenant_id, "user_id": notice.user_id, "kind": notice.kind, "entity": notice.entity,
            "entity_id": notice.entity_id, "params": dict(notice.params), "dedupe_key": notice.dedupe_key,
            "created_at": now, "updated_at": now,
            "read_at": None if in_app else now,  # robot only: kept for its delivery, never in the bell
            "robot_team_id": robot_team, "robot_status": RobotStatus.PENDING if robot_team is not None else None,
            "robot_next_at": now if robot_team is not None else None, "robot_attempts": 0, "robot_error": None,
        })
        written.append(notice)
    if rows:
        insert_rows(session, notifications, rows)  # one executemany, values converted once per column
        if any(row["robot_team_id"] is not None for row in rows):
            _ROBOTS.mark(session, tenant_id)
    return written


def json_object(session: Session, **values: Any) -> Any:
    """SQL building the JSON object ``values`` (column expressions or plain values) on this session's database."""
    pairs = [part for key, value in values.items() for part in (literal(key), value)]
    if session.get_bind().dialect.name == "postgresql":
        return func.json_build_object(*pairs, type_=JSON)
    return func.json_object(*pairs, type_=JSON)


def notify_selected(session: Session, *, tenant_id: int, kind: str, entity: str, recipients: Select[Any],
                    now: dt.datetime) -> int:
    """Write a ``kind`` notification about ``entity`` per row of ``recipients`` (columns ``user_id``,
    ``entity_id``, ``params`` — SQL JSON, see :func:`json_object` — and ``dedupe_key``) with one
    INSERT … SELECT, by :func:`notify_many`'s rules (active recipients of the tenant, their choice for
    ``kind``, their team's robot, once per user and key); how many were written.

    For a sweep that tells tens of thousands at once: no row goes through Python."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    wanted = recipients.subquery()
    choice = preferences.alias("choice")
    robot_teams = sorted(session.connection().execute(select(robots.c.team_id).where(
        robots.c.tenant_id == tenant_id, robots.c.enabled.is_(True))).scalars())
    in_app = func.coalesce(choice.c.in_app, true())
    robot_team: Any = cast(null(), Integer)
    if robot_teams:
        robot_team = case((and_(func.coalesce(choice.c.robot, true()), users.c.team_id.in_(robot_teams)),
                           users.c.team_id), else_=cast(null(), Integer))
    rows = (
        select(literal(tenant_id), wanted.c.user_id, literal(kind), literal(entity), wanted.c.entity_id,
               wanted.c.params, wanted.c.dedupe_key, literal(now), literal(now),
               case((in_app, cast(null(), DateTime)), else_=literal(now)),  # robot only: never in the bell
               robot_team, case((robot_team.is_not(None), literal(RobotStatus.PENDING)), else_=null()),
               case((robot_team.is_not(None), literal(now)), else_=cast(null(), DateTime)), literal(0))
        .select_from(wanted)
        .join(users, and_(users.c.id == wanted.c.user_id, users.c.tenant_id == tenant_id,
                          users.c.is_active.is_(True)))
        .outerjoin(choice, and_(choice.c.user_id == users.c.id, choice.c.kind == kind))
        .where(or_(in_app, robot_team.is_not(None)))
    )
    # once per user and key: the unique index decides, not an anti-join over the table being filled
    written = insert_new(session, notifications, [
        "tenant_id", "user_id", "kind", "entity", "entity_id", "params", "dedupe_key", "created_at", "updated_at",
        "read_at", "robot_team_id", "robot_status", "robot_next_at", "robot_attempts"], rows,
        key=["user_id", "dedupe_key"])
    if written and robot_teams:
        _ROBOTS.mark(session, tenant_id)  # the robot job finds what is pending, if anything
    return written


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start:start + LOOKUP_CHUNK] for start in range(0, len(values), LOOKUP_CHUNK)]


_ROBOTS = JobAfterCommit("notification_robots")


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
