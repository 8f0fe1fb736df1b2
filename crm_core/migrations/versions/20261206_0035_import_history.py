"""Products without a SKU, and a deal's product (issue 18: moving in from another CRM)

Revision ID: 0035
Revises: 0034

Salesforce, HubSpot and Odoo keep a product's code optional: ``products.sku`` becomes nullable.
The unique constraint ``(tenant_id, sku)`` stays; every supported database (SQLite, PostgreSQL,
MariaDB) lets any number of rows hold NULL in a unique index, so products without a SKU never
collide while a SKU given twice still does. ``opportunities.product_id`` names the product a deal
is about (nullable; indexed with the tenant like the deal's other look-ups).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.alter_column("sku", existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table("opportunities") as batch:
        batch.add_column(sa.Column("product_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_opportunities_product_id_products"), "products", ["product_id"], ["id"])
        batch.create_index(op.f("ix_opportunities_tenant_id_product_id"), ["tenant_id", "product_id"])


def downgrade() -> None:
    with op.batch_alter_table("opportunities") as batch:
        batch.drop_index(op.f("ix_opportunities_tenant_id_product_id"))
        batch.drop_constraint(op.f("fk_opportunities_product_id_products"), type_="foreignkey")
        batch.drop_column("product_id")
    op.execute("UPDATE products SET sku = CONCAT('P', id) WHERE sku IS NULL"
               if op.get_bind().dialect.name != "sqlite" else "UPDATE products SET sku = 'P' || id WHERE sku IS NULL")
    with op.batch_alter_table("products") as batch:
        batch.alter_column("sku", existing_type=sa.String(length=64), nullable=False)
