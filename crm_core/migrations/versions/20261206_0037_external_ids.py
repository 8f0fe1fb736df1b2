"""External IDs on contacts, deals, orders and products (issue 18: references between files)

Revision ID: 0037
Revises: 0036

A company moving in from another CRM imports accounts → contacts → deals → orders → activities,
each file naming its parents by the old system's IDs. ``external_id`` (up to 80 characters, as on
customers) joins contacts, opportunities, orders and products, unique per tenant when given: a
unique index ``(tenant_id, external_id)``, where NULLs never collide on SQLite, PostgreSQL or
MariaDB (as products' SKU since 0035). The columns are new, so no row can break the constraint.
Customers keep their plain index (decision 0042 says why).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("contacts", "opportunities", "orders", "products")


def upgrade() -> None:
    # a plain ADD COLUMN and a unique index: no table copy on SQLite (the contacts' full-text view names
    # the table, and a batch copy would have to rename it under the view)
    for table in TABLES:
        op.add_column(table, sa.Column("external_id", sa.String(length=80), nullable=True))
        op.create_index(op.f(f"ix_{table}_tenant_id_external_id"), table, ["tenant_id", "external_id"], unique=True)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(op.f(f"ix_{table}_tenant_id_external_id"), table_name=table)
        op.drop_column(table, "external_id")
