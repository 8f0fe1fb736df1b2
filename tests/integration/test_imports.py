"""Imports on every database: validation before writing, policies, match keys, duplicates, revert."""

from __future__ import annotations

import codecs
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, ImportNotAllowed
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import ImportFile, open_import_file
from crm_core.importing.runner import (
    quarantined_rows_csv,
    read_csv_rows,
    revert_import,
    run_import,
    validate_import,
)
from crm_core.models import Customer, ImportRun
from crm_core.models.quality import ImportRejectedRow
from crm_core.services.products import ProductInput, create_product
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def count(db: Database, table: str, tenant_id: int, where: str = "") -> int:
    """Rows of ``table`` in the tenant, counted with hand-written SQL."""
    with db.engine.connect() if False else db.system_session("test count") as session:  # noqa: SIM108
        return int(
            session.execute(
                text(f"SELECT COUNT(*) FROM {table} WHERE tenant_id = :tenant {where}"), {"tenant": tenant_id}
            ).scalar_one()
        )


def csv_file(body: str, name: str = "file.csv", encoding: str = "utf-8") -> ImportFile:
    raw = body.encode(encoding) if encoding != "utf-8-sig" else codecs.BOM_UTF8 + body.encode("utf-8")
    return open_import_file(name, raw)


def import_csv(db: Database, actor: Actor, entity: str, body: str, *, mapping: dict | None = None, **options):  # type: ignore[no-untyped-def]
    file = csv_file(body)
    chosen = ImportMapping.from_dict(mapping) if mapping else ImportMapping.suggested(entity, file.headers)  # type: ignore[attr-defined]
    return run_import(db, actor, file, entity, chosen, ImportOptions(**options))  # type: ignore[arg-type]


CUSTOMERS_ONE_BAD = (
    "name,email,phone,lifecycle_stage\n"
    "Alpha Trading,alpha@example.com,138 0000 0001,prospect\n"
    "Beta Works,not-an-email,138 0000 0002,intent\n"
    "Gamma GmbH,gamma@example.com,138 0000 0003,customer\n"
)


def test_all_or_nothing_writes_no_customer_when_one_row_is_bad(db: Database, world: World) -> None:
    before = count(db, "customers", world.admin.tenant_id)
    result = import_csv(db, world.admin, "customers", CUSTOMERS_ONE_BAD)
    assert (result.status, result.rows_read, result.created, result.rejected) == ("rejected", 3, 0, 1)
    assert count(db, "customers", world.admin.tenant_id) == before
    assert result.report is not None
    failure = result.report.failures[0]
    assert (failure.field, failure.count, failure.rows, failure.examples) == ("email", 1, [3], ["not-an-email"])
    with db.session(world.admin) as session:
        run = session.get(ImportRun, result.run_id)
        assert run is not None and run.status == "rejected" and run.rejected_count == 1


def test_skip_invalid_imports_exactly_the_valid_rows_and_quarantines_the_rest(db: Database, world: World) -> None:
    before = count(db, "customers", world.admin.tenant_id)
    result = import_csv(db, world.admin, "customers", CUSTOMERS_ONE_BAD, policy="skip-invalid")
    assert (result.status, result.created, result.rejected) == ("partial", 2, 1)
    assert count(db, "customers", world.admin.tenant_id) == before + 2
    assert count(db, "customers", world.admin.tenant_id, "AND name IN ('Alpha Trading', 'Gamma GmbH')") == 2
    assert count(db, "customers", world.admin.tenant_id, "AND name = 'Beta Works'") == 0
    assert count(db, "import_rejected_rows", world.admin.tenant_id) == 1
    rows = read_csv_rows(quarantined_rows_csv(db, world.admin, result.run_id, "zh-CN"))
    assert rows[0] == ["行号", "name", "email", "phone", "lifecycle_stage", "原因"]
    assert rows[1][:3] == ["3", "Beta Works", "not-an-email"] and "不是有效的邮箱地址" in rows[1][-1]


def test_imported_customers_get_audit_events_tagged_with_the_run(db: Database, world: World) -> None:
    result = import_csv(db, world.admin, "customers", "name\nDelta Ltd\n")
    with db.system_session("test") as session:
        changes = session.execute(
            text(
                "SELECT a.changes FROM audit_events a JOIN customers c ON c.id = a.entity_id "
                "WHERE a.entity = 'customer' AND a.action = 'create' AND c.name = 'Delta Ltd'"
            )
        ).scalar_one()
    import json

    changes = json.loads(changes) if isinstance(changes, str) else changes
    assert changes["_import_run"] == [None, result.run_id] and changes["name"] == [None, "Delta Ltd"]


def test_upsert_by_email_updates_the_match_and_creates_the_rest(db: Database, world: World) -> None:
    existing = create_random_customer(db, world.admin, name="Old Name", email="keep@example.com", industry="Retail")
    body = "name,email,industry\nNew Name,KEEP@example.com,Energy\nFresh Co,fresh@example.com,Energy\n"
    result = import_csv(
        db,
        world.admin,
        "customers",
        body,
        mode="upsert",
        mapping={"columns": {"name": "name", "email": "email", "industry": "industry"}, "match_on": ["email"]},
    )
    assert (result.status, result.created, result.updated) == ("imported", 1, 1)
    with db.session(world.admin) as session:
        customer = session.get(Customer, existing)
        assert customer is not None and (customer.name, customer.industry) == ("New Name", "Energy")


def test_update_mode_rejects_rows_that_match_nothing(db: Database, world: World) -> None:
    create_random_customer(db, world.admin, name="Known", external_id="EXT-1")
    body = "external_id,industry\nEXT-1,Energy\nEXT-404,Energy\n"
    result = import_csv(
        db,
        world.admin,
        "customers",
        body,
        mode="update",
        mapping={"columns": {"external_id": "external_id", "industry": "industry"}, "match_on": ["external_id"]},
    )
    assert (result.status, result.updated, result.rejected) == ("rejected", 0, 1)
    assert result.report is not None
    assert [f.message_key for f in result.report.failures] == ["imports.rule.match_missing"]
    assert count(db, "customers", world.admin.tenant_id, "AND industry = 'Energy'") == 0


@pytest.mark.parametrize(("duplicates", "created", "skipped"), [("skip", 1, 2), ("merge", 1, 0), ("create", 3, 0)])
def test_duplicates_in_the_file_and_the_database_follow_the_users_choice(
    db: Database, world: World, duplicates: str, created: int, skipped: int
) -> None:
    create_random_customer(db, world.admin, name="Existing", email="dup@example.com")
    body = (
        "name,email,region\nExisting Again,dup@example.com,North\n"
        "Twin,twin@example.com,South\nTwin Again,TWIN@example.com,West\n"
    )
    before = count(db, "customers", world.admin.tenant_id)
    result = import_csv(
        db,
        world.admin,
        "customers",
        body,
        duplicates=duplicates,
        mapping={"columns": {"name": "name", "email": "email", "region": "region"}, "match_on": ["email"]},
    )
    assert (result.created, result.skipped) == (created, skipped)
    assert count(db, "customers", world.admin.tenant_id) == before + created
    if duplicates == "merge":
        # the existing customer took the file's region, and the second twin changed the first (issue 19:
        # every row counts once, so created + updated + skipped + rejected = rows)
        assert result.updated == 2
        assert count(db, "customers", world.admin.tenant_id, "AND email = 'dup@example.com' AND region = 'North'") == 1
        # the second twin merged into the first before it was written
        assert count(db, "customers", world.admin.tenant_id, "AND email_normalized = 'twin@example.com'") == 1
        assert count(db, "customers", world.admin.tenant_id, "AND name = 'Twin Again' AND region = 'West'") == 1


def test_revert_removes_created_rows_and_restores_updated_ones(db: Database, world: World) -> None:
    existing = create_random_customer(db, world.admin, name="Before", email="before@example.com", industry="Retail")
    before = count(db, "customers", world.admin.tenant_id)
    result = import_csv(
        db,
        world.admin,
        "customers",
        "name,email,industry\nAfter,before@example.com,Energy\nBrand New,new@example.com,Energy\n",
        mode="upsert",
        mapping={"columns": {"name": "name", "email": "email", "industry": "industry"}, "match_on": ["email"]},
    )
    assert (result.created, result.updated) == (1, 1)
    undone = revert_import(db, world.admin, result.run_id)
    assert (undone.deleted, undone.restored, undone.conflicts) == (1, 1, 0)
    assert count(db, "customers", world.admin.tenant_id) == before
    with db.session(world.admin) as session:
        customer = session.get(Customer, existing)
        assert customer is not None and (customer.name, customer.industry) == ("Before", "Retail")
        assert session.get(ImportRun, result.run_id).status == "reverted"  # type: ignore[union-attr]
    with pytest.raises(ImportNotAllowed):
        revert_import(db, world.admin, result.run_id)


def test_gbk_and_bom_files_import_the_same_chinese_names(db: Database, world: World) -> None:
    body = "客户名称,邮箱\n深圳红隼电子,hongsun@example.cn\n"
    gbk = run_import(
        db,
        world.admin,
        csv_file(body, encoding="gbk"),
        "customers",
        ImportMapping.suggested("customers", ["客户名称", "邮箱"]),
        ImportOptions(),
    )
    bom = csv_file(body.replace("深圳红隼电子", "广州红隼").replace("hongsun@", "gz@"), encoding="utf-8-sig")
    assert bom.encoding == "utf-8-sig"  # type: ignore[attr-defined]
    run_import(db, world.admin, bom, "customers", ImportMapping.suggested("customers", bom.headers), ImportOptions())  # type: ignore[arg-type,attr-defined]
    assert gbk.created == 1
    assert count(db, "customers", world.admin.tenant_id, "AND name IN ('深圳红隼电子', '广州红隼')") == 2


def test_a_manager_cannot_give_imported_customers_to_another_team(db: Database, world: World) -> None:
    far = world.rep_other_team.username
    result = import_csv(db, world.manager, "customers", f"name,owner\nMine,{world.rep.username}\nTheirs,{far}\n")
    assert result.status == "rejected" and result.report is not None
    assert [(f.field, f.examples) for f in result.report.failures] == [("owner", [far])]


def test_reps_and_analysts_may_not_import(db: Database, world: World) -> None:
    for actor in (world.rep, world.analyst):
        with pytest.raises(AccessDenied):
            import_csv(db, actor, "customers", "name\nX\n")


def test_orders_with_lines_resolve_customers_and_products_and_total_the_lines(db: Database, world: World) -> None:
    create_random_customer(db, world.admin, name="Order Buyer", email="buyer@example.com")
    create_product(db, world.admin, ProductInput(sku="SKU-1", name="Widget", unit_price=Decimal("10")))
    create_product(db, world.admin, ProductInput(sku="SKU-2", name="Gadget", unit_price=Decimal("25")))
    body = (
        "订单号,客户,产品,数量,单价\n"
        "SO-1,Order Buyer,Widget,3,\n"  # blank price: the list price applies
        'SO-1,buyer@example.com,SKU-2,2,"1,000.00"\n'
        "SO-2,Order Buyer,Widget,1,9.5\n"
    )
    result = import_csv(db, world.admin, "orders", body)
    assert (result.status, result.created) == ("imported", 2), result.report and result.report.as_dict()["failures"]
    with db.system_session("test") as session:
        totals: dict[str, Decimal] = dict(
            session.execute(
                text(
                    "SELECT o.order_number, SUM(l.quantity * l.unit_price) FROM orders o "
                    "JOIN order_lines l ON l.order_id = o.id WHERE o.tenant_id = :t GROUP BY o.order_number"
                ),
                {"t": world.admin.tenant_id},
            ).all()
        )
        stored: dict[str, Decimal] = dict(
            session.execute(
                text("SELECT order_number, total_amount FROM orders WHERE tenant_id = :t"), {"t": world.admin.tenant_id}
            ).all()
        )
    assert {k: Decimal(str(v)) for k, v in totals.items()} == {"SO-1": Decimal("2030.00"), "SO-2": Decimal("9.50")}
    assert {k: Decimal(str(v)) for k, v in stored.items()} == {"SO-1": Decimal("2030.00"), "SO-2": Decimal("9.50")}


SUITE_CASES = [
    (
        "customers",
        "name,kind,phone,owner\n,company,12345678,\nX,compny,123,\nY,person,,ghost\n",
        {"imports.rule.required", "imports.rule.choice", "imports.rule.phone", "imports.rule.unresolved_owner"},
    ),
    (
        "customers",
        'name,industry\n<script>alert(1)</script>,x\n=HYPERLINK("http://x"),y\n',
        {"imports.rule.markup", "imports.rule.formula"},
    ),
    (
        "contacts",
        "customer,name,email,is_primary\nNo Such Co,Li Lei,li@example,maybe\n",
        {"imports.rule.unresolved_customer", "imports.rule.email", "imports.rule.invalid_bool"},
    ),
    (
        "products",
        "sku,name,unit_price\nP-1,Thing,-5\nP-1,Thing 2,abc\nP-2,,3\n",
        {
            "imports.rule.range",
            "imports.rule.duplicate_in_file",
            "imports.rule.invalid_number",
            "imports.rule.required",
        },
    ),
    (
        "opportunities",
        "name,customer,amount,probability,expected_close_date,stage\nDeal,Nobody Inc,100,150,03/04/2026,Engaging\n",
        {
            "imports.rule.unresolved_customer",
            "imports.rule.range",
            "imports.rule.invalid_date",
            "imports.rule.unresolved_stage",
        },
    ),
    (
        "orders",
        "order_number,customer,product,quantity\nSO-9,Suite Buyer,Nothing,0\nSO-9,Other Buyer,Nothing,1\n",
        {
            "imports.rule.unresolved_product",
            "imports.rule.range",
            "imports.rule.order_customer_conflict",
            "imports.rule.unresolved_customer",
        },
    ),
    (
        "activities",
        "customer,type,occurred_at\nSuite Buyer,phone call,yesterday\n",
        {"imports.rule.choice", "imports.rule.invalid_datetime"},
    ),
    (
        "tasks",
        "title,assignee,due_at,priority\n,ghost,2026-13-01,urgent-ish\n",
        {
            "imports.rule.required",
            "imports.rule.unresolved_owner",
            "imports.rule.invalid_datetime",
            "imports.rule.choice",
        },
    ),
]


@pytest.mark.parametrize(("entity", "body", "expected"), SUITE_CASES, ids=[c[0] for c in SUITE_CASES])
def test_each_suite_rejects_what_it_should(
    db: Database, world: World, entity: str, body: str, expected: set[str]
) -> None:
    create_random_customer(db, world.admin, name="Suite Buyer")
    file = csv_file(body)
    report = validate_import(
        db,
        world.admin,
        file,
        entity,
        ImportMapping.suggested(entity, file.headers),
        ImportOptions(),
    )
    assert {failure.message_key for failure in report.failures} == expected


@pytest.mark.parametrize(
    "entity", ["customers", "contacts", "products", "opportunities", "orders", "activities", "tasks"]
)
def test_each_suite_passes_a_clean_file(db: Database, world: World, entity: str) -> None:
    create_random_customer(db, world.admin, name="Clean Buyer", email="clean@example.com")
    create_product(db, world.admin, ProductInput(sku="C-1", name="Clean Widget", unit_price=Decimal("5")))
    body = {
        "customers": "name,email,phone,lifecycle_stage,kind\n清洁公司,c1@example.com,+86 10 1234 5678,意向客户,企业\n",
        "contacts": "customer,name,email,is_primary\nClean Buyer,王五,wang@example.com,是\n",
        "products": 'sku,name,unit_price,currency\nC-2,Clean Gadget,"¥1,200",CNY\n',
        "opportunities": (
            "name,customer,amount,probability,expected_close_date\n"
            "Big deal,clean@example.com,5000,60%,2026年12月1日\n"
        ),
        "orders": "order_number,customer,product,quantity,ordered_at\nSO-C1,Clean Buyer,C-1,2,2026/11/1 10:00\n",
        "activities": "customer,type,occurred_at,summary\nClean Buyer,电话,2026-11-20 09:30,首次沟通\n",
        "tasks": "title,customer,due_at,priority\n回访,Clean Buyer,2026-12-01,高\n",
    }[entity]
    result = import_csv(db, world.admin, entity, body)
    assert (result.status, result.rejected) == ("imported", 0), result.report and result.report.as_dict()
    assert result.created == 1
    with db.session(world.admin) as session:
        assert session.scalar(select(func.count()).select_from(ImportRejectedRow)) == 0


def test_a_spare_column_becomes_a_custom_field_when_an_admin_imports(db: Database, world: World) -> None:
    body = "name,年营收\nCustom Co,\"1,200,000\"\n"
    mapping = {"columns": {"name": "name", "年营收": "custom:annual_revenue"}}
    with pytest.raises(ImportNotAllowed) as refused:
        import_csv(db, world.manager, "customers", body, mapping=mapping)
    assert refused.value.message_key == "imports.error.custom_field_admin"
    result = import_csv(db, world.admin, "customers", body, mapping=mapping)
    assert result.created == 1
    with db.session(world.admin) as session:
        customer = session.scalars(select(Customer).where(Customer.name == "Custom Co")).one()
        assert customer.custom_fields == {"annual_revenue": "1,200,000"}
    condition = "AND name = 'annual_revenue' AND label_zh = '年营收'"
    assert count(db, "field_definitions", world.admin.tenant_id, condition) == 1


def test_revert_refuses_whole_when_a_created_product_is_used_by_a_later_order(db: Database, world: World) -> None:
    products = import_csv(db, world.admin, "products", "sku,name,unit_price\nREV-1,Revert Widget,10\n")
    create_random_customer(db, world.admin, name="Later Buyer")
    orders = import_csv(
        db, world.admin, "orders", "order_number,customer,product,quantity\nSO-R1,Later Buyer,REV-1,1\n"
    )
    assert (products.created, orders.created) == (1, 1)
    with pytest.raises(ImportNotAllowed) as refused:
        revert_import(db, world.admin, products.run_id)
    # said before anything is touched, naming what hangs on the product (decision 0053)
    assert (refused.value.message_key, refused.value.params["count"]) == ("imports.error.revert_attached", 1)
    assert count(db, "products", world.admin.tenant_id, "AND sku = 'REV-1'") == 1


# --- full-text search: SQLite indexes an import's new rows per chunk, not through the trigger ---


def search_names(db: Database, actor: Actor, term: str) -> list[str]:
    """Customer names the grid's search finds (the FTS5 index on SQLite)."""
    from crm_core.queries.customers import CustomerFilters, list_customers

    with db.session(actor) as session:
        page = list_customers(session, filters=CustomerFilters(search=term), per_page=100, sort="name")
    return sorted(row.name for row in page.items)


def fts_state(db: Database) -> tuple[list[str], int]:
    """SQLite: the customers table's triggers and the FTS5 index size (integrity-checked); else nothing."""
    if db.dialect_name != "sqlite":
        return [], 0
    with db.system_session("test fts") as session:
        triggers = list(
            session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'customers'"))
        )
        # 'integrity-check' with rank 1 compares the index with its content: fails loudly when out of step
        session.execute(text("INSERT INTO customers_fts(customers_fts, rank) VALUES ('integrity-check', 1)"))
        entries = int(session.execute(text("SELECT COUNT(*) FROM customers_fts_docsize")).scalar_one())
    return sorted(triggers), entries


def test_search_finds_imported_customers_and_the_insert_trigger_is_back(db: Database, world: World) -> None:
    triggers, entries = fts_state(db)
    body = "name,email\n" + "".join(f"Kestrelwing Trading {n},kw{n}@example.com\n" for n in range(5))
    result = import_csv(db, world.admin, "customers", body, chunk_size=2)
    assert (result.status, result.created) == ("imported", 5)
    assert search_names(db, world.admin, "Kestrelwing") == [f"Kestrelwing Trading {n}" for n in range(5)]
    assert search_names(db, world.admin, "kw3@example") == ["Kestrelwing Trading 3"]
    after_triggers, after_entries = fts_state(db)
    assert after_triggers == triggers
    if db.dialect_name == "sqlite":
        assert "customers_fts_after_insert" in after_triggers and after_entries == entries + 5
    create_random_customer(db, world.admin, name="Kestrelwing By Hand")  # the trigger indexes it again
    assert "Kestrelwing By Hand" in search_names(db, world.admin, "Kestrelwing")


def test_a_row_updating_a_customer_created_by_an_earlier_chunk_keeps_search_in_step(
    db: Database, world: World
) -> None:
    body = "name,email\nFirst Falconer,falcon@example.com\nSecond Falconer,falcon@example.com\n"
    result = import_csv(
        db,
        world.admin,
        "customers",
        body,
        mode="upsert",
        chunk_size=1,
        mapping={"columns": {"name": "name", "email": "email"}, "match_on": ["email"]},
    )
    assert (result.created, result.updated) == (1, 1)  # chunk two updated the customer chunk one created
    fts_state(db)  # the update's trigger removed an entry the chunk had indexed: still consistent
    assert search_names(db, world.admin, "Falconer") == ["Second Falconer"]
    revert_import(db, world.admin, result.run_id)
    assert search_names(db, world.admin, "Falconer") == []
    fts_state(db)


def test_a_failed_write_leaves_the_trigger_and_the_search_index_as_they_were(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_core.importing import runner

    before = fts_state(db)
    customers_before = count(db, "customers", world.admin.tenant_id)
    calls = {"chunks": 0}
    original = runner._Writer.write

    def failing_write(self: runner._Writer, frame: object) -> None:
        calls["chunks"] += 1
        if calls["chunks"] == 2:
            raise RuntimeError("disk full")  # the second chunk fails after the first was written
        original(self, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(runner._Writer, "write", failing_write)
    body = "name\n" + "".join(f"Merlin Holdings {n}\n" for n in range(4))
    with pytest.raises(RuntimeError):
        import_csv(db, world.admin, "customers", body, chunk_size=2)
    assert count(db, "customers", world.admin.tenant_id) == customers_before
    assert fts_state(db) == before
    assert search_names(db, world.admin, "Merlin Holdings") == []
    with db.session(world.admin) as session:
        statuses = list(session.scalars(select(ImportRun.status).order_by(ImportRun.id.desc()).limit(1)))
    assert statuses == ["failed"]


def test_imported_customers_are_assigned_by_rule_before_insert_and_get_their_follow_ups(
    db: Database, world: World
) -> None:
    from crm_core.models import Task
    from crm_core.models.automation import AssignmentRule, LifecycleTransition

    with db.transaction(world.admin) as session:
        rule = AssignmentRule(
            name="West", position=1, team_id=world.west_team_id, follow_up_due_days=3,
            conditions=[{"field": "region", "op": "equals", "value": "West"}],
        )
        session.add(rule)
        session.flush()
        rule_id = rule.id
    body = "name,region,lifecycle_stage\nWren West 1,West,prospect\nWren West 2,West,customer\nWren East,East,\n"
    result = import_csv(db, world.admin, "customers", body)
    assert (result.status, result.created) == ("imported", 3)
    with db.system_session("test") as session:
        customers = {
            c.name: c for c in session.scalars(select(Customer).where(Customer.name.like("Wren %")))
        }
        west = [customers["Wren West 1"], customers["Wren West 2"]]
        assert {(c.owner_id, c.team_id, c.version) for c in west} == {
            (world.rep_other_team.user_id, world.west_team_id, 1)
        }
        assert customers["Wren East"].owner_id is None
        for customer in customers.values():
            [task] = session.scalars(select(Task).where(Task.customer_id == customer.id))
            assert task.status == "open" and task.due_at == customer.next_follow_up_at
            assert task.assignee_id == customer.owner_id
        west_due, east_due = west[0].next_follow_up_at, customers["Wren East"].next_follow_up_at
        assert west_due is not None and east_due is not None
        assert (west_due - east_due).days == 2  # rule: 3 days
        assigned = session.execute(
            text("SELECT entity_id, changes FROM audit_events WHERE action = 'assign' AND entity = 'customer' "
                 "AND entity_id IN (:a, :b)"),
            {"a": west[0].id, "b": west[1].id},
        ).all()
        import json

        assert len(assigned) == 2
        for _, changes in assigned:
            changes = json.loads(changes) if isinstance(changes, str) else changes
            assert changes["assignment_rule_id"] == [None, rule_id]
            assert changes["owner_id"] == [None, world.rep_other_team.user_id]
        stages = dict(
            session.execute(
                select(LifecycleTransition.customer_id, LifecycleTransition.to_stage).where(
                    LifecycleTransition.customer_id.in_([c.id for c in customers.values()])
                )
            ).all()
        )
        assert stages == {c.id: c.lifecycle_stage for c in customers.values()}
        assert session.get(AssignmentRule, rule_id).last_assigned_user_id == world.rep_other_team.user_id  # type: ignore[union-attr]
    revert_import(db, world.admin, result.run_id)
    with db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(Customer).where(Customer.name.like("Wren %"))) == 0
        assert session.scalar(select(func.count()).select_from(Task).where(Task.title.like("%Wren %"))) == 0


