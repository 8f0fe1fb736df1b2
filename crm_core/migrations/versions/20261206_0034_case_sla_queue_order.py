"""case_sla's due index ends with the case id: the service queue's order (due, case) read from the index

Revision ID: 0034
Revises: 0033

The queue sorts running clocks by ``(next_due_at, case id)`` and keyset-pages on it. With the
tie-breaker taken from ``cases.id`` and the index on ``(tenant_id, next_due_at)`` alone, MariaDB
read every running clock of the tenant through the index, tested each against the access rule
and sorted them all (26k clocks, 13k kept, for 50 rows: 147 ms idle at 500k cases). Ordered by
``case_sla.case_id`` (equal to ``cases.id`` through the join) and indexed as ``(tenant_id,
next_due_at, case_id)``, every database walks the index in the page's order and stops at its last
row. The new index replaces the old one (same leading columns).

``cases (tenant_id, team_id, status)`` is dropped: ``ix_cases_queue_cover`` (0031) begins with the
same columns. MariaDB still chose the narrower one for a queue's capped count and then read the
rows behind it (76 ms, against 3 ms from the covering index).
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_case_sla_tenant_id_next_due_at_case_id"), "case_sla",
                    ["tenant_id", "next_due_at", "case_id"])
    op.drop_index(op.f("ix_case_sla_tenant_id_next_due_at"), table_name="case_sla")
    op.drop_index(op.f("ix_cases_tenant_id_team_id_status"), table_name="cases")


def downgrade() -> None:
    op.create_index(op.f("ix_cases_tenant_id_team_id_status"), "cases", ["tenant_id", "team_id", "status"])
    op.create_index(op.f("ix_case_sla_tenant_id_next_due_at"), "case_sla", ["tenant_id", "next_due_at"])
    op.drop_index(op.f("ix_case_sla_tenant_id_next_due_at_case_id"), table_name="case_sla")
