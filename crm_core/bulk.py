"""Bulk inserts for the importer and the rules it runs on new records (follow-up tasks, audit rows).

Why not Core ``insert(table)`` with a list of dicts: at 100,000 rows SQLAlchemy's per-row
parameter handling (a bind processor call for every value — each ``created_at`` formatted
again on SQLite, each JSON serialised) costs more than the database's insert, and
``returning(sort_by_parameter_order=True)`` falls back to one statement per row on SQLite.
Here the statement text is built once, each column's bind processor runs once per distinct
value object (a run's rows share ``now``, the tenant, the run tag …), and the driver gets
plain tuples: what SQLAlchemy would send, without its per-row bookkeeping. Only the caller
knows that the rows are within the actor's rights: these functions bypass the session's
flush checks and audit trail on purpose, like any Core statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Select, Table, exists, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from crm_core.models import postgresql_key

INSERT_BATCH = 500
"""Rows per multi-row ``INSERT … RETURNING`` (bind parameters stay far below every database's limit)."""

Processor = Callable[[Any], Any]
_UNSET = object()


def _once_per_value(process: Processor) -> Processor:
    """``process`` remembering its last argument by identity: shared values are converted once; None stays None."""
    last_in: Any = _UNSET
    last_out: Any = None

    def run(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is None:
            return None
        if value is not last_in:
            last_in, last_out = value, process(value)
        return last_out

    return run


try:  # the C encoder json.dumps uses, made once instead of per call (no check for cycles: rows have none)
    from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - CPython always has it
    _c_make_encoder = None
_JSON_SAMPLE = {
    "text": [None, "ascii, 中文 \"quoted\" \n"], "number": [1, 2.5, -0.1], "flag": [True, False, None], "nested": {},
}


def _json_text(value: Any) -> str:
    """``json.dumps(value)`` (default options), without building an encoder per call."""
    return "".join(_json_chunks(value, 0))


if _c_make_encoder is not None:
    _json_chunks = _c_make_encoder(
        None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )


def _fast_json(column_type: Any, dialect: Any, process: Processor) -> Processor:
    """``process`` of a JSON column, or :func:`_json_text` when that is what it does (json.dumps, nothing after)."""
    if (
        _c_make_encoder is None
        or not isinstance(column_type, JSON)
        or getattr(dialect, "_json_serializer", None) is not None
    ):
        return process
    try:
        same = process(_JSON_SAMPLE) == _json_text(_JSON_SAMPLE) == json.dumps(_JSON_SAMPLE)
    except (TypeError, ValueError):  # pragma: no cover - a dialect wrapping the value
        same = False
    return _json_text if same else process


def _processor(table: Table, name: str, dialect: Any) -> Processor | None:
    column_type = table.c[name].type
    process = column_type._cached_bind_processor(dialect)
    return None if process is None else _fast_json(column_type, dialect, process)


def driver_form(session: Session, table: Table, name: str) -> Processor:
    """What :func:`insert_rows` does to a value of column ``name`` before the driver gets it (JSON → text …).

    For values built long before their insert: converted at once (pass the column in
    ``converted``), a row's audit changes are one string instead of a dict of pairs that the
    garbage collector walks again and again while a chunk is written.
    """
    process = _processor(table, name, session.connection().dialect)
    return _as_is if process is None else process


def _as_is(row: Any) -> Any:
    return row


class _Statement:
    """The INSERT for rows shaped like ``first_row`` (plus the table's scalar defaults), and its parameters.

    With ``columns``, rows are tuples of those columns' values in that order (no dict per row);
    the values of the ``converted`` columns are in the driver's form already (see :func:`driver_form`).
    """

    def __init__(
        self,
        connection: Connection,
        table: Table,
        first_row: Mapping[str, Any] | Sequence[Any],
        columns: Sequence[str] | None = None,
        converted: Collection[str] = (),
    ) -> None:
        dialect = connection.dialect
        row_names = list(columns) if columns is not None else list(first_row.keys())  # type: ignore[union-attr]
        defaults = {
            column.name: column.default.arg  # type: ignore[attr-defined]
            for column in table.columns
            if column.name not in row_names and column.default is not None and column.default.is_scalar
        }

        def processor(name: str) -> Processor | None:
            return None if name in converted else _processor(table, name, dialect)

        self.names = [*row_names, *defaults]
        self._getter: Callable[[Any], Any] = _as_is if columns is not None else itemgetter(*row_names)
        self._single = len(row_names) == 1 and columns is None
        # (position, processor) for the columns whose values the driver cannot take as they are
        self._processed = [
            (position, _once_per_value(process))
            for position, name in enumerate(row_names)
            if (process := processor(name)) is not None
        ]
        # the defaults are the same for every row: processed once here
        self._defaults = tuple(
            (process(value) if (process := processor(name)) is not None and value is not None else value)
            for name, value in defaults.items()
        )
        quote = dialect.identifier_preparer.quote
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self.head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in self.names)}) VALUES "
        self.row_sql = "(" + ", ".join([marker] * len(self.names)) + ")"
        self.quote = quote

    def rows_sql(self, count: int) -> str:
        """The INSERT of ``count`` rows in one statement (multi-row VALUES)."""
        return self.head + ", ".join([self.row_sql] * count)

    def values_of(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The driver's parameters for ``rows``, in column order: converted column by column, not row by row."""
        if self._single:
            tuples: Iterable[Any] = zip(map(self._getter, rows))
        elif self._getter is _as_is:
            tuples = rows
        else:
            tuples = map(self._getter, rows)
        if not self._processed:
            defaults = self._defaults
            return [(*row, *defaults) for row in tuples]
        columns: list[Any] = list(zip(*tuples, strict=True))
        if not columns:
            return []
        for position, process in self._processed:
            column = columns[position]
            first = column[0]
            # one object every row shares (the run's ``now``, its tenant …) is converted once; the
            # identity test runs at C speed (ids of objects alive in ``column`` are distinct)
            if len(set(map(id, column))) == 1:
                columns[position] = repeat(None if first is None else process(first), len(column))
            else:
                columns[position] = map(process, column)
        # the defaults repeat without end: zip stops at the rows' columns
        return list(zip(*columns, *(repeat(value) for value in self._defaults), strict=False))


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    converted: Collection[str] = (),
) -> None:
    """Insert ``rows`` (dicts with the same keys, or tuples of ``columns``) in one driver ``executemany``.

    Values of the ``converted`` columns went through :func:`driver_form` already.
    """
    if not rows:
        return
    connection = session.connection()
    statement = _Statement(connection, table, rows[0], columns, converted)
    connection.exec_driver_sql(statement.rows_sql(1), statement.values_of(rows))


def insert_returning_ids(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    pairing: str,
    *,
    columns: Sequence[str] | None = None,
) -> list[int]:
    """Insert ``rows`` (dicts, or tuples of ``columns``); their new ids in row order.

    One multi-row ``INSERT … RETURNING`` per batch of :data:`INSERT_BATCH` rows.

    One multi-row INSERT assigns ascending ids in VALUES order on SQLite (rowid), PostgreSQL
    (nextval per row) and MariaDB (consecutive auto-increment for a simple insert), so the
    sorted ids pair with the rows; the ``pairing`` column, returned beside the id, checks
    that, and a mismatch aborts the transaction rather than guess.
    """
    if not rows:
        return []
    connection = session.connection()
    statement = _Statement(connection, table, rows[0], columns)
    tail = f" RETURNING {statement.quote('id')}, {statement.quote(pairing)}"
    paired: Callable[[Any], Any] = itemgetter(pairing if columns is None else list(columns).index(pairing))
    ids: list[int] = []
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start : start + INSERT_BATCH]
        values = statement.values_of(batch)
        parameters = tuple(chain.from_iterable(values))
        sql = statement.rows_sql(len(batch)) + tail
        returned = sorted(tuple(item) for item in connection.exec_driver_sql(sql, parameters).all())
        if len(returned) != len(batch) or any(
            str(value) != str(paired(row)) for (_, value), row in zip(returned, batch, strict=True)
        ):
            raise RuntimeError(f"inserted {table.name} rows came back out of order")
        ids.extend(int(record_id) for record_id, _ in returned)
    return ids


def insert_new(session: Session, table: Table, columns: Sequence[str], rows: Select[Any],
               key: Sequence[str]) -> int:
    """``INSERT INTO table (columns) SELECT …`` of the rows whose ``key`` (a unique key of ``table``) the
    table does not hold yet, in one statement; how many were written.

    On SQLite and PostgreSQL the unique index decides (``ON CONFLICT (key) DO NOTHING``; on PostgreSQL the key
    as it holds it, with ``tenant_id`` in front on a distributed table: :func:`.models.postgresql_key`): no "not
    written yet?" anti-join over the table being filled, which PostgreSQL plans from the statistics
    the table had before the statement (empty, at a first burst) and then re-reads, per row, every row
    the statement has written. On MariaDB, whose INSERT … SELECT reads its whole SELECT before writing
    when it names the target table, the rows are filtered by NOT EXISTS on the key (``INSERT IGNORE``
    would also turn every other error into a warning). ``rows`` selects ``columns`` in order, the key's
    labelled with their names, and has a WHERE clause (SQLite reads ``SELECT … FROM t ON CONFLICT``
    as a join's ON otherwise).
    """
    connection = session.connection()
    dialect = connection.dialect.name
    statement: Any
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        arbiter = postgresql_key(table.name, key) if dialect == "postgresql" else key
        statement = module.insert(table).from_select(columns, rows).on_conflict_do_nothing(index_elements=arbiter)
    else:  # the test in the SELECT's own WHERE: wrapped in a derived table, MariaDB first copied every row
        stored = exists().where(*(table.c[name] == rows.selected_columns[name] for name in key))
        statement = insert(table).from_select(columns, rows.where(~stored))
    # preserve_rowcount: psycopg's count is gone once SQLAlchemy closes the cursor of a statement with no rows
    result = connection.execution_options(preserve_rowcount=True).execute(statement)
    return max(int(result.rowcount or 0), 0)
