"""Every Alembic migration goes down as well as up (issue 16): head → base → head on every database,
and the schema that comes back is the one the models describe; a data migration keys the rows it finds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, UniqueConstraint, insert, inspect, text

from crm_core.db import make_engine
from crm_core.models import Base, postgresql_foreign_key, postgresql_key
from crm_core.partitions import is_partition_name
from crm_core.schema import current_revision, head_revision, migrate
from tests.conftest import database_url, private_database


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = database_url(request.param, tmp_path_factory.mktemp(f"chain-{request.param}"))
    with private_database(url) as private_url:
        engine = make_engine(private_url)
        yield engine
        engine.dispose()


def test_the_whole_chain_goes_down_and_up_again(empty_engine: Engine) -> None:
    migrate(empty_engine, "upgrade", "head")
    migrate(empty_engine, "downgrade", "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}  # nothing left behind
    migrate(empty_engine, "upgrade", "head")
    assert current_revision(empty_engine) == head_revision()
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as connection:  # the upgrade ran ANALYZE: -1 is "never analyzed"
            assert connection.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'customers'").scalar() == 0
    with empty_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # the migrations' own search structures, per database (no model describes them): SQLite's
    # full-text tables, PostgreSQL's trigram and short-substring indexes and its partial owner/name
    # index (migration 0036; SQLite and MariaDB have no such index, and a model index would be everywhere)
    # and its monthly partitions of activities and audit_events (migration 0043), each with its copies of the
    # parent's indexes
    pg_only = ("_trgm", "_short_grams", "ix_customers_owner_name_live",
               "ix_marketing_messages_legacy_token")  # and 0045's index of old link tokens
    differences = [diff for diff in differences
                   if not (diff[0] == "remove_table" and "_fts" in diff[1].name)
                   and not (diff[0] == "remove_table" and is_partition_name(diff[1].name))
                   and not (diff[0] == "remove_index" and is_partition_name(diff[1].table.name))
                   and not (diff[0] == "remove_index" and any(part in diff[1].name for part in pg_only))]
    if empty_engine.dialect.name == "postgresql":
        differences = _without_postgresql_key_forms(differences)
    assert differences == [], differences


def _key_form(difference: tuple[Any, ...], *, model: bool) -> tuple[Any, ...] | None:
    """A foreign key's or unique key's name, table and columns as PostgreSQL holds it (the model's translated by
    :func:`postgresql_key` and :func:`postgresql_foreign_key`); None for any other difference."""
    kind, item = difference[0], difference[1]
    if kind in ("add_fk", "remove_fk"):
        columns = tuple(item.column_keys)
        referred = tuple(element.column.name for element in item.elements)
        if model:
            columns, referred = postgresql_foreign_key(item.table.name, columns, item.referred_table.name, referred)
        return ("fk", item.table.name, item.name, columns, item.referred_table.name, referred, item.ondelete)
    unique = (kind in ("add_constraint", "remove_constraint") and isinstance(item, UniqueConstraint)
              or kind in ("add_index", "remove_index") and item.unique)
    if unique:
        columns = tuple(column.name for column in item.columns)
        return ("unique", item.table.name, item.name, postgresql_key(item.table.name, columns) if model else columns)
    return None


def _without_postgresql_key_forms(differences: list[Any]) -> list[Any]:
    """Migration 0044 (decision 0058) gives PostgreSQL the keys a cluster distributed by tenant needs, under the
    models' names: a key the database holds in the form the models' key takes there is no difference."""
    wanted = {form for diff in differences if diff[0].startswith("add_") and (form := _key_form(diff, model=True))}
    held = {form for diff in differences if diff[0].startswith("remove_") and (form := _key_form(diff, model=False))}
    matched = wanted & held
    return [diff for diff in differences if _key_form(diff, model=diff[0].startswith("add_")) not in matched]


def _row(table: Table, **given: object) -> dict[str, object]:
    """``given``, and a plain value for every other required column (the rows only need to exist)."""
    values = dict(given)
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key or column.server_default is not None:
            continue
        plain = {int: 1, str: "x", bool: False, dict: {}, dt.datetime: dt.datetime(2026, 1, 1)}
        values[column.name] = plain.get(column.type.python_type)
    return values


def test_0024_keys_existing_contacts_and_goes_back_down(empty_engine: Engine) -> None:
    migrate(empty_engine, "upgrade", "0023")
    tables = MetaData()
    tables.reflect(empty_engine, only=["tenants", "customers", "contacts"])
    tenants, customers, contacts = (tables.tables[name] for name in ("tenants", "customers", "contacts"))
    with empty_engine.begin() as connection:
        connection.execute(insert(tenants).values(_row(tenants, id=1, name="T", slug="t")))
        connection.execute(insert(customers).values(
            _row(customers, id=1, tenant_id=1, name="C", custom_fields="{}")))
        for name, email, phone in [("A", " Li.Lei@Example.CN ", "138 0013 8000"), ("B", None, "021-6212 3456"),
                                   ("C", None, None)]:
            connection.execute(insert(contacts).values(_row(
                contacts, tenant_id=1, customer_id=1, name=name, email=email, phone=phone)))
    migrate(empty_engine, "upgrade", "0024")
    with empty_engine.connect() as connection:
        keyed = connection.execute(text(
            "SELECT name, email_normalized, phone_normalized FROM contacts ORDER BY name")).all()
    assert [tuple(row) for row in keyed] == [("A", "li.lei@example.cn", "+8613800138000"),
                                             ("B", None, "+862162123456"), ("C", None, None)]
    indexes = {index["name"] for index in inspect(empty_engine).get_indexes("contacts")}
    assert {"ix_contacts_tenant_id_email_normalized", "ix_contacts_tenant_id_phone_normalized"} <= indexes
    migrate(empty_engine, "downgrade", "0023")
    columns = {column["name"] for column in inspect(empty_engine).get_columns("contacts")}
    assert "email_normalized" not in columns and "phone_normalized" not in columns
    with empty_engine.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM contacts")) == 3


def test_cases_with_a_history_are_rebuilt_by_the_migrations_that_add_their_references(empty_engine: Engine) -> None:
    """0028–0030 give ``cases`` foreign keys; on SQLite that rebuilds the table while case_events rows point at
    it (make run on a demo database of the previous release): nothing is refused and no row is lost."""
    migrate(empty_engine, "upgrade", "0026")
    tables = MetaData()
    tables.reflect(empty_engine, only=["tenants", "customers", "cases", "case_events"])
    tenants, customers, cases, events = (tables.tables[name] for name in ("tenants", "customers", "cases",
                                                                          "case_events"))
    with empty_engine.begin() as connection:
        connection.execute(insert(tenants).values(_row(tenants, id=1, name="T", slug="t")))
        connection.execute(insert(customers).values(_row(customers, id=1, tenant_id=1, name="C", custom_fields="{}")))
        connection.execute(insert(cases).values(_row(cases, id=1, tenant_id=1, customer_id=1, subject="Jammed",
                                                     status="open", priority="high")))
        connection.execute(insert(events).values(_row(events, tenant_id=1, case_id=1, kind="opened")))
    migrate(empty_engine, "upgrade", "head")
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT subject, priority FROM cases")).all() == [("Jammed", "high")]
        assert connection.execute(text("SELECT case_id FROM case_events")).all() == [(1,)]
        if empty_engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # enforced again
