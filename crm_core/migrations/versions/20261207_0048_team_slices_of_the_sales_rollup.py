"""sales rollup: team slices of the created deals, each team's members as counted; the run's second instant goes

Revision ID: 0048
Revises: 0047

``deal_rollup.team_id``: a ``created`` row of a team (``owner_id`` None) sums the deals of the users who were its
members when counted, so a manager's funnel reads one slice per team instead of one per member (decision 0065),
through ``(tenant_id, measure, week, team_id, day)``. ``sales_rollup_runs`` is made again with ``teams`` (each
team's members as counted) and without ``counted_before``, which always equalled ``refreshed_at`` (decision 0064):
its rows are derived, so until the job's next run (every 10 minutes) every figure is counted live, as before the
first one.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0048"
down_revision: str | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _runs(*, teams: bool) -> None:
    key = ("tenant_id", "id") if op.get_bind().dialect.name == "postgresql" else ("id",)
    op.drop_table("sales_rollup_runs")
    op.create_table(
        "sales_rollup_runs",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        *([] if teams else [sa.Column("counted_before", sa.DateTime(), nullable=False)]),
        sa.Column("days_from", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        *([sa.Column("teams", sa.JSON(), nullable=False)] if teams else []),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_sales_rollup_runs")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_sales_rollup_runs_tenant_id_tenants")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_sales_rollup_runs_tenant_id")),
    )


def upgrade() -> None:
    op.add_column("deal_rollup", sa.Column("team_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_deal_rollup_tenant_id_measure_week_team_id_day"), "deal_rollup",
                    ["tenant_id", "measure", "week", "team_id", "day"])
    _runs(teams=True)


def downgrade() -> None:
    _runs(teams=False)
    op.execute("DELETE FROM deal_rollup WHERE team_id IS NOT NULL")
    op.drop_index(op.f("ix_deal_rollup_tenant_id_measure_week_team_id_day"), table_name="deal_rollup")
    with op.batch_alter_table("deal_rollup") as batch:
        batch.drop_column("team_id")
