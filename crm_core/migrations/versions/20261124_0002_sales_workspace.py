"""sales workspace: saved views, grid indexes and full-text search over customers

Search over customers' name, email and phone, per database:

- SQLite: an external-content FTS5 table ``customers_fts`` with the trigram tokenizer
  (substrings of three or more characters, any script, case-insensitive), kept in step
  with ``customers`` by three triggers; filled once from the existing rows.
- PostgreSQL: ``pg_trgm`` GIN indexes, used by ``ILIKE '%text%'``.
- MariaDB/MySQL: no trigram index (MariaDB has no n-gram parser); search is a LIKE scan
  that stops after one page because the grid's ORDER BY walks an index (documented in
  docs/decisions/0009-customers-grid-search-and-plans.md).

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_COLUMNS = "name, email_normalized, phone_normalized"
SQLITE_FTS = [
    f"CREATE VIRTUAL TABLE customers_fts USING fts5({FTS_COLUMNS}, "
    "content='customers', content_rowid='id', tokenize='trigram')",
    f"""CREATE TRIGGER customers_fts_after_insert AFTER INSERT ON customers BEGIN
        INSERT INTO customers_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.name, new.email_normalized, new.phone_normalized);
    END""",
    f"""CREATE TRIGGER customers_fts_after_delete AFTER DELETE ON customers BEGIN
        INSERT INTO customers_fts(customers_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.name, old.email_normalized, old.phone_normalized);
    END""",
    f"""CREATE TRIGGER customers_fts_after_update
        AFTER UPDATE OF name, email_normalized, phone_normalized ON customers BEGIN
        INSERT INTO customers_fts(customers_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.name, old.email_normalized, old.phone_normalized);
        INSERT INTO customers_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.name, new.email_normalized, new.phone_normalized);
    END""",
    "INSERT INTO customers_fts(customers_fts) VALUES ('rebuild')",
]
POSTGRES_TRGM = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_customers_name_trgm ON customers USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_customers_email_normalized_trgm "
    "ON customers USING gin (email_normalized gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_customers_phone_normalized_trgm "
    "ON customers USING gin (phone_normalized gin_trgm_ops)",
]
# one filter + the default sort (updated_at) served by one index each
GRID_INDEXES = {
    "ix_customers_tenant_id_industry_updated_at": ["tenant_id", "industry", "updated_at"],
    "ix_customers_tenant_id_region_updated_at": ["tenant_id", "region", "updated_at"],
    "ix_customers_tenant_id_team_id_updated_at": ["tenant_id", "team_id", "updated_at"],
}


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("sort", sa.String(length=40), nullable=False),
        sa.Column("descending", sa.Boolean(), nullable=False),
        sa.Column("shared_with_team", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_saved_views_team_id_teams")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_saved_views_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_saved_views_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
        sa.UniqueConstraint("tenant_id", "user_id", "name", name=op.f("uq_saved_views_tenant_id_user_id_name")),
    )
    with op.batch_alter_table("saved_views", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saved_views_tenant_id_team_id_shared_with_team"),
            ["tenant_id", "team_id", "shared_with_team"],
            unique=False,
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for name, columns in GRID_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)

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
            op.execute(f"DROP TRIGGER IF EXISTS customers_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS customers_fts")
    elif dialect == "postgresql":
        for index in ("name", "email_normalized", "phone_normalized"):
            op.execute(f"DROP INDEX IF EXISTS ix_customers_{index}_trgm")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for name in GRID_INDEXES:
            batch_op.drop_index(name)
    op.drop_table("saved_views")
