"""The Customer 360's timeline and header facts on every database: kinds merged newest first,
keyset pages that neither repeat nor skip (also across equal moments), kind filters, scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from crm_core.db import Database
from crm_core.models import Activity, Opportunity, Order, PipelineStage, Task
from crm_core.models.automation import LifecycleTransition
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.queries.customer_profile import customer_timeline, get_customer_profile, key_facts
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.tasks import TaskInput, create_task
from tests.factories import World, build_world, create_random_customer

BASE = dt.datetime(2026, 6, 1, 9, 0, 0)


@pytest.fixture
def history(db: Database) -> tuple[World, int]:
    world = build_world(db)
    customer = create_random_customer(db, world.rep, name="时间线客户")
    for index in range(7):
        log_activity(db, world.rep, ActivityInput(customer, "call", f"call {index}", occurred_at=BASE))
    create_task(db, world.rep, TaskInput("send the quote", customer_id=customer, due_at=BASE + dt.timedelta(days=3)))
    deal = create_opportunity(db, world.rep, OpportunityInput(customer_id=customer, name="ERP 升级", amount="1200.50"))
    with db.system_transaction("test: spread the moments") as session:
        activity_ids = session.scalars(
            select(Activity.id).where(Activity.customer_id == customer).order_by(Activity.id)).all()
        for index, activity_id in enumerate(activity_ids):
            # two pairs share a moment: paging must still neither repeat nor skip
            at = BASE + dt.timedelta(hours=index // 2)
            session.execute(update(Activity).where(Activity.id == activity_id).values(occurred_at=at))
        session.execute(update(Task).where(Task.customer_id == customer)
                        .values(created_at=BASE + dt.timedelta(hours=1)))
        session.execute(update(OpportunityStageChange).where(OpportunityStageChange.opportunity_id == deal)
                        .values(changed_at=BASE + dt.timedelta(hours=1)))
        session.execute(update(LifecycleTransition).where(LifecycleTransition.customer_id == customer)
                        .values(occurred_at=BASE - dt.timedelta(days=1)))
    return world, customer


def walk(db: Database, actor, customer: int, **options) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, int]] = []
    cursor = None
    with db.session(actor) as session:
        for _page in range(20):
            page = customer_timeline(session, customer, after=cursor, limit=3, **options)
            seen.extend((entry.kind, entry.id) for entry in page.entries)
            cursor = page.next_cursor
            if cursor is None:
                break
    return seen


def test_pages_of_three_walk_every_entry_once_newest_first(db: Database, history) -> None:  # type: ignore[no-untyped-def]
    world, customer = history
    with db.session(world.rep) as session:
        everything = customer_timeline(session, customer, limit=100).entries
    walked = walk(db, world.rep, customer)
    assert walked == [(entry.kind, entry.id) for entry in everything]
    assert len(walked) == len(set(walked))
    kinds = {entry.kind for entry in everything}
    assert {"activity", "task", "deal_stage", "lifecycle"} <= kinds
    moments = [entry.occurred_at for entry in everything]
    assert moments == sorted(moments, reverse=True)
    assert sum(entry.kind == "activity" for entry in everything) == 7


def test_a_kind_filter_reads_only_that_kind(db: Database, history) -> None:  # type: ignore[no-untyped-def]
    world, customer = history
    walked = walk(db, world.rep, customer, kinds=("activity",))
    assert len(walked) == 7 and {kind for kind, _ in walked} == {"activity"}
    with db.session(world.rep) as session:
        calls = [entry.text for entry in customer_timeline(session, customer, kinds=["activity"], limit=2).entries]
    assert calls == ["call 6", "call 5"]  # the newest moment, the higher id first among equals


def test_another_reps_customer_has_no_timeline(db: Database, history) -> None:  # type: ignore[no-untyped-def]
    world, customer = history
    with db.session(world.rep_other_team) as session:
        page = customer_timeline(session, customer)
    assert page.entries == [] and page.next_cursor is None
    assert walk(db, world.manager, customer) == walk(db, world.rep, customer)


def test_a_lost_deal_without_a_reason_carries_none_and_with_one_its_words(db: Database, history) -> None:  # type: ignore[no-untyped-def]
    world, customer = history
    with db.system_transaction("test: a lost deal from before reasons were required") as session:
        deal = session.scalars(select(Opportunity).where(Opportunity.customer_id == customer)).one()
        lost = session.scalars(select(PipelineStage).where(PipelineStage.pipeline_id == deal.pipeline_id,
                                                           PipelineStage.kind == "lost")).first()
        assert lost is not None
        session.add(OpportunityStageChange(tenant_id=deal.tenant_id, opportunity_id=deal.id,
                                           from_stage_id=deal.stage_id, to_stage_id=lost.id,
                                           changed_at=BASE + dt.timedelta(days=1)))
        deal.stage_id, deal.lost_reason, deal.closed_at = lost.id, None, BASE + dt.timedelta(days=1)
    with db.session(world.rep) as session:
        entry = customer_timeline(session, customer, kinds=["deal_stage"], limit=1).entries[0]
    assert entry.details["to_kind"] == "lost" and entry.details["lost_reason"] is None
    with db.system_transaction("test: give the reason") as session:
        session.execute(update(Opportunity).where(Opportunity.customer_id == customer)
                        .values(lost_reason="价格太高"))
    with db.session(world.rep) as session:
        entry = customer_timeline(session, customer, kinds=["deal_stage"], limit=1).entries[0]
    assert entry.details["lost_reason"] == "价格太高"


def test_key_facts_sum_open_deals_and_name_the_next_task(db: Database, history) -> None:  # type: ignore[no-untyped-def]
    world, customer = history
    create_opportunity(db, world.rep, OpportunityInput(customer_id=customer, name="Second deal", amount="99.50"))
    with db.session(world.rep) as session:
        profile = get_customer_profile(session, customer, now=BASE, with_activities=False)
        assert profile is not None and profile.activities == []
        facts = key_facts(session, profile, now=BASE)
    assert facts.open_deals == 2 and facts.open_value == Decimal("1300.00")
    assert facts.next_step is not None and facts.next_step.kind == "task"
    assert facts.next_step.title == "send the quote" and not facts.next_step.overdue
    assert facts.last_contacted_at is not None


def test_orders_appear_in_the_timeline(db: Database, history) -> None:  # type: ignore[no-untyped-def]
    world, customer = history
    with db.system_transaction("test: an order") as session:
        tenant_id = session.scalars(select(Task.tenant_id).where(Task.customer_id == customer)).first()
        session.add(Order(tenant_id=tenant_id, customer_id=customer, order_number="SO-1", status="confirmed",
                          ordered_at=BASE + dt.timedelta(days=2), total_amount=Decimal("88.00"), currency="CNY"))
    with db.session(world.rep) as session:
        first = customer_timeline(session, customer, limit=1).entries[0]
    assert first.kind == "order" and first.text == "SO-1" and first.details["amount"] == Decimal("88.00")
