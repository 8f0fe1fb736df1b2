"""SQLite full-text indexes over business tables: what they index, and bulk loads that defer them.

The customers table is searched through the FTS5 table ``customers_fts`` (trigram tokenizer,
migration 0002; content from the view ``customers_fts_source`` since migration 0009, which
pads the name with two end markers so one- and two-character substrings can be found through
the index vocabulary, see :mod:`crm_core.queries.customers`). Contacts have the same kind of
table, ``contacts_fts`` over ``contacts_fts_source`` (migration 0033). Three triggers keep each in
step row by row. A bulk load (demo data, a large import) is far faster when the insert trigger is
dropped for the load and the new rows are indexed in one ``INSERT … SELECT`` afterwards; the
trigger is recreated in the same transaction, so no other connection ever sees it missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

END_MARK = "\x03\x03"
"""Appended to every indexed name: each character of a name then starts some trigram."""


@dataclass(frozen=True)
class FullTextIndex:
    """One FTS5 table: the business table it follows, the view it reads, its insert trigger."""

    fts_table: str
    content_table: str
    source_view: str
    key: str
    columns: tuple[str, ...]
    insert_trigger: str


CUSTOMERS = FullTextIndex(
    fts_table="customers_fts",
    content_table="customers",
    source_view="customers_fts_source",
    key="id",
    columns=("name", "email_normalized", "phone_normalized"),
    insert_trigger="customers_fts_after_insert",
)
CONTACTS = FullTextIndex(
    fts_table="contacts_fts",
    content_table="contacts",
    source_view="contacts_fts_source",
    key="id",
    columns=("name", "email_normalized", "phone_normalized"),
    insert_trigger="contacts_fts_after_insert",
)
INDEXES = {index.content_table: index for index in (CUSTOMERS, CONTACTS)}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fulltext_indexes(table_names: Any) -> list[FullTextIndex]:
    """The full-text indexes that follow any of ``table_names``."""
    return [INDEXES[name] for name in table_names if name in INDEXES]


@contextmanager
def insert_triggers_dropped(cursor: Any, indexes: list[FullTextIndex]) -> Iterator[None]:
    """Drop the insert triggers of ``indexes`` on a raw sqlite3 ``cursor`` inside the caller's transaction.

    The caller indexes the rows it inserted with :func:`index_rows_from` before leaving; the
    triggers are recreated on the way out (also after an error, though a failed transaction
    rolls the DROP back anyway).
    """
    saved = []
    for index in indexes:
        row = cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (index.insert_trigger,)
        ).fetchone()
        if row is not None:
            saved.append(row[0])
            cursor.execute(f"DROP TRIGGER {_quote(index.insert_trigger)}")
    try:
        yield
    finally:
        for sql in saved:
            cursor.execute(sql)


def index_rows_from(cursor: Any, index: FullTextIndex, first_id: int) -> None:
    """Index every row of ``index.content_table`` with ``key >= first_id`` (rows added by a bulk load)."""
    cursor.execute(index_rows_sql(index), (first_id,))


def index_rows_sql(index: FullTextIndex) -> str:
    """The statement of :func:`index_rows_from` (one parameter: the first id)."""
    listed = ", ".join(_quote(column) for column in index.columns)
    return (
        f"INSERT INTO {_quote(index.fts_table)}(rowid, {listed}) "
        f"SELECT {_quote(index.key)}, {listed} FROM {_quote(index.source_view)} WHERE {_quote(index.key)} >= ?"
    )
