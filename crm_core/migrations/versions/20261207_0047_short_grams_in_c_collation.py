"""PostgreSQL: the short-gram GIN indexes compare their keys bytewise (COLLATE "C")

Revision ID: 0047
Revises: 0046

PostgreSQL only. The four GIN indexes of migration 0036 held their one- and two-character keys in the
database's collation; PostgreSQL 15 orders a ``C.UTF-8`` text through ``strcoll`` and only ``C`` by ``memcmp``,
and a GIN build sorts every key of every row (22M keys for the names of 1M customers). Built over
``crm_short_grams(…) COLLATE "C"`` the same index takes 17.5 s instead of 22.6 s at 1M customers. A GIN index
over arrays of text only tests equality, which is bytewise in every deterministic collation: the same rows match.
The searches compare in ``C`` too (crm_core.queries.customers.pg_text_condition), which is what lets them use
these indexes.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0047"
down_revision: str | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHORT_GRAM_INDEXES = {  # name: (table, indexed expression), as in migration 0036
    "ix_customers_name_short_grams": ("customers", "crm_short_grams(lower(name))"),
    "ix_customers_email_short_grams": ("customers", "crm_short_grams(email_normalized)"),
    "ix_contacts_name_short_grams": ("contacts", "crm_short_grams(lower(name))"),
    "ix_contacts_email_short_grams": ("contacts", "crm_short_grams(email_normalized)"),
}


def _rebuild(collation: str) -> None:
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for name, (table, expression) in SHORT_GRAM_INDEXES.items():
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (({expression}{collation}))")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(' COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild("")
