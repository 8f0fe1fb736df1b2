"""Deal product lines (issue 18: a deal may sell several products, as Salesforce's Opportunity Products)

Revision ID: 0038
Revises: 0037

``opportunity_lines`` holds a deal's products in order (``position``): quantity, unit price and the
line total (quantity × price rounded to cents half-up, as an order line's). When a deal has lines its
``amount`` is their sum (decision 0045). A new table: no existing row changes.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "opportunity_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("opportunity_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(12, 2), nullable=False),
        sa.Column("unit_price", sa.Numeric(14, 2), nullable=False),
        sa.Column("line_total", sa.Numeric(14, 2), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_lines")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_opportunity_lines_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"],
                                name=op.f("fk_opportunity_lines_opportunity_id_opportunities")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_opportunity_lines_product_id_products")),
    )
    op.create_index(op.f("ix_opportunity_lines_tenant_id_opportunity_id_position"), "opportunity_lines",
                    ["tenant_id", "opportunity_id", "position"])
    op.create_index(op.f("ix_opportunity_lines_tenant_id_product_id"), "opportunity_lines", ["tenant_id", "product_id"])


def downgrade() -> None:
    op.drop_table("opportunity_lines")  # its indexes go with it (MariaDB refuses to drop one a foreign key uses)
