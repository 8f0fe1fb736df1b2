"""Database migration: copy a whole Kestrel CRM database between SQLite, PostgreSQL and MariaDB, with proof.

Pattern: an ETL in three steps, each restartable.

1. **Schema** — the target is brought to the Alembic head (:func:`crm_core.schema.upgrade_to_head`);
   the source must already be at the head (``python -m crm_core init`` on it), so both sides
   have exactly the tables of :data:`crm_core.models.Base.metadata`.
2. **Data** — table by table in foreign-key order, rows in primary-key order, in batches. Each
   batch and its ``migration_progress`` row commit together, so a rerun with ``resume=True``
   continues after the last committed key. Foreign keys that close a cycle (``teams.manager_id``
   → ``users``) or point at their own table are first written as NULL and filled in afterwards.
   Primary keys are preserved; PostgreSQL sequences and MariaDB AUTO_INCREMENT are reset after.
   Writers: PostgreSQL ``COPY … FROM STDIN`` (psycopg 3), MariaDB and SQLite ``executemany``
   (PyMySQL turns it into multi-row INSERTs). Reads stream with server-side cursors.
3. **Verification** — computed on both sides, then expressed as expectations on one result frame
   (the ``migration`` suite in :mod:`validations.migration`): row counts per table and tenant,
   sums of money columns per table and tenant (exact cents on every dialect), primary-key
   uniqueness, every foreign key resolving, and per-table checksums (SHA-256 of the rows in key
   order with values normalised across dialects). The report names each failing table and the
   difference.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    Table,
    and_,
    bindparam,
    cast,
    func,
    inspect,
    literal,
    literal_column,
    make_url,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.ddl import sort_tables_and_constraints

from crm_core import schema
from crm_core.db import make_engine, refresh_planner_statistics, run_catalog_ddl
from crm_core.errors import (
    DatabaseUnreachable,
    ResumeFromOtherSource,
    SourceSchemaOutdated,
    TargetNotEmpty,
)
from crm_core.models import Base, utcnow
from crm_core.models.checks import MigrationProgress

# system tables that are not data: the target writes its own
NOT_COPIED = {"alembic_version", MigrationProgress.__tablename__}
DEFAULT_BATCH_SIZE = 20_000
# PostgreSQL targets: tables with at least this many rows to copy load without secondary indexes
DEFER_INDEXES_FROM_ROWS = 50_000

Progress = Callable[[str, int, int], None]


# --- results -----------------------------------------------------------------------


@dataclass
class TableCopy:
    """How one table was copied."""

    table: str
    rows: int
    seconds: float
    resumed_from: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class CheckFigure:
    """One compared figure: e.g. the row count of ``customers`` for tenant 1 on both sides."""

    check: str  # row_count, money_sum, checksum, primary_key_unique, foreign_key_resolves
    table: str
    expected: str
    actual: str
    tenant_id: int | None = None
    column: str | None = None

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


@dataclass
class Verification:
    """Every figure compared, and the expectation results over them."""

    figures: list[CheckFigure]
    expectations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[CheckFigure]:
        return [figure for figure in self.figures if not figure.passed]

    @property
    def success(self) -> bool:
        return not self.failures and all(item["success"] for item in self.expectations)


@dataclass
class MigrationReport:
    """What ``migrate`` did and whether the target provably holds the same data."""

    source: str
    target: str
    tables: list[TableCopy]
    verification: Verification
    copy_seconds: float
    notes: list[str] = field(default_factory=list)
    restore_seconds: float = 0.0  # after verification: indexes and foreign keys still being restored, then ANALYZE

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def success(self) -> bool:
        return self.verification.success

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: status, figures per table, every failure naming its table."""
        total_seconds = self.copy_seconds + self.verification.seconds + self.restore_seconds
        return {
            "status": "ok" if self.success else "failed",
            "source": self.source,
            "target": self.target,
            "rows_copied": self.rows,
            "copy_seconds": round(self.copy_seconds, 3),
            "verify_seconds": round(self.verification.seconds, 3),
            "restore_seconds": round(self.restore_seconds, 3),
            "rows_per_second": round(self.rows / total_seconds) if total_seconds else 0,
            "tables": [
                {**asdict(table), "seconds": round(table.seconds, 3), "rows_per_second": round(table.rows_per_second)}
                for table in self.tables
            ],
            "checks": {
                "figures": len(self.verification.figures),
                "failed": len(self.verification.failures),
                "expectations": self.verification.expectations,
            },
            "failures": [
                {**asdict(figure), "difference": difference(figure)} for figure in self.verification.failures
            ],
            "notes": self.notes,
        }


def difference(figure: CheckFigure) -> str:
    """A readable difference: ``-1`` for counts, ``+12.50`` for sums, else ``a → b``."""
    try:
        return f"{Decimal(figure.actual) - Decimal(figure.expected):+}"
    except ArithmeticError:
        return f"{figure.expected} → {figure.actual}"


def safe_url(url: str) -> str:
    """``url`` without its password, for reports and the progress record."""
    return make_url(url).render_as_string(hide_password=True)


# --- planning ----------------------------------------------------------------------


@dataclass(frozen=True)
class TablePlan:
    """One table to copy: its key columns and the foreign-key columns written after all rows."""

    table: Table
    key: tuple[Column[Any], ...]
    deferred: tuple[str, ...]
    columns: tuple[Column[Any], ...]


def existing_columns(*engines: Engine) -> dict[str, set[str]]:
    """Table → column names present in every one of ``engines`` (both sides of a migration)."""
    common: dict[str, set[str]] | None = None
    for engine in engines:
        inspector = inspect(engine)
        found = {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}
        common = found if common is None else {
            name: columns & found[name] for name, columns in common.items() if name in found
        }
    return common or {}


def plan_tables(available: dict[str, set[str]] | None = None) -> list[TablePlan]:
    """The model's tables in foreign-key order; cycle-closing and self-referencing FK columns deferred.

    ``available`` (see :func:`existing_columns`) limits the plan to the tables and columns both
    databases have; by the head-revision check that is all of them, outside development.
    """
    tables = [
        t for t in Base.metadata.tables.values()
        if t.name not in NOT_COPIED and (available is None or t.name in available)
    ]
    deferred: dict[str, set[str]] = {table.name: set() for table in tables}
    ordered: list[Table] = []
    for table, constraints in sort_tables_and_constraints(tables):
        if table is not None:
            ordered.append(table)
        else:
            for constraint in constraints:  # the ones SQLAlchemy had to break a cycle with
                if isinstance(constraint, ForeignKeyConstraint) and constraint.table.name in deferred:
                    deferred[constraint.table.name].update(constraint.column_keys)
    for table in tables:
        for constraint in table.foreign_key_constraints:
            if constraint.referred_table is table or constraint.use_alter:
                deferred[table.name].update(constraint.column_keys)
    plans = []
    for table in ordered:
        columns = tuple(c for c in table.columns if available is None or c.name in available[table.name])
        names = {c.name for c in columns}
        # a tenant's row is keyed (tenant_id, id) (decision 0057); id alone is unique and carries the sequence
        key = (table.c.id,) if "id" in table.c and table.c.id.primary_key else tuple(table.primary_key.columns)
        plans.append(TablePlan(table, key,
                               tuple(sorted(deferred[table.name] & names)), columns))
    return plans


# --- value normalisation (one path for the copy and the checksums) ------------------


def _canonical_converter(column: Column[Any], dialect: str) -> Callable[[Any], Any] | None:
    """Raw DBAPI value of ``column`` on ``dialect`` → the canonical Python value (None: already canonical).

    Canonical: ``datetime``/``date`` objects, ``Decimal`` at the column's scale, ``bool``; JSON
    stays as the driver gives it (text, or objects on PostgreSQL). Reading raw and converting only
    what needs it is several times faster than SQLAlchemy's per-value result processing on SQLite.
    """
    column_type = column.type
    if isinstance(column_type, Boolean):
        return None if dialect == "postgresql" else bool
    if isinstance(column_type, Numeric) and not isinstance(column_type, (Integer, Float)):
        if column_type.scale is None:
            return None if dialect != "sqlite" else lambda value: Decimal(repr(value))
        quantum = Decimal(1).scaleb(-column_type.scale)
        if dialect == "sqlite":  # NUMERIC is stored as REAL (or INTEGER/TEXT) in SQLite
            return lambda value: Decimal(repr(value) if isinstance(value, float) else str(value)).quantize(quantum)
        return None
    if dialect == "sqlite":
        if isinstance(column_type, DateTime):
            return lambda value: value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        if isinstance(column_type, Date):
            return lambda value: value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return None


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@functools.lru_cache(maxsize=8192)
def _canonical_json_text(text_value: str) -> str:
    """Cached: most JSON cells repeat (``{}``, ``[]``, the same custom fields)."""
    return _canonical_json(json.loads(text_value))


def _convert_columns(
    rows: Sequence[Sequence[Any]], converters: Sequence[tuple[int, Callable[[Any], Any]]]
) -> Sequence[tuple[Any, ...]]:
    """``rows`` with ``convert`` applied to every non-NULL value of column ``index``, per (index, convert).

    (A row loop: transposing the batch with ``zip`` to convert column-wise measured 4× slower.)
    """
    if not converters:
        return rows  # type: ignore[return-value]  # DBAPI rows are tuples already
    converted = []
    for row in rows:
        values = list(row)
        for index, convert in converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        converted.append(tuple(values))
    return converted


def _digest_adjuster(column: Column[Any], *, whole_seconds: bool) -> Callable[[Any], Any] | None:
    """How a canonical value enters a checksum when its form may differ between dialects (None: as is)."""
    column_type = column.type
    if isinstance(column_type, JSON):  # key order and spacing are not data
        return lambda value: _canonical_json_text(value) if isinstance(value, str) else _canonical_json(value)
    if isinstance(column_type, Float):  # MariaDB FLOAT keeps ~7 significant digits
        return (lambda value: f"{value:.6g}") if whole_seconds else (lambda value: repr(float(value)))
    if isinstance(column_type, DateTime) and whole_seconds:  # MariaDB DATETIME keeps whole seconds
        return lambda value: value.replace(microsecond=0)
    return None


class TableDigest:
    """SHA-256 over a table's canonical rows in key order (``repr`` of each row, adjusted where needed)."""

    def __init__(self, plan: TablePlan, *, whole_seconds: bool) -> None:
        self.adjusters = [_digest_adjuster(column, whole_seconds=whole_seconds) for column in plan.columns]
        self.adjusted = [(index, adjust) for index, adjust in enumerate(self.adjusters) if adjust is not None]
        self.hash = hashlib.sha256()
        self.rows = 0

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Feed canonical rows (in key order, all planned columns in order)."""
        rows = _convert_columns(rows, self.adjusted) if self.adjusted else [tuple(row) for row in rows]
        if rows:
            self.hash.update("\n".join(map(repr, rows)).encode("utf-8", "surrogatepass") + b"\n")
        self.rows += len(rows)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
COPY_BINARY_TRAILER = b"\xff\xff"


class CopyDigest:
    """PostgreSQL targets: SHA-256 of a table as a binary COPY stream, as sent and as read back.

    The source side (``from_rows=True``) hashes the exact tuples the writer sends (psycopg's
    binary formatter, in C), framed by the stream's header and trailer; the target side hashes
    ``COPY (SELECT … ORDER BY key) TO STDOUT (FORMAT BINARY)`` as it streams in. Binary values
    come back byte for byte as sent (integers, timestamps in microseconds, numerics at the
    column's scale, text and JSON as UTF-8), so neither side formats anything and the server
    streams the proof without a Python object per value.
    """

    def __init__(self, *, from_rows: bool) -> None:
        self.hash = hashlib.sha256(COPY_BINARY_HEADER if from_rows else b"")
        self.from_rows = from_rows

    def update(self, data: bytes) -> None:
        self.hash.update(data)

    def hexdigest(self) -> str:
        if not self.from_rows:
            return self.hash.hexdigest()
        complete = self.hash.copy()
        complete.update(COPY_BINARY_TRAILER)
        return complete.hexdigest()


def _copy_out_digest(connection: Connection, plan: TablePlan) -> CopyDigest:
    """Hash a PostgreSQL table as a binary COPY stream of its planned columns in key order."""
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(column.name) for column in plan.columns)
    order = ", ".join(quote(column.name) for column in plan.key)
    statement = f"COPY (SELECT {columns} FROM {quote(plan.table.name)} ORDER BY {order}) TO STDOUT (FORMAT BINARY)"
    digest = CopyDigest(from_rows=False)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for block in copy:
                digest.update(block)
    finally:
        cursor.close()
    connection.rollback()
    return digest


# --- reading -----------------------------------------------------------------------


def _read_batches(
    connection: Connection, plan: TablePlan, *, after: tuple[Any, ...] | None, batch_size: int
) -> Iterator[list[tuple[Any, ...]]]:
    """Canonical rows of the table in key order after key ``after``, ``batch_size`` at a time, streamed."""
    quote = connection.dialect.identifier_preparer.quote
    table_name = quote(plan.table.name)
    # untyped columns: the driver's raw values, converted below only where needed
    raw_columns: list[Any] = [literal_column(f"{table_name}.{quote(column.name)}") for column in plan.columns]
    statement = select(*raw_columns).select_from(plan.table).order_by(*plan.key)
    if after is not None:
        if len(plan.key) == 1:
            statement = statement.where(plan.key[0] > after[0])
        else:
            statement = statement.where(tuple_(*plan.key) > tuple_(*after))
    converters = [(index, convert) for index, column in enumerate(plan.columns)
                  if (convert := _canonical_converter(column, connection.dialect.name)) is not None]
    result = connection.execution_options(stream_results=True).execute(statement)
    try:
        # the first batch through SQLAlchemy, which reads a row ahead on server-side cursors; the
        # rest straight from the driver's cursor: the columns are untyped, so building Row objects
        # would only add work (about a third of the time of reading SQLite)
        partition: Sequence[Any] = [tuple(row) for row in result.fetchmany(batch_size)]
        full = len(partition) == batch_size
        while partition:
            yield list(_convert_columns(partition, converters))
            partition = result.cursor.fetchmany(batch_size) if full else []
    finally:
        result.close()


def _last_key(connection: Connection, plan: TablePlan) -> tuple[Any, ...] | None:
    """The greatest key already in the target table (None when empty)."""
    statement = select(*plan.key).order_by(*[column.desc() for column in plan.key]).limit(1)
    row = connection.execute(statement).first()
    return tuple(row) if row is not None else None


# --- writing -----------------------------------------------------------------------


def _to_null(_value: Any) -> None:
    return None


def _json_text(value: Any) -> Any:
    return value if isinstance(value, (str, bytes)) else json.dumps(value, ensure_ascii=False)


def _sqlite_datetime(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # the form SQLAlchemy stores and compares


class _Writer:
    """Writes batches of canonical rows into one target table through the raw DBAPI cursor."""

    def __init__(self, connection: Connection, plan: TablePlan) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.table = plan.table
        self.names = [column.name for column in plan.columns]
        deferred = {self.names.index(name) for name in plan.deferred}
        # deferred foreign keys are written as NULL first (see _fill_deferred)
        self.converters: list[tuple[int, Callable[[Any], Any]]] = [
            (index, _to_null if index in deferred or convert is None else convert)
            for index, column in enumerate(plan.columns)
            if (convert := self._converter(column)) is not None or index in deferred
        ]
        self.has_deferred = bool(deferred)
        # the same rows as stored in the end (deferred keys included), for the checksum
        self.digest_converters = [
            (index, convert) for index, column in enumerate(plan.columns)
            if (convert := self._converter(column)) is not None
        ]
        self.transformer: Any = None
        if self.dialect.name == "postgresql":
            self.transformer = self._binary_transformer(connection)

    def _binary_transformer(self, connection: Connection) -> Any:
        """A psycopg Transformer dumping each planned column in the binary form of its target type.

        Binary COPY needs the exact type per field (an ``int`` must go as int4 into an integer
        column, not as the int2 psycopg would pick for a small value). JSON goes as text, whose
        binary form is the same UTF-8 that ``json`` receives.
        """
        from psycopg.adapt import Transformer
        from psycopg.pq import Format

        driver = connection.connection.driver_connection
        oids = dict(driver.execute(  # type: ignore[union-attr]
            "SELECT attname, atttypid::int FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (self.dialect.identifier_preparer.quote(self.table.name),),
        ).fetchall())
        text_oid, json_oid = 25, 114
        transformer = Transformer(driver)
        transformer.set_dumper_types(
            [text_oid if oids[name] == json_oid else oids[name] for name in self.names], Format.BINARY
        )
        return transformer

    def _converter(self, column: Column[Any]) -> Callable[[Any], Any] | None:
        column_type = column.type
        dialect = self.dialect.name
        if isinstance(column_type, JSON):
            return _json_text
        if dialect == "mysql" and isinstance(column_type, DateTime):
            # MariaDB DATETIME holds whole seconds; truncate here (it would otherwise round)
            return lambda value: value.replace(microsecond=0)
        if dialect == "sqlite":
            if isinstance(column_type, DateTime):
                return _sqlite_datetime
            if isinstance(column_type, Date):
                return lambda value: value.isoformat()
            if isinstance(column_type, Numeric) and not isinstance(column_type, Integer):
                return float  # what SQLAlchemy stores for NUMERIC on SQLite
            if isinstance(column_type, Boolean):
                return int
        return None

    def _prepare(
        self, rows: Sequence[Sequence[Any]], converters: list[tuple[int, Callable[[Any], Any]]] | None = None
    ) -> Sequence[Sequence[Any]]:
        return _convert_columns(rows, self.converters if converters is None else converters)

    def copy_tuples(self, rows: Sequence[Sequence[Any]], *, as_stored: bool = False) -> bytes:
        """PostgreSQL binary COPY tuples of ``rows`` (psycopg's formatter); ``as_stored``: deferred keys kept."""
        from psycopg._copy_base import format_row_binary

        prepared = self._prepare(rows, self.digest_converters if as_stored else None)
        buffer = bytearray()
        for row in prepared:
            format_row_binary(row, self.transformer, buffer)
        return bytes(buffer)

    def write(self, rows: Sequence[Sequence[Any]], digest: CopyDigest | None = None) -> None:
        """Insert ``rows`` (all planned columns, in order) in the connection's current transaction.

        On PostgreSQL the binary COPY tuples are built here and, when ``digest`` is given, hashed as sent.
        """
        quote = self.dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in self.names)
        table_name = quote(self.table.name)
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.dialect.name == "postgresql":
                data = self.copy_tuples(rows)
                if digest is not None:
                    digest.update(self.copy_tuples(rows, as_stored=True) if self.has_deferred else data)
                with cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(COPY_BINARY_HEADER + data + COPY_BINARY_TRAILER)
            else:
                prepared = self._prepare(rows)
                marker = "?" if self.dialect.paramstyle == "qmark" else "%s"
                placeholders = ", ".join([marker] * len(self.names))
                cursor.executemany(f"INSERT INTO {table_name} ({columns}) VALUES ({placeholders})", prepared)
        finally:
            cursor.close()


def _fill_deferred(source: Connection, target: Connection, plan: TablePlan, batch_size: int) -> int:
    """Write the deferred foreign-key columns now that every referenced row exists."""
    if not plan.deferred:
        return 0
    columns = [plan.table.c[name] for name in plan.deferred]
    statement = select(*plan.key, *columns).where(or_(*[column.is_not(None) for column in columns])).order_by(*plan.key)
    key_names = [column.name for column in plan.key]
    fill = (
        update(plan.table)
        .where(and_(*[plan.table.c[name] == bindparam(f"key_{name}") for name in key_names]))
        .values({name: bindparam(f"value_{name}") for name in plan.deferred})
        # keep the copied updated_at: an explicit value stops the column's onupdate default
        .values({c.name: c for c in plan.columns if c.onupdate is not None and c.name not in plan.deferred})
    )
    written = 0
    for partition in _read_batches_of(source, statement, batch_size):
        parameters = [
            {**{f"key_{name}": row[i] for i, name in enumerate(key_names)},
             **{f"value_{name}": row[len(key_names) + j] for j, name in enumerate(plan.deferred)}}
            for row in partition
        ]
        target.execute(fill, parameters)
        written += len(parameters)
    return written


def _read_batches_of(connection: Connection, statement: Any, batch_size: int) -> Iterator[Sequence[Any]]:
    result = connection.execution_options(stream_results=True, yield_per=batch_size).execute(statement)
    yield from result.partitions(batch_size)


def _reset_identity(target: Connection, plan: TablePlan) -> None:
    """Make the next generated id follow the copied ones."""
    if len(plan.key) != 1 or not isinstance(plan.key[0].type, Integer):
        return
    name = plan.table.name
    key = plan.key[0].name
    if target.dialect.name == "postgresql":
        target.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{name}\"', '{key}'), COALESCE(MAX(\"{key}\"), 1), "
            f"MAX(\"{key}\") IS NOT NULL) FROM \"{name}\""
            f" WHERE pg_get_serial_sequence('\"{name}\"', '{key}') IS NOT NULL"
        )
    elif target.dialect.name == "mysql":
        highest = target.execute(select(func.max(plan.key[0]))).scalar() or 0
        target.exec_driver_sql(f"ALTER TABLE `{name}` AUTO_INCREMENT = {int(highest) + 1}")


# --- the copy ----------------------------------------------------------------------


def _count(connection: Connection, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)


def target_has_data(target: Engine) -> bool:
    """Does any data table of ``target`` hold a row?"""
    existing = set(inspect(target).get_table_names())
    with target.connect() as connection:
        for plan in plan_tables():
            probe = select(literal(1)).select_from(plan.table).limit(1)
            if plan.table.name in existing and connection.execute(probe).first():
                return True
    return False


def copy_database(
    source: Engine,
    target: Engine,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resume: bool = False,
    source_label: str = "",
    progress: Progress | None = None,
    digests: dict[str, Any] | None = None,
    restorer: _DdlRestorer | None = None,
) -> list[TableCopy]:
    """Copy every data table from ``source`` to ``target`` (both at head); returns per-table figures.

    When ``digests`` is given, each table read from the start is also fed to its digest, so the
    source checksum costs no second read. Dropped indexes and foreign keys (PostgreSQL) are
    restored by ``restorer`` and awaited here unless the caller passed its own ``restorer``:
    then the caller waits for it (e.g. after verifying, which needs no secondary index).
    """
    copy = functools.partial(_copy_tables, source, target, batch_size=batch_size, resume=resume,
                             source_label=source_label, progress=progress, digests=digests)
    if restorer is not None:
        return copy(restorer=restorer)
    with _DdlRestorer(target, MigrationProgress.__table__) as own:  # type: ignore[arg-type]
        copies = copy(restorer=own)
        own.wait()
        return copies


def _copy_tables(
    source: Engine,
    target: Engine,
    *,
    batch_size: int,
    resume: bool,
    source_label: str,
    progress: Progress | None,
    digests: dict[str, Any] | None,
    restorer: _DdlRestorer,
) -> list[TableCopy]:
    copies: list[TableCopy] = []
    whole_seconds = "mysql" in (source.dialect.name, target.dialect.name)
    plans = plan_tables(existing_columns(source, target))
    progress_table: Table = MigrationProgress.__table__  # type: ignore[assignment]
    with source.connect() as read, target.connect() as write:
        _tune_bulk_session(write)
        # first every table's starting point, and (PostgreSQL) the indexes and foreign keys of the
        # big ones dropped up front: restoring them later then never waits on a lock of a table
        # still being dropped, so it runs beside the copy of the following tables
        starts: dict[str, tuple[int, tuple[Any, ...] | None, int, list[str]]] = {}
        for plan in plans:
            name = plan.table.name
            total = _count(read, plan.table)
            after = _last_key(write, plan) if resume else None
            resumed_from = _count(write, plan.table) if after is not None else 0
            record = write.execute(select(progress_table).where(progress_table.c.table_name == name)).first()
            if record is not None and resume and record.source != source_label:
                raise ResumeFromOtherSource(record.source, source=record.source)
            deferred_ddl = list(record.deferred_ddl or []) if record is not None else []
            if write.dialect.name == "postgresql" and total - resumed_from >= DEFER_INDEXES_FROM_ROWS:
                deferred_ddl += _drop_secondary_indexes(write, name)
            values = {"source": source_label, "rows_copied": resumed_from, "status": "copying",
                      "deferred_ddl": deferred_ddl or None}
            if record is None:
                write.execute(progress_table.insert().values(table_name=name, started_at=utcnow(), **values))
            else:
                write.execute(progress_table.update().where(progress_table.c.table_name == name).values(**values))
            write.commit()  # the dropped indexes and their DDL are recorded together
            starts[name] = (total, after, resumed_from, deferred_ddl)
        read.rollback()
        for plan in plans:
            started = time.perf_counter()
            name = plan.table.name
            total, after, resumed_from, deferred_ddl = starts[name]
            writer = _Writer(write, plan)
            digest: TableDigest | None = None
            copy_digest: CopyDigest | None = None
            if digests is not None and after is None:
                if write.dialect.name == "postgresql":
                    copy_digest = digests[name] = CopyDigest(from_rows=True)
                else:
                    digest = digests[name] = TableDigest(plan, whole_seconds=whole_seconds)
            copied = resumed_from
            if progress:
                progress(name, copied, total)
            batches = _read_batches(read, plan, after=after, batch_size=batch_size)
            for batch in _prefetched(batches, digest):
                # the batch and its progress record commit together: a rerun resumes after it
                writer.write(batch, copy_digest)
                copied += len(batch)
                write.execute(
                    progress_table.update().where(progress_table.c.table_name == name).values(rows_copied=copied)
                )
                write.commit()
                if progress:
                    progress(name, copied, total)
            read.rollback()
            if deferred_ddl:
                restorer.submit(name, deferred_ddl)
            copies.append(TableCopy(name, copied - resumed_from, time.perf_counter() - started, resumed_from))
        # (an UPDATE of a table whose indexes are still building waits for them: correct, if slower)
        for plan in plans:
            _fill_deferred(read, write, plan, batch_size)
            _reset_identity(write, plan)
            write.execute(
                progress_table.update()
                .where(progress_table.c.table_name == plan.table.name)
                .values(status="done", finished_at=utcnow())
            )
            write.commit()
            read.rollback()
    return copies


class _DdlRestorer:
    """Replays deferred index/constraint DDL beside the copy, on ``workers`` connections of its own.

    Each index is its own task, so the dozen indexes of a big table build side by side (``CREATE
    INDEX`` takes a SHARE lock, which does not conflict with itself); a foreign key's re-add and
    its validation stay one task, in order. When the last task of a table finishes, its
    ``migration_progress.deferred_ddl`` is cleared, so a resumed run replays only what is missing
    (every statement is idempotent).
    """

    def __init__(self, target: Engine, progress_table: Table, *, workers: int = 2) -> None:
        self.target = target
        self.progress_table = progress_table
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migration-ddl")
        self.futures: list[Any] = []
        self.remaining: dict[str, int] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> _DdlRestorer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, table_name: str, statements: list[str]) -> None:
        """Restore ``statements`` of ``table_name`` (index builds in parallel, each FK in order)."""
        tasks: list[list[str]] = []
        for ddl in statements:
            if " VALIDATE CONSTRAINT " in ddl and tasks:
                tasks[-1].append(ddl)  # after the re-add it follows (see _drop_secondary_indexes)
            else:
                tasks.append([ddl])
        with self.lock:
            self.remaining[table_name] = len(tasks)
        self.futures.extend(self.pool.submit(self._restore, table_name, task) for task in tasks)

    def wait(self) -> None:
        """Block until every submitted restore ran; re-raise the first failure."""
        for future in self.futures:
            future.result()

    def _restore(self, table_name: str, task: list[str]) -> None:
        with self.target.connect() as connection:
            if connection.dialect.name == "postgresql":
                # index builds sort in memory instead of spilling to disk
                connection.exec_driver_sql("SET maintenance_work_mem = '256MB'")
                connection.commit()
            for ddl in task:  # each in its own transaction
                try:
                    for statement in ddl.split("; "):
                        run_catalog_ddl(connection, statement)
                    connection.commit()
                except DBAPIError:
                    connection.rollback()
                    if " VALIDATE CONSTRAINT " not in ddl:
                        raise
                    # rows that break it stay, and the foreign-key check reports the table
            with self.lock:
                self.remaining[table_name] -= 1
                last = self.remaining[table_name] == 0
            if last:
                connection.execute(
                    self.progress_table.update()
                    .where(self.progress_table.c.table_name == table_name)
                    .values(deferred_ddl=None)
                )
                connection.commit()


_END = object()


def _prefetched(
    batches: Iterator[list[tuple[Any, ...]]], digest: TableDigest | None
) -> Iterator[list[tuple[Any, ...]]]:
    """Read (and checksum) the next batches in a thread while the caller writes this one.

    The target database works in its own process, so reading the source and hashing overlap
    with the target's COPY/INSERT instead of waiting for it.
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if digest is not None:
                    digest.add(batch)
                while not stop.is_set():
                    try:
                        buffer.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            buffer.put(error)

    worker = threading.Thread(target=produce, name="migration-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _tune_bulk_session(write: Connection) -> None:
    """Session settings for a bulk load whose result is verified afterwards anyway."""
    if write.dialect.name == "postgresql":
        # a crash loses at most the last few batches, and resume starts from what is really there
        write.exec_driver_sql("SET synchronous_commit TO off")
    elif write.dialect.name == "mysql":
        # as mysqldump does; every foreign key is checked by the verification suite instead
        write.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    write.commit()


def _drop_secondary_indexes(write: Connection, table_name: str) -> list[str]:
    """Drop a PostgreSQL table's foreign keys and non-unique indexes; returns the DDL that restores them.

    As pg_restore does: checking each row's foreign keys and maintaining every index (trigram GIN
    above all) during COPY costs many times more than building the indexes once and validating
    the constraints in one pass afterwards. The DDL is idempotent, so a resumed run can replay it.
    """
    quote = write.dialect.identifier_preparer.quote
    table = quote(table_name)
    indexes = write.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE t.relname = :table AND n.nspname = current_schema() AND NOT x.indisunique"
            " AND NOT x.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
            " ORDER BY i.relname"
        ),
        {"table": table_name},
    ).all()
    foreign_keys = write.execute(
        text(
            "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE t.relname = :table AND n.nspname = current_schema() AND c.contype = 'f' ORDER BY c.conname"
        ),
        {"table": table_name},
    ).all()
    # a partitioned table (0043: activities, audit_events) describes its indexes "ON ONLY" itself (which would
    # build none on its partitions) and refuses NOT VALID foreign keys: its own are built whole and checked at once
    partitioned = write.execute(
        text("SELECT c.relkind = 'p' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE c.relname = :table AND n.nspname = current_schema()"), {"table": table_name}).scalar()
    restore = [ddl.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1).replace(" ON ONLY ", " ON ", 1)
               for _name, ddl in indexes]
    for index_name, _ddl in indexes:
        write.exec_driver_sql(f"DROP INDEX {quote(index_name)}")
    for constraint_name, definition in foreign_keys:
        write.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {quote(constraint_name)}")
        if partitioned:
            restore.append(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {quote(constraint_name)}; "
                           f"ALTER TABLE {table} ADD CONSTRAINT {quote(constraint_name)} {definition}")
            continue
        # NOT VALID adds it at once; the VALIDATE that follows checks every row in one pass
        restore.append(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {quote(constraint_name)}; "
                       f"ALTER TABLE {table} ADD CONSTRAINT {quote(constraint_name)} {definition} NOT VALID")
        restore.append(f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(constraint_name)}")
    return restore


# --- verification ------------------------------------------------------------------


def _money_columns(plan: TablePlan) -> list[Column[Any]]:
    return [c for c in plan.columns if isinstance(c.type, Numeric) and not isinstance(c.type, Integer)]


def _per_tenant(connection: Connection, plan: TablePlan) -> dict[tuple[str, int | None], str]:
    """Row count and exact money sums of the table per tenant: {(figure, tenant): value}."""
    table = plan.table
    tenant = table.c.get("tenant_id")
    group = [tenant] if tenant is not None else []
    aggregates: list[Any] = [func.count()]
    money = _money_columns(plan)
    for column in money:
        scale = column.type.scale or 0  # type: ignore[attr-defined]
        if connection.dialect.name == "sqlite":
            # SQLite keeps NUMERIC as REAL: sum whole cents so the total is exact
            aggregates.append(func.sum(cast(func.round(column * (10**scale)), Integer)))
        else:
            aggregates.append(func.sum(column * (10**scale)))
    figures: dict[tuple[str, int | None], str] = {}
    for row in connection.execute(select(*group, *aggregates).group_by(*group)):
        tenant_id = row[0] if group else None
        offset = len(group)
        figures[("row_count", tenant_id)] = str(row[offset])
        for index, column in enumerate(money):
            scale = column.type.scale or 0  # type: ignore[attr-defined]
            cents = row[offset + 1 + index]
            total = Decimal(0) if cents is None else Decimal(str(cents)).to_integral_value()
            quantum = Decimal(1).scaleb(-scale)
            figures[(f"money_sum:{column.name}", tenant_id)] = str(total.scaleb(-scale).quantize(quantum))
    return figures


def _duplicate_keys(connection: Connection, plan: TablePlan) -> int:
    keys = select(*plan.key).group_by(*plan.key).having(func.count() > 1).subquery()
    return int(connection.execute(select(func.count()).select_from(keys)).scalar() or 0)


def _orphans(connection: Connection, constraint: ForeignKeyConstraint) -> int:
    """Rows whose foreign key is set but points at no row."""
    table = constraint.table
    referred = constraint.referred_table.alias("referred")
    pairs = [(element.parent, referred.c[element.column.name]) for element in constraint.elements]
    exists = select(literal(1)).select_from(referred).where(and_(*[ref == table.c[col.name] for col, ref in pairs]))
    statement = (
        select(func.count())
        .select_from(table)
        .where(and_(*[table.c[col.name].is_not(None) for col, _ in pairs]), ~exists.exists())
    )
    return int(connection.execute(statement).scalar() or 0)


def _table_digest(connection: Connection, plan: TablePlan, *, whole_seconds: bool, batch_size: int) -> TableDigest:
    digest = TableDigest(plan, whole_seconds=whole_seconds)
    for batch in _read_batches(connection, plan, after=None, batch_size=batch_size):
        digest.add(batch)
    connection.rollback()
    return digest


Totals = dict[str, dict[tuple[str, int | None], str]]
"""Table → its per-tenant figures (see :func:`_per_tenant`)."""


def source_totals(source: Engine, plans: Sequence[TablePlan]) -> Totals:
    """Row counts and money sums per table and tenant of the source, in SQL.

    Independent of the copy (the source is only read), so :func:`migrate` computes them in a
    thread while the copy runs; SQLite releases the GIL while it aggregates.
    """
    with source.connect() as connection:
        return {plan.table.name: _per_tenant(connection, plan) for plan in plans}


def _source_digest(source: Engine, target: Engine, plan: TablePlan, *, whole_seconds: bool,
                   batch_size: int) -> TableDigest | CopyDigest:
    """Checksum a source table by reading it again (a table the copy resumed, so never hashed whole)."""
    with source.connect() as old:
        if target.dialect.name != "postgresql":
            return _table_digest(old, plan, whole_seconds=whole_seconds, batch_size=batch_size)
        with target.connect() as new:  # the COPY text is formatted for this target
            writer = _Writer(new, plan)
            digest = CopyDigest(from_rows=True)
            for batch in _read_batches(old, plan, after=None, batch_size=batch_size):
                digest.update(writer.copy_tuples(batch, as_stored=True))
            return digest


def _target_digests(target: Engine, plans: Sequence[TablePlan], *, whole_seconds: bool,
                    batch_size: int) -> dict[str, str]:
    """Checksums of every target table (PostgreSQL: over COPY text, streamed by the server)."""
    with target.connect() as reader:
        if target.dialect.name == "postgresql":
            return {plan.table.name: _copy_out_digest(reader, plan).hexdigest() for plan in plans}
        return {
            plan.table.name: _table_digest(reader, plan, whole_seconds=whole_seconds, batch_size=batch_size)
            .hexdigest()
            for plan in plans
        }


def digests_like_target(source: Engine, target: Engine) -> dict[str, Any] | None:
    """The source's checksums taken the way the target's are, for a copy between two PostgreSQL databases
    (a restore drill): both over COPY text, so a JSON value's spacing, kept by ``json`` columns, hashes
    the same on both sides. None otherwise (the row-by-row canonical checksum already agrees)."""
    if source.dialect.name != "postgresql" or target.dialect.name != "postgresql":
        return None
    plans = plan_tables(existing_columns(source, target))
    with source.connect() as reader:
        return {plan.table.name: _copy_out_digest(reader, plan) for plan in plans}


def collect_figures(
    source: Engine,
    target: Engine,
    *,
    source_digests: dict[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    expected_totals: Future[Totals] | None = None,
) -> list[CheckFigure]:
    """Every figure of the migration suite, computed on both sides (checksums reuse ``source_digests``).

    Three lanes run at once: the target's checksums (a thread), the source's totals (a thread,
    or ``expected_totals`` already under way) and resumed tables' source checksums, and the
    target's totals, key and foreign-key figures (here).
    """
    whole_seconds = "mysql" in (source.dialect.name, target.dialect.name)
    available = existing_columns(source, target)
    plans = plan_tables(available)
    digests = dict(source_digests or {})
    figures: list[CheckFigure] = []

    def expected_side() -> tuple[Totals, dict[str, str]]:
        totals = expected_totals.result() if expected_totals is not None else source_totals(source, plans)
        checksums = {}
        for plan in plans:
            digest = digests.get(plan.table.name)
            if digest is None:  # a resumed table: read the whole source again
                digest = _source_digest(source, target, plan, whole_seconds=whole_seconds, batch_size=batch_size)
            checksums[plan.table.name] = digest.hexdigest()
        return totals, checksums

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="migration-verify") as pool:
        hashing = pool.submit(_target_digests, target, plans, whole_seconds=whole_seconds, batch_size=batch_size)
        expecting = pool.submit(expected_side)
        with target.connect() as new:
            actual = {plan.table.name: _per_tenant(new, plan) for plan in plans}
            checks = []
            for plan in plans:
                name = plan.table.name
                checks.append(CheckFigure("primary_key_unique", name, "0", str(_duplicate_keys(new, plan))))
                names = {column.name for column in plan.columns}
                for constraint in sorted(plan.table.foreign_key_constraints, key=lambda c: tuple(c.column_keys)):
                    if not set(constraint.column_keys) <= names or constraint.referred_table.name not in available:
                        continue
                    checks.append(CheckFigure(
                        "foreign_key_resolves", name, "0", str(_orphans(new, constraint)),
                        column=",".join(constraint.column_keys),
                    ))
        expected, expected_checksums = expecting.result()
        actual_checksums = hashing.result()
    for plan in plans:
        name = plan.table.name
        keys = sorted(set(expected[name]) | set(actual[name]), key=lambda k: (k[0], k[1] if k[1] is not None else -1))
        for key in keys:
            figure, tenant_id = key
            check, _, column = figure.partition(":")
            default = "0" if check == "row_count" else "0.00"
            figures.append(CheckFigure(check, name, expected[name].get(key, default), actual[name].get(key, default),
                                       tenant_id=tenant_id, column=column or None))
        figures.extend(figure for figure in checks if figure.table == name)
    figures.extend(CheckFigure("checksum", plan.table.name, expected_checksums[plan.table.name],
                               actual_checksums[plan.table.name]) for plan in plans)
    return figures


def verify(
    source: Engine,
    target: Engine,
    *,
    source_digests: dict[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    expected_totals: Future[Totals] | None = None,
) -> Verification:
    """Compare source and target and validate the comparison with the ``migration`` expectation suite."""
    import pandas as pd  # type: ignore[import-untyped]

    from crm_core.validation import run_suite
    from validations.migration import CHECKS

    started = time.perf_counter()
    figures = collect_figures(source, target, source_digests=source_digests, batch_size=batch_size,
                              expected_totals=expected_totals)
    frame = pd.DataFrame(
        [{**asdict(figure), "tenant_id": -1 if figure.tenant_id is None else figure.tenant_id} for figure in figures],
        columns=["check", "table", "expected", "actual", "tenant_id", "column"],
    )
    result = run_suite("migration", frame)
    expectations = [
        {"check": check, "expectation": outcome.expectation, "success": outcome.success,
         "figures": int((frame["check"] == check).sum()), "failed": outcome.unexpected_count,
         "tables": sorted({str(frame.loc[row, "table"]) for row in outcome.unexpected_rows if row in frame.index})}
        for check, outcome in zip(CHECKS, result.outcomes, strict=True)
    ]
    return Verification(figures, expectations, time.perf_counter() - started)


# --- the use case ------------------------------------------------------------------


def migrate(
    source_url: str,
    target_url: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resume: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy ``source_url`` into ``target_url`` and prove it. Raises a MigrationRefused error before writing anything."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if make_url(source_url) == make_url(target_url):
        raise ValueError("source and target are the same database")
    source = make_engine(source_url)
    target = make_engine(target_url)
    try:
        try:
            source_revision = schema.current_revision(source)
        except Exception as error:  # an unreachable server or a missing file: say so, plainly
            raise DatabaseUnreachable(str(error), which="source", detail=_first_line(error)) from error
        if source_revision != schema.head_revision():
            raise SourceSchemaOutdated(revision=source_revision or "-", head=schema.head_revision())
        try:
            has_data = target_has_data(target)
        except Exception as error:
            raise DatabaseUnreachable(str(error), which="target", detail=_first_line(error)) from error
        if has_data and not resume:
            raise TargetNotEmpty()
        schema.upgrade_to_head(target)
        notes = []
        if "mysql" in (source.dialect.name, target.dialect.name) and source.dialect.name != target.dialect.name:
            notes.append("whole_seconds")
        digests: dict[str, Any] = {}
        progress_table: Table = MigrationProgress.__table__  # type: ignore[assignment]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration-totals") as early, \
                _DdlRestorer(target, progress_table) as restorer:
            started = time.perf_counter()
            # the source's SQL totals do not depend on the copy: computed meanwhile
            totals = early.submit(source_totals, source, plan_tables(existing_columns(source, target)))
            tables = copy_database(source, target, batch_size=batch_size, resume=resume, restorer=restorer,
                                   source_label=safe_url(source_url), progress=progress, digests=digests)
            copy_seconds = time.perf_counter() - started
            # the proof needs no secondary index: verify while the last ones build, then wait for them
            verification = verify(source, target, source_digests=digests, batch_size=batch_size,
                                  expected_totals=totals)
            waited = time.perf_counter()
            restorer.wait()
            # a copied database has no statistics until ANALYZE: the planner would guess every plan
            refresh_planner_statistics(target, bulk_loaded=True)
            restore_seconds = time.perf_counter() - waited
        return MigrationReport(safe_url(source_url), safe_url(target_url), tables, verification, copy_seconds,
                               notes, restore_seconds)
    finally:
        source.dispose()
        target.dispose()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def tqdm_progress() -> Progress:
    """A progress bar per table on stderr (tqdm)."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    bars: dict[str, Any] = {}

    def report(table: str, done: int, total: int) -> None:
        bar = bars.get(table)
        if bar is None:
            for other in bars.values():
                other.close()
            bars.clear()
            bar = bars[table] = tqdm(total=total, desc=f"{table:<20}", unit="rows", file=sys.stderr,
                                     leave=True, dynamic_ncols=True, unit_scale=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return report


__all__ = [
    "CheckFigure", "MigrationReport", "TableCopy", "Verification", "collect_figures", "copy_database",
    "migrate", "plan_tables", "safe_url", "verify",
]
