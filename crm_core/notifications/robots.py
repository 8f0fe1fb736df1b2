"""Post notifications to a team's group robot (WeCom 企业微信 / DingTalk 钉钉): the ``notification_robots`` job.

A commit that wrote a notification for a robot queues a run for its tenant (``services.notifications``);
a tenant with a robot also has an every-minute schedule (added with its first robot) that sends retries
and anything a lost queue message left. Each run claims due rows one by one with a conditional UPDATE (a
second worker's claim of the same row matches nothing), posts through the webhooks' sender (the same
address vetting: no private, loopback or link-local target unless the tenant allows them, no redirects),
and records the outcome on the row and on the team's robot (its last error, shown to admins on the Users
page). A failure is tried again after 1 min, 5 min, 30 min and 2 h; then the row is ``failed``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from crm_core.db import Database
from crm_core.i18n import normalise_language, t
from crm_core.jobs.context import JobContext, job_kind
from crm_core.models import Base, Role, utcnow
from crm_core.models.notifications import RobotPlatform, RobotStatus
from crm_core.rules.notifications import dingtalk_signed_url, message_key, robot_accepted, robot_body
from crm_core.webhooks.sending import Answer, post

LOG = logging.getLogger("kestrel.notifications")
KIND = "notification_robots"
RETRY_DELAYS = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30), dt.timedelta(hours=2))
LEASE = dt.timedelta(minutes=2)
BATCH = 100
TIMEOUT_SECONDS = 10.0

notifications = Base.metadata.tables["notifications"]
robots = Base.metadata.tables["team_robots"]
users = Base.metadata.tables["users"]
settings = Base.metadata.tables["webhook_settings"]

Sender = Callable[[str, str, dict[str, str], bool, float], Answer]


def http_sender(url: str, body: str, headers: dict[str, str], allow_private: bool, timeout: float) -> Answer:
    """The real sender: the webhooks' POST to a vetted address."""
    return post(url, body, headers, allow_private=allow_private, timeout=timeout)


@dataclass
class RobotReport:
    """What a run did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


def robot_text(kind: str, params: dict[str, Any], recipient: str, language: str) -> str:
    """The message a robot posts: to whom, and what, in the team's language."""
    message = t(message_key(kind, params), language, **params)
    return t("notifications.robot.line", language, name=recipient, message=message)


def deliver_due(db: Database, tenant_id: int, *, now: dt.datetime | None = None,
                sender: Sender = http_sender) -> RobotReport:
    """Post the tenant's due robot messages; each outcome recorded in a transaction of its own."""
    report = RobotReport()
    now = now or utcnow()
    with db.system_session("notifications: due robot messages") as session:
        due = list(session.connection().execute(
            select(notifications.c.id).where(
                notifications.c.tenant_id == tenant_id, notifications.c.robot_status == RobotStatus.PENDING,
                notifications.c.robot_next_at <= now)
            .order_by(notifications.c.id).limit(BATCH)).scalars())
        allow_private = bool(session.connection().execute(
            select(settings.c.allow_private_targets).where(settings.c.tenant_id == tenant_id)).scalar())
    for notification_id in due:
        outcome = _deliver_one(db, tenant_id, notification_id, now, allow_private, sender)
        if outcome == RobotStatus.SENT:
            report.sent += 1
        elif outcome == RobotStatus.FAILED:
            report.failed += 1
        elif outcome == RobotStatus.PENDING:
            report.retrying += 1
    return report


def _deliver_one(db: Database, tenant_id: int, notification_id: int, now: dt.datetime, allow_private: bool,
                 sender: Sender) -> str | None:
    with db.system_transaction("notifications: robot claim") as session:
        claimed = session.connection().execute(
            update(notifications).where(and_(
                notifications.c.id == notification_id, notifications.c.robot_status == RobotStatus.PENDING,
                notifications.c.robot_next_at <= now))
            .values(robot_next_at=now + LEASE)).rowcount
        if not claimed:
            return None  # another worker holds it
        row = session.connection().execute(
            select(notifications.c.kind, notifications.c.params, notifications.c.robot_attempts,
                   robots.c.id.label("robot_id"), robots.c.platform, robots.c.url, robots.c.signing_secret,
                   robots.c.language, robots.c.enabled, users.c.full_name)
            .join(users, users.c.id == notifications.c.user_id)
            .outerjoin(robots, and_(robots.c.tenant_id == tenant_id, robots.c.team_id == notifications.c.robot_team_id))
            .where(notifications.c.id == notification_id)).one()
    if row.robot_id is None or not row.enabled:  # the robot was removed or switched off meanwhile
        _record(db, notification_id, None, RobotStatus.FAILED, row.robot_attempts, "robot removed or disabled", now)
        return RobotStatus.FAILED
    params = row.params if isinstance(row.params, dict) else {}
    text = robot_text(row.kind, params, row.full_name, normalise_language(row.language))
    url = row.url
    if row.platform == RobotPlatform.DINGTALK and row.signing_secret:
        url = dingtalk_signed_url(url, row.signing_secret, int(now.replace(tzinfo=dt.UTC).timestamp() * 1000))
    answer = sender(url, robot_body(text), {"content-type": "application/json; charset=utf-8",
                                            "user-agent": "Kestrel-Notifications/1"}, allow_private, TIMEOUT_SECONDS)
    attempts = row.robot_attempts + 1
    if robot_accepted(answer.status_code, answer.body):
        _record(db, notification_id, row.robot_id, RobotStatus.SENT, attempts, None, now)
        return RobotStatus.SENT
    error = answer.error or f"HTTP {answer.status_code}: {answer.body[:300]}"
    status = RobotStatus.PENDING if attempts <= len(RETRY_DELAYS) else RobotStatus.FAILED
    _record(db, notification_id, row.robot_id, status, attempts, error, now)
    return status


def _record(db: Database, notification_id: int, robot_id: int | None, status: str, attempts: int,
            error: str | None, now: dt.datetime) -> None:
    next_at = now + RETRY_DELAYS[attempts - 1] if status == RobotStatus.PENDING else None
    with db.system_transaction("notifications: robot outcome") as session:
        connection = session.connection()
        connection.execute(update(notifications).where(notifications.c.id == notification_id).values(
            robot_status=status, robot_attempts=attempts, robot_next_at=next_at,
            robot_error=error[:500] if error else None, updated_at=now))
        if robot_id is None:
            return
        if error is None:
            connection.execute(update(robots).where(robots.c.id == robot_id).values(last_sent_at=now))
        else:
            connection.execute(update(robots).where(robots.c.id == robot_id).values(
                last_failed_at=now, last_error=error[:500]))


# not "schedulable" by default: a tenant's first robot adds its schedule (crm_core.jobs.service.ensure_schedule)
@job_kind(KIND, roles=frozenset({Role.ADMIN}))
def notification_robots(ctx: JobContext) -> dict[str, Any]:
    """Post the tenant's due notifications to their teams' group robots; result: sent, retrying, failed."""
    ctx.progress(0, None, "jobs.progress.notification_robots")
    report = deliver_due(ctx.db, ctx.tenant_id)
    ctx.progress(report.sent + report.retrying + report.failed, None)
    return {"sent": report.sent, "retrying": report.retrying, "failed": report.failed}
