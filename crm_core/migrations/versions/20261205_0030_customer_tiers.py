"""customer tiers for SLA entitlements: tiers tied to orders, an admin's pin, each customer's standing,
the tier a case was opened under; SLA policies per (tier or default, priority) and the option to
reassign a case on breach (issue 13)

Revision ID: 0030
Revises: 0029

``sla_policies`` gets ``tier_id`` (NULL: the default policies) and ``tier_key`` (the tier's id, or 0)
so that the unique key (tenant, tier_key, priority) holds on every database — NULLs never collide.
The new key is created before the old (tenant, priority) one is dropped: MariaDB needs an index
starting with ``tenant_id`` for the tenant's foreign key at every moment.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base(versioned: bool = False) -> list[sa.Column]:  # type: ignore[type-arg]
    columns: list[sa.Column] = [  # type: ignore[type-arg]
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]
    return columns + ([sa.Column("version", sa.Integer(), nullable=False)] if versioned else [])


def _keys(table: str, *foreign: tuple[str, str]) -> list[sa.Constraint]:
    return [
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")),
        *(sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))
          for column, target in foreign),
    ]


def upgrade() -> None:
    op.create_table(
        "customer_tiers", *_base(versioned=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.Column("name_zh", sa.String(length=120), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("min_order_total", sa.Numeric(14, 2), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        *_keys("customer_tiers"),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_customer_tiers_tenant_id_code")),
    )
    op.create_table(
        "customer_tier_pins", *_base(versioned=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        *_keys("customer_tier_pins", ("customer_id", "customers"), ("tier_id", "customer_tiers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_customer_tier_pins_customer_id")),
    )
    op.create_index(op.f("ix_customer_tier_pins_tenant_id_tier_id"), "customer_tier_pins", ["tenant_id", "tier_id"])
    op.create_table(
        "customer_tier_standings", *_base(),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=False),
        sa.Column("order_total", sa.Numeric(14, 2), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        *_keys("customer_tier_standings", ("customer_id", "customers"), ("tier_id", "customer_tiers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_customer_tier_standings_customer_id")),
    )
    op.create_index(op.f("ix_customer_tier_standings_tenant_id_tier_id"), "customer_tier_standings",
                    ["tenant_id", "tier_id"])
    op.create_table(
        "case_entitlements", *_base(),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=True),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.Column("order_total", sa.Numeric(14, 2), nullable=True),
        sa.Column("threshold", sa.Numeric(14, 2), nullable=True),
        sa.Column("months", sa.Integer(), nullable=True),
        sa.Column("pinned_until", sa.Date(), nullable=True),
        sa.Column("as_of", sa.DateTime(), nullable=True),
        *_keys("case_entitlements", ("case_id", "cases"), ("tier_id", "customer_tiers")),
        sa.UniqueConstraint("case_id", name=op.f("uq_case_entitlements_case_id")),
    )
    with op.batch_alter_table("sla_policies") as batch:
        batch.add_column(sa.Column("tier_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("tier_key", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reassign_on_breach", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_foreign_key(op.f("fk_sla_policies_tier_id_customer_tiers"), "customer_tiers", ["tier_id"], ["id"])
        batch.create_unique_constraint(op.f("uq_sla_policies_tenant_id_tier_key_priority"),
                                       ["tenant_id", "tier_key", "priority"])
    with op.batch_alter_table("sla_policies") as batch:
        batch.drop_constraint(op.f("uq_sla_policies_tenant_id_priority"), type_="unique")


def downgrade() -> None:
    # the tiers' policies go first: the old key (tenant, priority) holds only for the default ones
    op.execute(sa.text("UPDATE case_sla SET policy_id = NULL WHERE policy_id IN "
                       "(SELECT id FROM sla_policies WHERE tier_id IS NOT NULL)"))
    op.execute(sa.text("DELETE FROM sla_policies WHERE tier_id IS NOT NULL"))
    with op.batch_alter_table("sla_policies") as batch:
        batch.create_unique_constraint(op.f("uq_sla_policies_tenant_id_priority"), ["tenant_id", "priority"])
    with op.batch_alter_table("sla_policies") as batch:
        batch.drop_constraint(op.f("uq_sla_policies_tenant_id_tier_key_priority"), type_="unique")
        batch.drop_constraint(op.f("fk_sla_policies_tier_id_customer_tiers"), type_="foreignkey")
        batch.drop_column("reassign_on_breach")
        batch.drop_column("tier_key")
        batch.drop_column("tier_id")
    op.drop_table("case_entitlements")
    op.drop_table("customer_tier_standings")
    op.drop_table("customer_tier_pins")
    op.drop_table("customer_tiers")
