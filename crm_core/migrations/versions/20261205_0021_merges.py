"""merges: the ledger of customers and contacts merged into a survivor (issue 17)

Revision ID: 0021
Revises: 0020
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.Column("field_choices", sa.JSON(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_merges_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_merges_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merges")),
        sa.UniqueConstraint("tenant_id", "entity", "merged_id", name=op.f("uq_merges_tenant_id_entity_merged_id")),
    )
    op.create_index(op.f("ix_merges_tenant_id_entity_survivor_id"), "merges", ["tenant_id", "entity", "survivor_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_merges_tenant_id_entity_survivor_id"), table_name="merges")
    op.drop_table("merges")
