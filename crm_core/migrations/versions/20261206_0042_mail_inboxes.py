"""mail_inboxes: a tenant's support mailbox read by IMAP (the mail_fetch job), its password encrypted, and
how far the job has read it (the folder's UIDVALIDITY and the last UID filed); decision 0052

Revision ID: 0042
Revises: 0041
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_inboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=8), nullable=False),
        sa.Column("username", sa.String(length=254), nullable=False),
        sa.Column("password_encrypted", sa.String(length=1000), nullable=True),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("uid_validity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_inboxes")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_mail_inboxes_tenant_id_tenants")),
    )
    op.create_index(op.f("ix_mail_inboxes_tenant_id"), "mail_inboxes", ["tenant_id"], unique=True)


def downgrade() -> None:
    op.drop_table("mail_inboxes")
