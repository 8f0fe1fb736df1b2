"""The set-based lifecycle refresh equals a hand-written SQL classification, on every database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from crm_core.db import Database
from crm_core.demo import generate_demo
from crm_core.errors import ValidationFailed
from crm_core.models import (
    Customer,
    LifecycleStage,
    Opportunity,
    Order,
    PipelineStage,
    Tenant,
    utcnow,
)
from crm_core.models.automation import LifecycleOverride, LifecycleTransition
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.lifecycle import override_lifecycle_stage, refresh_lifecycle
from tests.factories import World, add_open_deal, build_world, create_random_customer

# Written from the wording, independently of crm_core.services.lifecycle.
HAND_WRITTEN = """
SELECT c.id,
  CASE
    WHEN EXISTS (SELECT 1 FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id
                 WHERE o.customer_id = c.id AND s.kind = 'won' AND o.archived_at IS NULL
                   AND COALESCE(o.closed_at, o.updated_at) >= :cutoff)
      OR EXISTS (SELECT 1 FROM orders r WHERE r.customer_id = c.id AND r.status <> 'cancelled'
                   AND r.archived_at IS NULL AND r.ordered_at >= :cutoff) THEN 'customer'
    WHEN (EXISTS (SELECT 1 FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id
                  WHERE o.customer_id = c.id AND s.kind = 'won' AND o.archived_at IS NULL)
          OR EXISTS (SELECT 1 FROM orders r WHERE r.customer_id = c.id AND r.status <> 'cancelled'
                     AND r.archived_at IS NULL))
      THEN CASE WHEN EXISTS (SELECT 1 FROM activities a WHERE a.customer_id = c.id AND a.occurred_at >= :cutoff)
                THEN 'customer' ELSE 'churned' END
    WHEN EXISTS (SELECT 1 FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id
                 WHERE o.customer_id = c.id AND s.kind = 'open' AND o.archived_at IS NULL) THEN 'intent'
    ELSE 'prospect'
  END AS expected
FROM customers c WHERE c.tenant_id = :tenant
"""


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def demo_tenant(db: Database) -> int:
    generate_demo(db, customers=400, seed=7)
    with db.system_session("test") as session:
        return session.scalars(select(Tenant.id).where(Tenant.slug == "demo")).one()


def expected_stages(db: Database, tenant_id: int, as_of: dt.datetime) -> dict[int, str]:
    with db.system_session("test") as session:
        window = session.scalar(select(Tenant.churn_window_days).where(Tenant.id == tenant_id))
        cutoff = as_of - dt.timedelta(days=window or 180)
        return {row[0]: row[1] for row in session.execute(text(HAND_WRITTEN), {"cutoff": cutoff, "tenant": tenant_id})}


def stored_stages(db: Database, tenant_id: int) -> dict[int, str]:
    with db.system_session("test") as session:
        return dict(
            session.execute(select(Customer.id, Customer.lifecycle_stage).where(Customer.tenant_id == tenant_id)).all()
        )


@pytest.mark.parametrize("months_later", [0, 4])
def test_the_bulk_refresh_equals_the_hand_written_classification_on_demo_data(db: Database, months_later: int) -> None:
    tenant_id = demo_tenant(db)
    as_of = dt.datetime(2026, 11, 1) + dt.timedelta(days=30 * months_later)
    before = stored_stages(db, tenant_id)
    with db.system_transaction("test refresh") as session:
        result = refresh_lifecycle(session, tenant_id, as_of=as_of, count_stages=True)
    after = stored_stages(db, tenant_id)
    expected = expected_stages(db, tenant_id, as_of)
    assert after == expected
    assert result.transitions == sum(1 for customer_id, stage in after.items() if before[customer_id] != stage)
    assert sum(result.stage_counts.values()) == len(after)
    assert result.stage_counts == {stage.value: list(after.values()).count(stage.value) for stage in LifecycleStage}
    if months_later:
        assert result.transitions > 0  # four months on, some buyers lapse
        with db.system_session("test") as session:
            rows = session.scalars(
                select(LifecycleTransition).where(
                    LifecycleTransition.tenant_id == tenant_id, LifecycleTransition.from_stage.is_not(None)
                )
            )
            assert {(row.customer_id, row.to_stage) for row in rows} == {
                (customer_id, stage) for customer_id, stage in after.items() if before[customer_id] != stage
            }
    # a second refresh finds nothing to change
    with db.system_transaction("test refresh") as session:
        assert refresh_lifecycle(session, tenant_id, as_of=as_of).transitions == 0


def won_stage(db: Database, world: World) -> int:
    with db.session(world.admin) as session:
        return session.scalars(select(PipelineStage.id).where(PipelineStage.kind == "won")).first()  # type: ignore[return-value]


def add_order(db: Database, world: World, customer_id: int, when: dt.datetime) -> None:
    with db.transaction(world.rep) as session:
        session.add(
            Order(
                customer_id=customer_id,
                order_number=f"SO-{customer_id}-{when:%Y%m%d%H%M%S}",
                ordered_at=when,
                owner_id=world.rep.user_id,
            )
        )


def stage_of(db: Database, world: World, customer_id: int) -> str:
    with db.session(world.admin) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.lifecycle_stage


def test_an_activity_keeps_a_lapsed_buyer_a_customer(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    add_order(db, world, customer_id, utcnow() - dt.timedelta(days=300))
    with db.system_transaction("test") as session:
        refresh_lifecycle(session, world.rep.tenant_id, [customer_id])
    assert stage_of(db, world, customer_id) == "churned"
    log_activity(db, world.rep, ActivityInput(customer_id, "visit", "Dropped by"))
    assert stage_of(db, world, customer_id) == "customer"


def test_a_manual_override_needs_a_reason_and_holds_until_a_rule_event(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with pytest.raises(ValidationFailed) as refused:
        override_lifecycle_stage(db, world.rep, customer_id, stage="intent", reason="  ")
    assert set(refused.value.errors) == {"reason"}
    override_lifecycle_stage(db, world.rep, customer_id, stage="intent", reason="Asked for a quote at the fair")
    with db.system_transaction("test") as session:
        refresh_lifecycle(session, world.rep.tenant_id)
    assert stage_of(db, world, customer_id) == "intent"  # rules still say prospect: the override holds
    add_order(db, world, customer_id, utcnow() - dt.timedelta(days=1))
    with db.system_transaction("test") as session:
        result = refresh_lifecycle(session, world.rep.tenant_id, [customer_id])
    assert result.overrides_released == 1
    assert stage_of(db, world, customer_id) == "customer"
    with db.session(world.admin) as session:
        assert (
            session.scalars(select(LifecycleOverride).where(LifecycleOverride.customer_id == customer_id)).first()
            is None
        )
        history = [
            (row.from_stage, row.to_stage, row.source)
            for row in session.scalars(
                select(LifecycleTransition)
                .where(LifecycleTransition.customer_id == customer_id)
                .order_by(LifecycleTransition.id)
            )
        ]
    assert history == [(None, "prospect", "rule"), ("prospect", "intent", "manual"), ("intent", "customer", "rule")]


def test_a_stage_given_at_creation_holds_as_an_override(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, lifecycle_stage="customer")
    with db.system_transaction("test") as session:
        refresh_lifecycle(session, world.rep.tenant_id)
    assert stage_of(db, world, customer_id) == "customer"


def test_an_open_deal_makes_a_prospect_intent(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    add_open_deal(db, world.rep, customer_id, "First deal")
    with db.system_transaction("test") as session:
        refresh_lifecycle(session, world.rep.tenant_id, [customer_id])
    assert stage_of(db, world, customer_id) == "intent"


def test_deal_writes_move_the_stage_in_the_same_transaction(db: Database, world: World) -> None:
    from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage

    customer_id = create_random_customer(db, world.rep)
    deal_id = create_opportunity(db, world.rep, OpportunityInput(customer_id=customer_id, name="Pilot"))
    assert stage_of(db, world, customer_id) == "intent"
    with db.session(world.rep) as session:
        deal = session.get(Opportunity, deal_id)
        won = session.scalars(select(PipelineStage).where(PipelineStage.kind == "won")).first()
        assert deal is not None and won is not None
        version = deal.version
    move_stage(db, world.rep, deal_id, won.id, expected_version=version)
    assert stage_of(db, world, customer_id) == "customer"
    with db.session(world.admin) as session:
        reasons = [
            row.reason
            for row in session.scalars(
                select(LifecycleTransition)
                .where(LifecycleTransition.customer_id == customer_id)
                .order_by(LifecycleTransition.id)
            )
        ]
    assert reasons == ["no_signal", "open_deal", "recent_sale"]


def test_a_stage_edited_in_the_customer_form_holds_instead_of_being_silently_undone(db: Database, world: World) -> None:
    from crm_core.services.customers import CustomerInput, update_customer

    customer_id = create_random_customer(db, world.rep)
    with db.session(world.rep) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        form = CustomerInput(name=customer.name, owner_id=world.rep.user_id, lifecycle_stage="intent")
        version = customer.version
    update_customer(db, world.rep, customer_id, form, expected_version=version)
    with db.system_transaction("test") as session:
        refresh_lifecycle(session, world.rep.tenant_id)
    assert stage_of(db, world, customer_id) == "intent"
    with db.session(world.admin) as session:
        last = session.scalars(
            select(LifecycleTransition)
            .where(LifecycleTransition.customer_id == customer_id)
            .order_by(LifecycleTransition.id.desc())
        ).first()
    assert last is not None and (last.source, last.reason, last.actor_id) == (
        "manual",
        "manual_edit",
        world.rep.user_id,
    )
