"""segments scoring: saved segments, their snapshots, campaign members, scoring models and scores

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "scoring_models",
        sa.Column("scorer", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_scoring_models_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_models")),
        sa.UniqueConstraint("tenant_id", "scorer", "version", name=op.f("uq_scoring_models_tenant_id_scorer_version")),
    )
    op.create_table(
        "scores",
        sa.Column("scorer", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["model_id"], ["scoring_models.id"], name=op.f("fk_scores_model_id_scoring_models")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_scores_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint("tenant_id", "scorer", "entity_id", name=op.f("uq_scores_tenant_id_scorer_entity_id")),
    )
    op.create_index(op.f("ix_scores_tenant_id_scorer_score"), "scores", ["tenant_id", "scorer", "score"], unique=False)
    op.create_table(
        "segments",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("sharing", sa.String(length=8), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_segments_owner_id_users")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_segments_team_id_teams")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_segments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_segments_tenant_id_name")),
    )
    op.create_index(op.f("ix_segments_tenant_id_owner_id"), "segments", ["tenant_id", "owner_id"], unique=False)
    op.create_table(
        "campaign_members",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("enrolled_by_id", sa.Integer(), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_members_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_campaign_members_customer_id_customers")),
        sa.ForeignKeyConstraint(["enrolled_by_id"], ["users.id"], name=op.f("fk_campaign_members_enrolled_by_id_users")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_members_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_members")),
        sa.UniqueConstraint(
            "tenant_id", "campaign_id", "customer_id", name=op.f("uq_campaign_members_tenant_id_campaign_id_customer_id")
        ),
    )
    op.create_index(
        op.f("ix_campaign_members_tenant_id_customer_id"), "campaign_members", ["tenant_id", "customer_id"], unique=False
    )
    op.create_table(
        "segment_snapshots",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_snapshots_segment_id_segments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_segment_snapshots_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_snapshots")),
    )
    op.create_index(
        op.f("ix_segment_snapshots_tenant_id_segment_id_taken_at"),
        "segment_snapshots",
        ["tenant_id", "segment_id", "taken_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("segment_snapshots")
    op.drop_table("campaign_members")
    op.drop_table("segments")
    op.drop_table("scores")
    op.drop_table("scoring_models")
