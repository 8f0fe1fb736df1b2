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

import gc
import json
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

INSERT_BATCH = 500
"""Rows per multi-row ``INSERT … RETURNING`` (bind parameters stay far below every database's limit)."""

BEHIND_PARAMETERS = 10_000
"""Bind parameters per statement the write-behind thread runs.

Each distinct statement text stays prepared in the connection's statement cache (128 of
them), and a prepared multi-row INSERT grows with its rows: at 30,000 parameters the cached
statements of one 200,000-row import took ~230 MB (peak RSS 985 MB; 750 MB at 10,000 and
703 MB at 3,000). Fewer, larger statements hand the GIL over less often: 10,000 (~470
customers or ~1,100 audit rows per statement) kept the 100,000-row import's speed.
"""

YOUNG_COLLECTION_THRESHOLD = 100_000
"""Allocations between young-generation collections while an import runs (CPython's default: 700)."""

Processor = Callable[[Any], Any]
_UNSET = object()


class _ProcessWide:
    """An interpreter setting changed while at least one block needs it (thread-safe, nests).

    The first user saves the setting and applies the change; the last one restores what
    was saved, so two imports overlapping in the Streamlit server never leave it changed.
    """

    def __init__(self, read: Callable[[], Any], change: Callable[[Any], None], write: Callable[[Any], None]) -> None:
        self._read, self._change, self._write = read, change, write  # change() gets the saved value
        self._lock = threading.Lock()
        self._users = 0
        self._saved: Any = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = self._read()
                self._change(self._saved)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._write(self._saved)


_young_collections = _ProcessWide(
    gc.get_threshold, lambda saved: gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *saved[1:]),
    lambda saved: gc.set_threshold(*saved),
)


@contextmanager
def rare_collections() -> Iterator[None]:
    """Make the garbage collector's young-generation runs rarer for the block (process-wide, nests).

    An import allocates millions of small objects (row dicts, audit changes) that live until
    their chunk is written; with the default threshold the collector keeps walking them
    (and every older generation it escalates to): ~3.5 of 21 s CPU for 100,000 customers.
    Nothing here makes cycles, so collecting every 100,000 allocations instead loses no
    memory that matters. The previous thresholds come back when the last user leaves.
    """
    with _young_collections.held():
        yield


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


def _as_is(row: Any) -> Any:
    return row


class _Statement:
    """The INSERT for rows shaped like ``first_row`` (plus the table's scalar defaults), and its parameters.

    With ``columns``, rows are tuples of those columns' values in that order (no dict per row).
    """

    def __init__(
        self,
        connection: Connection,
        table: Table,
        first_row: Mapping[str, Any] | Sequence[Any],
        columns: Sequence[str] | None = None,
    ) -> None:
        dialect = connection.dialect
        row_names = list(columns) if columns is not None else list(first_row.keys())  # type: ignore[union-attr]
        defaults = {
            column.name: column.default.arg  # type: ignore[attr-defined]
            for column in table.columns
            if column.name not in row_names and column.default is not None and column.default.is_scalar
        }

        def processor(name: str) -> Processor | None:
            column_type = table.c[name].type
            process = column_type._cached_bind_processor(dialect)
            return None if process is None else _fast_json(column_type, dialect, process)

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

    def values(self, row: Mapping[str, Any] | Sequence[Any]) -> tuple[Any, ...]:
        """The driver's parameters for one row (with the same keys as the first), in column order."""
        return self.values_of([row])[0]

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
) -> None:
    """Insert ``rows`` (dicts with the same keys, or tuples of ``columns``) in one driver ``executemany``."""
    if not rows:
        return
    connection = session.connection()
    statement = _Statement(connection, table, rows[0], columns)
    behind = session.info.get(WRITE_BEHIND_KEY)
    if behind is not None:
        # multi-row statements, not executemany: the thread behind gives up the GIL once per
        # statement, not once per row (each taking it back waits for the caller's time slice)
        values = statement.values_of(rows)
        size = max(1, BEHIND_PARAMETERS // len(statement.names))
        full = statement.rows_sql(size)
        for start in range(0, len(values), size):
            batch = values[start : start + size]
            sql = full if len(batch) == size else statement.rows_sql(len(batch))
            behind.submit(sql, tuple(chain.from_iterable(batch)), many=False)
        return
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
    behind = session.info.get(WRITE_BEHIND_KEY)
    if behind is not None:
        # ids given before the insert, so that it can run behind the caller (see WriteBehind.reserve_ids)
        reserved = behind.reserve_ids(table, len(rows))
        if columns is None:
            dicts: Sequence[Mapping[str, Any]] = rows  # type: ignore[assignment]
            insert_rows(
                session, table, [{"id": record_id, **row} for record_id, row in zip(reserved, dicts, strict=True)]
            )
        else:
            insert_rows(
                session, table, [(record_id, *row) for record_id, row in zip(reserved, rows, strict=True)],
                columns=("id", *columns),
            )
        return reserved
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


WRITE_BEHIND_KEY = "crm_write_behind"
"""``session.info`` key of the session's :class:`WriteBehind` while one runs."""


class WriteBehind:
    """Runs a session's bulk INSERTs on a second thread, in order, while the caller prepares the next rows.

    SQLite executes a statement in C without holding the GIL, so on a second core it inserts
    one batch (its indexes, full-text entries) while Python builds the next. Order is kept:
    statements run one at a time in submission order, and any other statement on the
    session's connection — an ORM query, a flush — first waits until everything submitted has
    run (a ``before_cursor_execute`` listener on that connection), so reads see every
    submitted write. An error in a submitted statement is raised in the caller at its next
    submission, statement or :meth:`drain`; the caller's transaction then rolls back as usual.
    """

    _STOP = object()

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._raw = connection.connection.driver_connection
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._next_ids: dict[str, int] = {}  # table → the next id :meth:`reserve_ids` gives
        self._quote = connection.dialect.identifier_preparer.quote
        self._thread = threading.Thread(target=self._run, name="crm-write-behind", daemon=True)
        self._thread.start()
        event.listen(connection, "before_cursor_execute", self._before_statement)

    def _run(self) -> None:
        cursor = self._raw.cursor()  # type: ignore[union-attr]
        try:
            while True:
                item = self._queue.get()
                try:
                    if item is self._STOP:
                        return
                    if self._error is None:
                        sql, parameters, many = item
                        if many:
                            cursor.executemany(sql, parameters)
                        else:
                            cursor.execute(sql, parameters)
                except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                    self._error = error
                finally:
                    self._queue.task_done()
        finally:
            cursor.close()

    def _before_statement(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread() is self._thread:
            return
        if self._next_ids and statement.lstrip()[:6].upper() == "INSERT":
            # an insert made elsewhere may take the ids reserved here: reserve afresh after it
            self._next_ids.clear()
        self.drain()

    def reserve_ids(self, table: Table, count: int) -> list[int]:
        """``count`` ids for new rows of ``table``, given here instead of returned by the insert.

        SQLite: the transaction holds the database's write lock from its first write, so the
        largest id can only grow by this transaction's own inserts: those submitted here are
        counted, and any other INSERT on the connection makes the next reservation read the
        largest id again. A wrong guess could only fail the insert (primary key), never
        mis-pair a row.
        """
        next_id = self._next_ids.get(table.name)
        if next_id is None:
            largest = self.connection.exec_driver_sql(f"SELECT max(id) FROM {self._quote(table.name)}").scalar()
            next_id = int(largest or 0) + 1
        self._next_ids[table.name] = next_id + count
        return list(range(next_id, next_id + count))

    def submit(self, sql: str, parameters: Any, *, many: bool = True) -> None:
        """Queue one statement (``executemany`` of ``parameters`` unless ``many`` is False)."""
        self._raise_error()
        self._queue.put((sql, parameters, many))

    def drain(self) -> None:
        """Wait until every submitted statement has run; raise the first error one of them met."""
        self._queue.join()
        self._raise_error()

    def _raise_error(self) -> None:
        # the error stays set: the thread keeps skipping what is queued until the caller rolls back
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the thread after what is queued (errors of those are dropped: see :func:`write_behind`)."""
        event.remove(self.connection, "before_cursor_execute", self._before_statement)
        self._queue.put(self._STOP)
        self._thread.join()


@contextmanager
def write_behind(session: Session) -> Iterator[WriteBehind | None]:
    """Bulk inserts of ``session`` (:func:`insert_rows`) run behind the caller on SQLite for the block.

    Leaving normally waits for every queued statement (raising its error); leaving with an
    error stops after the statement running, so the caller's rollback runs alone.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite" or WRITE_BEHIND_KEY in session.info:
        yield None
        return
    writer = WriteBehind(connection)
    session.info[WRITE_BEHIND_KEY] = writer
    try:
        with _quick_handover():
            yield writer
            writer.drain()
    except BaseException:
        writer._error = writer._error or RuntimeError("abandoned")  # what is still queued is skipped
        raise
    finally:
        session.info.pop(WRITE_BEHIND_KEY, None)
        writer.close()


HANDOVER_SECONDS = 0.0005
"""The interpreter's switch interval while a write-behind runs (CPython's default: 0.005)."""
_switch_interval = _ProcessWide(
    sys.getswitchinterval, lambda _: sys.setswitchinterval(HANDOVER_SECONDS), sys.setswitchinterval
)


@contextmanager
def _quick_handover() -> Iterator[None]:
    """Let a thread waiting for the GIL have it after 0.5 ms instead of 5 ms (process-wide, nests).

    The thread behind takes the GIL twice per statement (to bind its parameters, and when
    SQLite returns); each time the caller is running Python it waits the switch interval.
    At 5 ms that is ~400 statements × up to 10 ms for 100,000 customers: the thread behind
    became the slowest part. The previous interval comes back when the last user leaves.
    """
    with _switch_interval.held():
        yield
