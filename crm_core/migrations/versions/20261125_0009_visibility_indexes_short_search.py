"""visibility-aware grid indexes, owner-led deal cover, short substring search on SQLite

Revision ID: 0009
Revises: 0008

Measured on the 1,000,000-customer demo database (SQLite, idle machine) before this revision:

- A rep's grid pages read a sort or filter index and visited the table row of every entry
  to test ``owner_id IN (…) OR (owner_id IS NULL AND team_id IN (…))``; a rep sees about 4 %
  of the tenant, so a page cost 70–130 ms. Every grid index now ends with ``id, owner_id,
  team_id, archived_at``: SQLite tests visibility and archiving on the index entry and only
  visits the rows it returns (the same pages: 4–10 ms). ``id`` follows the sort column so the
  index still delivers ``ORDER BY sort, id`` and the keyset seek. The prefix-redundant
  ``(tenant_id, industry)``, ``(tenant_id, region)`` and ``ix_customers_new_cover`` go (the
  created-at index now covers the dashboard's new-customer count).
- A rep's funnel read the whole pipeline through ``ix_opportunities_board_cover``
  (26 ms; 1.3 k deals are the rep's). ``ix_opportunities_owner_cover`` leads with the owner.
- SQLite search for one or two characters could not use the trigram index (it needs three)
  and scanned every name for Chinese terms (0.4–1 s). The FTS5 table now reads its content
  from the view ``customers_fts_source``, which appends two end markers (U+0003) to the name:
  every occurrence of a one- or two-character string then begins some indexed trigram, and
  the vocabulary table ``customers_fts_vocab`` lists those trigrams by prefix (an index range).
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBILITY = ["id", "owner_id", "team_id", "archived_at"]
CUSTOMER_INDEXES: dict[str, tuple[list[str], list[str]]] = {
    # name: (columns now, columns before)
    "ix_customers_tenant_id_updated_at": (["tenant_id", "updated_at", *VISIBILITY], ["tenant_id", "updated_at"]),
    "ix_customers_tenant_id_created_at": (["tenant_id", "created_at", *VISIBILITY], ["tenant_id", "created_at"]),
    "ix_customers_tenant_id_name": (["tenant_id", "name", *VISIBILITY], ["tenant_id", "name"]),
    "ix_customers_tenant_id_last_contacted_at": (
        ["tenant_id", "last_contacted_at", *VISIBILITY], ["tenant_id", "last_contacted_at"],
    ),
    "ix_customers_tenant_id_lifecycle_stage_updated_at": (
        ["tenant_id", "lifecycle_stage", "updated_at", *VISIBILITY], ["tenant_id", "lifecycle_stage", "updated_at"],
    ),
    "ix_customers_tenant_id_industry_updated_at": (
        ["tenant_id", "industry", "updated_at", *VISIBILITY], ["tenant_id", "industry", "updated_at"],
    ),
    "ix_customers_tenant_id_region_updated_at": (
        ["tenant_id", "region", "updated_at", *VISIBILITY], ["tenant_id", "region", "updated_at"],
    ),
}
DROPPED_INDEXES: dict[str, tuple[str, list[str]]] = {
    "ix_customers_tenant_id_industry": ("customers", ["tenant_id", "industry"]),
    "ix_customers_tenant_id_region": ("customers", ["tenant_id", "region"]),
    "ix_customers_new_cover": ("customers", ["tenant_id", "created_at", "archived_at", "owner_id", "team_id"]),
    "ix_opportunities_tenant_id_owner_id_stage_id": ("opportunities", ["tenant_id", "owner_id", "stage_id"]),
}
OWNER_COVER = (
    "ix_opportunities_owner_cover",
    ["tenant_id", "owner_id", "pipeline_id", "stage_id", "archived_at", "amount", "probability",
     "created_at", "closed_at"],
)

FTS_COLUMNS = "name, email_normalized, phone_normalized"
END_MARK_SQL = "char(3, 3)"  # crm_core.fulltext.END_MARK


def _fts_statements(name_expression: str, content: str, key: str) -> list[str]:
    """The FTS5 table and its three triggers; ``name_expression`` is what the name column indexes."""
    new_name = name_expression.format(row="new")
    old_name = name_expression.format(row="old")
    return [
        f"CREATE VIRTUAL TABLE customers_fts USING fts5({FTS_COLUMNS}, "
        f"content='{content}', content_rowid='{key}', tokenize='trigram')",
        f"""CREATE TRIGGER customers_fts_after_insert AFTER INSERT ON customers BEGIN
            INSERT INTO customers_fts(rowid, {FTS_COLUMNS})
            VALUES (new.id, {new_name}, new.email_normalized, new.phone_normalized);
        END""",
        f"""CREATE TRIGGER customers_fts_after_delete AFTER DELETE ON customers BEGIN
            INSERT INTO customers_fts(customers_fts, rowid, {FTS_COLUMNS})
            VALUES ('delete', old.id, {old_name}, old.email_normalized, old.phone_normalized);
        END""",
        f"""CREATE TRIGGER customers_fts_after_update
            AFTER UPDATE OF name, email_normalized, phone_normalized ON customers BEGIN
            INSERT INTO customers_fts(customers_fts, rowid, {FTS_COLUMNS})
            VALUES ('delete', old.id, {old_name}, old.email_normalized, old.phone_normalized);
            INSERT INTO customers_fts(rowid, {FTS_COLUMNS})
            VALUES (new.id, {new_name}, new.email_normalized, new.phone_normalized);
        END""",
        "INSERT INTO customers_fts(customers_fts) VALUES ('rebuild')",
    ]


def _drop_fts() -> None:
    for trigger in ("after_insert", "after_delete", "after_update"):
        op.execute(f"DROP TRIGGER IF EXISTS customers_fts_{trigger}")
    op.execute("DROP TABLE IF EXISTS customers_fts_vocab")
    op.execute("DROP TABLE IF EXISTS customers_fts")
    op.execute("DROP VIEW IF EXISTS customers_fts_source")


def _replace_index(name: str, table: str, columns: list[str]) -> None:
    op.drop_index(name, table_name=table)
    op.create_index(name, table, columns, unique=False)


def upgrade() -> None:
    for name, (table, _columns) in DROPPED_INDEXES.items():
        op.drop_index(name, table_name=table)
    for name, (columns, _before) in CUSTOMER_INDEXES.items():
        _replace_index(name, "customers", columns)
    op.create_index(OWNER_COVER[0], "opportunities", OWNER_COVER[1], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        _drop_fts()
        op.execute(
            f"CREATE VIEW customers_fts_source AS SELECT id, name || {END_MARK_SQL} AS name, "
            "email_normalized, phone_normalized FROM customers"
        )
        for statement in _fts_statements(f"{{row}}.name || {END_MARK_SQL}", "customers_fts_source", "id"):
            op.execute(statement)
        op.execute("CREATE VIRTUAL TABLE customers_fts_vocab USING fts5vocab('customers_fts', 'row')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _drop_fts()
        for statement in _fts_statements("{row}.name", "customers", "id"):
            op.execute(statement)
    op.drop_index(OWNER_COVER[0], table_name="opportunities")
    for name, (_columns, before) in CUSTOMER_INDEXES.items():
        _replace_index(name, "customers", before)
    for name, (table, columns) in DROPPED_INDEXES.items():
        op.create_index(name, table, columns, unique=False)
