"""Migration 0044 (decision 0058): PostgreSQL's keys are the ones a cluster distributed by ``tenant_id`` (Citus)
accepts, and the migration goes there and back with the rows in place.

Citus's rules, read from the catalog: every primary key and unique index of a distributed table holds
``tenant_id``; every foreign key from a distributed table to another has ``tenant_id`` on both sides at the same
position (and a SET NULL on delete never sets it); no reference table points at a distributed one. At 0043 the
rules are broken (the ids alone were the keys); at head they hold.

PostgreSQL only (SQLite and MariaDB keep their keys); without ``CRM_TEST_POSTGRES_URL`` the tests skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import IntegrityError

from crm_core.db import Database, make_engine
from crm_core.models import REFERENCE_TABLES, Case, Customer, Order, Task, distributed_tables
from crm_core.schema import current_revision, head_revision, migrate
from crm_core.services.cases import CaseInput, create_case
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from crm_core.services.tasks import TaskInput, create_task
from tests.conftest import database_url, private_database
from tests.factories import World, build_world, create_random_customer

BEFORE = "0043"
# 0043's schema: 78 distributed tables, 76 keyed by id alone (activities and audit_events have
# (tenant_id, id, occurred_at) since 0043), 13 unique keys without tenant_id, 83 foreign keys between them
VIOLATIONS_AT_0043 = {"primary key": 76, "unique key": 13, "foreign key": 83}


def tables_with_tenant(connection: Connection) -> set[str]:
    """The catalog's tables with ``tenant_id`` (partitions aside), less the reference tables: the distributed ones."""
    return set(connection.scalars(text(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')"
        " AND NOT c.relispartition AND NOT a.attisdropped"))) - REFERENCE_TABLES


def citus_violations(connection: Connection) -> list[tuple[str, str, str]]:
    """Each key of the catalog that Citus would refuse: (rule, table, key name)."""
    distributed = sorted(tables_with_tenant(connection))
    found: list[tuple[str, str, str]] = []
    unique_keys = connection.execute(text(
        "SELECT CASE WHEN x.indisprimary THEN 'primary key' ELSE 'unique key' END, t.relname, i.relname"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = 'tenant_id'"
        " WHERE x.indisunique AND t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(:tables)"
        " AND NOT a.attnum = ANY(x.indkey)"), {"tables": distributed})
    found += [(rule, table, name) for rule, table, name in unique_keys]
    # a foreign key between distributed tables: tenant_id on both sides, at the same position; a SET NULL or
    # SET DEFAULT on delete that names no columns (or names tenant_id) would clear the row's tenant
    foreign_keys = connection.execute(text(
        "SELECT t.relname, c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
        " JOIN pg_class r ON r.oid = c.confrelid"
        " LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = 'tenant_id'"
        " LEFT JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attname = 'tenant_id'"
        " WHERE c.contype = 'f' AND c.conparentid = 0 AND t.relnamespace = current_schema()::regnamespace"
        " AND t.relname = ANY(:tables) AND r.relname = ANY(:tables)"
        " AND (array_position(c.conkey, a.attnum) IS NULL"
        "      OR array_position(c.conkey, a.attnum) IS DISTINCT FROM array_position(c.confkey, ra.attnum)"
        "      OR (c.confdeltype IN ('n', 'd') AND (c.confdelsetcols IS NULL OR a.attnum = ANY(c.confdelsetcols))))"),
        {"tables": distributed})
    found += [("foreign key", table, name) for table, name in foreign_keys]
    from_reference = connection.execute(text(
        "SELECT t.relname, c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
        " JOIN pg_class r ON r.oid = c.confrelid WHERE c.contype = 'f' AND t.relname = ANY(:reference)"
        " AND r.relname = ANY(:tables) AND t.relnamespace = current_schema()::regnamespace"),
        {"reference": sorted(REFERENCE_TABLES), "tables": distributed})
    found += [("reference table's foreign key", table, name) for table, name in from_reference]
    return sorted(found)


def counted(violations: list[tuple[str, str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rule, _table, _name in violations:
        counts[rule] = counts.get(rule, 0) + 1
    return counts


@pytest.fixture
def before_0044(tmp_path: Path) -> Iterator[Engine]:
    """A PostgreSQL database of its own at 0043 (the test moves it up and down)."""
    url = database_url("postgresql", tmp_path)
    with private_database(url) as private_url:
        engine = make_engine(private_url)
        migrate(engine, "upgrade", BEFORE)
        yield engine
        engine.dispose()


@pytest.fixture
def postgresql_at_head(migrated_engines: Callable[[str], Engine], tmp_path: Path) -> Engine:
    database_url("postgresql", tmp_path)  # skips without a server
    return migrated_engines("postgresql")


def test_postgresql_keys_break_citus_rules_at_0043_and_keep_them_at_head(
        before_0044: Engine, postgresql_at_head: Engine) -> None:
    with before_0044.connect() as connection:
        assert counted(citus_violations(connection)) == VIOLATIONS_AT_0043
    with postgresql_at_head.connect() as connection:
        assert tables_with_tenant(connection) == distributed_tables()  # the catalog's and the models' are one list
        assert len(distributed_tables()) == 83  # 0043's 78 and the sales rollup's five (0046), keyed from the start
        assert citus_violations(connection) == []


def _world_with_history(db: Database) -> tuple[World, int]:
    """A customer of the rep with a task, an order and a case."""
    world = build_world(db)
    customer_id = create_random_customer(db, world.rep)
    create_task(db, world.rep, TaskInput("Call back", customer_id=customer_id))
    product = create_product(db, world.manager, ProductInput("P-1", "Licence", "100"))
    create_order(db, world.admin, OrderInput(customer_id, [OrderLineInput(product, 2)]))
    create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Jammed"))
    return world, customer_id


def _scopes(connection: Connection, customer_id: int) -> set[tuple[object, ...]]:
    """The owners and teams the customer's tasks, orders and cases carry (the triggers' copy)."""
    return {tuple(row) for model in (Task, Order, Case) for row in connection.execute(
        select(model.customer_owner_id, model.customer_team_id).where(model.customer_id == customer_id))}


def _row_counts(connection: Connection) -> dict[str, int]:
    return {table: connection.scalar(text(f"SELECT COUNT(*) FROM {table}")) or 0
            for table in ("customers", "tasks", "orders", "order_lines", "cases", "audit_events", "parents",
                          "children", "notes")}


def _definition(connection: Connection, name: str) -> str | None:
    return connection.scalar(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :n"),
                             {"n": name})


def _copy_function(connection: Connection) -> str:
    return connection.scalar(text("SELECT prosrc FROM pg_proc WHERE proname = 'tasks_copy_customer_scope'")) or ""


def test_0044_goes_up_down_and_up_again_with_the_rows_in_place(before_0044: Engine) -> None:
    db = Database(before_0044)
    world, customer_id = _world_with_history(db)
    tenant_id = world.admin.tenant_id
    with before_0044.begin() as connection:
        # no foreign key of the schema sets NULL on delete: tables of the test's own show that rule (and a cascade)
        connection.exec_driver_sql(
            "CREATE TABLE parents (id serial PRIMARY KEY, tenant_id integer NOT NULL REFERENCES tenants (id))")
        connection.exec_driver_sql(
            "CREATE TABLE children (id serial PRIMARY KEY, tenant_id integer NOT NULL REFERENCES tenants (id),"
            " parent_id integer REFERENCES parents (id) ON DELETE SET NULL,"
            " customer_id integer NOT NULL REFERENCES customers (id))")
        connection.exec_driver_sql(
            "CREATE TABLE notes (id serial PRIMARY KEY, tenant_id integer NOT NULL,"
            " child_id integer NOT NULL REFERENCES children (id) ON DELETE CASCADE)")
        connection.execute(text("INSERT INTO parents (id, tenant_id) VALUES (1, :t), (2, :t)"), {"t": tenant_id})
        connection.execute(text("INSERT INTO children (id, tenant_id, parent_id, customer_id) VALUES (1, :t, 1, :c),"
                                " (2, :t, 2, :c)"), {"t": tenant_id, "c": customer_id})
        connection.execute(text("INSERT INTO notes (tenant_id, child_id) VALUES (:t, 1), (:t, 2)"), {"t": tenant_id})
        counts = _row_counts(connection)
        owner_and_team = connection.execute(select(Customer.owner_id, Customer.team_id)
                                            .where(Customer.id == customer_id)).one()
        assert _scopes(connection, customer_id) == {tuple(owner_and_team)} and owner_and_team[0] == world.rep.user_id

    migrate(before_0044, "upgrade", "0044")
    with before_0044.begin() as connection:
        assert citus_violations(connection) == []
        assert _row_counts(connection) == counts
        assert _definition(connection, "children_parent_id_fkey") == (
            "FOREIGN KEY (tenant_id, parent_id) REFERENCES parents(tenant_id, id) ON DELETE SET NULL (parent_id)")
        assert _definition(connection, "fk_segment_snapshots_segment_id_segments") == (
            "FOREIGN KEY (tenant_id, segment_id) REFERENCES segments(tenant_id, id) ON DELETE CASCADE")
        connection.exec_driver_sql("DELETE FROM parents WHERE id = 1")  # SET NULL clears parent_id, not the tenant
        assert connection.execute(text("SELECT id, tenant_id, parent_id FROM children ORDER BY id")).all() == [
            (1, tenant_id, None), (2, tenant_id, 2)]
        connection.exec_driver_sql("DELETE FROM children WHERE id = 2")  # and a cascade still cascades
        assert connection.scalars(text("SELECT child_id FROM notes")).all() == [1]
        # the triggers copy the owner and team, looking the customer up by tenant and id
        assert "tenant_id = NEW.tenant_id AND id = NEW.customer_id" in _copy_function(connection)
        connection.execute(update(Customer).where(Customer.tenant_id == tenant_id, Customer.id == customer_id)
                           .values(owner_id=world.rep_other_team.user_id, team_id=world.west_team_id))
        assert _scopes(connection, customer_id) == {(world.rep_other_team.user_id, world.west_team_id)}
    with pytest.raises(IntegrityError), before_0044.begin() as connection:  # no row points across tenants now
        connection.execute(text("INSERT INTO children (tenant_id, customer_id) VALUES (:t, :c)"),
                           {"t": world.other_admin.tenant_id, "c": customer_id})
    create_task(db, world.rep_other_team, TaskInput("Visit", customer_id=customer_id))
    with before_0044.connect() as connection:  # a task written now gets the customer's scope
        assert _scopes(connection, customer_id) == {(world.rep_other_team.user_id, world.west_team_id)}
        counts = _row_counts(connection)

    migrate(before_0044, "downgrade", BEFORE)
    with before_0044.connect() as connection:
        assert counted(citus_violations(connection)) == {
            "primary key": VIOLATIONS_AT_0043["primary key"] + 3, "unique key": 13,
            "foreign key": VIOLATIONS_AT_0043["foreign key"] + 3}  # the test's tables too
        assert _definition(connection, "children_parent_id_fkey") == (
            "FOREIGN KEY (parent_id) REFERENCES parents(id) ON DELETE SET NULL")
        assert "WHERE id = NEW.customer_id" in _copy_function(connection)
        assert _row_counts(connection) == counts

    migrate(before_0044, "upgrade", "head")
    assert current_revision(before_0044) == head_revision()
    with before_0044.connect() as connection:
        assert citus_violations(connection) == []
        assert _row_counts(connection) == counts
