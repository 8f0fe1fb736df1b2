"""pipeline report indexes: covering indexes for the board, funnel and dashboard sums

Revision ID: 0008
Revises: 0007

Added after 0003 had shipped (the shared 1M-customer demo database was already at head), so
the indexes get their own revision instead of changing 0003. Measured on that database
(SQLite, 300k deals): the dashboard's open-pipeline sum 1.7 s → 80 ms, revenue by month
0.47 s → 0.12 s, deals closing this month 0.6 s → 50 ms (under load).
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_opportunities_board_cover": (
        "opportunities",
        # amount before owner: a column's biggest cards come straight off the index, in order
        ["tenant_id", "pipeline_id", "stage_id", "archived_at", "amount", "owner_id", "probability",
         "created_at", "closed_at"],
    ),
    "ix_opportunities_closing_cover": (
        "opportunities", ["tenant_id", "expected_close_date", "stage_id", "archived_at", "owner_id", "amount"],
    ),
    "ix_opportunities_closed_cover": (
        "opportunities", ["tenant_id", "closed_at", "stage_id", "archived_at", "owner_id", "amount"],
    ),
    "ix_orders_revenue_cover": (
        "orders", ["tenant_id", "ordered_at", "status", "archived_at", "customer_id", "total_amount"],
    ),
    "ix_customers_new_cover": ("customers", ["tenant_id", "created_at", "archived_at", "owner_id", "team_id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for name, (table, _columns) in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
