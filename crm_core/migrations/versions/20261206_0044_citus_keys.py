"""PostgreSQL: the keys a cluster distributed by tenant_id (Citus) accepts (decisions 0057, 0058)

Revision ID: 0044
Revises: 0043

PostgreSQL only (SQLite and MariaDB are unchanged). Citus requires every primary and unique key of a
distributed table to hold the distribution column, and every foreign key between two distributed tables to
join on it. The distributed tables are read from the catalog: every table with ``tenant_id`` except the
reference tables (:data:`REFERENCE_TABLES`, as ``crm_core.models.REFERENCE_TABLES``). In one transaction:

1. every foreign key that points at a distributed table is dropped (each comes from another distributed
   table: one from anywhere else stops the migration, as Citus would refuse it);
2. each primary key ``(id)`` becomes ``(tenant_id, id)`` — 0043's partitioned ``activities`` and
   ``audit_events`` already have ``(tenant_id, id, occurred_at)``;
3. the unique keys of :data:`UNIQUE_KEYS` (decision 0057's list; the catalog must hold exactly these
   tenant-less ones) gain ``tenant_id`` in front, under their old names;
4. the foreign keys come back as ``(tenant_id, x_id) REFERENCES x (tenant_id, id)`` under their old names
   and with their ON DELETE / ON UPDATE rules; a SET NULL names its column (``ON DELETE SET NULL (x_id)``,
   PostgreSQL 15), so ``tenant_id`` is never nulled. MATCH SIMPLE: a null ``x_id`` is not checked.
   Foreign keys to the reference tables stay as they are;
5. the triggers that copy a customer's owner and team onto orders, tasks, cases and access requests
   (0010, 0015, 0031, 0032) look the customer up by ``tenant_id`` and ``id``.

The downgrade goes back the same way. Rows are not rewritten: the cost is building the new key indexes and
checking each foreign key once (decision 0058 has the figures).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from alembic import op
from sqlalchemy import Connection

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# replicated to every node (decision 0057); they keep their keys, and no key of theirs points at a tenant's row
REFERENCE_TABLES = ("api_tokens", "teams", "tenants", "users")

# the unique keys of distributed tables that did not hold tenant_id (decision 0057): name → table, columns, and
# whether it is a table constraint or a unique index (the models declare both kinds)
UNIQUE_KEYS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "uq_api_idempotency_keys_token_id_idempotency_key": (
        "api_idempotency_keys", ("token_id", "idempotency_key"), True),
    "uq_case_entitlements_case_id": ("case_entitlements", ("case_id",), True),
    "uq_case_ratings_case_id": ("case_ratings", ("case_id",), True),
    "uq_case_sla_case_id": ("case_sla", ("case_id",), True),
    "uq_customer_tier_pins_customer_id": ("customer_tier_pins", ("customer_id",), True),
    "uq_customer_tier_standings_customer_id": ("customer_tier_standings", ("customer_id",), True),
    "uq_marketing_messages_token": ("marketing_messages", ("token",), True),
    "ix_notification_preferences_user_id_kind": ("notification_preferences", ("user_id", "kind"), False),
    "ix_notifications_user_id_dedupe_key": ("notifications", ("user_id", "dedupe_key"), False),
    "uq_pipeline_stages_pipeline_id_position": ("pipeline_stages", ("pipeline_id", "position"), True),
    "uq_sla_calendar_days_calendar_id_day": ("sla_calendar_days", ("calendar_id", "day"), True),
    "uq_sla_escalations_case_id_metric_level": ("sla_escalations", ("case_id", "metric", "level"), True),
    "ix_webhook_deliveries_webhook_id": ("webhook_deliveries", ("webhook_id",), False),
}

# the trigger functions that copy a customer's owner and team (0010, 0015, 0031, 0032): {lookup} is where the
# customer is found — by id before this revision, by tenant and id after it
_OLD_LOOKUP = "id = NEW.customer_id"
_NEW_LOOKUP = "tenant_id = NEW.tenant_id AND id = NEW.customer_id"
TRIGGER_FUNCTIONS = {
    "orders_copy_customer_scope": """
    BEGIN
        SELECT owner_id, team_id INTO NEW.customer_owner_id, NEW.customer_team_id
        FROM customers WHERE {lookup};
        RETURN NEW;
    END""",
    "tasks_copy_customer_scope": """
    BEGIN
        NEW.customer_owner_id := NULL;
        NEW.customer_team_id := NULL;
        SELECT owner_id, team_id INTO NEW.customer_owner_id, NEW.customer_team_id
        FROM customers WHERE {lookup};
        RETURN NEW;
    END""",
    "cases_copy_customer_scope": """
    BEGIN
        NEW.customer_owner_id := NULL;
        NEW.customer_team_id := NULL;
        SELECT owner_id, team_id INTO NEW.customer_owner_id, NEW.customer_team_id
        FROM customers WHERE {lookup};
        RETURN NEW;
    END""",
    "access_requests_follow_customer": """
    BEGIN
        SELECT owner_id, team_id INTO NEW.owner_id, NEW.team_id FROM customers WHERE {lookup};
        RETURN NEW;
    END""",
}

# pg_constraint's action codes, in the words of a constraint definition
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


class ForeignKey(NamedTuple):
    """A foreign key as the catalog holds it."""

    name: str
    table: str
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    on_delete: str  # pg_constraint.confdeltype
    on_update: str
    deferrable: bool
    initially_deferred: bool
    match: str  # 's' simple, 'f' full


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    distributed = distributed_tables(connection)
    tenant_less = _tenant_less_unique_keys(connection, distributed)
    if tenant_less != set(UNIQUE_KEYS):
        raise RuntimeError(f"0044 knows the unique keys without tenant_id {sorted(UNIQUE_KEYS)},"
                           f" the database holds {sorted(tenant_less)}")
    foreign_keys = _foreign_keys_to(connection, distributed)
    for key in foreign_keys:
        if key.columns[:-1] or key.referred_columns != ("id",) or key.match != "s":
            raise RuntimeError(f"0044 expects {key.name} to be (x_id) → x (id), MATCH SIMPLE")
        _drop_constraint(connection, key.table, key.name)
    for table in distributed:
        _rekey(connection, table, ("id",), ("tenant_id", "id"))
    for name, (table, columns, constraint) in UNIQUE_KEYS.items():
        _replace_unique(connection, name, table, ("tenant_id", *columns), constraint=constraint)
    for key in foreign_keys:
        _add_foreign_key(connection, key, ("tenant_id", *key.columns), ("tenant_id", "id"))
    for function, body in TRIGGER_FUNCTIONS.items():
        _replace_function(connection, function, body.format(lookup=_NEW_LOOKUP))


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    for function, body in TRIGGER_FUNCTIONS.items():
        _replace_function(connection, function, body.format(lookup=_OLD_LOOKUP))
    distributed = distributed_tables(connection)
    foreign_keys = _foreign_keys_to(connection, distributed)
    for key in foreign_keys:
        if key.columns[:1] != ("tenant_id",) or len(key.columns) != 2 or key.referred_columns != ("tenant_id", "id"):
            raise RuntimeError(f"0044's downgrade expects {key.name} to be (tenant_id, x_id) → x (tenant_id, id)")
        _drop_constraint(connection, key.table, key.name)
    for name, (table, columns, constraint) in UNIQUE_KEYS.items():
        _replace_unique(connection, name, table, columns, constraint=constraint)
    for table in distributed:
        _rekey(connection, table, ("tenant_id", "id"), ("id",))
    for key in foreign_keys:
        _add_foreign_key(connection, key, key.columns[1:], ("id",))


def distributed_tables(connection: Connection) -> list[str]:
    """The tables of the current schema with a ``tenant_id`` column, less the reference tables and partitions."""
    rows = connection.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND a.attname = 'tenant_id' AND NOT a.attisdropped AND c.relname <> ALL(%(reference)s) ORDER BY c.relname",
        {"reference": list(REFERENCE_TABLES)})
    return [name for (name,) in rows]


def _foreign_keys_to(connection: Connection, tables: list[str]) -> list[ForeignKey]:
    """The foreign keys that point at ``tables`` (a partition's copies of its parent's left out), by name;
    one from a table outside ``tables`` stops the migration."""
    rows = connection.exec_driver_sql(
        "SELECT c.conname, t.relname, r.relname,"
        " ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k (attnum, n)"
        "       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n),"
        " ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k (attnum, n)"
        "       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n),"
        " c.confdeltype, c.confupdtype, c.condeferrable, c.condeferred, c.confmatchtype"
        " FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid"
        " WHERE c.contype = 'f' AND c.conparentid = 0 AND r.relnamespace = current_schema()::regnamespace"
        " AND r.relname = ANY(%(tables)s) ORDER BY t.relname, c.conname",
        {"tables": tables}).all()
    keys = [ForeignKey(name, table, tuple(columns), referred, tuple(referred_columns), on_delete, on_update,
                       deferrable, deferred, match)
            for name, table, referred, columns, referred_columns, on_delete, on_update, deferrable, deferred, match
            in rows]
    outside = sorted(key.name for key in keys if key.table not in tables)
    if outside:
        raise RuntimeError(f"foreign keys from tables that are not distributed to distributed ones: {outside}")
    return keys


def _tenant_less_unique_keys(connection: Connection, tables: list[str]) -> set[str]:
    """The unique indexes (and constraints) of ``tables`` that do not hold ``tenant_id``, primary keys aside."""
    rows = connection.exec_driver_sql(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = 'tenant_id'"
        " WHERE x.indisunique AND NOT x.indisprimary AND t.relnamespace = current_schema()::regnamespace"
        " AND t.relname = ANY(%(tables)s) AND NOT a.attnum = ANY(x.indkey)", {"tables": tables})
    return {name for (name,) in rows}


def _quote(connection: Connection, *names: str) -> str:
    return ", ".join(connection.dialect.identifier_preparer.quote(name) for name in names)


def _drop_constraint(connection: Connection, table: str, name: str) -> None:
    connection.exec_driver_sql(f"ALTER TABLE {_quote(connection, table)} DROP CONSTRAINT {_quote(connection, name)}")


def _rekey(connection: Connection, table: str, old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Give ``table`` the primary key ``new`` where it is ``old`` (same name); any other key stays."""
    name, columns = connection.exec_driver_sql(
        "SELECT c.conname, ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k (attnum, n)"
        "       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)"
        " FROM pg_constraint c WHERE c.conrelid = to_regclass(%(t)s) AND c.contype = 'p'", {"t": table}).one()
    if tuple(columns) == old:
        connection.exec_driver_sql(
            f"ALTER TABLE {_quote(connection, table)} DROP CONSTRAINT {_quote(connection, name)},"
            f" ADD CONSTRAINT {_quote(connection, name)} PRIMARY KEY ({_quote(connection, *new)})")


def _replace_unique(connection: Connection, name: str, table: str, columns: tuple[str, ...], *,
                    constraint: bool) -> None:
    """Drop the unique key ``name`` of ``table`` and create it again over ``columns``."""
    quoted_table, quoted_name, quoted_columns = (_quote(connection, table), _quote(connection, name),
                                                 _quote(connection, *columns))
    if constraint:
        connection.exec_driver_sql(f"ALTER TABLE {quoted_table} DROP CONSTRAINT {quoted_name},"
                                   f" ADD CONSTRAINT {quoted_name} UNIQUE ({quoted_columns})")
    else:
        connection.exec_driver_sql(f"DROP INDEX {quoted_name}")
        connection.exec_driver_sql(f"CREATE UNIQUE INDEX {quoted_name} ON {quoted_table} ({quoted_columns})")


def _add_foreign_key(connection: Connection, key: ForeignKey, columns: tuple[str, ...],
                     referred_columns: tuple[str, ...]) -> None:
    """Create ``key`` again over ``columns`` → ``referred_columns``, with its rules; a SET NULL or SET DEFAULT
    on delete names the columns it sets, so that it never touches ``tenant_id``."""
    on_delete = _ACTIONS[key.on_delete]
    if key.on_delete in "nd" and "tenant_id" in columns:
        on_delete += f" ({_quote(connection, *(column for column in columns if column != 'tenant_id'))})"
    definition = (f"FOREIGN KEY ({_quote(connection, *columns)})"
                  f" REFERENCES {_quote(connection, key.referred_table)} ({_quote(connection, *referred_columns)})"
                  f" ON UPDATE {_ACTIONS[key.on_update]} ON DELETE {on_delete}")
    if key.deferrable:
        definition += " DEFERRABLE INITIALLY DEFERRED" if key.initially_deferred else " DEFERRABLE"
    connection.exec_driver_sql(f"ALTER TABLE {_quote(connection, key.table)}"
                               f" ADD CONSTRAINT {_quote(connection, key.name)} {definition}")


def _replace_function(connection: Connection, name: str, body: str) -> None:
    connection.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $${body} $$ LANGUAGE plpgsql")
