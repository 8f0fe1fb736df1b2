"""sales rollup: the funnel's and the dashboard's deal and revenue figures, kept by the sales_rollup job

Revision ID: 0046
Revises: 0045

``deal_rollup``: per tenant, measure (``created``: deals by creation day at their stage when counted;
``closed``: won and lost deals by close day), day (NULL: every day before the count), week, pipeline, stage, the
stage a lost deal left and the deal's owner, the deals, their amount, weighted amount and won cycle days.
``order_rollup``: confirmed and fulfilled orders per month (and per day of the count's month) and customer
owner/team. ``customer_rollup``: live customers per creation day (and week) and owner/team. ``task_rollup``:
open tasks due before the count's day per assignee. ``sales_rollup_runs``: when a tenant's rows were counted (decision 0064). The tables start empty:
until the job's first run (every 10 minutes) the figures are counted live, as before.

``opportunities (tenant_id, created_at)``: the deals created since the count, read live; ``(tenant_id, amount,
id)`` and ``(tenant_id, owner_id, amount, id)``: the biggest deals closing this month, read from the top.

On PostgreSQL the keys lead with ``tenant_id``, as every tenant's table since 0044 (decision 0058).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common(table: str) -> list[Any]:
    key = ("tenant_id", "id") if op.get_bind().dialect.name == "postgresql" else ("id",)
    return [
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")),
    ]


def upgrade() -> None:
    # the reports read the deals created since the count live: one index range, whatever the table holds
    op.create_index(op.f("ix_opportunities_tenant_id_created_at"), "opportunities", ["tenant_id", "created_at"])
    # the dashboard's biggest deals closing this month: read by amount from the top, ten matches end the scan
    # (the id too: equal amounts are common, and the ties are broken by id in the index's own order)
    op.create_index(op.f("ix_opportunities_tenant_id_amount_id"), "opportunities", ["tenant_id", "amount", "id"])
    op.create_index(op.f("ix_opportunities_tenant_id_owner_id_amount_id"), "opportunities",
                    ["tenant_id", "owner_id", "amount", "id"])
    op.create_table(
        "deal_rollup",
        *_common("deal_rollup"),
        sa.Column("measure", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("week", sa.Boolean(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("lost_from_stage_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("whole", sa.Boolean(), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("weighted", sa.Numeric(precision=22, scale=4), nullable=False),
        sa.Column("cycle_days", sa.Double(), nullable=False),
        sa.Column("cycle_deals", sa.Integer(), nullable=False),
    )
    op.create_index(op.f("ix_deal_rollup_tenant_id_whole_measure_week_owner_id_day"), "deal_rollup",
                    ["tenant_id", "whole", "measure", "week", "owner_id", "day"])
    op.create_table(
        "order_rollup",
        *_common("order_rollup"),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("month", sa.Boolean(), nullable=False),
        sa.Column("customer_owner_id", sa.Integer(), nullable=True),
        sa.Column("customer_team_id", sa.Integer(), nullable=True),
        sa.Column("whole", sa.Boolean(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
    )
    op.create_index(op.f("ix_order_rollup_tenant_id_whole_month_day"), "order_rollup",
                    ["tenant_id", "whole", "month", "day"])
    op.create_table(
        "customer_rollup",
        *_common("customer_rollup"),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("week", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("whole", sa.Boolean(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
    )
    op.create_index(op.f("ix_customer_rollup_tenant_id_whole_week_owner_id_day"), "customer_rollup",
                    ["tenant_id", "whole", "week", "owner_id", "day"])
    op.create_table(
        "task_rollup",
        *_common("task_rollup"),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("whole", sa.Boolean(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
    )
    op.create_index(op.f("ix_task_rollup_tenant_id_whole_assignee_id"), "task_rollup",
                    ["tenant_id", "whole", "assignee_id"])
    op.create_table(
        "sales_rollup_runs",
        *_common("sales_rollup_runs"),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.Column("counted_before", sa.DateTime(), nullable=False),
        sa.Column("days_from", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_sales_rollup_runs_tenant_id")),
    )


def downgrade() -> None:
    # the tables take their indexes with them (MariaDB refuses to drop the one its tenant foreign key uses)
    op.drop_table("sales_rollup_runs")
    op.drop_table("task_rollup")
    op.drop_table("customer_rollup")
    op.drop_table("order_rollup")
    op.drop_table("deal_rollup")
    op.drop_index(op.f("ix_opportunities_tenant_id_created_at"), table_name="opportunities")
    op.drop_index(op.f("ix_opportunities_tenant_id_amount_id"), table_name="opportunities")
    op.drop_index(op.f("ix_opportunities_tenant_id_owner_id_amount_id"), table_name="opportunities")
