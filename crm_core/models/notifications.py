"""Tables of the notification centre and of access requests (撞单).

- ``notifications``: one line in one user's bell. ``kind`` names the message (catalog key
  ``notifications.kind.<kind>``) and ``params`` its values, so each reader sees it in their own
  language; ``entity``/``entity_id`` name the record it opens. ``dedupe_key`` makes the daily
  task sweep idempotent (unique per user). The ``robot_*`` columns carry its delivery to the
  team's group robot (WeCom / DingTalk), sent by the ``notification_robots`` job after commit.
- ``notification_preferences``: a user's choice per kind (in the bell; to the team robot).
- ``team_robots``: a team's group-robot webhook; its signing secret is stored as the webhooks'
  secrets are (readable to sign, never audited, never shown again).
- ``access_requests``: a rep blocked by the duplicate check asks the owner (or the team's
  manager) for the existing customer; approval transfers ownership (decision 0028).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class RobotStatus:
    """Where a notification's group-robot message stands (NULL: not for a robot)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(TenantScoped, Base):
    """One notification for one user: seen in their bell until read."""

    __tablename__ = "notifications"
    __table_args__ = (
        # my unread, newest first (the bell's count and list); my list, newest first
        Index(None, "tenant_id", "user_id", "read_at", "id"),
        Index(None, "tenant_id", "user_id", "id"),
        Index(None, "user_id", "dedupe_key", unique=True),
        Index(None, "tenant_id", "robot_status", "robot_next_at"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str | None] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    dedupe_key: Mapped[str | None] = mapped_column(String(100))
    robot_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    robot_status: Mapped[str | None] = mapped_column(String(16))
    robot_attempts: Mapped[int] = mapped_column(Integer, default=0)
    robot_next_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    robot_error: Mapped[str | None] = mapped_column(String(500))


class NotificationPreference(TenantScoped, Versioned, Base):
    """A user's choice for one kind of notification; no row: in the bell and to the robot."""

    __tablename__ = "notification_preferences"
    __table_args__ = (Index(None, "user_id", "kind", unique=True),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    robot: Mapped[bool] = mapped_column(Boolean, default=True)


class RobotPlatform:
    WECOM = "wecom"  # 企业微信 group robot: no signature
    DINGTALK = "dingtalk"  # 钉钉 group robot: timestamp + HMAC-SHA256 signature when a secret is set
    ALL = (WECOM, DINGTALK)


class TeamRobot(TenantScoped, Versioned, Base):
    """A team's group-robot webhook: its members' notifications are posted there too."""

    __tablename__ = "team_robots"
    __table_args__ = (Index(None, "tenant_id", "team_id", unique=True),)

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    platform: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2000))
    signing_secret: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class AccessRequestStatus:
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class AccessRequest(TenantScoped, Versioned, Base):
    """A rep's request for a customer the duplicate check found, decided by its owner, their manager or an admin.

    ``owner_id``/``team_id`` are the customer's at the time of the request: who may see and decide it.
    ``requested_name`` is what the requester typed (their own text), never the customer's fields.
    """

    __tablename__ = "access_requests"
    __table_args__ = (
        Index(None, "tenant_id", "customer_id", "status"),
        Index(None, "tenant_id", "requester_id", "status"),
        Index(None, "tenant_id", "owner_id", "status"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default=AccessRequestStatus.PENDING)
    reason: Mapped[str] = mapped_column(String(500), default="")
    requested_name: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
