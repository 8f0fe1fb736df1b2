"""Monthly partitions of the two append-mostly tables on PostgreSQL (decision 0055).

``activities`` and ``audit_events`` grow with every touch and every write; on PostgreSQL they are
partitioned by month of ``occurred_at`` (declarative range partitioning, migration 0043), so a
period's rows sit together, a time-bounded query reads only its months, and old months can be
detached or dropped whole. Each table has one partition per month, named ``<table>_pYYYYMM``, and a
DEFAULT partition (``<table>_default``) that takes any row whose month has none yet — a typo in
year 2099, an imported history from before the first month — so no insert ever fails for want of
a partition.

:func:`ensure_partitions` (the ``partitions_ahead`` job, and the migration) creates the current month
and :data:`MONTHS_AHEAD` months after it, and a partition for every earlier month that has rows in
the DEFAULT partition (moving them there), so the DEFAULT partition stays small: attaching a new
month scans it. Months beyond the horizon stay in DEFAULT until the horizon reaches them. It is
idempotent and serialised by an advisory lock; SQLite and MariaDB have no partitions (it returns
nothing there).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

# table → the column its rows are partitioned by (the PostgreSQL primary key is (tenant_id, id, column))
PARTITIONED_TABLES = {"activities": "occurred_at", "audit_events": "occurred_at"}
MONTHS_AHEAD = 3
_LOCK_KEY = 55_0043  # pg_advisory_xact_lock: one partition maintenance at a time (decision 0055, migration 0043)


def month_start(day: dt.date | dt.datetime) -> dt.date:
    """The first day of ``day``'s month."""
    return dt.date(day.year, day.month, 1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month ``count`` months after ``month`` (a first of a month)."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: dt.date) -> str:
    """The name of ``table``'s partition for ``month``: ``activities_p202611``."""
    return f"{table}_p{month.year:04d}{month.month:02d}"


def default_partition_name(table: str) -> str:
    """The name of ``table``'s DEFAULT partition."""
    return f"{table}_default"


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is one of the partitions this module names (a month's or the DEFAULT one)."""
    return any(re.fullmatch(f"{re.escape(table)}_(p[0-9]{{6}}|default)", name) for table in PARTITIONED_TABLES)


def is_partitioned(connection: Connection, table: str) -> bool:
    """Whether ``table`` is a partitioned table here (PostgreSQL after migration 0043)."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.exec_driver_sql(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(%(table)s)", {"table": table}).scalar()
    return kind == "p"


@dataclass(frozen=True)
class PartitionResult:
    """What one :func:`ensure_partitions` run did: the partitions it created and the rows it moved there."""

    created: tuple[str, ...] = ()
    moved_rows: int = 0


def ensure_partitions(connection: Connection, *, today: dt.date, months_ahead: int = MONTHS_AHEAD,
                      since: dt.date | None = None,
                      tables: Iterable[str] = tuple(PARTITIONED_TABLES)) -> PartitionResult:
    """Create every missing month from ``today``'s (or ``since``'s, when earlier: a bulk load of history) to
    ``months_ahead`` after it, and one for each earlier month with rows in the DEFAULT partition, in
    ``connection``'s transaction. Nothing on SQLite and MariaDB."""
    if connection.dialect.name != "postgresql":
        return PartitionResult()
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
    first = month_start(today)
    horizon = add_months(first, months_ahead + 1)  # the first month left to the DEFAULT partition
    created: list[str] = []
    moved = 0
    for table in tables:
        if not is_partitioned(connection, table):
            continue
        column = PARTITIONED_TABLES[table]
        start = min(first, month_start(since)) if since is not None else first
        wanted = {add_months(start, step) for step in range(_months_between(start, first) + months_ahead + 1)}
        wanted |= {month for month in _months_in_default(connection, table, column) if month < horizon}
        for month in sorted(wanted):
            name = partition_name(table, month)
            if connection.exec_driver_sql("SELECT to_regclass(%(name)s)", {"name": name}).scalar() is not None:
                continue
            moved += create_month(connection, table, column, month)
            created.append(name)
    return PartitionResult(created=tuple(created), moved_rows=moved)


def _months_between(earlier: dt.date, later: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def _months_in_default(connection: Connection, table: str, column: str) -> list[dt.date]:
    default = default_partition_name(table)
    if connection.exec_driver_sql("SELECT to_regclass(%(name)s)", {"name": default}).scalar() is None:
        return []
    rows = connection.exec_driver_sql(f"SELECT DISTINCT date_trunc('month', {column})::date FROM {default}")
    return [row[0] for row in rows]


def create_month(connection: Connection, table: str, column: str, month: dt.date) -> int:
    """Create ``table``'s partition of ``month``, moving the month's rows out of the DEFAULT partition first;
    the number of rows moved.

    The partition is created apart and then attached: ``ATTACH PARTITION`` locks the parent only against
    other schema changes (``CREATE TABLE … PARTITION OF`` would lock out every reader for the moment), and it
    creates the parent's indexes, primary key and foreign keys on the new partition.
    """
    name = partition_name(table, month)
    low, high = month.isoformat(), add_months(month, 1).isoformat()
    connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    moved = 0
    default = default_partition_name(table)
    if connection.exec_driver_sql("SELECT to_regclass(%(name)s)", {"name": default}).scalar() is not None:
        moved = connection.exec_driver_sql(
            f"WITH moved AS (DELETE FROM {default} WHERE {column} >= '{low}' AND {column} < '{high}' RETURNING *)"
            f" INSERT INTO {name} SELECT * FROM moved").rowcount
    connection.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')")
    return max(moved, 0)
