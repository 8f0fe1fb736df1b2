"""case merges and case attachments (issue 13)

Revision ID: 0029
Revises: 0028

``cases.merged_into_id``: the case a duplicate was merged into (closed, its conversation moved
there; the ``merges`` ledger keeps who did it, entity ``case``). Indexed: the case page and the
mail threading follow it, and a later merge re-points the cases merged into the duplicate.

``case_attachments``: one row per file kept on a case (or on a reply, note or email of it): the
user's file name as text, size, SHA-256 and the content type sniffed from the bytes; the bytes
live in the attachment store under their SHA-256 (crm_core.attachment_store), not in the row.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:  # SQLite rebuilds the table for the foreign key
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f("fk_cases_merged_into_id_cases"), "cases", ["merged_into_id"], ["id"])
        batch_op.create_index(op.f("ix_cases_merged_into_id"), ["merged_into_id"])
    op.create_table(
        "case_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachments")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_case_attachments_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_attachments_case_id_cases")),
        sa.ForeignKeyConstraint(["event_id"], ["case_events.id"],
                                name=op.f("fk_case_attachments_event_id_case_events")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"],
                                name=op.f("fk_case_attachments_uploaded_by_id_users")),
    )
    op.create_index(op.f("ix_case_attachments_case_id_id"), "case_attachments", ["case_id", "id"])
    op.create_index(op.f("ix_case_attachments_tenant_id_sha256"), "case_attachments", ["tenant_id", "sha256"])


def downgrade() -> None:
    op.drop_table("case_attachments")  # its indexes go with it (MariaDB refuses to drop one a foreign key uses)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_cases_merged_into_id_cases"), type_="foreignkey")
        batch_op.drop_index(op.f("ix_cases_merged_into_id"))
        batch_op.drop_column("merged_into_id")
