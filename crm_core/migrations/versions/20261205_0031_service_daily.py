"""service_daily: the service dashboard's daily counts, kept by the service_daily job; cases carry
their customer's owner and team, kept in step by the database (as orders since 0010, tasks since 0015)

Revision ID: 0031
Revises: 0030

``service_daily``: per tenant, UTC day, case queue, assignee, customer owner and customer team,
one row per figure (and bucket of response/resolution time) with the cases counted and the sum of
their minutes. ``service_daily_runs``: which days a tenant's rows cover and when they were counted.
The dashboard sums these rows and counts only today live (decision 0033).

``cases.customer_owner_id`` / ``customer_team_id``: who may see a case is decided by its customer
(or its queue and assignee). Tested through a correlated EXISTS on the customer, PostgreSQL turned
a manager's open cases into a hashed scan of their 500,000 visible customers (1.0 s for the
dashboard's backlog, 0.35 s for the queue page at 1M customers). The copies are set by triggers
on insert, on a change of ``customer_id`` and whenever the customer's owner or team changes.
``ix_cases_open_cover`` answers the backlog and ``ix_cases_queue_cover`` a queue's count from the index; ``case_sla`` due instants are indexed
for the clocks that ran past their due time today (counted live).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FIX_CASE = """
    WHEN NEW.customer_owner_id IS NOT (SELECT owner_id FROM customers WHERE id = NEW.customer_id)
      OR NEW.customer_team_id IS NOT (SELECT team_id FROM customers WHERE id = NEW.customer_id)
    BEGIN
        UPDATE cases SET
            customer_owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
            customer_team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id)
        WHERE id = NEW.id;
    END"""
SQLITE = [
    "CREATE TRIGGER cases_customer_scope_after_insert AFTER INSERT ON cases" + _SQLITE_FIX_CASE,
    "CREATE TRIGGER cases_customer_scope_after_update"
    " AFTER UPDATE OF customer_id, customer_owner_id, customer_team_id ON cases" + _SQLITE_FIX_CASE,
    """CREATE TRIGGER customers_scope_to_cases AFTER UPDATE OF owner_id, team_id ON customers
    WHEN OLD.owner_id IS NOT NEW.owner_id OR OLD.team_id IS NOT NEW.team_id
    BEGIN
        UPDATE cases SET customer_owner_id = NEW.owner_id, customer_team_id = NEW.team_id
        WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id;
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS cases_customer_scope_after_insert",
    "DROP TRIGGER IF EXISTS cases_customer_scope_after_update",
    "DROP TRIGGER IF EXISTS customers_scope_to_cases",
]

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION cases_copy_customer_scope() RETURNS trigger AS $$
    BEGIN
        NEW.customer_owner_id := NULL;
        NEW.customer_team_id := NULL;
        SELECT owner_id, team_id INTO NEW.customer_owner_id, NEW.customer_team_id
        FROM customers WHERE id = NEW.customer_id;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER cases_customer_scope BEFORE INSERT OR UPDATE OF customer_id, customer_owner_id,
    customer_team_id ON cases FOR EACH ROW EXECUTE FUNCTION cases_copy_customer_scope()""",
    """CREATE OR REPLACE FUNCTION customers_scope_to_cases() RETURNS trigger AS $$
    BEGIN
        UPDATE cases SET customer_owner_id = NEW.owner_id, customer_team_id = NEW.team_id
        WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER customers_scope_to_cases AFTER UPDATE OF owner_id, team_id ON customers
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION customers_scope_to_cases()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_cases ON customers",
    "DROP FUNCTION IF EXISTS customers_scope_to_cases()",
    "DROP TRIGGER IF EXISTS cases_customer_scope ON cases",
    "DROP FUNCTION IF EXISTS cases_copy_customer_scope()",
]

MYSQL = [
    """CREATE TRIGGER cases_customer_scope_before_insert BEFORE INSERT ON cases FOR EACH ROW
    SET NEW.customer_owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
        NEW.customer_team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id)""",
    # the customers trigger below updates cases without touching customer_id: no nested lookup
    """CREATE TRIGGER cases_customer_scope_before_update BEFORE UPDATE ON cases FOR EACH ROW
    BEGIN
        IF NOT (OLD.customer_id <=> NEW.customer_id) OR @crm_customer_scope_sync IS NULL THEN
            SET NEW.customer_owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
                NEW.customer_team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id);
        END IF;
    END""",
    """CREATE TRIGGER customers_scope_to_cases AFTER UPDATE ON customers FOR EACH ROW
    BEGIN
        IF NOT (OLD.owner_id <=> NEW.owner_id AND OLD.team_id <=> NEW.team_id) THEN
            SET @crm_customer_scope_sync = 1;
            UPDATE cases SET customer_owner_id = NEW.owner_id, customer_team_id = NEW.team_id
            WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id;
            SET @crm_customer_scope_sync = NULL;
        END IF;
    END""",
]
MYSQL_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_cases",
    "DROP TRIGGER IF EXISTS cases_customer_scope_before_update",
    "DROP TRIGGER IF EXISTS cases_customer_scope_before_insert",
]

# the dashboard's backlog (open cases by priority and age) and the case rule, read from the index alone
OPEN_COVER = ["tenant_id", "status", "opened_at", "priority", "team_id", "assignee_id", "customer_owner_id",
              "customer_team_id"]
# a queue's capped count under the case rule, from the index alone
QUEUE_COVER = ["tenant_id", "team_id", "status", "assignee_id", "customer_owner_id", "customer_team_id"]
DUE_INDEXED = ("first_response_due_at", "resolution_due_at")  # today's missed clocks, counted live

TRIGGERS = {"sqlite": (SQLITE, SQLITE_DROP), "postgresql": (POSTGRESQL, POSTGRESQL_DROP),
            "mysql": (MYSQL, MYSQL_DROP), "mariadb": (MYSQL, MYSQL_DROP)}


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("customer_team_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE cases SET "
        "customer_owner_id = (SELECT c.owner_id FROM customers c WHERE c.id = cases.customer_id), "
        "customer_team_id = (SELECT c.team_id FROM customers c WHERE c.id = cases.customer_id)"
    )
    create, _drop = TRIGGERS[op.get_bind().dialect.name]
    for statement in create:
        op.execute(statement)
    op.create_index("ix_cases_open_cover", "cases", OPEN_COVER)
    op.create_index("ix_cases_queue_cover", "cases", QUEUE_COVER)
    for column in DUE_INDEXED:
        op.create_index(op.f(f"ix_case_sla_tenant_id_{column}"), "case_sla", ["tenant_id", column])
    op.create_table(
        "service_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("customer_owner_id", sa.Integer(), nullable=True),
        sa.Column("customer_team_id", sa.Integer(), nullable=True),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_daily")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_service_daily_tenant_id_tenants")),
    )
    op.create_index(op.f("ix_service_daily_tenant_id_day_figure"), "service_daily", ["tenant_id", "day", "figure"])
    op.create_table(
        "service_daily_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_daily_runs")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_service_daily_runs_tenant_id_tenants")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_service_daily_runs_tenant_id")),
    )


def downgrade() -> None:
    for column in DUE_INDEXED:  # the (tenant_id, …) indexes of 0026 remain for MariaDB's tenant foreign key
        op.drop_index(op.f(f"ix_case_sla_tenant_id_{column}"), table_name="case_sla")
    op.drop_index("ix_cases_queue_cover", table_name="cases")
    op.drop_index("ix_cases_open_cover", table_name="cases")
    _create, drop = TRIGGERS[op.get_bind().dialect.name]
    for statement in drop:
        op.execute(statement)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("customer_team_id")
        batch_op.drop_column("customer_owner_id")
    op.drop_table("service_daily_runs")
    op.drop_table("service_daily")  # its index goes with it (MariaDB refuses to drop one a foreign key uses)
