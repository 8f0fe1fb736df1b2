"""campaign results: week rows in the rollup (a period's full weeks are summed from them, its edges from days);
"delivered" derived from the sends and bounces instead of written as a touch

Revision ID: 0041
Revises: 0040

``campaign_daily.week``: a row summing a slice's days over one week, ``day`` its Monday. The indexes lead
with it, so each span of a period is one index range. The rows are derived: the migration empties them
and the tenant's last-count mark, and the next ``campaign_results_refresh`` (every 15 minutes, or
"Refresh now") counts them again with their weeks; until then the page says it has not been counted.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "delivered" is derived from the sends and bounces now; only the demo's generator ever wrote such touches
    op.execute(sa.text("DELETE FROM marketing_events WHERE kind = 'delivered'"))
    op.execute(sa.text("DELETE FROM campaign_daily"))
    op.execute(sa.text("DELETE FROM campaign_results_runs"))
    with op.batch_alter_table("campaign_daily") as batch_op:
        batch_op.add_column(sa.Column("week", sa.Boolean(), nullable=False, server_default=sa.false()))
    # the new indexes before the old ones go: MariaDB refuses to drop the last index its tenant foreign key uses
    op.create_index(op.f("ix_campaign_daily_tenant_id_whole_week_campaign_id_day"), "campaign_daily",
                    ["tenant_id", "whole", "week", "campaign_id", "day"])
    op.create_index(op.f("ix_campaign_daily_tenant_id_whole_week_day"), "campaign_daily",
                    ["tenant_id", "whole", "week", "day"])
    op.drop_index(op.f("ix_campaign_daily_tenant_id_whole_campaign_id_day"), table_name="campaign_daily")
    op.drop_index(op.f("ix_campaign_daily_tenant_id_whole_day"), table_name="campaign_daily")


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM campaign_daily"))
    op.execute(sa.text("DELETE FROM campaign_results_runs"))
    op.create_index(op.f("ix_campaign_daily_tenant_id_whole_campaign_id_day"), "campaign_daily",
                    ["tenant_id", "whole", "campaign_id", "day"])
    op.create_index(op.f("ix_campaign_daily_tenant_id_whole_day"), "campaign_daily", ["tenant_id", "whole", "day"])
    op.drop_index(op.f("ix_campaign_daily_tenant_id_whole_week_campaign_id_day"), table_name="campaign_daily")
    op.drop_index(op.f("ix_campaign_daily_tenant_id_whole_week_day"), table_name="campaign_daily")
    with op.batch_alter_table("campaign_daily") as batch_op:
        batch_op.drop_column("week")
