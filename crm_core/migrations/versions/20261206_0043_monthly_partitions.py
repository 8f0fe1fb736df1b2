"""PostgreSQL: activities and audit_events partitioned by month of occurred_at (decision 0055)

Revision ID: 0043
Revises: 0042

PostgreSQL only (SQLite and MariaDB are unchanged). Each table is rebuilt as a partitioned table
(``PARTITION BY RANGE (occurred_at)``) with the same columns, defaults, foreign keys and indexes:

- the old table is renamed aside, its secondary indexes dropped (their names are reused on the parent);
- the new parent is created ``LIKE`` it, with one partition per month that holds rows, the current month
  and :data:`crm_core.partitions.MONTHS_AHEAD` after it, and a DEFAULT partition;
- the rows are copied, then the primary key — ``(tenant_id, id, occurred_at)``: a partitioned table's
  unique keys must hold the partition column, and tenant_id first is what Citus needs to distribute by
  it — the indexes and the foreign keys are created on the parent (each partition gets its own);
- the id sequence now belongs to the new ``id`` column, so ids go on where they stopped;
- the old table is dropped and the new one analysed.

No foreign key points at either table (checked: nothing references ``activities.id`` or
``audit_events.id``), so nothing else changes. The downgrade rebuilds plain tables the same way.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from alembic import op
from sqlalchemy import Connection

from crm_core.partitions import (
    MONTHS_AHEAD,
    PARTITIONED_TABLES,
    add_months,
    default_partition_name,
    month_start,
    partition_name,
)

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    today = dt.datetime.now(dt.UTC).date()
    for table, column in PARTITIONED_TABLES.items():
        _rebuild(connection, table, column, partitioned=True, today=today)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    for table, column in PARTITIONED_TABLES.items():
        _rebuild(connection, table, column, partitioned=False, today=None)


def _rebuild(connection: Connection, table: str, column: str, *, partitioned: bool, today: dt.date | None) -> None:
    """Rebuild ``table`` as a partitioned table (or back as a plain one), keeping rows, ids, keys and indexes."""
    old = f"{table}_before_0043"
    pk = f"pk_{table}"
    # what to recreate: the secondary indexes (their definitions name ``table``, as they will again) and
    # the foreign keys; the sequence behind id's default
    indexes = connection.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %(t)s"
        " AND indexname <> %(pk)s ORDER BY indexname", {"t": table, "pk": pk}).all()
    foreign_keys = connection.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass(%(t)s) AND contype = 'f' AND conparentid = 0 ORDER BY conname",
        {"t": table}).all()
    sequence = connection.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": table}).scalar()
    for name, _definition in indexes:
        connection.exec_driver_sql(f"DROP INDEX {name}")
    connection.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {old}")
    connection.exec_driver_sql(f"ALTER TABLE {old} RENAME CONSTRAINT {pk} TO {pk}_before_0043")
    like = f"(LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)"
    if partitioned:
        assert today is not None
        connection.exec_driver_sql(f"CREATE TABLE {table} {like} PARTITION BY RANGE ({column})")
        months = {row[0] for row in connection.exec_driver_sql(
            f"SELECT DISTINCT date_trunc('month', {column})::date FROM {old}")}
        months |= {add_months(month_start(today), step) for step in range(MONTHS_AHEAD + 1)}
        for month in sorted(months):
            connection.exec_driver_sql(
                f"CREATE TABLE {partition_name(table, month)} PARTITION OF {table}"
                f" FOR VALUES FROM ('{month.isoformat()}') TO ('{add_months(month, 1).isoformat()}')")
        connection.exec_driver_sql(f"CREATE TABLE {default_partition_name(table)} PARTITION OF {table} DEFAULT")
        key = f"tenant_id, id, {column}"
    else:
        connection.exec_driver_sql(f"CREATE TABLE {table} {like}")
        key = "id"
    connection.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {old}")
    connection.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {pk} PRIMARY KEY ({key})")
    for _name, definition in indexes:
        connection.exec_driver_sql(definition)
    for name, definition in foreign_keys:
        connection.exec_driver_sql(f"ALTER TABLE {old} DROP CONSTRAINT {name}")
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    if sequence is not None:
        connection.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")
    connection.exec_driver_sql(f"DROP TABLE {old}")
    connection.exec_driver_sql(f"ANALYZE {table}")
