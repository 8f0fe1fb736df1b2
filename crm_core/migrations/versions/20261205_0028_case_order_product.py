"""a case names the order and the product it is about (issue 13: "linked to customer, contact,
order/product")

Revision ID: 0028
Revises: 0027

Two nullable references on ``cases``: ``order_id`` (an order of the case's own customer, checked by
the case service) and ``product_id`` (a product of the tenant), each indexed for the record's
"cases about this order/product" look-up.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINKS = (("order_id", "orders"), ("product_id", "products"))


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for column, table in LINKS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch.create_index(op.f(f"ix_cases_{column}"), [column])  # first: MariaDB's key then uses it
            batch.create_foreign_key(op.f(f"fk_cases_{column}_{table}"), table, [column], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for column, table in LINKS:
            batch.drop_constraint(op.f(f"fk_cases_{column}_{table}"), type_="foreignkey")
            batch.drop_index(op.f(f"ix_cases_{column}"))
            batch.drop_column(column)
