"""mail_settings: a tenant's own SMTP server (password encrypted) and default inbound queue;
mail_routes: the team queue of each receiving address (email-to-case routing, decision 0031)

Revision ID: 0027
Revises: 0026
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("smtp_host", sa.String(length=253), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=False),
        sa.Column("from_address", sa.String(length=254), nullable=False),
        sa.Column("smtp_user", sa.String(length=254), nullable=False),
        sa.Column("smtp_password_encrypted", sa.String(length=1000), nullable=True),
        sa.Column("starttls", sa.Boolean(), nullable=False),
        sa.Column("default_team_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_settings")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_mail_settings_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["default_team_id"], ["teams.id"],
                                name=op.f("fk_mail_settings_default_team_id_teams")),
    )
    op.create_index(op.f("ix_mail_settings_tenant_id"), "mail_settings", ["tenant_id"], unique=True)
    op.create_table(
        "mail_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_routes")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_mail_routes_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_mail_routes_team_id_teams")),
        sa.UniqueConstraint("tenant_id", "address", name=op.f("uq_mail_routes_tenant_id_address")),
    )


def downgrade() -> None:
    op.drop_table("mail_routes")  # its indexes go with it (MariaDB will not drop one a foreign key needs)
    op.drop_table("mail_settings")
