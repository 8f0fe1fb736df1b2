"""campaign results rollup: the results page's counts and attribution, kept by the campaign_results_refresh job

Revision ID: 0040
Revises: 0039

``campaign_daily``: per tenant, level (step, campaign, tenant), UTC day, campaign, step, kind (and skip
reason) and customer owner/team, the members whose first such touch fell on that day (day NULL: on any
day, each member once).
``campaign_influence``: per (deal, campaign) with a counting touch, its first and last moment and the
deal's won revenue credited to the campaign under each model. ``campaign_results_runs``: when a
tenant's rows were counted (decision 0051).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")),
    ]


def upgrade() -> None:
    op.create_table(
        "campaign_daily",
        *_common("campaign_daily"),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("customer_owner_id", sa.Integer(), nullable=True),
        sa.Column("customer_team_id", sa.Integer(), nullable=True),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("whole", sa.Boolean(), nullable=False),
    )
    op.create_index(op.f("ix_campaign_daily_tenant_id_whole_campaign_id_day"), "campaign_daily",
                    ["tenant_id", "whole", "campaign_id", "day"])
    op.create_index(op.f("ix_campaign_daily_tenant_id_whole_day"), "campaign_daily", ["tenant_id", "whole", "day"])
    op.create_table(
        "campaign_influence",
        *_common("campaign_influence"),
        sa.Column("opportunity_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("created_at_deal", sa.DateTime(), nullable=False),
        sa.Column("won_at", sa.DateTime(), nullable=True),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("first_credit", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("last_credit", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("linear_credit", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("deal_row", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("customer_owner_id", sa.Integer(), nullable=True),
        sa.Column("customer_team_id", sa.Integer(), nullable=True),
    )
    op.create_index(op.f("ix_campaign_influence_tenant_id_campaign_id"), "campaign_influence",
                    ["tenant_id", "campaign_id"])
    op.create_index(op.f("ix_campaign_influence_tenant_id_opportunity_id"), "campaign_influence",
                    ["tenant_id", "opportunity_id"])
    op.create_table(
        "campaign_results_runs",
        *_common("campaign_results_runs"),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_campaign_results_runs_tenant_id")),
    )


def downgrade() -> None:
    # tables, not their indexes: MariaDB refuses to drop an index its tenant foreign key uses
    op.drop_table("campaign_results_runs")
    op.drop_table("campaign_influence")
    op.drop_table("campaign_daily")
