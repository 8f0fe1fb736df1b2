"""Each database check catches a seeded bad row, on every database, and only that row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.db import Database
from crm_core.models import (
    Activity,
    Case,
    Contact,
    Customer,
    Opportunity,
    Order,
    OrderLine,
    Pipeline,
    PipelineStage,
    Product,
    Task,
    User,
)
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.quality.checks import CHECKS, customers_without_owner, measure
from crm_core.quality.history import check_trend, list_check_runs
from crm_core.quality.runs import (
    run_suite_for_all_tenants,
    run_suite_for_tenant,
    suite_checks,
)
from tests.factories import World, build_world, create_random_customer, unique


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture(autouse=True)
def private_data_docs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_GX_DIR", str(tmp_path / "gx"))


# --- seeds: each makes one kind of bad data in tenant A and returns the ids that must be flagged ----

Seed = Callable[[Database, World, Session], set[int]]


def stage(session: Session, tenant_id: int, kind: str = "open") -> PipelineStage:
    return session.scalars(
        select(PipelineStage).where(PipelineStage.tenant_id == tenant_id, PipelineStage.kind == kind)
        .order_by(PipelineStage.position).limit(1)
    ).one()


def deal(session: Session, tenant_id: int, customer_id: int, *, kind: str = "open", **fields: object) -> Opportunity:
    chosen = stage(session, tenant_id, kind)
    values: dict[str, object] = {"tenant_id": tenant_id, "customer_id": customer_id, "pipeline_id": chosen.pipeline_id,
                                 "stage_id": chosen.id, "name": unique("Deal "), "amount": Decimal("100.00")}
    if kind != "open":
        values["closed_at"] = dt.datetime(2026, 10, 1)
    values.update(fields)
    opportunity = Opportunity(**values)
    session.add(opportunity)
    session.flush()
    return opportunity


def order(session: Session, tenant_id: int, customer_id: int, total: str = "90.00", **fields: object) -> Order:
    placed = Order(tenant_id=tenant_id, customer_id=customer_id, order_number=unique("SO-"),
                   total_amount=Decimal(total), **fields)
    session.add(placed)
    session.flush()
    return placed


def line(
    session: Session, placed: Order, *, quantity: str = "1", price: str = "90.00", tenant_id: int | None = None
) -> OrderLine:
    product = Product(tenant_id=placed.tenant_id if tenant_id is None else tenant_id, sku=unique("SKU"),
                      name="Widget", unit_price=Decimal("90.00"))
    session.add(product)
    session.flush()
    added = OrderLine(tenant_id=placed.tenant_id if tenant_id is None else tenant_id, order_id=placed.id,
                      product_id=product.id, quantity=Decimal(quantity), unit_price=Decimal(price))
    session.add(added)
    session.flush()
    return added


def customer_of_other_tenant(db: Database, world: World) -> int:
    return create_random_customer(db, world.other_admin, name="Beta customer")


def seed_unowned(db: Database, world: World, session: Session) -> set[int]:
    return {create_random_customer(db, world.admin, owner_id=None)}


def seed_inactive_owner(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin, owner_id=world.rep_other_team.user_id)
    session.execute(update(User).where(User.id == world.rep_other_team.user_id).values(is_active=False))
    return {customer_id}


def seed_owner_of_other_tenant(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    session.execute(update(Customer).where(Customer.id == customer_id).values(owner_id=world.other_admin.user_id))
    return {customer_id}


def seed_duplicate_emails(db: Database, world: World, session: Session) -> set[int]:
    create_random_customer(db, world.other_admin, email="same@example.com")  # another tenant: not a duplicate
    return {create_random_customer(db, world.admin, email="same@example.com") for _ in range(2)}


def seed_duplicate_phones(db: Database, world: World, session: Session) -> set[int]:
    return {create_random_customer(db, world.admin, phone="+86 138 0013 8000") for _ in range(2)}


def seed_buyer_marked_prospect(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    session.execute(update(Customer).where(Customer.id == customer_id).values(lifecycle_stage="prospect"))
    order(session, world.admin.tenant_id, customer_id)
    cancelled_buyer = create_random_customer(db, world.admin)  # a cancelled order is not a sale
    order(session, world.admin.tenant_id, cancelled_buyer, status="cancelled")
    session.execute(update(Customer).where(Customer.id == cancelled_buyer).values(lifecycle_stage="prospect"))
    return {customer_id}


def seed_customer_without_sale(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    session.execute(update(Customer).where(Customer.id == customer_id).values(lifecycle_stage="customer"))
    winner = create_random_customer(db, world.admin)  # a won deal is a sale
    deal(session, world.admin.tenant_id, winner, kind="won")
    session.execute(update(Customer).where(Customer.id == winner).values(lifecycle_stage="customer"))
    return {customer_id}


def seed_deal_amount(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    deal(session, world.admin.tenant_id, customer_id, amount=Decimal("1000000000.00"))  # the limit itself is fine
    return {deal(session, world.admin.tenant_id, customer_id, amount=Decimal("-5.00")).id,
            deal(session, world.admin.tenant_id, customer_id, amount=Decimal("1000000000.01")).id}


def seed_stage_of_other_pipeline(db: Database, world: World, session: Session) -> set[int]:
    tenant_id = world.admin.tenant_id
    other = Pipeline(tenant_id=tenant_id, name="Renewals")
    session.add(other)
    session.flush()
    foreign_stage = PipelineStage(tenant_id=tenant_id, pipeline_id=other.id, name="Start", position=0)
    session.add(foreign_stage)
    session.flush()
    customer_id = create_random_customer(db, world.admin)
    return {deal(session, tenant_id, customer_id, stage_id=foreign_stage.id).id}


def seed_closed_deal_without_date(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    return {deal(session, world.admin.tenant_id, customer_id, kind="lost", closed_at=None).id}


def seed_lost_deal_disagreeing_with_history(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    lead, lost = stage(session, world.admin.tenant_id, "open"), stage(session, world.admin.tenant_id, "lost")
    moved = deal(session, world.admin.tenant_id, customer_id, kind="lost", lost_from_stage_id=None)
    session.add(OpportunityStageChange(tenant_id=world.admin.tenant_id, opportunity_id=moved.id,
                                       from_stage_id=lead.id, to_stage_id=lost.id, changed_at=dt.datetime(2026, 10, 1)))
    agreeing = deal(session, world.admin.tenant_id, customer_id, kind="lost", lost_from_stage_id=lead.id)
    session.add(OpportunityStageChange(tenant_id=world.admin.tenant_id, opportunity_id=agreeing.id,
                                       from_stage_id=lead.id, to_stage_id=lost.id, changed_at=dt.datetime(2026, 10, 1)))
    invented = deal(session, world.admin.tenant_id, customer_id, kind="lost", lost_from_stage_id=lead.id)
    deal(session, world.admin.tenant_id, customer_id, kind="lost")  # created lost: no history, no copy
    session.flush()
    return {moved.id, invented.id}


def seed_order_total_mismatch(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    good = order(session, world.admin.tenant_id, customer_id, total="180.00")
    line(session, good, quantity="2")
    bad = order(session, world.admin.tenant_id, customer_id, total="100.00")
    line(session, bad)
    return {bad.id}


def seed_deal_amount_not_matching_lines(db: Database, world: World, session: Session) -> set[int]:
    from crm_core.models.pipeline import OpportunityLine

    customer_id = create_random_customer(db, world.admin)
    tenant_id = world.admin.tenant_id
    product = Product(tenant_id=tenant_id, sku=unique("SKU"), name="Widget", unit_price=Decimal("50.00"))
    session.add(product)
    session.flush()
    good, bad = deal(session, tenant_id, customer_id), deal(session, tenant_id, customer_id)
    deal(session, tenant_id, customer_id, amount=Decimal("7.00"))  # no lines: its typed amount stands
    for placed, quantity in ((good, "2"), (bad, "1")):  # 2 × 50.00 = 100.00 = the amount; 1 × 50.00 is not
        session.add(OpportunityLine(tenant_id=tenant_id, opportunity_id=placed.id, product_id=product.id,
                                    quantity=Decimal(quantity), unit_price=Decimal("50.00"),
                                    line_total=Decimal(quantity) * Decimal("50.00"), position=1))
    session.flush()
    return {bad.id}


def seed_bad_order_line(db: Database, world: World, session: Session) -> set[int]:
    customer_id = create_random_customer(db, world.admin)
    placed = order(session, world.admin.tenant_id, customer_id, total="0.00")
    return {line(session, placed, quantity="0", price="0").id}


def seed_orphan(model: type) -> Seed:
    def seed(db: Database, world: World, session: Session) -> set[int]:
        foreign = customer_of_other_tenant(db, world)
        tenant_id = world.admin.tenant_id
        fields_by_model: dict[type, dict[str, object]] = {
            Contact: {"name": "Orphan contact"},
            Opportunity: {},
            Order: {},
            Activity: {"summary": "Orphan call"},
            Case: {"subject": "Orphan case"},
            Task: {"title": "Orphan task"},
        }
        fields = fields_by_model[model]
        if model is Opportunity:
            return {deal(session, tenant_id, foreign).id}
        if model is Order:
            return {order(session, tenant_id, foreign).id}
        row = model(tenant_id=tenant_id, customer_id=foreign, **fields)
        session.add(row)
        session.flush()
        if model is Task:  # a task without a customer is fine
            session.add(Task(tenant_id=tenant_id, title="No customer"))
        return {row.id}

    return seed


def seed_orphaned_order_line(db: Database, world: World, session: Session) -> set[int]:
    foreign_order = order(session, world.other_admin.tenant_id, customer_of_other_tenant(db, world))
    return {line(session, foreign_order, tenant_id=world.admin.tenant_id).id}


def seed_row_on_merged_record(db: Database, world: World, session: Session) -> set[int]:
    from crm_core.models.merges import Merge

    tenant_id = world.admin.tenant_id
    survivor_id = create_random_customer(db, world.admin)
    merged = Customer(tenant_id=tenant_id, name=unique("Merged "))  # no follow-up task, no stage history
    session.add(merged)
    session.flush()
    merged_id = merged.id
    session.add(Merge(tenant_id=tenant_id, entity="customer", merged_id=merged_id, survivor_id=survivor_id))
    left = Contact(tenant_id=tenant_id, customer_id=merged_id, name="Left behind")
    session.add_all([left, Contact(tenant_id=tenant_id, customer_id=survivor_id, name="Moved")])
    session.flush()
    return {left.id}


SEEDS: dict[str, Seed] = {
    "customers_without_owner": seed_unowned,
    "customers_owned_by_inactive_users": seed_inactive_owner,
    "owners_outside_the_tenant": seed_owner_of_other_tenant,
    "duplicate_emails": seed_duplicate_emails,
    "duplicate_phones": seed_duplicate_phones,
    "buyers_marked_as_prospects": seed_buyer_marked_prospect,
    "customers_without_a_sale": seed_customer_without_sale,
    "deal_amounts_out_of_range": seed_deal_amount,
    "deals_in_a_stage_of_another_pipeline": seed_stage_of_other_pipeline,
    "closed_deals_without_close_date": seed_closed_deal_without_date,
    "lost_deals_disagreeing_with_their_history": seed_lost_deal_disagreeing_with_history,
    "deal_amounts_not_matching_lines": seed_deal_amount_not_matching_lines,
    "order_totals_not_matching_lines": seed_order_total_mismatch,
    "order_lines_with_bad_quantity_or_price": seed_bad_order_line,
    "orphaned_contacts": seed_orphan(Contact),
    "orphaned_deals": seed_orphan(Opportunity),
    "orphaned_orders": seed_orphan(Order),
    "orphaned_activities": seed_orphan(Activity),
    "orphaned_cases": seed_orphan(Case),
    "orphaned_tasks": seed_orphan(Task),
    "orphaned_order_lines": seed_orphaned_order_line,
    "rows_on_merged_records": seed_row_on_merged_record,
}


def test_every_check_has_a_seeded_bad_row_test() -> None:
    assert set(SEEDS) == set(CHECKS)


@pytest.mark.parametrize("check_name", sorted(SEEDS))
def test_each_check_flags_exactly_the_seeded_bad_rows(db: Database, world: World, check_name: str) -> None:
    if db.dialect_name == "postgresql" and check_name.startswith("orphaned_"):
        # since migration 0044 PostgreSQL's foreign keys hold the tenant (decision 0058): the database itself refuses
        # a row pointing at another tenant's record; the check still guards SQLite, MariaDB and older copies
        with pytest.raises(IntegrityError, match="foreign key"), db.system_transaction("seed bad data") as session:
            SEEDS[check_name](db, world, session)
        return
    with db.system_transaction("seed bad data") as session:
        expected = SEEDS[check_name](db, world, session)
    with db.session(world.admin) as session:
        found = measure(session, CHECKS[check_name])
    assert set(found) == {world.admin.tenant_id}
    assert found[world.admin.tenant_id].violations == len(expected)
    assert {example["id"] for example in found[world.admin.tenant_id].examples} == expected


def test_a_clean_tenant_passes_every_suite_and_the_run_is_recorded(db: Database, world: World) -> None:
    create_random_customer(db, world.admin, email="clean@example.com")
    for suite in ("db_customers", "db_sales", "db_integrity"):
        run = run_suite_for_tenant(db, world.admin, suite, data_docs=False)
        assert run.success, [check.check for check in run.failures]
        assert [check.check for check in run.checks] == suite_checks(suite)
    with db.session(world.admin) as session:
        history = list_check_runs(session)
        trend = check_trend(session)
    assert sorted(row.suite for row in history) == ["db_customers", "db_integrity", "db_sales"]
    assert all(row.status == "passed" and row.run_by == world.admin.full_name for row in history)
    assert sum(point.passed for point in trend) == 3 and sum(point.failed for point in trend) == 0


def test_a_failing_run_names_the_check_and_only_the_admins_tenant_is_measured(db: Database, world: World) -> None:
    create_random_customer(db, world.admin, owner_id=None, name="Nobody's")
    create_random_customer(db, world.other_admin, owner_id=None, name="Beta nobody's")
    run = run_suite_for_tenant(db, world.admin, "db_customers", data_docs=False)
    assert not run.success
    assert [(check.check, check.violations) for check in run.failures] == [("customers_without_owner", 1)]
    assert run.failures[0].examples[0]["label"] == "Nobody's"
    with db.session(world.other_admin) as session:
        assert list_check_runs(session) == []  # tenant B sees none of tenant A's history


def test_the_system_run_covers_every_tenant_separately(db: Database, world: World) -> None:
    create_random_customer(db, world.other_admin, owner_id=None)
    runs = {run.tenant_id: run for run in run_suite_for_all_tenants(db, "db_customers")}
    assert not runs[world.other_admin.tenant_id].success
    assert runs[world.admin.tenant_id].success


def test_counts_match_hand_written_sql(db: Database, world: World) -> None:
    for _ in range(3):
        create_random_customer(db, world.admin, owner_id=None)
    for email in ("a@x.cn", "a@x.cn", "a@x.cn", "b@x.cn", "b@x.cn", "c@x.cn"):
        create_random_customer(db, world.admin, email=email)
    with db.system_session("test") as session:
        unowned = session.execute(text(
            "SELECT tenant_id, COUNT(*) FROM customers WHERE owner_id IS NULL AND team_id IS NULL"
            " AND archived_at IS NULL GROUP BY tenant_id"
        )).all()
        duplicated = session.execute(text(
            "SELECT c.tenant_id, COUNT(*) FROM customers c JOIN ("
            " SELECT tenant_id, email_normalized FROM customers WHERE archived_at IS NULL AND email_normalized <> ''"
            " GROUP BY tenant_id, email_normalized HAVING COUNT(*) > 1) d"
            " ON d.tenant_id = c.tenant_id AND d.email_normalized = c.email_normalized"
            " WHERE c.archived_at IS NULL GROUP BY c.tenant_id"
        )).all()
        measured_unowned = measure(session, CHECKS["customers_without_owner"])
        measured_duplicates = measure(session, CHECKS["duplicate_emails"])
    assert {tenant: m.violations for tenant, m in measured_unowned.items()} == dict(unowned)
    assert {tenant: m.violations for tenant, m in measured_duplicates.items()} == dict(duplicated) == {
        world.admin.tenant_id: 5
    }


def test_a_lead_parked_on_a_team_is_not_a_customer_without_owner(db: Database) -> None:
    world = build_world(db)
    pooled = create_random_customer(db, world.rep, owner_id=None)  # a rep's unowned lead stays in their team's pool
    orphan = create_random_customer(db, world.admin, owner_id=None)
    with db.system_session("test") as session:
        found = {row.id for row in session.execute(customers_without_owner())}
    assert orphan in found and pooled not in found
