"""Migrating a demo database between SQLite, PostgreSQL and MariaDB: copied whole, proven, resumable.

Each test migrates into private databases it creates and drops (``tests.conftest.private_database``).
Figures are compared against plain ``SELECT COUNT(*)`` on both sides, independent of the verifier.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text

from crm_core.db import Database, make_engine
from crm_core.demo import generate_demo
from crm_core.errors import ResumeFromOtherSource, SourceSchemaOutdated, TargetNotEmpty
from crm_core.migration import Verification, migrate, plan_tables, verify
from crm_core.models import Team
from crm_core.schema import upgrade_to_head
from crm_core.services.tenants import create_tenant
from tests.conftest import database_url, private_database

DEMO_CUSTOMERS = 500


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database at head holding a 500-customer Chinese demo tenant."""
    path = tmp_path_factory.mktemp("migration-source") / "source.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    generate_demo(Database(engine), customers=DEMO_CUSTOMERS, locale="zh_CN")
    engine.dispose()
    return url


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def empty_database(kind: str, tmp_path: Path, stack: ExitStack, name: str) -> str:
    """A fresh, empty database of ``kind`` (skips when that server is not configured)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    return stack.enter_context(private_database(database_url(kind, tmp_path)))


def row_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            preparer = engine.dialect.identifier_preparer
            return {
                plan.table.name: connection.execute(
                    text(f"SELECT COUNT(*) FROM {preparer.quote(plan.table.name)}")
                ).scalar_one()
                for plan in plan_tables()
            }
    finally:
        engine.dispose()


def source_of_kind(kind: str, demo_source: str, tmp_path: Path, stack: ExitStack) -> str:
    """The demo database on a server of ``kind`` (migrated there from SQLite first)."""
    if kind == "sqlite":
        return demo_source
    url = empty_database(kind, tmp_path, stack, "source")
    assert migrate(demo_source, url).success
    return url


PAIRS = [
    ("sqlite", "postgresql"),
    ("sqlite", "mysql"),
    ("postgresql", "sqlite"),
    ("mysql", "sqlite"),
    ("postgresql", "mysql"),
    ("mysql", "postgresql"),
]


def verify_after_tampering(source: str, target: str, tampering_sql: str) -> Verification:
    """Migrate ``source`` into ``target``, change the target with ``tampering_sql``, verify again."""
    assert migrate(source, target).success
    engine = make_engine(target)
    with engine.begin() as connection:
        connection.execute(text(tampering_sql))
    source_engine = make_engine(source)
    try:
        return verify(source_engine, engine)
    finally:
        engine.dispose()
        source_engine.dispose()


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_a_demo_database_migrates_with_every_check_passing(
    demo_source: str, tmp_path: Path, databases: ExitStack, source_kind: str, target_kind: str
) -> None:
    source = source_of_kind(source_kind, demo_source, tmp_path, databases)
    target = empty_database(target_kind, tmp_path, databases, "target")

    report = migrate(source, target, batch_size=250)

    assert report.success, report.as_dict()["failures"]
    assert {item["check"] for item in report.verification.expectations} == {
        "row_count", "money_sum", "checksum", "primary_key_unique", "foreign_key_resolves"
    }
    assert all(item["success"] for item in report.verification.expectations)
    counts = row_counts(target)
    assert counts == row_counts(source)
    assert counts["customers"] == DEMO_CUSTOMERS
    assert report.rows == sum(counts.values())
    engine = make_engine(target)
    try:
        with Database(engine).system_session("test") as session:
            managers = session.scalars(select(Team.manager_id).order_by(Team.id)).all()
        assert managers and all(manager is not None for manager in managers)  # the teams↔users cycle closed
        # ids keep coming after the copied ones (PostgreSQL sequences, MariaDB AUTO_INCREMENT reset)
        created = create_tenant(Database(engine), name="New", slug="new-after-migration",
                                admin_username="new.admin", admin_password="Test-password-1")
        assert created.tenant_id > max(t for t in _tenant_ids(engine) if t != created.tenant_id)
    finally:
        engine.dispose()


def _tenant_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT id FROM tenants")).scalars())


# --- a corrupted target fails the right check -------------------------------------------


@pytest.fixture
def migrated_sqlite(demo_source: str, tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "target.db"
    assert migrate(demo_source, f"sqlite:///{path}").success
    return demo_source, path


def corrupt(path: Path, statement: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA foreign_keys=OFF")
    connection.execute(statement)
    connection.commit()
    connection.close()


def failures_after(source_url: str, target_path: Path) -> list[tuple[str, str, str | None, str]]:
    source, target = make_engine(source_url), make_engine(f"sqlite:///{target_path}")
    try:
        verification = verify(source, target)
    finally:
        source.dispose()
        target.dispose()
    assert not verification.success
    return sorted((f.check, f.table, f.column, f"{f.expected}->{f.actual}") for f in verification.failures)


def test_a_deleted_row_fails_the_count_and_checksum_of_its_table(migrated_sqlite: tuple[str, Path]) -> None:
    source, target = migrated_sqlite
    corrupt(target, "DELETE FROM activities WHERE id = (SELECT MAX(id) FROM activities)")
    failures = failures_after(source, target)
    assert [(check, table) for check, table, _, _ in failures] == [
        ("checksum", "activities"), ("row_count", "activities")
    ]
    count = next(f for f in failures if f[0] == "row_count")
    expected, actual = count[3].split("->")
    assert int(actual) == int(expected) - 1


def test_a_changed_amount_fails_the_money_sum_naming_the_column(migrated_sqlite: tuple[str, Path]) -> None:
    source, target = migrated_sqlite
    corrupt(target, "UPDATE opportunities SET amount = amount + 12.5 WHERE id = (SELECT MIN(id) FROM opportunities)")
    failures = failures_after(source, target)
    assert [(check, table, column) for check, table, column, _ in failures] == [
        ("checksum", "opportunities", None), ("money_sum", "opportunities", "amount")
    ]


def test_a_broken_foreign_key_fails_the_foreign_key_check(migrated_sqlite: tuple[str, Path]) -> None:
    source, target = migrated_sqlite
    corrupt(target, "UPDATE contacts SET customer_id = 99999999 WHERE id = (SELECT MIN(id) FROM contacts)")
    failures = failures_after(source, target)
    assert [(check, table, column, figures) for check, table, column, figures in failures if check != "checksum"] == [
        ("foreign_key_resolves", "contacts", "customer_id", "0->1")
    ]
    assert ("checksum", "contacts") in {(check, table) for check, table, _, _ in failures}


def test_a_changed_amount_on_postgresql_fails_too(demo_source: str, tmp_path: Path, databases: ExitStack) -> None:
    target = empty_database("postgresql", tmp_path, databases, "target")
    verification = verify_after_tampering(
        demo_source, target,
        "UPDATE orders SET total_amount = total_amount - 0.01 WHERE id = (SELECT MIN(id) FROM orders)",
    )
    assert {(f.check, f.table, f.column) for f in verification.failures} == {
        ("money_sum", "orders", "total_amount"), ("checksum", "orders", None)
    }
    money = next(f for f in verification.failures if f.check == "money_sum")
    from crm_core.migration import difference

    assert difference(money) == "-0.01"


def test_a_timestamp_off_by_a_microsecond_on_postgresql_fails_the_checksum(
    demo_source: str, tmp_path: Path, databases: ExitStack
) -> None:
    """The binary COPY checksum sees a change that no count or sum can."""
    target = empty_database("postgresql", tmp_path, databases, "target")
    verification = verify_after_tampering(
        demo_source, target,
        "UPDATE activities SET occurred_at = occurred_at + interval '1 microsecond'"
        " WHERE id = (SELECT MAX(id) FROM activities)",
    )
    assert [(f.check, f.table) for f in verification.failures] == [("checksum", "activities")]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_reading_in_batches_returns_every_row_once_in_key_order(
    demo_source: str, tmp_path: Path, databases: ExitStack, kind: str
) -> None:
    """The reader takes its first batch through SQLAlchemy (which reads ahead) and the rest from the driver."""
    from crm_core.migration import _read_batches

    source = make_engine(source_of_kind(kind, demo_source, tmp_path, databases))
    plans = {plan.table.name: plan for plan in plan_tables()}
    try:
        with source.connect() as connection:
            for name, batch_size in itertools.product(("tenants", "teams", "products"), (1, 2, 7, 10_000)):
                expected = list(connection.execute(text(f"SELECT id FROM {name} ORDER BY id")).scalars())
                batches = list(_read_batches(connection, plans[name], after=None, batch_size=batch_size))
                key = [column.name for column in plans[name].columns].index("id")
                assert [row[key] for batch in batches for row in batch] == expected, (name, batch_size)
                assert all(0 < len(batch) <= batch_size for batch in batches)
                connection.rollback()
    finally:
        source.dispose()


# --- refusals and resume -----------------------------------------------------------------


class Interrupted(Exception):
    pass


def test_an_interrupted_copy_resumes_where_it_stopped(demo_source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"

    def crash_in_customers(table: str, done: int, total: int) -> None:
        if table == "customers" and done >= 200:
            raise Interrupted

    with pytest.raises(Interrupted):
        migrate(demo_source, target, batch_size=100, progress=crash_in_customers)
    assert row_counts(target)["customers"] == 200
    assert row_counts(target)["contacts"] == 0

    with pytest.raises(TargetNotEmpty):
        migrate(demo_source, target, batch_size=100)
    report = migrate(demo_source, target, batch_size=100, resume=True)

    assert report.success, report.as_dict()["failures"]
    customers = next(table for table in report.tables if table.table == "customers")
    assert (customers.resumed_from, customers.rows) == (200, DEMO_CUSTOMERS - 200)
    assert row_counts(target) == row_counts(demo_source)


def test_resume_refuses_a_target_filled_from_another_source(demo_source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert migrate(demo_source, target).success
    other = tmp_path / "other.db"
    other.write_bytes(Path(demo_source.removeprefix("sqlite:///")).read_bytes())
    with pytest.raises(ResumeFromOtherSource):
        migrate(f"sqlite:///{other}", target, resume=True)


def test_a_source_below_the_newest_schema_is_refused_and_the_target_left_untouched(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'old.db'}"
    make_engine(source).dispose()
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(SourceSchemaOutdated):
        migrate(source, target)
    engine = make_engine(target)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def _schema_objects(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as connection:
        indexes = connection.execute(text(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        )).all()
        constraints = connection.execute(text(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) || ' ' || convalidated::text"
            " FROM pg_constraint WHERE connamespace = current_schema()::regnamespace"
        )).all()
    return {(table, definition) for table, definition in [*indexes, *constraints]}


def test_a_bulk_load_into_postgresql_rebuilds_every_index_and_foreign_key_even_after_a_crash(
    demo_source: str, tmp_path: Path, databases: ExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_core import migration

    reference = make_engine(empty_database("postgresql", tmp_path, databases, "reference"))
    upgrade_to_head(reference)
    expected = _schema_objects(reference)
    reference.dispose()
    monkeypatch.setattr(migration, "DEFER_INDEXES_FROM_ROWS", 100)  # the demo tables are small
    target = empty_database("postgresql", tmp_path, databases, "target")

    def crash_in_customers(table: str, done: int, total: int) -> None:
        if table == "customers" and done >= 200:
            raise Interrupted

    with pytest.raises(Interrupted):
        migrate(demo_source, target, batch_size=100, progress=crash_in_customers)
    engine = make_engine(target)
    try:
        assert _schema_objects(engine) != expected  # customers' indexes and foreign keys are down
        report = migrate(demo_source, target, batch_size=100, resume=True)
        assert report.success, report.as_dict()["failures"]
        assert _schema_objects(engine) == expected
    finally:
        engine.dispose()
