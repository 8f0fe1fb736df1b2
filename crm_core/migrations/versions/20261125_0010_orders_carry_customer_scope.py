"""orders carry their customer's owner and team, kept in step by the database

Revision ID: 0010
Revises: 0009

Who may see an order is decided by its customer (``access.py``: a rep sees the orders of the
customers they see). Tested through ``customer_id IN (visible customers)``, a manager's
12-month revenue trend built a list of 333,000 customer ids and probed it 230,000 times:
0.4–0.5 s at a million customers (SQLite, idle), the slowest dashboard figure. The order now
carries ``customer_owner_id`` and ``customer_team_id``, copied from its customer by triggers
on insert, on a change of ``customer_id``, and whenever the customer's owner or team changes,
so the same rule is a test on the order's own columns, answered from the revenue index.
These columns are not the order's ``owner_id`` (the seller credited with it).

The triggers are per dialect because the rule must hold whoever writes: services, imports,
bulk reassignments in SQL, the demo loader and database migrations alike.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVENUE_COVER_BEFORE = ["tenant_id", "ordered_at", "status", "archived_at", "customer_id", "total_amount"]
REVENUE_COVER = [
    "tenant_id", "ordered_at", "status", "archived_at", "customer_owner_id", "customer_team_id", "total_amount",
]

# an order whose copies differ from its customer's values (or are missing) is corrected at once;
# writers that already copy them (the demo loader) pay two primary-key lookups per row
_SQLITE_FIX_ORDER = """
    WHEN NEW.customer_owner_id IS NOT (SELECT owner_id FROM customers WHERE id = NEW.customer_id)
      OR NEW.customer_team_id IS NOT (SELECT team_id FROM customers WHERE id = NEW.customer_id)
    BEGIN
        UPDATE orders SET
            customer_owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
            customer_team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id)
        WHERE id = NEW.id;
    END"""
SQLITE = [
    "CREATE TRIGGER orders_customer_scope_after_insert AFTER INSERT ON orders" + _SQLITE_FIX_ORDER,
    "CREATE TRIGGER orders_customer_scope_after_update"
    " AFTER UPDATE OF customer_id, customer_owner_id, customer_team_id ON orders" + _SQLITE_FIX_ORDER,
    """CREATE TRIGGER customers_scope_to_orders AFTER UPDATE OF owner_id, team_id ON customers
    WHEN OLD.owner_id IS NOT NEW.owner_id OR OLD.team_id IS NOT NEW.team_id
    BEGIN
        UPDATE orders SET customer_owner_id = NEW.owner_id, customer_team_id = NEW.team_id
        WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id;
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS orders_customer_scope_after_insert",
    "DROP TRIGGER IF EXISTS orders_customer_scope_after_update",
    "DROP TRIGGER IF EXISTS customers_scope_to_orders",
]

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION orders_copy_customer_scope() RETURNS trigger AS $$
    BEGIN
        SELECT owner_id, team_id INTO NEW.customer_owner_id, NEW.customer_team_id
        FROM customers WHERE id = NEW.customer_id;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER orders_customer_scope BEFORE INSERT OR UPDATE OF customer_id, customer_owner_id,
    customer_team_id ON orders FOR EACH ROW EXECUTE FUNCTION orders_copy_customer_scope()""",
    """CREATE OR REPLACE FUNCTION customers_scope_to_orders() RETURNS trigger AS $$
    BEGIN
        UPDATE orders SET customer_owner_id = NEW.owner_id, customer_team_id = NEW.team_id
        WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER customers_scope_to_orders AFTER UPDATE OF owner_id, team_id ON customers
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION customers_scope_to_orders()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_orders ON customers",
    "DROP FUNCTION IF EXISTS customers_scope_to_orders()",
    "DROP TRIGGER IF EXISTS orders_customer_scope ON orders",
    "DROP FUNCTION IF EXISTS orders_copy_customer_scope()",
]

MYSQL = [
    """CREATE TRIGGER orders_customer_scope_before_insert BEFORE INSERT ON orders FOR EACH ROW
    SET NEW.customer_owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
        NEW.customer_team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id)""",
    # the customers trigger below updates orders without touching customer_id: no nested lookup
    """CREATE TRIGGER orders_customer_scope_before_update BEFORE UPDATE ON orders FOR EACH ROW
    BEGIN
        IF NOT (OLD.customer_id <=> NEW.customer_id) OR @crm_customer_scope_sync IS NULL THEN
            SET NEW.customer_owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
                NEW.customer_team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id);
        END IF;
    END""",
    """CREATE TRIGGER customers_scope_to_orders AFTER UPDATE ON customers FOR EACH ROW
    BEGIN
        IF NOT (OLD.owner_id <=> NEW.owner_id AND OLD.team_id <=> NEW.team_id) THEN
            SET @crm_customer_scope_sync = 1;
            UPDATE orders SET customer_owner_id = NEW.owner_id, customer_team_id = NEW.team_id
            WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id;
            SET @crm_customer_scope_sync = NULL;
        END IF;
    END""",
]
MYSQL_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_orders",
    "DROP TRIGGER IF EXISTS orders_customer_scope_before_update",
    "DROP TRIGGER IF EXISTS orders_customer_scope_before_insert",
]

TRIGGERS = {"sqlite": (SQLITE, SQLITE_DROP), "postgresql": (POSTGRESQL, POSTGRESQL_DROP),
            "mysql": (MYSQL, MYSQL_DROP), "mariadb": (MYSQL, MYSQL_DROP)}


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("customer_team_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE orders SET "
        "customer_owner_id = (SELECT c.owner_id FROM customers c WHERE c.id = orders.customer_id), "
        "customer_team_id = (SELECT c.team_id FROM customers c WHERE c.id = orders.customer_id)"
    )
    op.drop_index("ix_orders_revenue_cover", table_name="orders")
    op.create_index("ix_orders_revenue_cover", "orders", REVENUE_COVER, unique=False)
    create, _drop = TRIGGERS[op.get_bind().dialect.name]
    for statement in create:
        op.execute(statement)


def downgrade() -> None:
    _create, drop = TRIGGERS[op.get_bind().dialect.name]
    for statement in drop:
        op.execute(statement)
    op.drop_index("ix_orders_revenue_cover", table_name="orders")
    op.create_index("ix_orders_revenue_cover", "orders", REVENUE_COVER_BEFORE, unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("customer_team_id")
        batch_op.drop_column("customer_owner_id")
