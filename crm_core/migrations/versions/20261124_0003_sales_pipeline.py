"""sales pipeline: deal stage history and the indexes the board, funnel and dashboard use

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "opportunity_stage_changes",
        sa.Column("opportunity_id", sa.Integer(), nullable=False),
        sa.Column("from_stage_id", sa.Integer(), nullable=True),
        sa.Column("to_stage_id", sa.Integer(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by_id"], ["users.id"], name=op.f("fk_opportunity_stage_changes_changed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["from_stage_id"], ["pipeline_stages.id"],
            name=op.f("fk_opportunity_stage_changes_from_stage_id_pipeline_stages"),
        ),
        sa.ForeignKeyConstraint(
            ["opportunity_id"], ["opportunities.id"],
            name=op.f("fk_opportunity_stage_changes_opportunity_id_opportunities"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_opportunity_stage_changes_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["to_stage_id"], ["pipeline_stages.id"],
            name=op.f("fk_opportunity_stage_changes_to_stage_id_pipeline_stages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_stage_changes")),
    )
    with op.batch_alter_table("opportunity_stage_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opportunity_stage_changes_tenant_id_opportunity_id_changed_at"),
            ["tenant_id", "opportunity_id", "changed_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_opportunity_stage_changes_tenant_id_to_stage_id_opportunity_id"),
            ["tenant_id", "to_stage_id", "opportunity_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("opportunity_stage_changes")
