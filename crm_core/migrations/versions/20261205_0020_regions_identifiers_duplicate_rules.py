"""customers carry a credit code and region codes; duplicate rules per tenant; keys re-derived

Revision ID: 0020
Revises: 0019

``customers.credit_code`` (统一社会信用代码, compact) and the GB/T 2260 cascade
``province_code``/``city_code``/``district_code`` (decision 0026), indexed for the duplicate check
and the grid's province filter. ``duplicate_rules`` holds each tenant's off/warn/block per key.
Existing rows get the keys of the rules as they now read: ``name_key`` folds traditional
characters, ``phone_normalized`` is E.164 for Chinese numbers (``+8613800138000``), 5,000 rows
at a time.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.rules.contact_details import company_key, normalise_phone

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
GRID_TAIL = ["id", "owner_id", "team_id", "archived_at"]


def upgrade() -> None:
    op.add_column("customers", sa.Column("province_code", sa.String(length=6), nullable=True))
    op.add_column("customers", sa.Column("city_code", sa.String(length=6), nullable=True))
    op.add_column("customers", sa.Column("district_code", sa.String(length=6), nullable=True))
    op.add_column("customers", sa.Column("credit_code", sa.String(length=18), nullable=True))
    op.create_table(
        "duplicate_rules",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("match_key", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_duplicate_rules_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_rules")),
        sa.UniqueConstraint("tenant_id", "entity", "match_key",
                            name=op.f("uq_duplicate_rules_tenant_id_entity_match_key")),
    )
    _rekey()
    op.create_index(op.f("ix_customers_tenant_id_credit_code"), "customers", ["tenant_id", "credit_code"])
    op.create_index("ix_customers_tenant_id_province_code_updated_at", "customers",
                    ["tenant_id", "province_code", "updated_at", *GRID_TAIL])


def _rekey() -> None:
    connection = op.get_bind()
    customers = sa.table("customers", sa.column("id", sa.Integer), sa.column("name", sa.String),
                         sa.column("name_key", sa.String), sa.column("phone", sa.String),
                         sa.column("phone_normalized", sa.String))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(customers.c.id, customers.c.name, customers.c.name_key, customers.c.phone,
                      customers.c.phone_normalized)
            .where(customers.c.id > last).order_by(customers.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        changed = []
        for row in rows:
            name_key = company_key(row.name) or None
            phone_key = normalise_phone(row.phone)
            if name_key != row.name_key or phone_key != row.phone_normalized:
                changed.append({"b_id": row.id, "b_key": name_key, "b_phone": phone_key})
        if changed:
            connection.execute(
                sa.update(customers).where(customers.c.id == sa.bindparam("b_id"))
                .values(name_key=sa.bindparam("b_key"), phone_normalized=sa.bindparam("b_phone")),
                changed,
            )
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_customers_tenant_id_province_code_updated_at", table_name="customers")
    op.drop_index(op.f("ix_customers_tenant_id_credit_code"), table_name="customers")
    op.drop_table("duplicate_rules")
    # plain DROP COLUMNs (see 0018: a batch copy of customers fails on SQLite's full-text view)
    for column in ("credit_code", "district_code", "city_code", "province_code"):
        op.drop_column("customers", column)
    # the keys stay as this revision derived them (no older rule to re-derive with): the older duplicate
    # check then misses a Chinese phone typed without +86 until its customer is saved again
