"""The one import route on real engines (SQLite, PostgreSQL, MariaDB): chunk by chunk, one transaction.

``run_import`` judges a chunk (look-ups in the run's own transaction, GX in this process),
then writes it; these tests commit for real, each in a tenant of its own inside a private
database per kind. They check what crosses chunk boundaries (duplicates, an order's lines),
that a dry run (``validate_import``) gives the run's own verdicts, and that a refusal, an
error or a stop asked by the progress callback leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ValidationReport, run_import, validate_import
from crm_core.models import ImportRun
from crm_core.models.quality import ImportRejectedRow
from tests.conftest import live_database
from tests.factories import World, build_world, create_random_customer


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def live_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """An engine-bound database of each kind (real commits), private to this module."""
    with live_database(request.param, tmp_path_factory, "pipeline") as db:
        yield db


@pytest.fixture
def world(live_db: Database) -> World:
    return build_world(live_db)  # a tenant of its own: tests in the module do not see each other's rows


def verdicts(dry_run: ValidationReport) -> dict[str, object]:
    """A dry run's report without what only a dry run tells (the data-quality checks the rows would break)."""
    return {key: value for key, value in dry_run.as_dict().items() if key != "quality"}


def scalar(db: Database, sql: str, **params: object) -> int:
    with db.system_session("test count") as session:
        return int(session.execute(text(sql), params).scalar_one())


def tenant_counts(db: Database, tenant_id: int) -> dict[str, int]:
    """Rows the import writes, per table, in the tenant (hand-written SQL)."""
    return {
        table: scalar(db, f"SELECT COUNT(*) FROM {table} WHERE tenant_id = :tenant", tenant=tenant_id)
        for table in ("customers", "tasks", "audit_events", "lifecycle_transitions", "import_run_records")
    }


def customer_and_task_audits(db: Database, tenant_id: int) -> int:
    return scalar(
        db, "SELECT COUNT(*) FROM audit_events WHERE tenant_id = :tenant AND entity IN ('customer', 'task')",
        tenant=tenant_id,
    )


def customer_rows(db: Database, tenant_id: int) -> list[tuple[object, ...]]:
    with db.system_session("test rows") as session:
        return [
            tuple(row)
            for row in session.execute(
                text(
                    "SELECT name, email_normalized, phone_normalized, region, owner_id IS NOT NULL "
                    "FROM customers WHERE tenant_id = :tenant ORDER BY name, id"
                ),
                {"tenant": tenant_id},
            ).all()
        ]


def quarantined(db: Database, run_id: int) -> list[tuple[int, str]]:
    with db.system_session("test quarantine") as session:
        return [
            (number, data.get("email", ""))
            for number, data in session.execute(
                select(ImportRejectedRow.row_number, ImportRejectedRow.data)
                .where(ImportRejectedRow.import_run_id == run_id)
                .order_by(ImportRejectedRow.row_number)
            ).all()
        ]


CROSS_CHUNK = (
    "name,email,phone,region\n"
    "Existing Again,dup@example.com,,North\n"  # matches the customer already there
    "Broken First,broken@,139 0000 0009,East\n"  # refused: the next row with its phone is the first valid one
    "Phone Twin,phone-twin@example.com,139 0000 0009,South\n"
    "Falcon,falcon@example.com,138 0000 0001,West\n"
    "Falcon By Phone,other@example.com,138 0000 0001,EU\n"  # same phone as Falcon, other email
    "Falcon Again,FALCON@example.com,,North\n"
    "Existing By Phone,,137 0000 0007,East\n"  # the phone of the existing customer
    "Existing Thrice,dup@example.com,,South\n"
)
CROSS_MAPPING = {
    "columns": {"name": "name", "email": "email", "phone": "phone", "region": "region"},
    "match_on": ["email", "phone"],
}


EXISTING = ("Existing", "dup@example.com", "+8613700000007", None, 1)  # made by hand before the import
CROSS_EXPECTED = {
    # (mode, duplicates): ((status, rows read, created, updated, skipped, rejected), customers afterwards)
    ("create", "skip"): (
        ("partial", 8, 2, 0, 5, 1),
        [
            EXISTING,
            ("Falcon", "falcon@example.com", "+8613800000001", "West", 0),
            ("Phone Twin", "phone-twin@example.com", "+8613900000009", "South", 0),
        ],
    ),
    # issue 19: each row counts once (a row folded into an earlier one of the file is 'updated' when it
    # changes a value, else 'skipped'): created + updated + skipped + rejected = rows read
    ("create", "merge"): (
        ("partial", 8, 2, 5, 0, 1),
        [
            ("Existing Thrice", "dup@example.com", "+8613700000007", "South", 1),
            ("Falcon Again", "falcon@example.com", "+8613800000001", "North", 0),
            ("Phone Twin", "phone-twin@example.com", "+8613900000009", "South", 0),
        ],
    ),
    ("create", "create"): (
        ("partial", 8, 7, 0, 0, 1),
        [
            EXISTING,
            ("Existing Again", "dup@example.com", None, "North", 0),
            ("Existing By Phone", None, "+8613700000007", "East", 0),
            ("Existing Thrice", "dup@example.com", None, "South", 0),
            ("Falcon", "falcon@example.com", "+8613800000001", "West", 0),
            ("Falcon Again", "falcon@example.com", None, "North", 0),
            ("Falcon By Phone", "other@example.com", "+8613800000001", "EU", 0),
            ("Phone Twin", "phone-twin@example.com", "+8613900000009", "South", 0),
        ],
    ),
    ("upsert", "skip"): (
        ("partial", 8, 2, 5, 0, 1),
        [
            ("Existing Thrice", "dup@example.com", "+8613700000007", "South", 1),
            ("Falcon Again", "falcon@example.com", "+8613800000001", "North", 0),
            ("Phone Twin", "phone-twin@example.com", "+8613900000009", "South", 0),
        ],
    ),
}


@pytest.mark.parametrize(("mode", "duplicates"), list(CROSS_EXPECTED))
def test_rows_repeating_keys_of_earlier_chunks_meet_the_records_those_chunks_wrote(
    live_db: Database, world: World, mode: str, duplicates: str
) -> None:
    """Chunks of two rows: rows repeat keys of rows two chunks earlier, and of a customer already there."""
    create_random_customer(live_db, world.admin, name="Existing", email="dup@example.com", phone="137 0000 0007")
    file = open_import_file("cross.csv", CROSS_CHUNK.encode())
    mapping = ImportMapping.from_dict(CROSS_MAPPING)
    options = ImportOptions(mode=mode, duplicates=duplicates, policy="skip-invalid", chunk_size=2)  # type: ignore[arg-type]
    before = tenant_counts(live_db, world.admin.tenant_id)
    dry_run = validate_import(live_db, world.admin, file, "customers", mapping, options)
    assert tenant_counts(live_db, world.admin.tenant_id) == before  # a dry run writes nothing
    result = run_import(live_db, world.admin, file, "customers", mapping, options)
    counts, customers = CROSS_EXPECTED[(mode, duplicates)]
    assert (result.status, result.rows_read, result.created, result.updated, result.skipped, result.rejected) == counts
    assert customer_rows(live_db, world.admin.tenant_id) == customers
    assert quarantined(live_db, result.run_id) == [(3, "broken@")]
    written = tenant_counts(live_db, world.admin.tenant_id)
    assert {table: written[table] - before[table] for table in ("customers", "tasks")} == {
        "customers": result.created, "tasks": result.created
    }
    records = {
        action: scalar(
            live_db,
            "SELECT COUNT(*) FROM import_run_records WHERE import_run_id = :run AND action = :action",
            run=result.run_id,
            action=action,
        )
        for action in ("created", "updated")
    }
    # a record per created record and per record rows changed (several rows of the file may change one)
    assert records["created"] == result.created
    assert records["updated"] <= result.updated and (records["updated"] > 0) == (result.updated > 0)
    # the verdicts the run wrote by are the dry run's: 4 rows repeat an earlier row's key,
    # 2 others (Existing Again, Existing By Phone) match the customer already there
    assert result.report is not None and result.report.as_dict() == verdicts(dry_run)
    assert (dry_run.duplicates_in_file, dry_run.matches_in_database, sorted(dry_run.rejected)) == (4, 2, [3])


ORDERS_ACROSS_CHUNKS = (
    "order_number,customer,product,quantity,unit_price\n"
    "SO-X1,Chunk Buyer,SKU-X,1,10\n"
    "SO-X1,Chunk Buyer,SKU-X,2,10\n"
    "SO-X1,Chunk Buyer,SKU-X,3,10\n"  # the order's third line, in the second chunk
    "SO-X2,Chunk Buyer,SKU-X,1,5\n"
    "SO-OLD,Chunk Buyer,SKU-X,1,5\n"  # taken: an order made before the import has this number
)


def test_an_orders_lines_in_two_chunks_make_one_order_and_a_number_taken_before_is_refused(
    live_db: Database, world: World
) -> None:
    from crm_core.models import Order
    from crm_core.services.products import ProductInput, create_product

    create_random_customer(live_db, world.admin, name="Chunk Buyer")
    create_product(live_db, world.admin, ProductInput(sku="SKU-X", name="Chunk Widget", unit_price=Decimal("10")))
    first = open_import_file("old.csv", b"order_number,customer,product,quantity\nSO-OLD,Chunk Buyer,SKU-X,1\n")
    mapping = ImportMapping.suggested("orders", first.headers)
    assert run_import(live_db, world.admin, first, "orders", mapping).status == "imported"
    file = open_import_file("orders.csv", ORDERS_ACROSS_CHUNKS.encode())
    mapping = ImportMapping.suggested("orders", file.headers)
    options = ImportOptions(policy="skip-invalid", chunk_size=2)
    dry_run = validate_import(live_db, world.admin, file, "orders", mapping, options)
    result = run_import(live_db, world.admin, file, "orders", mapping, options)
    assert (result.status, result.created, result.rejected) == ("partial", 2, 1)
    assert result.report is not None and result.report.as_dict() == verdicts(dry_run)
    assert sorted(dry_run.rejected) == [6]
    with live_db.session(world.admin) as session:
        totals = {
            number: Decimal(str(total))
            for number, total in session.execute(select(Order.order_number, Order.total_amount)).all()
        }
    assert totals == {"SO-OLD": Decimal("10.00"), "SO-X1": Decimal("60.00"), "SO-X2": Decimal("5.00")}


BAD_IN_THE_LAST_CHUNK = (
    "name,email,phone,region\n"
    + "".join(f"Kestrel {n},k{n}@example.com,138 0000 {n:04d},East\n" for n in range(1, 7))
    + "Broken Last,not-an-email,138 0000 0099,East\n"
)


def test_all_or_nothing_rolls_back_the_chunks_written_before_the_bad_one(live_db: Database, world: World) -> None:
    """Chunks 1–3 are written before chunk 4 is judged bad: none of it stays; the refused row is quarantined."""
    before = tenant_counts(live_db, world.admin.tenant_id)
    file = open_import_file("bad-last.csv", BAD_IN_THE_LAST_CHUNK.encode())
    mapping = ImportMapping.suggested("customers", file.headers)
    result = run_import(live_db, world.admin, file, "customers", mapping, ImportOptions(chunk_size=2))
    assert (result.status, result.rows_read, result.created, result.rejected) == ("rejected", 7, 0, 1)
    after = tenant_counts(live_db, world.admin.tenant_id)
    written = ("customers", "tasks", "lifecycle_transitions", "import_run_records")
    assert {table: after[table] for table in written} == {table: before[table] for table in written}
    assert customer_and_task_audits(live_db, world.admin.tenant_id) == 0
    assert quarantined(live_db, result.run_id) == [(8, "not-an-email")]
    with live_db.session(world.admin) as session:
        run = session.get(ImportRun, result.run_id)
        assert run is not None and (run.status, run.rows_read, run.created_count) == ("rejected", 7, 0)
    # the same file under skip-invalid: the six good rows, searchable by name
    result = run_import(
        live_db, world.admin, file, "customers", mapping, ImportOptions(chunk_size=2, policy="skip-invalid")
    )
    assert (result.status, result.created, result.rejected) == ("partial", 6, 1)
    assert tenant_counts(live_db, world.admin.tenant_id)["tasks"] == 6


def test_a_database_error_in_a_later_chunk_fails_the_run_and_leaves_nothing(sqlite_db: Database) -> None:
    """SQLite refuses the third chunk's insert: the error reaches the caller, nothing stays but a failed run."""
    live_db, world = sqlite_db, build_world(sqlite_db)
    with live_db.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER test_refuse_boom BEFORE INSERT ON customers WHEN NEW.name = 'Boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
        )
    try:
        body = "name,email\n" + "".join(f"Row {n},r{n}@example.com\n" for n in range(1, 5)) + "Boom,boom@example.com\n"
        file = open_import_file("boom.csv", body.encode())
        mapping = ImportMapping.suggested("customers", file.headers)
        before = tenant_counts(live_db, world.admin.tenant_id)
        with pytest.raises(Exception, match="boom refused"):
            run_import(live_db, world.admin, file, "customers", mapping, ImportOptions(chunk_size=2))
        after = tenant_counts(live_db, world.admin.tenant_id)
        assert {key: after[key] for key in ("customers", "tasks", "import_run_records")} == {
            key: before[key] for key in ("customers", "tasks", "import_run_records")
        }
        with live_db.system_session("test") as session:
            runs = session.execute(
                select(ImportRun.status, ImportRun.rows_read).where(ImportRun.tenant_id == world.admin.tenant_id)
            ).all()
        assert [tuple(run) for run in runs] == [("failed", 5)]  # every row was read: Boom is the last
    finally:
        with live_db.engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER test_refuse_boom")
    # the full-text insert trigger the run dropped is back: a customer made by hand is found by name
    create_random_customer(live_db, world.admin, name="Boomerang Handmade")
    assert scalar(
        live_db, "SELECT COUNT(*) FROM customers_fts WHERE customers_fts MATCH :q", q='"Boomerang Handmade"'
    ) == 1


class StopAfter:
    """A progress callback that records every call and raises (a cancelled job) once ``rows`` rows are done."""

    def __init__(self, rows: int | None) -> None:
        self.rows = rows
        self.calls: list[tuple[int, int | None, str]] = []

    def __call__(self, done: int, total: int | None, message_key: str) -> None:
        self.calls.append((done, total, message_key))
        if self.rows is not None and done >= self.rows:
            raise KeyboardInterrupt("stopped by the test")  # not an Exception: nothing may swallow it


def fulltext_matches_customers(db: Database) -> bool:
    """SQLite: the customers' FTS5 index holds exactly the customers, and agrees with its content."""
    if db.dialect_name != "sqlite":
        return True
    with db.system_session("test fts") as session:
        session.execute(text("INSERT INTO customers_fts(customers_fts, rank) VALUES ('integrity-check', 1)"))
        indexed = set(session.scalars(text("SELECT rowid FROM customers_fts")))
        customers = set(session.scalars(text("SELECT id FROM customers")))
    return indexed == customers


SEVEN_GOOD = "name,email,region\n" + "".join(f"Stopwing {n},s{n}@example.com,East\n" for n in range(1, 8))


def test_a_progress_callback_that_raises_between_chunks_leaves_no_rows_and_search_in_step(
    live_db: Database, world: World
) -> None:
    """The job is cancelled after chunk two of four was written: no customer, task, audit row or run is left."""
    before = tenant_counts(live_db, world.admin.tenant_id)
    file = open_import_file("stop.csv", SEVEN_GOOD.encode())
    mapping = ImportMapping.suggested("customers", file.headers)
    stop = StopAfter(4)
    with pytest.raises(KeyboardInterrupt):
        run_import(live_db, world.admin, file, "customers", mapping, ImportOptions(chunk_size=2), progress=stop)
    assert stop.calls == [(2, 7, "imports.importing"), (4, 7, "imports.importing")]
    assert tenant_counts(live_db, world.admin.tenant_id) == before
    assert scalar(live_db, "SELECT COUNT(*) FROM import_runs WHERE tenant_id = :t", t=world.admin.tenant_id) == 0
    assert fulltext_matches_customers(live_db)
    # a callback that raises an ordinary error (a job's own cancel exception) stops it the same way
    def cancelled(done: int, total: int | None, message_key: str) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        run_import(live_db, world.admin, file, "customers", mapping, ImportOptions(chunk_size=2), progress=cancelled)
    assert tenant_counts(live_db, world.admin.tenant_id) == before
    assert scalar(live_db, "SELECT COUNT(*) FROM import_runs WHERE tenant_id = :t", t=world.admin.tenant_id) == 0
    assert fulltext_matches_customers(live_db)
    # and the same file then imports whole, searchable
    done = StopAfter(None)
    result = run_import(live_db, world.admin, file, "customers", mapping, ImportOptions(chunk_size=2), progress=done)
    assert (result.status, result.created) == ("imported", 7)
    assert [call[:2] for call in done.calls] == [(2, 7), (4, 7), (6, 7), (7, 7), (7, 7)]
    assert fulltext_matches_customers(live_db)


def test_progress_knows_the_total_before_the_first_chunk_and_ends_exact(live_db: Database, world: World) -> None:
    """The total comes from a line count (a quoted cell over two lines makes it one too high), then the real count."""
    body = 'name,email,industry\nQuill One,q1@example.com,"two\nlines"\n' + "Quill Two,q2@example.com,x\n\n"
    file = open_import_file("quill.csv", body.encode())
    mapping = ImportMapping.suggested("customers", file.headers)
    progress = StopAfter(None)
    options = ImportOptions(chunk_size=1)
    report = validate_import(live_db, world.admin, file, "customers", mapping, options, progress=progress)
    assert report.rows_read == 2
    assert progress.calls == [(1, 4, "imports.validating"), (2, 4, "imports.validating"), (2, 2, "imports.validating")]
