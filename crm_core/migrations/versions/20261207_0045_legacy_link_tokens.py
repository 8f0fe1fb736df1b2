"""PostgreSQL: an index for the links of marketing emails sent before tokens named their tenant

Revision ID: 0045
Revises: 0044

Since 0044 the unique key of ``marketing_messages.token`` is ``(tenant_id, token)`` on PostgreSQL (a cluster
distributed by tenant needs it, decision 0058). A link sent after tokens began to name their tenant
(``<tenant id>.<random>``) is found through that key; a link from before (random characters only, no dot) is
looked up by its token alone, which that key cannot serve: every unsubscribe, preference page and open of
such a link read the whole table. A partial index over exactly those old tokens (``token NOT LIKE '%.%'``)
answers them; it holds only rows written before the change and costs new messages nothing. The look-up
states the same condition (``crm_core.marketing.tracking``), so the planner may use it.

SQLite and MariaDB keep their unique key on ``token`` alone, which already serves the look-up.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_marketing_messages_legacy_token"


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    # text(): SQLAlchemy doubles the percent signs for the driver's paramstyle
    op.execute(text(f"CREATE INDEX {INDEX} ON marketing_messages (token) WHERE token NOT LIKE '%.%'"))


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {INDEX}")
