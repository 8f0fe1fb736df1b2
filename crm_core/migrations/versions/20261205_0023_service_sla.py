"""service and SLA: case channel/category/queue, the case history, team queues, business calendars,
SLA policies, each case's SLA state and the escalations (issue 13)

Revision ID: 0023
Revises: 0022
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_METRICS = ("first_response", "next_response", "resolution")


def _base(table: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def _keys(table: str, *foreign: tuple[str, str]) -> list[sa.Constraint]:
    return [
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")),
        *(sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))
          for column, target in foreign),
    ]


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=8), nullable=False, server_default="web"))
        batch.add_column(sa.Column("category", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("first_responded_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(op.f("fk_cases_team_id_teams"), "teams", ["team_id"], ["id"])
        batch.create_index(op.f("ix_cases_tenant_id_team_id_status"), ["tenant_id", "team_id", "status"])
        batch.create_index(op.f("ix_cases_tenant_id_assignee_id_status"), ["tenant_id", "assignee_id", "status"])

    op.create_table(
        "case_events", *_base("case_events"),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_value", sa.String(length=64), nullable=True),
        sa.Column("to_value", sa.String(length=64), nullable=True),
        sa.Column("body", sa.String(length=4000), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        *_keys("case_events", ("case_id", "cases"), ("actor_id", "users")),
    )
    op.create_index(op.f("ix_case_events_tenant_id_case_id_at"), "case_events", ["tenant_id", "case_id", "at"])

    op.create_table(
        "sla_calendars", *_base("sla_calendars"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        *_keys("sla_calendars"),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_sla_calendars_tenant_id_name")),
    )
    op.create_table(
        "sla_calendar_days", *_base("sla_calendar_days"),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        *_keys("sla_calendar_days", ("calendar_id", "sla_calendars")),
        sa.UniqueConstraint("calendar_id", "day", name=op.f("uq_sla_calendar_days_calendar_id_day")),
    )
    op.create_table(
        "service_queues", *_base("service_queues"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("last_assigned_user_id", sa.Integer(), nullable=True),
        *_keys("service_queues", ("team_id", "teams"), ("calendar_id", "sla_calendars"),
               ("last_assigned_user_id", "users")),
        sa.UniqueConstraint("tenant_id", "team_id", name=op.f("uq_service_queues_tenant_id_team_id")),
    )
    op.create_table(
        "sla_policies", *_base("sla_policies"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("next_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("warn_percent", sa.Integer(), nullable=False),
        sa.Column("pause_on_pending", sa.Boolean(), nullable=False),
        sa.Column("pause_on_hold", sa.Boolean(), nullable=False),
        sa.Column("manager_after_minutes", sa.Integer(), nullable=False),
        *_keys("sla_policies", ("calendar_id", "sla_calendars")),
        sa.UniqueConstraint("tenant_id", "priority", name=op.f("uq_sla_policies_tenant_id_priority")),
    )
    metric_columns = [sa.Column(f"{metric}_{part}", sa.DateTime(), nullable=True)
                      for metric in _METRICS for part in ("due_at", "warn_at", "met_at", "warned_at", "breached_at")]
    op.create_table(
        "case_sla", *_base("case_sla"),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("paused_since", sa.DateTime(), nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        *metric_columns,
        sa.Column("next_due_at", sa.DateTime(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        *_keys("case_sla", ("case_id", "cases"), ("policy_id", "sla_policies"), ("calendar_id", "sla_calendars")),
        sa.UniqueConstraint("case_id", name=op.f("uq_case_sla_case_id")),
    )
    op.create_index(op.f("ix_case_sla_tenant_id_next_due_at"), "case_sla", ["tenant_id", "next_due_at"])
    op.create_table(
        "sla_escalations", *_base("sla_escalations"),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("recipient_user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        *_keys("sla_escalations", ("case_id", "cases"), ("recipient_user_id", "users")),
        sa.UniqueConstraint("case_id", "metric", "level", name=op.f("uq_sla_escalations_case_id_metric_level")),
    )
    op.create_index(op.f("ix_sla_escalations_tenant_id_at"), "sla_escalations", ["tenant_id", "at"])


def downgrade() -> None:
    # dropping a table drops its indexes (MariaDB refuses to drop one a foreign key leans on first)
    op.drop_table("sla_escalations")
    op.drop_table("case_sla")
    op.drop_table("sla_policies")
    op.drop_table("service_queues")
    op.drop_table("sla_calendar_days")
    op.drop_table("sla_calendars")
    op.drop_table("case_events")
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint(op.f("fk_cases_team_id_teams"), type_="foreignkey")
        batch.drop_index(op.f("ix_cases_tenant_id_assignee_id_status"))
        batch.drop_index(op.f("ix_cases_tenant_id_team_id_status"))
        batch.drop_column("first_responded_at")
        batch.drop_column("team_id")
        batch.drop_column("category")
        batch.drop_column("channel")
