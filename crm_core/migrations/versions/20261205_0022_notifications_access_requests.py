"""notifications (the bell), preferences per user and kind, team group robots, access requests (撞单)

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base(table: str, *, versioned: bool = False) -> list[Any]:
    items: list[Any] = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]
    if versioned:
        items.append(sa.Column("version", sa.Integer(), nullable=False))
    return items


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "notifications",
        *_base("notifications"),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=True),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=100), nullable=True),
        sa.Column("robot_team_id", sa.Integer(), nullable=True),
        sa.Column("robot_status", sa.String(length=16), nullable=True),
        sa.Column("robot_attempts", sa.Integer(), nullable=False),
        sa.Column("robot_next_at", sa.DateTime(), nullable=True),
        sa.Column("robot_error", sa.String(length=500), nullable=True),
        _fk("notifications", "user_id", "users"),
        _fk("notifications", "robot_team_id", "teams"),
    )
    op.create_index(op.f("ix_notifications_tenant_id_user_id_read_at_id"), "notifications",
                    ["tenant_id", "user_id", "read_at", "id"])
    op.create_index(op.f("ix_notifications_tenant_id_user_id_id"), "notifications", ["tenant_id", "user_id", "id"])
    op.create_index(op.f("ix_notifications_user_id_dedupe_key"), "notifications", ["user_id", "dedupe_key"],
                    unique=True)
    op.create_index(op.f("ix_notifications_tenant_id_robot_status_robot_next_at"), "notifications",
                    ["tenant_id", "robot_status", "robot_next_at"])
    op.create_table(
        "notification_preferences",
        *_base("notification_preferences", versioned=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.Column("robot", sa.Boolean(), nullable=False),
        _fk("notification_preferences", "user_id", "users"),
    )
    op.create_index(op.f("ix_notification_preferences_user_id_kind"), "notification_preferences",
                    ["user_id", "kind"], unique=True)
    op.create_table(
        "team_robots",
        *_base("team_robots", versioned=True),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("signing_secret", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _fk("team_robots", "team_id", "teams"),
    )
    op.create_index(op.f("ix_team_robots_tenant_id_team_id"), "team_robots", ["tenant_id", "team_id"], unique=True)
    op.create_table(
        "access_requests",
        *_base("access_requests", versioned=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_name", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        _fk("access_requests", "customer_id", "customers"),
        _fk("access_requests", "requester_id", "users"),
        _fk("access_requests", "owner_id", "users"),
        _fk("access_requests", "team_id", "teams"),
        _fk("access_requests", "decided_by_id", "users"),
    )
    for columns in (["tenant_id", "customer_id", "status"], ["tenant_id", "requester_id", "status"],
                    ["tenant_id", "owner_id", "status"]):
        op.create_index(op.f(f"ix_access_requests_{'_'.join(columns)}"), "access_requests", columns)


def downgrade() -> None:
    op.drop_table("access_requests")
    op.drop_table("team_robots")
    op.drop_table("notification_preferences")
    op.drop_table("notifications")
