"""A pending access request follows its customer's current owner and team

Revision ID: 0032
Revises: 0031

``access_requests.owner_id`` / ``team_id`` say who sees and decides a request (the access rule reads
them, so the requester never needs to see the customer). They were copied once, when the request
was made: after the customer changed hands (a reassignment, the pool, a merge into another
customer) the new owner never saw the request, and the old one saw it but was refused when deciding
(the service judges the customer's current owner). Triggers now keep a *pending* request's copy in
step: when the customer's owner or team changes, and when the request is moved to another customer
(a merge). A decided request keeps the owner it was decided under (history).
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = [
    """CREATE TRIGGER access_requests_follow_customer AFTER UPDATE OF customer_id ON access_requests
    WHEN NEW.status = 'pending' AND OLD.customer_id IS NOT NEW.customer_id
    BEGIN
        UPDATE access_requests SET
            owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
            team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id)
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER customers_scope_to_access_requests AFTER UPDATE OF owner_id, team_id ON customers
    WHEN OLD.owner_id IS NOT NEW.owner_id OR OLD.team_id IS NOT NEW.team_id
    BEGIN
        UPDATE access_requests SET owner_id = NEW.owner_id, team_id = NEW.team_id
        WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id AND status = 'pending';
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_access_requests",
    "DROP TRIGGER IF EXISTS access_requests_follow_customer",
]

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION access_requests_follow_customer() RETURNS trigger AS $$
    BEGIN
        SELECT owner_id, team_id INTO NEW.owner_id, NEW.team_id FROM customers WHERE id = NEW.customer_id;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER access_requests_follow_customer BEFORE UPDATE OF customer_id ON access_requests
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION access_requests_follow_customer()""",
    """CREATE OR REPLACE FUNCTION customers_scope_to_access_requests() RETURNS trigger AS $$
    BEGIN
        UPDATE access_requests SET owner_id = NEW.owner_id, team_id = NEW.team_id
        WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id AND status = 'pending';
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER customers_scope_to_access_requests AFTER UPDATE OF owner_id, team_id ON customers
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION customers_scope_to_access_requests()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_access_requests ON customers",
    "DROP FUNCTION IF EXISTS customers_scope_to_access_requests()",
    "DROP TRIGGER IF EXISTS access_requests_follow_customer ON access_requests",
    "DROP FUNCTION IF EXISTS access_requests_follow_customer()",
]

MYSQL = [
    """CREATE TRIGGER access_requests_follow_customer BEFORE UPDATE ON access_requests FOR EACH ROW
    BEGIN
        IF NEW.status = 'pending' AND NOT (OLD.customer_id <=> NEW.customer_id) THEN
            SET NEW.owner_id = (SELECT owner_id FROM customers WHERE id = NEW.customer_id),
                NEW.team_id = (SELECT team_id FROM customers WHERE id = NEW.customer_id);
        END IF;
    END""",
    """CREATE TRIGGER customers_scope_to_access_requests AFTER UPDATE ON customers FOR EACH ROW
    BEGIN
        IF NOT (OLD.owner_id <=> NEW.owner_id AND OLD.team_id <=> NEW.team_id) THEN
            UPDATE access_requests SET owner_id = NEW.owner_id, team_id = NEW.team_id
            WHERE tenant_id = NEW.tenant_id AND customer_id = NEW.id AND status = 'pending';
        END IF;
    END""",
]
MYSQL_DROP = [
    "DROP TRIGGER IF EXISTS customers_scope_to_access_requests",
    "DROP TRIGGER IF EXISTS access_requests_follow_customer",
]

TRIGGERS = {"sqlite": (SQLITE, SQLITE_DROP), "postgresql": (POSTGRESQL, POSTGRESQL_DROP),
            "mysql": (MYSQL, MYSQL_DROP), "mariadb": (MYSQL, MYSQL_DROP)}


def upgrade() -> None:
    create, _drop = TRIGGERS[op.get_bind().dialect.name]
    # requests made before this migration whose customer has changed hands since
    op.execute(
        "UPDATE access_requests SET "
        "owner_id = (SELECT c.owner_id FROM customers c WHERE c.id = access_requests.customer_id), "
        "team_id = (SELECT c.team_id FROM customers c WHERE c.id = access_requests.customer_id) "
        "WHERE status = 'pending'"
    )
    for statement in create:
        op.execute(statement)


def downgrade() -> None:
    _create, drop = TRIGGERS[op.get_bind().dialect.name]
    for statement in drop:
        op.execute(statement)
