"""imports quality: import mapping templates, records written by each run, quarantined rows

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "import_mappings",
        *_timestamps(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_import_mappings_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_import_mappings_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_mappings")),
        sa.UniqueConstraint("tenant_id", "entity", "name", name=op.f("uq_import_mappings_tenant_id_entity_name")),
    )
    op.create_table(
        "import_run_records",
        *_timestamps(),
        sa.Column("import_run_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_import_run_records_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["import_run_id"], ["import_runs.id"],
                                name=op.f("fk_import_run_records_import_run_id_import_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_run_records")),
    )
    op.create_index("ix_import_run_records_tenant_id_import_run_id_action", "import_run_records",
                    ["tenant_id", "import_run_id", "action"])
    op.create_table(
        "import_rejected_rows",
        *_timestamps(),
        sa.Column("import_run_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_import_rejected_rows_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["import_run_id"], ["import_runs.id"],
                                name=op.f("fk_import_rejected_rows_import_run_id_import_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rejected_rows")),
    )
    op.create_index("ix_import_rejected_rows_tenant_id_import_run_id_row_number", "import_rejected_rows",
                    ["tenant_id", "import_run_id", "row_number"])


def downgrade() -> None:
    op.drop_table("import_rejected_rows")
    op.drop_table("import_run_records")
    op.drop_table("import_mappings")
