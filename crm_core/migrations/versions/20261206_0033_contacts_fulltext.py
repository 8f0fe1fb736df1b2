"""contacts get the customers' full-text search: name (any script, one Chinese character too), email, phone

Revision ID: 0033
Revises: 0032

Before this revision the global search and the contacts list matched contacts with ``LIKE '%x%'``
over the name, the lower-cased email and the phone with its separators stripped: a scan of the
tenant's contacts whenever the term is rare (600,000 contacts at 1M customers). Now, as for
customers (migrations 0002 and 0009, decision 0009):

- SQLite: an external-content FTS5 table ``contacts_fts(name, email_normalized, phone_normalized)``
  with the trigram tokenizer, reading the view ``contacts_fts_source`` that appends the two end
  markers (U+0003) to the name, so one or two Chinese characters are found through the
  vocabulary table ``contacts_fts_vocab``; three triggers keep it in step, and bulk loads defer
  the insert trigger through ``crm_core.fulltext`` (``CONTACTS``) as they do for customers.
- PostgreSQL: ``pg_trgm`` GIN indexes on the same three columns (``ILIKE`` / ``LIKE '%x%'``).
- MariaDB: nothing (no n-gram parser; the search stays a ``LIKE`` read with a ``LIMIT``).

A migration that recreates ``contacts`` on SQLite must drop and recreate the view, the triggers
and rebuild the index (the view names the table being swapped).
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_COLUMNS = "name, email_normalized, phone_normalized"
END_MARK_SQL = "char(3, 3)"  # crm_core.fulltext.END_MARK
NAME = "{row}.name || " + END_MARK_SQL
SQLITE_FTS = [
    f"CREATE VIEW contacts_fts_source AS SELECT id, name || {END_MARK_SQL} AS name, "
    "email_normalized, phone_normalized FROM contacts",
    f"CREATE VIRTUAL TABLE contacts_fts USING fts5({FTS_COLUMNS}, "
    "content='contacts_fts_source', content_rowid='id', tokenize='trigram')",
    f"""CREATE TRIGGER contacts_fts_after_insert AFTER INSERT ON contacts BEGIN
        INSERT INTO contacts_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, {NAME.format(row="new")}, new.email_normalized, new.phone_normalized);
    END""",
    f"""CREATE TRIGGER contacts_fts_after_delete AFTER DELETE ON contacts BEGIN
        INSERT INTO contacts_fts(contacts_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, {NAME.format(row="old")}, old.email_normalized, old.phone_normalized);
    END""",
    f"""CREATE TRIGGER contacts_fts_after_update
        AFTER UPDATE OF name, email_normalized, phone_normalized ON contacts BEGIN
        INSERT INTO contacts_fts(contacts_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, {NAME.format(row="old")}, old.email_normalized, old.phone_normalized);
        INSERT INTO contacts_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, {NAME.format(row="new")}, new.email_normalized, new.phone_normalized);
    END""",
    "INSERT INTO contacts_fts(contacts_fts) VALUES ('rebuild')",
    "CREATE VIRTUAL TABLE contacts_fts_vocab USING fts5vocab('contacts_fts', 'row')",
]
POSTGRES_TRGM = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_contacts_name_trgm ON contacts USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_contacts_email_normalized_trgm "
    "ON contacts USING gin (email_normalized gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_contacts_phone_normalized_trgm "
    "ON contacts USING gin (phone_normalized gin_trgm_ops)",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRES_TRGM:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("after_insert", "after_delete", "after_update"):
            op.execute(f"DROP TRIGGER IF EXISTS contacts_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS contacts_fts_vocab")
        op.execute("DROP TABLE IF EXISTS contacts_fts")
        op.execute("DROP VIEW IF EXISTS contacts_fts_source")
    elif dialect == "postgresql":
        for column in ("name", "email_normalized", "phone_normalized"):
            op.execute(f"DROP INDEX IF EXISTS ix_contacts_{column}_trgm")
