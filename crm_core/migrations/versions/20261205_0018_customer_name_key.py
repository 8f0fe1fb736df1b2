"""customers carry their company-name key (查重): width/case folded, legal forms and punctuation dropped

Revision ID: 0018
Revises: 0017

``北京字节跳动科技有限公司`` and ``北京字节跳动科技``, ``ACME Co., Ltd.`` and ``Acme`` share a key
(``crm_core.rules.contact_details.company_key``); the duplicate check on create looks it up through
``ix_customers_tenant_id_name_key``. Existing rows are keyed here, 5,000 at a time.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.rules.contact_details import company_key

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=200), nullable=True))
    connection = op.get_bind()
    customers = sa.table("customers", sa.column("id", sa.Integer), sa.column("name", sa.String),
                         sa.column("name_key", sa.String))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(customers.c.id, customers.c.name).where(customers.c.id > last)
            .order_by(customers.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            sa.update(customers).where(customers.c.id == sa.bindparam("b_id")).values(name_key=sa.bindparam("b_key")),
            [{"b_id": row.id, "b_key": company_key(row.name) or None} for row in rows],
        )
        last = rows[-1].id
    op.create_index(op.f("ix_customers_tenant_id_name_key"), "customers", ["tenant_id", "name_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_customers_tenant_id_name_key"), table_name="customers")
    # a plain DROP COLUMN (SQLite ≥ 3.35 too): a batch copy of customers fails on SQLite, whose
    # full-text view customers_fts_source names the table being swapped
    op.drop_column("customers", "name_key")
