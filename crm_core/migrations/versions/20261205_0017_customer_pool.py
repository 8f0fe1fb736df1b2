"""the public customer pool (公海): rules per team, the ledger of returns and claims, owner_since

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_since", sa.DateTime(), nullable=True))
    op.create_table(
        "pool_rules",
        *_timestamps(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("idle_days", sa.Integer(), nullable=False),
        sa.Column("no_deal_days", sa.Integer(), nullable=True),
        sa.Column("protected_stage_ids", sa.JSON(), nullable=False),
        sa.Column("reminder_days", sa.Integer(), nullable=False),
        sa.Column("daily_claim_cap", sa.Integer(), nullable=False),
        sa.Column("held_cap", sa.Integer(), nullable=True),
        sa.Column("cooldown_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_pool_rules_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_pool_rules_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_rules")),
    )
    op.create_index(op.f("ix_pool_rules_tenant_id_team_id"), "pool_rules", ["tenant_id", "team_id"])
    op.create_table(
        "pool_events",
        *_timestamps(),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("previous_owner_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("run_key", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_pool_events_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_pool_events_customer_id_customers")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_pool_events_user_id_users")),
        sa.ForeignKeyConstraint(["previous_owner_id"], ["users.id"],
                                name=op.f("fk_pool_events_previous_owner_id_users")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_pool_events_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_events")),
    )
    op.create_index(op.f("ix_pool_events_tenant_id_customer_id_occurred_at"), "pool_events",
                    ["tenant_id", "customer_id", "occurred_at"])
    op.create_index(op.f("ix_pool_events_tenant_id_user_id_kind_occurred_at"), "pool_events",
                    ["tenant_id", "user_id", "kind", "occurred_at"])
    op.create_index("ix_pool_events_cooldown", "pool_events",
                    ["tenant_id", "previous_owner_id", "customer_id", "occurred_at"])
    op.create_index(op.f("ix_pool_events_tenant_id_run_key"), "pool_events", ["tenant_id", "run_key"])


def downgrade() -> None:
    op.drop_table("pool_events")
    op.drop_table("pool_rules")
    # a plain DROP COLUMN (SQLite ≥ 3.35 too): a batch copy of customers fails on SQLite, whose
    # full-text view customers_fts_source names the table being swapped
    op.drop_column("customers", "owner_since")
